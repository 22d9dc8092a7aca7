//! One host of a deploy: its plan (files whose hash differs, and whether
//! the daemon needs a start, a restart or a reload), applying it with a
//! validation before anything is replaced, the health wait, and the
//! rollback from the `.prev` copies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hactl_agent::config::keepalived_test::judge_config_test;
use serde::Serialize;

use super::{Cancel, DeployOptions, HostFailure};

use crate::agent_control::AgentControl;
use crate::observe::{self, HostFacts, Limit, Observation, Wants};
use crate::operations::{FileKind, HostStep, Plan, PutFile, WantedFile, plan_host};
use crate::plan::{Backend, ClusterPlan, PairPlan, State};
use crate::remote_layout as layout;
use crate::render::{self, FileRole, Install, Secrets};
use crate::ssh::{HostSession, Pool, RemoteCommand, Target, script_argv};

/// Suffix of a file uploaded but not yet validated and installed.
const NEW_SUFFIX: &str = ".hactl-new";

/// Directories every deploy makes sure of.
const DIRS: &[&str] = &[
    layout::AGENT_BIN_DIR,
    "/etc/hactl",
    layout::CHECKS_DIR,
    "/etc/keepalived",
    layout::STATE_DIR,
    layout::RUN_DIR,
];

/// Moves F.hactl-new over F, keeping F as F.prev when it existed: argv F...
/// Prints `prev F` or `new F` per file.
/// argv (F DIGEST RECORD) triples: also records F's size, inode, change
/// time and digest in RECORD for the next run's hash fact.
const INSTALL: &str = r#"set -e
while [ $# -ge 3 ]; do
  f=$1
  if [ -e "$f" ]; then cp -p -- "$f" "$f.prev"; echo "prev $f"; else echo "new $f"; fi
  mv -f -- "$f.hactl-new" "$f"
  mkdir -p -m 0700 -- "${3%/*}"
  { stat -c '%s %i %.9Z' -- "$f"; echo "$2"; } >"$3.tmp" && mv -f -- "$3.tmp" "$3"
  shift 3
done"#;

/// Puts F.prev back over F, or removes F when it had no previous version:
/// argv (prev|new) F pairs.
const RESTORE: &str = r#"set -e
while [ $# -ge 2 ]; do
  if [ "$1" = prev ]; then mv -f -- "$2.prev" "$2"; else rm -f -- "$2"; fi
  shift 2
done"#;

/// What the daemon needed after the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Start,
    Restart,
    Reload,
}

/// What a successful host reports.
pub struct HostDone {
    pub changed: bool,
    pub plan: Vec<String>,
    pub diff: Option<ConfigDiff>,
    /// How to undo what was applied, when something was.
    pub undo: Option<Undo>,
}

/// How to put a host that was changed back as it was (a later host of
/// its pair failed).
#[derive(Debug, Clone)]
pub struct Undo {
    control: AgentControl,
    /// [`RESTORE`]'s argv words.
    restore: Vec<String>,
    action: Action,
}

impl Undo {
    /// Restores the `.prev` files and the daemon as it ran before: stopped
    /// after a first start, restarted after a binary change, else reloaded.
    pub async fn run(&self, session: &HostSession) -> Result<(), HostFailure> {
        session
            .run(&RemoteCommand::new(&script_argv(RESTORE, &self.restore)).become_(true))
            .await?;
        match self.action {
            Action::Start => self.control.stop(session).await?,
            Action::Restart => {
                self.control.stop(session).await?;
                self.control.start(session).await?;
            }
            Action::Reload => self.control.reload(session).await?,
            Action::None => {}
        }
        Ok(())
    }
}

/// Every path whose hash deploy may compare on a host of `pair` (the
/// binary, the unit, check scripts carried by the inventory, the config),
/// so one round trip answers whatever the host turns out to need.
pub(super) fn candidate_paths(pair: &PairPlan) -> Vec<String> {
    let mut paths = Vec::new();
    if pair.backend == Backend::Agent {
        paths.push(layout::AGENT_BIN.to_string());
        paths.push(layout::AGENT_UNIT_FILE.to_string());
    }
    paths.extend(
        pair.checks
            .iter()
            .filter(|c| c.content.is_some())
            .map(|c| c.script.clone()),
    );
    paths.push(layout::config_path(pair.backend).to_string());
    paths
}

/// The files `host` must get (rendered, secrets in full), given whether
/// systemd runs there.
pub(super) fn wanted_files(
    plan: &ClusterPlan,
    pair: &PairPlan,
    host: &str,
    systemd: bool,
    options: &DeployOptions,
) -> Result<Vec<WantedFile>, HostFailure> {
    let files = render::render_host(plan, host, options.templates.as_deref(), Secrets::Reveal)
        .map_err(|source| HostFailure::Render {
            host: host.to_string(),
            source,
        })?;
    let mut wanted = Vec::new();
    if pair.backend == Backend::Agent {
        wanted.push(WantedFile {
            file: options.agent_bin.clone(),
            kind: FileKind::Binary,
        });
    }
    for file in files {
        if file.install == Install::WithSystemd && !systemd {
            continue;
        }
        let kind = match file.role {
            FileRole::Config => FileKind::Config,
            FileRole::CheckScript => FileKind::CheckScript,
            FileRole::Unit => FileKind::Unit,
        };
        wanted.push(WantedFile {
            file: PutFile::new(file.path, file.content.into_bytes(), file.mode),
            kind,
        });
    }
    Ok(wanted)
}

pub(super) fn daemon_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Agent => "hactl-agent",
        Backend::Keepalived => "keepalived",
    }
}

