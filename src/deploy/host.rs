//! One host of a deploy: its plan (files whose hash differs, and whether
//! the daemon needs a start, a restart or a reload), applying it with a
//! validation before anything is replaced, the health wait, and the
//! rollback from the `.prev` copies.

use std::collections::BTreeMap;
use std::time::Duration;

use hactl_agent::config::keepalived_test::judge_config_test;
use serde::Serialize;

use super::{DeployOptions, Expectation, HostFailure, session_of, settle};

use crate::agent_control::AgentControl;
use crate::facts::{self, FileHash, Interfaces};
use crate::operations::sha256_hex;
use crate::plan::{Backend, ClusterPlan, PairPlan, State};
use crate::remote_layout as layout;
use crate::render::{self, Secrets};
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
const INSTALL: &str = r#"set -e
for f in "$@"; do
  if [ -e "$f" ]; then cp -p -- "$f" "$f.prev"; echo "prev $f"; else echo "new $f"; fi
  mv -f -- "$f.hactl-new" "$f"
done"#;

/// Puts F.prev back over F, or removes F when it had no previous version:
/// argv (prev|new) F pairs.
const RESTORE: &str = r#"set -e
while [ $# -ge 2 ]; do
  if [ "$1" = prev ]; then mv -f -- "$2.prev" "$2"; else rm -f -- "$2"; fi
  shift 2
done"#;

/// What the daemon needs after the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    None,
    Start,
    Restart,
    Reload,
}

/// A file to replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub path: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub mode: u32,
    /// Replaced only after validation (the config).
    #[serde(skip)]
    pub validated: bool,
}

/// Everything one host needs.
#[derive(Debug, Clone)]
pub struct HostChange {
    pub control: AgentControl,
    pub files: Vec<Step>,
    pub action: Action,
    pub pid: Option<u32>,
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

pub(super) async fn deploy_host(
    pool: &Pool,
    plan: &ClusterPlan,
    pair: &PairPlan,
    session: &HostSession,
    targets: &BTreeMap<&str, &Target>,
    options: &DeployOptions,
) -> Result<HostDone, HostFailure> {
    let host = session.host().to_string();
    let files = render::render_host(plan, &host, options.templates.as_deref(), Secrets::Reveal)?;
    let config = files
        .iter()
        .find(|f| f.name == "keepalived.conf")
        .map(|f| f.content.clone())
        .unwrap_or_default();
    let control = AgentControl::detect(session, pair.backend).await?;
    let mut wanted = Vec::new();
    if pair.backend == Backend::Agent {
        wanted.push(Step {
            path: layout::AGENT_BIN.to_string(),
            content: options.agent_bin.to_vec(),
            mode: 0o755,
            validated: false,
        });
    }
    for check in &pair.checks {
        if let Some(content) = &check.content {
            wanted.push(Step {
                path: check.script.clone(),
                content: content.clone().into_bytes(),
                mode: 0o755,
                validated: false,
            });
        }
    }
    if pair.backend == Backend::Agent
        && control.supervisor == crate::agent_control::Supervisor::Systemd
    {
        wanted.push(Step {
            path: layout::AGENT_UNIT_FILE.to_string(),
            content: include_str!("../../templates/hactl-agent.service.j2")
                .split_once("-#}\n")
                .map_or("", |(_, unit)| unit)
                .as_bytes()
                .to_vec(),
            mode: 0o644,
            validated: false,
        });
    }
    let config_path = layout::config_path(pair.backend).to_string();
    wanted.push(Step {
        path: config_path.clone(),
        content: config.into_bytes(),
        mode: 0o600,
        validated: true,
    });
    let mut changed_files = Vec::new();
    for step in wanted {
        let current = facts::gather(
            session,
            &FileHash {
                path: step.path.clone(),
            },
        )
        .await?;
        if current.as_deref() != Some(sha256_hex(&step.content).as_str()) {
            changed_files.push(step);
        }
    }
    let pid = control.running_pid(session).await?;
    let binary_changed = changed_files.iter().any(|s| s.path == layout::AGENT_BIN);
    let config_changed = changed_files.iter().any(|s| s.path == config_path);
    let action = match pid {
        None => Action::Start,
        Some(_) if binary_changed => Action::Restart,
        Some(_) if config_changed => Action::Reload,
        Some(_) => Action::None,
    };
    let mut lines: Vec<String> = changed_files
        .iter()
        .map(|s| format!("upload {} (mode {:o})", s.path, s.mode))
        .collect();
    let daemon = match pair.backend {
        Backend::Agent => "hactl-agent",
        Backend::Keepalived => "keepalived",
    };
    match action {
        Action::None => {}
        Action::Start => lines.push(format!("start {daemon}")),
        Action::Restart => lines.push(format!("restart {daemon}")),
        Action::Reload => lines.push(format!("reload {daemon} (SIGHUP)")),
    }
    let changed = !lines.is_empty();
    if !changed {
        lines.push(format!(
            "no change: files up to date, {daemon} running (pid {})",
            pid.unwrap_or_default()
        ));
    }
    let diff = if options.diff && config_changed {
        Some(config_diff(session, plan, &host, &config_path, options).await?)
    } else {
        None
    };
    if options.check || !changed {
        return Ok(HostDone {
            changed,
            plan: lines,
            diff,
            undo: None,
        });
    }
    let host_plan = HostChange {
        control,
        files: changed_files,
        action,
        pid,
    };
    let restore = apply(pool, pair, session, targets, &host_plan).await?;
    Ok(HostDone {
        changed: true,
        plan: lines,
        diff,
        undo: Some(Undo {
            control,
            restore,
            action,
        }),
    })
}

/// Installs uploaded `.hactl-new` files; returns the (prev|new, path)
/// words [`RESTORE`] takes to undo it.
async fn install(session: &HostSession, files: &[&Step]) -> Result<Vec<String>, HostFailure> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let mut argv = vec!["sh".to_string(), "-c".into(), INSTALL.into(), "sh".into()];
    argv.extend(files.iter().map(|s| s.path.clone()));
    let installed = session
        .run(&RemoteCommand::new(&argv).become_(true))
        .await?;
    Ok(installed
        .stdout_text()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .flat_map(|(kind, path)| [kind.to_string(), path.to_string()])
        .collect())
}