/// A host's plan from its facts: the no-op (with reason) or the steps,
/// each as a line of the report.
pub(super) struct HostWork {
    pub wanted: Vec<WantedFile>,
    pub plan: Plan<HostStep>,
    pub lines: Vec<String>,
    /// What healthy means for this host once changed.
    pub health: HealthRule,
}

/// What deploy waits for after changing a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthRule {
    /// Instances no host of the pair served (held the VIPs of) when the
    /// pair's deploy began: nothing to keep up, so their master may still
    /// be BACKUP (converging) while the roll goes on.
    pub unserved: std::collections::BTreeSet<String>,
    /// For the last host of the pair's roll: the pair's hosts that answered
    /// deploy's first look; each must then be as planned, strictly (the
    /// unserved instances have converged). Empty: this host alone.
    pub whole_pair: Vec<String>,
}

pub(super) fn host_work(
    plan: &ClusterPlan,
    pair: &PairPlan,
    host: &str,
    facts: &HostFacts,
    options: &DeployOptions,
) -> Result<HostWork, HostFailure> {
    let systemd = facts.control.supervisor == crate::facts::Supervisor::Systemd;
    let wanted = wanted_files(plan, pair, host, systemd, options)?;
    let mut hashes = BTreeMap::new();
    for w in &wanted {
        match facts.hashes.get(&w.file.path) {
            Some(Ok(hash)) => {
                hashes.insert(w.file.path.clone(), hash.clone());
            }
            Some(Err(why)) => {
                return Err(HostFailure::Facts {
                    host: host.to_string(),
                    detail: why.clone(),
                });
            }
            None => {}
        }
    }
    let daemon = daemon_name(pair.backend);
    let work = plan_host(&wanted, &hashes, facts.daemon.pid(), daemon);
    let lines = match &work {
        Plan::NoOp { reason } => vec![reason.clone()],
        Plan::Steps { steps } => steps
            .iter()
            .map(|s| match s {
                HostStep::Upload { .. } => s.to_string(),
                other => format!("{} {daemon}{}", verb(other), suffix(other)),
            })
            .collect(),
    };
    Ok(HostWork {
        wanted,
        plan: work,
        lines,
        health: HealthRule::default(),
    })
}

fn verb(step: &HostStep) -> &'static str {
    match step {
        HostStep::Start => "start",
        HostStep::Restart => "restart",
        HostStep::Reload => "reload",
        HostStep::Upload { .. } => "upload",
    }
}

fn suffix(step: &HostStep) -> &'static str {
    if *step == HostStep::Reload {
        " (SIGHUP)"
    } else {
        ""
    }
}

/// Applies one host's work (module doc of `deploy`): nothing with
/// `--check` or a no-op.
#[allow(clippy::too_many_arguments)]
pub(super) async fn deploy_host(
    pool: &Arc<Pool>,
    plan: &ClusterPlan,
    pair: &PairPlan,
    session: &HostSession,
    facts: &HostFacts,
    work: HostWork,
    pair_targets: &[Target],
    options: &DeployOptions,
) -> Result<HostDone, HostFailure> {
    let host = session.host().to_string();
    let Plan::Steps { steps } = &work.plan else {
        return Ok(HostDone {
            changed: false,
            plan: work.lines,
            diff: None,
            undo: None,
        });
    };
    let uploads: Vec<&WantedFile> = work
        .wanted
        .iter()
        .filter(|w| {
            steps
                .iter()
                .any(|s| matches!(s, HostStep::Upload { path, .. } if *path == w.file.path))
        })
        .collect();
    let config_changed = uploads.iter().any(|w| w.kind == FileKind::Config);
    let diff = if options.diff && config_changed {
        Some(config_diff(plan, &host, facts, options)?)
    } else {
        None
    };
    if options.check {
        return Ok(HostDone {
            changed: true,
            plan: work.lines,
            diff,
            undo: None,
        });
    }
    let action = if steps.contains(&HostStep::Start) {
        Action::Start
    } else if steps.contains(&HostStep::Restart) {
        Action::Restart
    } else if steps.contains(&HostStep::Reload) {
        Action::Reload
    } else {
        Action::None
    };
    let host_plan = HostChange {
        control: facts.control,
        files: uploads,
        action,
        pid: facts.daemon.pid(),
        health: &work.health,
    };
    let restore = apply(
        pool,
        plan,
        pair,
        session,
        pair_targets,
        &host_plan,
        &options.cancel,
    )
    .await?;
    Ok(HostDone {
        changed: true,
        plan: work.lines,
        diff,
        undo: Some(Undo {
            control: facts.control,
            restore,
            action,
        }),
    })
}

/// Everything one host needs applied.
struct HostChange<'a> {
    control: AgentControl,
    files: Vec<&'a WantedFile>,
    action: Action,
    pid: Option<u32>,
    health: &'a HealthRule,
}

/// Installs uploaded `.hactl-new` files, adding to `restore` the
/// (prev|new, path) words [`RESTORE`] takes to undo it, also for the files
/// installed before a failure part-way.
async fn install(
    session: &HostSession,
    files: &[&WantedFile],
    restore: &mut Vec<String>,
) -> Result<(), HostFailure> {
    if files.is_empty() {
        return Ok(());
    }
    let mut argv = vec!["sh".to_string(), "-c".into(), INSTALL.into(), "sh".into()];
    for w in files {
        argv.push(w.file.path.clone());
        argv.push(w.file.digest().to_string());
        argv.push(crate::facts::hash_record(&w.file.path));
    }
    let command = RemoteCommand::new(&argv).become_(true);
    let installed = session.output(&command).await?;
    restore.extend(
        installed
            .stdout_text()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .flat_map(|(kind, path)| [kind.to_string(), path.to_string()]),
    );
    if !installed.success() {
        return Err(HostFailure::Ssh(crate::ssh::SshError::Remote(
            crate::ssh::RemoteError {
                host: session.host().to_string(),
                command: "install the new files".to_string(),
                status: installed.status,
                stderr: crate::ssh::bounded_stderr(&installed.stderr),
            },
        )));
    }
    Ok(())
}