async fn apply(
    pool: &Pool,
    pair: &PairPlan,
    session: &HostSession,
    targets: &BTreeMap<&str, &Target>,
    plan: &HostChange,
) -> Result<Vec<String>, HostFailure> {
    let host = session.host().to_string();
    let mut mkdir = vec!["mkdir", "-p", "-m", "0755", "--"];
    mkdir.extend(DIRS);
    session
        .run(&RemoteCommand::new(&mkdir).become_(true))
        .await?;
    for step in &plan.files {
        session
            .upload(
                step.content.clone(),
                &format!("{}{NEW_SUFFIX}", step.path),
                step.mode,
            )
            .await?;
    }
    // Check scripts go in first: the config check wants them in place.
    let (late, early): (Vec<&Step>, Vec<&Step>) = plan
        .files
        .iter()
        .partition(|s| s.validated || s.path == layout::AGENT_BIN);
    let mut restore = install(session, &early).await?;
    if let Some(config) = late.iter().find(|s| s.validated) {
        let new_config = format!("{}{NEW_SUFFIX}", config.path);
        let (checker, argv): (&'static str, Vec<String>) = match pair.backend {
            Backend::Agent => {
                let binary = if late.iter().any(|s| s.path == layout::AGENT_BIN) {
                    format!("{}{NEW_SUFFIX}", layout::AGENT_BIN)
                } else {
                    layout::AGENT_BIN.to_string()
                };
                (
                    "hactl-agent check",
                    vec![binary, "check".into(), "-f".into(), new_config],
                )
            }
            Backend::Keepalived => (
                "keepalived --config-test",
                vec![
                    "keepalived".into(),
                    "--config-test".into(),
                    "-f".into(),
                    new_config,
                ],
            ),
        };
        let out = session
            .output(&RemoteCommand::new(&argv).become_(true))
            .await?;
        let rejection = match pair.backend {
            Backend::Agent => (!out.success()).then(|| {
                let stderr = out.stderr_text().trim().to_string();
                if stderr.is_empty() {
                    out.stdout_text().trim().to_string()
                } else {
                    stderr
                }
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
            remove.extend(late.iter().map(|s| format!("{}{NEW_SUFFIX}", s.path)));
            session
                .run(&RemoteCommand::new(&remove).become_(true))
                .await?;
            session
                .run(&RemoteCommand::new(&script_argv(RESTORE, &restore)).become_(true))
                .await?;
            return Err(HostFailure::Rejected {
                host,
                checker,
                message,
            });
        }
    }
    restore.extend(install(session, &late).await?);
    // The daemon ran before: the rollback brings it back.
    let had_previous = plan.pid.is_some();
    let control = plan.control;
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
        Ok(()) => wait_healthy(pool, pair, session, targets, control).await,
        Err(e) => Err(e.to_string()),
    };
    let Err(mut detail) = health else {
        return Ok(restore);
    };
    let log = control.log_tail(session, 3).await;
    if !log.is_empty() {
        detail.push_str(&format!("; its log ends: {}", log.replace('\n', " | ")));
    }
    // Roll back: previous files, previous daemon.
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
    match rollback {
        Ok(()) => Err(HostFailure::Unhealthy { host, detail }),
        Err(e) => Err(HostFailure::RollbackFailed {
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

/// What this host's instances should look like now.
async fn expectations(
    pool: &Pool,
    pair: &PairPlan,
    host: &str,
    targets: &BTreeMap<&str, &Target>,
    control: AgentControl,
) -> Vec<Expectation> {
    let mut running: BTreeMap<String, bool> = BTreeMap::new();
    for h in &pair.hosts {
        let runs = match session_of(pool, targets, &h.name).await {
            Some(s) => control.running_pid(&s).await.ok().flatten().is_some(),
            None => false,
        };
        running.insert(h.name.clone(), runs);
    }
    pair.instances
        .iter()
        .filter_map(|inst| {
            let role = inst.role(host)?;
            Some(Expectation {
                instance: inst.name.clone(),
                state: role.state,
                master_runs: running.get(&inst.master).copied().unwrap_or(false),
            })
        })
        .collect()
}

/// Waits until the host is healthy (module doc of `deploy`).
pub(super) async fn wait_healthy(
    pool: &Pool,
    pair: &PairPlan,
    session: &HostSession,
    targets: &BTreeMap<&str, &Target>,
    control: AgentControl,
) -> Result<(), String> {
    let host = session.host().to_string();
    let expect = expectations(pool, pair, &host, targets, control).await;
    settle(settle_time(pair), || async {
        if control
            .running_pid(session)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(format!("{} is not running", daemon_name(pair.backend)));
        }
        let held = held_vips(session, pair, control).await?;
        for e in &expect {
            let Some(inst) = pair.instances.iter().find(|i| i.name == e.instance) else {
                continue;
            };
            let (state, present) = held
                .get(&e.instance)
                .cloned()
                .ok_or_else(|| format!("instance {} is not running", e.instance))?;
            let all = present == inst.vips.len();
            match e.state {
                State::Master if state == "MASTER" && all => {}
                State::Master => {
                    return Err(format!(
                        "instance {} is {state} with {present}/{} VIPs, wants MASTER with all",
                        e.instance,
                        inst.vips.len()
                    ));
                }
                State::Backup if state == "BACKUP" && present == 0 => {}
                State::Backup if !e.master_runs && (state == "MASTER" || state == "BACKUP") => {}
                State::Backup => {
                    return Err(format!(
                        "instance {} is {state} holding {present} VIPs, wants BACKUP holding none",
                        e.instance
                    ));
                }
            }
        }
        Ok(())
    })
    .await
}

fn daemon_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Agent => "hactl-agent",
        Backend::Keepalived => "keepalived",
    }
}

/// Per instance: its state and how many of its VIPs are on the host. The
/// agent's status gives both; for keepalived the state is read from the
/// interface (all VIPs held: MASTER, none: BACKUP).
async fn held_vips(
    session: &HostSession,
    pair: &PairPlan,
    control: AgentControl,
) -> Result<BTreeMap<String, (String, usize)>, String> {
    let mut out = BTreeMap::new();
    if pair.backend == Backend::Agent {
        let status = control
            .status(session)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the agent does not answer on its status socket")?;
        for inst in status.instances {
            let present = inst.vips.iter().filter(|v| v.present).count();
            out.insert(inst.name, (inst.state, present));
        }
        return Ok(out);
    }
    let interfaces = facts::gather(session, &Interfaces)
        .await
        .map_err(|e| e.to_string())?;
    for inst in &pair.instances {
        let present = inst
            .vips
            .iter()
            .filter(|vip| {
                interfaces.iter().any(|i| {
                    i.addresses
                        .iter()
                        .any(|a| a.address == std::net::IpAddr::V4(vip.address))
                })
            })
            .count();
        let state = if present == inst.vips.len() {
            "MASTER"
        } else {
            "BACKUP"
        };
        out.insert(inst.name.clone(), (state.to_string(), present));
    }
    Ok(out)
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

/// The host's config as it is (empty when missing) and as it would be.
async fn config_diff(
    session: &HostSession,
    plan: &ClusterPlan,
    host: &str,
    path: &str,
    options: &DeployOptions,
) -> Result<ConfigDiff, HostFailure> {
    let current = session
        .output(&RemoteCommand::new(&["cat", "--", path]).become_(true))
        .await?;
    let old = if current.success() {
        redact(&current.stdout_text())
    } else {
        String::new()
    };
    let new = render::render_host(plan, host, options.templates.as_deref(), Secrets::Redact)?
        .into_iter()
        .find(|f| f.name == "keepalived.conf")
        .map(|f| f.content)
        .unwrap_or_default();
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
    fn redact_hides_auth_pass_only() {
        let conf = "vrrp_instance a {\n    authentication {\n        auth_pass s3cret\n    }\n}\n";
        let out = redact(conf);
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("        auth_pass <redacted>\n"), "{out}");
        assert!(out.starts_with("vrrp_instance a {\n"));
    }
}