/// What has been done to a host in progress, so that a failure part-way
/// (an SSH error, an interrupt) puts it back as it was.
#[derive(Debug, Default)]
struct Applied {
    /// `.hactl-new` (and validation) files uploaded and not yet installed.
    uploaded: Vec<String>,
    /// [`RESTORE`]'s words for what was installed.
    restore: Vec<String>,
    /// The daemon was started, restarted or reloaded (or that began).
    acted: bool,
}

/// The config `hactl-agent check` validates when check scripts change with
/// it: the same text with each new script's path pointing at its uploaded
/// `.hactl-new` copy, so the scripts the running daemon runs are replaced
/// only once the config that goes with them is accepted.
pub(super) fn config_for_validation(config: &str, scripts: &[&str]) -> String {
    let mut out = config.to_string();
    for path in scripts {
        let mut text = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(path) {
            let after = &rest[at + path.len()..];
            let ends = after
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || "._/-".contains(c)));
            text.push_str(&rest[..at + path.len()]);
            if ends {
                text.push_str(NEW_SUFFIX);
            }
            rest = after;
        }
        text.push_str(rest);
        out = text;
    }
    out
}

/// Suffix of the config variant validated when check scripts change.
const CHECK_SUFFIX: &str = ".hactl-check";

async fn apply(
    pool: &Arc<Pool>,
    cluster: &ClusterPlan,
    pair: &PairPlan,
    session: &HostSession,
    pair_targets: &[Target],
    plan: &HostChange<'_>,
    cancel: &Cancel,
) -> Result<Vec<String>, HostFailure> {
    let host = session.host().to_string();
    let mut applied = Applied::default();
    let result = apply_steps(
        pool,
        cluster,
        pair,
        session,
        pair_targets,
        plan,
        cancel,
        &mut applied,
    )
    .await;
    let failure = match result {
        Ok(()) => return Ok(applied.restore),
        // These put the host back themselves.
        Err(
            e @ (HostFailure::Rejected { .. }
            | HostFailure::Unhealthy { .. }
            | HostFailure::RollbackFailed { .. }),
        ) => return Err(e),
        Err(e) => e,
    };
    let put_back = put_back(session, plan, &applied).await;
    let rollback = put_back.err().map(|e| crate::error_chain(&e));
    Err(match failure {
        HostFailure::Interrupted { .. } => HostFailure::Interrupted {
            host,
            detail: match rollback {
                None => "rolled back".to_string(),
                Some(e) => format!("the rollback failed: {e}"),
            },
        },
        other => HostFailure::PartWay {
            host,
            detail: crate::error_chain(&other),
            rollback: match rollback {
                None => "rolled back".to_string(),
                Some(e) => format!("the rollback failed too: {e}"),
            },
        },
    })
}

/// Undoes [`Applied`]: uploaded files removed, installed ones restored,
/// the daemon as it ran before.
async fn put_back(
    session: &HostSession,
    plan: &HostChange<'_>,
    applied: &Applied,
) -> Result<(), HostFailure> {
    if !applied.uploaded.is_empty() {
        let mut remove = vec!["rm".to_string(), "-f".into(), "--".into()];
        remove.extend(applied.uploaded.iter().cloned());
        session
            .run(&RemoteCommand::new(&remove).become_(true))
            .await?;
    }
    let undo = Undo {
        control: plan.control,
        restore: applied.restore.clone(),
        action: if applied.acted {
            plan.action
        } else {
            Action::None
        },
    };
    if !undo.restore.is_empty() {
        session
            .run(&RemoteCommand::new(&script_argv(RESTORE, &undo.restore)).become_(true))
            .await?;
    }
    // A first start undone is a stop; a restart undone brings back the
    // daemon that ran (after a binary change: the restored binary).
    match undo.action {
        Action::Start => undo.control.stop(session).await?,
        Action::Restart => {
            undo.control.stop(session).await?;
            if plan.pid.is_some() {
                undo.control.start(session).await?;
            }
        }
        Action::Reload => undo.control.reload(session).await?,
        Action::None => {}
    }
    Ok(())
}

/// `Err(Interrupted)` once the user asked deploy to stop.
fn checkpoint(cancel: &Cancel, host: &str) -> Result<(), HostFailure> {
    if cancel.is_set() {
        return Err(HostFailure::Interrupted {
            host: host.to_string(),
            detail: String::new(),
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_steps(
    pool: &Arc<Pool>,
    cluster: &ClusterPlan,
    pair: &PairPlan,
    session: &HostSession,
    pair_targets: &[Target],
    plan: &HostChange<'_>,
    cancel: &Cancel,
    applied: &mut Applied,
) -> Result<(), HostFailure> {
    let host = session.host().to_string();
    checkpoint(cancel, &host)?;
    let mut mkdir = vec!["mkdir", "-p", "-m", "0755", "--"];
    mkdir.extend(DIRS);
    session
        .run(&RemoteCommand::new(&mkdir).become_(true))
        .await?;
    let (late, early): (Vec<&WantedFile>, Vec<&WantedFile>) = plan
        .files
        .iter()
        .partition(|w| matches!(w.kind, FileKind::Config | FileKind::Binary));
    let config = late.iter().find(|w| w.kind == FileKind::Config);
    // The config validated: the new one, its check scripts at their
    // uploaded copies when they change with it.
    let scripts: Vec<&str> = early
        .iter()
        .filter(|w| w.kind == FileKind::CheckScript)
        .map(|w| w.file.path.as_str())
        .collect();
    let mut uploads: Vec<(String, std::sync::Arc<[u8]>, u32)> = plan
        .files
        .iter()
        .map(|w| {
            (
                format!("{}{NEW_SUFFIX}", w.file.path),
                w.file.content.clone(),
                w.file.mode,
            )
        })
        .collect();
    let checked = match config {
        Some(config) if !scripts.is_empty() => {
            let text = String::from_utf8_lossy(&config.file.content);
            let path = format!("{}{CHECK_SUFFIX}", config.file.path);
            uploads.push((
                path.clone(),
                config_for_validation(&text, &scripts).into_bytes().into(),
                0o600,
            ));
            Some(path)
        }
        Some(config) => Some(format!("{}{NEW_SUFFIX}", config.file.path)),
        None => None,
    };
    for (path, content, mode) in uploads {
        checkpoint(cancel, &host)?;
        applied.uploaded.push(path.clone());
        session.upload(content, &path, mode).await?;
    }
    if let Some(checked) = checked {
        checkpoint(cancel, &host)?;
        let (checker, argv): (&'static str, Vec<String>) = match pair.backend {
            Backend::Agent => {
                let binary = if late.iter().any(|w| w.kind == FileKind::Binary) {
                    format!("{}{NEW_SUFFIX}", layout::AGENT_BIN)
                } else {
                    layout::AGENT_BIN.to_string()
                };
                (
                    "hactl-agent check",
                    vec![binary, "check".into(), "-f".into(), checked.clone()],
                )
            }
            Backend::Keepalived => (
                "keepalived --config-test",
                vec![
                    "keepalived".into(),
                    "--config-test".into(),
                    "-f".into(),
                    checked.clone(),
                ],
            ),
        };
        let out = session
            .output(&RemoteCommand::new(&argv).become_(true))
            .await?;
        let rejection = match pair.backend {
            Backend::Agent => (!out.success()).then(|| {
                let stderr = out.stderr_text().trim().to_string();
                let text = if stderr.is_empty() {
                    out.stdout_text().trim().to_string()
                } else {
                    stderr
                };
                // Name the file that will be installed, not the variant.
                text.replace(CHECK_SUFFIX, NEW_SUFFIX)
            }),
            // keepalived's exit code says little (see keepalived_test).
            Backend::Keepalived => {
                let output = format!("{}\n{}", out.stdout_text(), out.stderr_text());
                let verdict = judge_config_test(out.status, &output);
                (!verdict.accepted).then(|| verdict.complaints.join("; "))
            }
        };
        if let Some(message) = rejection {
            let mut remove = vec!["rm".to_string(), "-f".into(), "--".into()];
            remove.append(&mut applied.uploaded);
            session
                .run(&RemoteCommand::new(&remove).become_(true))
                .await?;
            return Err(HostFailure::Rejected {
                host,
                checker,
                message,
            });
        }
    }
    checkpoint(cancel, &host)?;
    // Check scripts first, then the binary and the config, in one step.
    let mut order = early.clone();
    order.extend(late.iter().copied());
    install(session, &order, &mut applied.restore).await?;
    applied.uploaded.retain(|p| p.ends_with(CHECK_SUFFIX));
    if !applied.uploaded.is_empty() {
        let mut remove = vec!["rm".to_string(), "-f".into(), "--".into()];
        remove.append(&mut applied.uploaded);
        session
            .run(&RemoteCommand::new(&remove).become_(true))
            .await?;
    }
    checkpoint(cancel, &host)?;
    // The daemon ran before: the rollback brings it back.
    let had_previous = plan.pid.is_some();
    let control = plan.control;
    applied.acted = plan.action != Action::None;
    let acted = match plan.action {
        Action::None => Ok(()),
        Action::Start => control.start(session).await,
        Action::Restart => match control.stop(session).await {
            Ok(()) => control.start(session).await,
            Err(e) => Err(e),
        },
        Action::Reload => control.reload(session).await,
    };
    let health = match acted {
        Ok(()) => {
            wait_healthy(
                pool,
                cluster,
                pair,
                &host,
                pair_targets,
                plan.health,
                cancel,
            )
            .await
        }
        Err(e) => Err(e.to_string()),
    };
    let Err(mut detail) = health else {
        return Ok(());
    };
    let interrupted = cancel.is_set();
    let log = control.log_tail(session, 3).await;
    if !log.is_empty() {
        detail.push_str(&format!("; its log ends: {}", log.replace('\n', " | ")));
    }
    // Roll back: previous files, previous daemon.
    let restore = std::mem::take(&mut applied.restore);
    applied.acted = false;
    let rollback = async {
        session
            .run(&RemoteCommand::new(&script_argv(RESTORE, &restore)).become_(true))
            .await?;
        control.stop(session).await?;
        if had_previous {
            control.start(session).await?;
        }
        Ok::<(), HostFailure>(())
    }
    .await;
    match (rollback, interrupted) {
        (Ok(()), true) => Err(HostFailure::Interrupted {
            host,
            detail: "rolled back".into(),
        }),
        (Err(e), true) => Err(HostFailure::Interrupted {
            host,
            detail: format!("the rollback failed: {}", crate::error_chain(&e)),
        }),
        (Ok(()), false) => Err(HostFailure::Unhealthy { host, detail }),
        (Err(e), false) => Err(HostFailure::RollbackFailed {
            host,
            detail,
            rollback: crate::error_chain(&e),
        }),
    }
}

/// How long a host may take to settle after a change: three adverts of
/// the slowest instance (a backup's Master_Down_Interval, RFC 5798 6.1)
/// plus time to start and for check scripts to rise.
fn settle_time(pair: &PairPlan) -> Duration {
    let advert = pair
        .instances
        .iter()
        .map(|i| i.advert_int)
        .max()
        .unwrap_or(100);
    Duration::from_millis(u64::from(advert) * 10 * 4) + Duration::from_secs(8)
}

/// Waits until `host` is healthy (module doc of `deploy`), looking at the
/// whole pair each time (one round trip per host): whether an instance's
/// master runs decides what its backups may be. A look that gets no
/// answer in time says nothing about health: a loaded host is slow, not
/// unhealthy, so such looks are retried for up to [`SLOW_HOST_GRACE`]
/// beyond the settle time.
pub(super) async fn wait_healthy(
    pool: &Arc<Pool>,
    cluster: &ClusterPlan,
    pair: &PairPlan,
    host: &str,
    pair_targets: &[Target],
    rule: &HealthRule,
    cancel: &Cancel,
) -> Result<(), String> {
    let settled_by = tokio::time::Instant::now() + settle_time(pair);
    let slow_by = settled_by + SLOW_HOST_GRACE;
    let look = |targets: Vec<Target>| async move {
        observe::observe(
            pool,
            cluster,
            &targets,
            &Wants::placement(),
            Limit::PerHost(LOOK_TIMEOUT),
        )
        .await
    };
    // The first look takes in the whole pair (do the instances' masters
    // run?); deploy changes no other host while it waits, so later looks
    // ask this host alone.
    let mut seen = look(pair_targets.to_vec()).await;
    let mine: Vec<Target> = pair_targets
        .iter()
        .filter(|t| t.host == host || rule.whole_pair.contains(&t.host))
        .cloned()
        .collect();
    loop {
        let verdict = if rule.whole_pair.is_empty() {
            judge_health(pair, host, &seen, &rule.unserved)
        } else {
            rule.whole_pair.iter().try_for_each(|h| {
                judge_health(pair, h, &seen, &Default::default()).map_err(|why| {
                    if h == host {
                        why
                    } else {
                        format!("{h}: {why}")
                    }
                })
            })
        };
        let answered = mine
            .iter()
            .all(|t| matches!(seen.hosts.get(&t.host), Some(observe::HostView::Reached(_))));
        let now = tokio::time::Instant::now();
        if cancel.is_set() {
            return Err("interrupted".into());
        }
        match verdict {
            Ok(()) => return Ok(()),
            Err(why) if now >= slow_by || (answered && now >= settled_by) => return Err(why),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
        seen.hosts.extend(look(mine.clone()).await.hosts);
    }
}

/// How long one look at a host may take while deploy waits.
const LOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer deploy waits for a host whose looks go unanswered.
const SLOW_HOST_GRACE: Duration = Duration::from_secs(60);

/// Whether `host` is healthy in `seen` (pure; see the module doc of
/// `deploy`): its daemon runs, each of its instances is in its planned
/// state with all its VIPs (master) or none (backup); a backup may be
/// MASTER while its instance's master does not run yet, and the master of
/// an instance in `unserved` may still be BACKUP (converging).
pub fn judge_health(
    pair: &PairPlan,
    host: &str,
    seen: &Observation,
    unserved: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    let facts = match seen.hosts.get(host) {
        Some(observe::HostView::Reached(facts)) => facts,
        Some(observe::HostView::Unreachable(why)) => return Err(why.clone()),
        None => return Err("not looked at".into()),
    };
    if !facts.daemon_up() {
        return Err(format!("{} is not running", daemon_name(pair.backend)));
    }
    for inst in &pair.instances {
        let Some(role) = inst.role(host) else {
            continue;
        };
        let view = seen.instance(pair, inst);
        let Some(mine) = view.host(host) else {
            continue;
        };
        let state = mine
            .state
            .clone()
            .ok_or_else(|| format!("instance {} is not running", inst.name))?;
        let present = mine.holds.len();
        let master_runs = view
            .host(&inst.master)
            .is_some_and(|m| m.daemon_up == Some(true));
        match role.state {
            State::Master if state == "MASTER" && present == inst.vips.len() => {}
            State::Master if unserved.contains(&inst.name) && state == "BACKUP" => {}
            State::Master => {
                return Err(format!(
                    "instance {} is {state} with {present}/{} VIPs, wants MASTER with all",
                    inst.name,
                    inst.vips.len()
                ));
            }
            State::Backup if state == "BACKUP" && present == 0 => {}
            State::Backup if !master_runs && (state == "MASTER" || state == "BACKUP") => {}
            State::Backup => {
                return Err(format!(
                    "instance {} is {state} holding {present} VIPs, wants BACKUP holding none",
                    inst.name
                ));
            }
        }
    }
    Ok(())
}

/// The host's config and the new one, both redacted (`--diff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    pub path: String,
    pub before: String,
    pub after: String,
}

impl ConfigDiff {
    /// As a unified diff, headed `HOST:PATH`.
    pub fn unified(&self, host: &str) -> String {
        let path = &self.path;
        similar::TextDiff::from_lines(&self.before, &self.after)
            .unified_diff()
            .header(&format!("{host}:{path}"), &format!("{host}:{path} (new)"))
            .to_string()
    }
}

/// The host's config (from its facts; empty when it has none) and the
/// new one.
fn config_diff(
    plan: &ClusterPlan,
    host: &str,
    facts: &HostFacts,
    options: &DeployOptions,
) -> Result<ConfigDiff, HostFailure> {
    let path = layout::config_path(facts.control.backend);
    let old = match &facts.config {
        Some(Ok(Some(text))) => redact(text),
        _ => String::new(),
    };
    let new = render::render_config(plan, host, options.templates.as_deref(), Secrets::Redact)
        .map_err(|source| HostFailure::Render {
            host: host.to_string(),
            source,
        })?;
    Ok(ConfigDiff {
        path: path.to_string(),
        before: old,
        after: new,
    })
}

/// The file with every `auth_pass` value replaced.
pub fn redact(config: &str) -> String {
    config
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("auth_pass") {
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}auth_pass {}\n", crate::plan::secret::REDACTED)
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_diff_is_unified_under_host_and_path() {
        let d = ConfigDiff {
            path: "/etc/hactl/keepalived.conf".into(),
            before: "a\npriority 100\n".into(),
            after: "a\npriority 90\n".into(),
        };
        let text = d.unified("lb04");
        assert!(
            text.starts_with(
                "--- lb04:/etc/hactl/keepalived.conf\n+++ lb04:/etc/hactl/keepalived.conf (new)\n"
            ),
            "{text}"
        );
        assert!(text.contains("-priority 100\n+priority 90\n"), "{text}");
    }

    #[test]
    fn validation_points_changed_scripts_at_their_uploaded_copies() {
        let conf = "vrrp_script a {\n    script \"/etc/hactl/checks/a.sh\"\n}\nvrrp_script b {\n    script \"/etc/hactl/checks/a.sh2 x\"\n}\nvrrp_script c {\n    script \"/etc/hactl/checks/c.sh --fast\"\n}\n";
        let out =
            config_for_validation(conf, &["/etc/hactl/checks/a.sh", "/etc/hactl/checks/c.sh"]);
        assert!(
            out.contains("script \"/etc/hactl/checks/a.sh.hactl-new\"\n"),
            "{out}"
        );
        assert!(
            out.contains("script \"/etc/hactl/checks/a.sh2 x\""),
            "a prefix is not a match: {out}"
        );
        assert!(
            out.contains("script \"/etc/hactl/checks/c.sh.hactl-new --fast\""),
            "{out}"
        );
    }

    #[test]
    fn the_unit_removes_a_dead_agents_vips_and_restarts_it() {
        // Issue 14: a VIP never outlives its agent under systemd either.
        let inv = crate::inventory::Inventory::load(std::path::Path::new("inventories/lab.yaml"))
            .unwrap();
        let plan = crate::plan::resolve(&inv, &|_| None).unwrap();
        let files = render::render_host(&plan, "lb01", None, Secrets::Redact).unwrap();
        let unit = files
            .iter()
            .find(|f| f.role == FileRole::Unit)
            .expect("the agent's unit");
        let lines: Vec<&str> = unit.content.lines().collect();
        assert!(
            lines.contains(
                &"ExecStopPost=+/usr/local/lib/hactl/hactl-agent cleanup --state-dir /var/lib/hactl"
            ),
            "{}",
            unit.content
        );
        assert!(lines.contains(&"Restart=on-failure"), "{}", unit.content);
    }

    #[test]
    fn redact_hides_auth_pass_only() {
        let conf = "vrrp_instance a {\n    authentication {\n        auth_pass s3cret\n    }\n}\n";
        let out = redact(conf);
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("        auth_pass <redacted>\n"), "{out}");
        assert!(out.starts_with("vrrp_instance a {\n"));
    }
}
