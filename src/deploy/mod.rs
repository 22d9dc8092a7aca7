//! `hactl deploy`: preflight, render, then roll each pair host by host.
//!
//! ```text
//!  preflight (every host) ──> per pair, backups first, master last:
//!    plan host: hashes of binary, check scripts, config; daemon running?
//!      └─ no-op (reason) | steps + action (start | restart | reload)
//!    apply: upload *.hactl-new ─ validate config on the host ─ keep .prev
//!           ─ rename ─ start/restart/reload ─ wait until healthy
//!      └─ unhealthy: restore .prev, restart (or stop when first deploy);
//!         the pair's hosts changed before it are put back too, its
//!         remaining hosts are left alone, the pair fails
//! ```
//!
//! Healthy means: the daemon runs, and each of the host's instances is in
//! the state the plan gives it with its VIPs where the plan says (read from
//! the agent's status, whose `present` is the kernel's word; for stock
//! keepalived from the interface). A backup whose instance's master is not
//! running yet may be MASTER: it covers the VIP until the master arrives.
//!
//! A host that fails preflight or cannot be reached is not touched and
//! fails; the other hosts of its pair still deploy (nothing of theirs
//! depends on it). Only a host that was changed and failed (or whose config
//! was rejected) stops its pair and undoes the pair's earlier changes.

mod host;
pub mod lock;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::agent_control::ControlError;
use crate::facts::FactError;
use crate::observe::{self, HostView, Limit, Wants};
use crate::output::{Progress, plain_table};
use crate::plan::{ClusterPlan, PairPlan};
use crate::preflight::{self, PreflightReport};
use crate::render::RenderError;
use crate::ssh::{Pool, SshError, Target};

pub use host::{Action, ConfigDiff, HostDone, Undo, judge_health, redact};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Print the plan, change nothing.
    pub check: bool,
    /// Show config differences (secrets redacted).
    pub diff: bool,
    /// The agent binary at its path on the hosts (backend agent), hashed
    /// once for every host.
    pub agent_bin: crate::operations::PutFile,
    pub templates: Option<std::path::PathBuf>,
    /// The hosts are a `hactl lab`.
    pub in_lab: bool,
    /// How many pairs are rolled at once.
    pub forks: usize,
    /// Set on Ctrl-C or SIGTERM: the host in progress is rolled back and
    /// nothing more starts.
    pub cancel: Cancel,
}

/// Deploy's stop request, shared with the signal handler.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Why a host failed. Every message names the host once.
#[derive(Debug, thiserror::Error)]
pub enum HostFailure {
    #[error("{host}: preflight failed: {detail}")]
    Preflight { host: String, detail: String },
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Fact(#[from] FactError),
    #[error("{host}: cannot read its files: {detail}")]
    Facts { host: String, detail: String },
    #[error("{host}: cannot be looked at: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("{host}: cannot render its files")]
    Render {
        host: String,
        #[source]
        source: RenderError,
    },
    #[error("{host}: {checker} rejected the new config (nothing changed): {message}")]
    Rejected {
        host: String,
        checker: &'static str,
        message: String,
    },
    #[error("{host}: not healthy after the change ({detail}); rolled back")]
    Unhealthy { host: String, detail: String },
    #[error("{host}: not healthy after the change ({detail}); rollback failed too: {rollback}")]
    RollbackFailed {
        host: String,
        detail: String,
        rollback: String,
    },
    #[error("{host}: not deployed: {first} of this pair failed first")]
    PairStopped { host: String, first: String },
    #[error("{host}: failed part-way ({detail}); {rollback}")]
    PartWay {
        host: String,
        detail: String,
        rollback: String,
    },
    #[error("{host}: interrupted{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Interrupted { host: String, detail: String },
    #[error("{host}: {detail}")]
    Locked { host: String, detail: String },
}

/// One host's line of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub pair: String,
    /// A non-empty plan was applied (or would be, with --check).
    pub changed: bool,
    pub ok: bool,
    /// Why it failed; the message names the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was (or would be) done, or the no-op's reason.
    pub plan: Vec<String>,
    /// The config diff, unified (`--diff`, when the config changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The same config before and after, whole, for tools that show
    /// their own diff (the Ansible collection's diff mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_diff: Option<ConfigDiff>,
    pub rolled_back: bool,
    pub seconds: f64,
    /// When work on this host began and ended (seconds since the epoch):
    /// shows the rolling order within a pair and pairs side by side.
    pub started: f64,
    pub finished: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub check: bool,
    pub hosts: Vec<HostReport>,
    /// The preflight of the pairs that had something to change (a pair
    /// with nothing to change is not preflighted).
    pub preflight: PreflightReport,
}

impl DeployReport {
    pub fn ok(&self) -> bool {
        self.hosts.iter().all(|h| h.ok)
    }

    /// `hactl deploy`: the plan per host, the diffs, then the summary.
    pub fn text(&self) -> String {
        let report = self;
        let mut text = String::new();
        for h in &report.hosts {
            text.push_str(&format!("{} ({}):\n", h.host, h.pair));
            for line in &h.plan {
                text.push_str(&format!("  {line}\n"));
            }
            if let Some(e) = &h.error {
                text.push_str(&format!("  FAILED: {e}\n"));
            }
            if let Some(diff) = &h.diff {
                text.push_str(diff);
            }
        }
        let mut table = plain_table(vec!["host", "changed", "ok", "failed", "time"]);
        for h in &report.hosts {
            table.add_row(vec![
                h.host.clone(),
                if h.changed { "yes" } else { "no" }.to_string(),
                if h.ok { "yes" } else { "no" }.to_string(),
                if h.ok { "" } else { "FAILED" }.to_string(),
                format!("{:.1}s", h.seconds),
            ]);
        }
        let title = if report.check {
            "deploy --check (nothing changed)"
        } else {
            "deploy"
        };
        format!("{text}\n{title}\n{table}\n")
    }
}

/// How long one host may take to answer deploy's first look.
const LOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Deploys every pair host in `targets` (hosts of the plan selected by the
/// caller): up to `forks` pairs at once, each rolled on its own.
pub async fn deploy(
    pool: &Arc<Pool>,
    plan: &ClusterPlan,
    targets: &[Target],
    options: &DeployOptions,
    progress: &Progress,
) -> DeployReport {
    let permits = Semaphore::new(options.forks.max(1));
    let permits = &permits;
    let jobs = plan
        .pairs
        .iter()
        .map(|pair| {
            let pair_targets: Vec<Target> = targets
                .iter()
                .filter(|t| pair.host(&t.host).is_some())
                .cloned()
                .collect();
            async move {
                if pair_targets.is_empty() {
                    return (Vec::new(), PreflightReport::default());
                }
                let _permit = permits.acquire().await.ok();
                deploy_pair(pool, plan, pair, &pair_targets, options, progress).await
            }
        })
        .collect();
    let mut hosts = Vec::new();
    let mut preflight = PreflightReport::default();
    for (pair_hosts, pair_preflight) in crate::ssh::join_all(jobs).await {
        hosts.extend(pair_hosts);
        preflight.checks.extend(pair_preflight.checks);
    }
    DeployReport {
        check: options.check,
        hosts,
        preflight,
    }
}

/// One pair: one look at its hosts (daemon, file hashes, config when a
/// diff is asked), the plan of each; a pair with something to change is
/// preflighted, then rolled backups first and master last, each host
/// healthy before the next; a host that fails after changing undoes the
/// pair's earlier hosts and stops the pair.
async fn deploy_pair(
    pool: &Arc<Pool>,
    plan: &ClusterPlan,
    pair: &PairPlan,
    pair_targets: &[Target],
    options: &DeployOptions,
    progress: &Progress,
) -> (Vec<HostReport>, PreflightReport) {
    let started = Instant::now();
    progress.message(&format!("{}: looking", pair.name));
    let wants = Wants {
        agent_status: false,
        config: options.diff,
        ledger: false,
        hashes: host::candidate_paths(pair),
    };
    let seen = observe::observe(
        pool,
        plan,
        pair_targets,
        &wants,
        Limit::PerHost(LOOK_TIMEOUT),
    )
    .await;
    // Each host's work, or why it cannot be planned.
    let mut work = std::collections::BTreeMap::new();
    for target in pair_targets {
        let planned = match seen.hosts.get(&target.host) {
            Some(HostView::Reached(facts)) => {
                host::host_work(plan, pair, &target.host, facts, options)
            }
            Some(HostView::Unreachable(why)) => Err(HostFailure::Unreachable {
                host: target.host.clone(),
                detail: why.clone(),
            }),
            None => Err(HostFailure::Unreachable {
                host: target.host.clone(),
                detail: "not looked at".into(),
            }),
        };
        work.insert(target.host.clone(), planned);
    }
    let changes = work
        .values()
        .any(|w| !matches!(w, Ok(w) if w.plan.is_noop()));
    // Instances nobody served when this began (a first deploy): their
    // masters may converge while the roll goes on; the last host to change
    // waits for the whole pair.
    let answered: Vec<String> = pair_targets
        .iter()
        .filter(|t| seen.facts(&t.host).is_some())
        .map(|t| t.host.clone())
        .collect();
    let every_host_seen = answered.len() == pair_targets.len();
    let unserved: std::collections::BTreeSet<String> = pair
        .instances
        .iter()
        .filter(|inst| every_host_seen && seen.instance(pair, inst).holders.is_empty())
        .map(|inst| inst.name.clone())
        .collect();
    let last_changed = rolling_order(pair)
        .into_iter()
        .rfind(|h| matches!(work.get(h), Some(Ok(w)) if !w.plan.is_noop()));
    for (name, planned) in work.iter_mut() {
        if let Ok(w) = planned {
            w.health = host::HealthRule {
                unserved: unserved.clone(),
                whole_pair: if last_changed.as_ref() == Some(name) {
                    answered.clone()
                } else {
                    Vec::new()
                },
            };
        }
    }
    // Changing hosts: each one's deploy lock first (module `lock`); a
    // host another deploy holds fails the whole pair, nothing touched.
    let mut locks = Vec::new();
    if changes && !options.check {
        let mut refused = Vec::new();
        for target in pair_targets {
            if seen.facts(&target.host).is_none() {
                continue;
            }
            let taken = match pool.connect(target).await {
                Ok(session) => lock::HostLock::acquire(&session).await,
                Err(e) => Err(e.to_string()),
            };
            match taken {
                Ok(held) => locks.extend(held),
                Err(why) => refused.push(why),
            }
        }
        if !refused.is_empty() {
            for held in locks {
                held.release().await;
            }
            let detail = refused.join("; ");
            let reports = rolling_order(pair)
                .into_iter()
                .filter(|h| pair_targets.iter().any(|t| &t.host == h))
                .map(|host| {
                    let failure = HostFailure::Locked {
                        host: host.clone(),
                        detail: detail.clone(),
                    };
                    progress.advance();
                    HostReport {
                        host,
                        pair: pair.name.clone(),
                        changed: false,
                        ok: false,
                        error: Some(failure.to_string()),
                        plan: Vec::new(),
                        diff: None,
                        config_diff: None,
                        rolled_back: false,
                        seconds: started.elapsed().as_secs_f64(),
                        started: unix_now(),
                        finished: unix_now(),
                    }
                })
                .collect();
            return (reports, PreflightReport::default());
        }
    }
    let preflight = if changes {
        progress.message(&format!("{}: preflight", pair.name));
        preflight::run(pool, plan, pair_targets, options.in_lab).await
    } else {
        PreflightReport::default()
    };
    let look_time = started.elapsed();
    let mut reports: Vec<HostReport> = Vec::new();
    let mut stopped_by: Option<String> = None;
    // Hosts of this pair changed so far, to undo if a later one fails.
    let mut applied: Vec<(usize, String, Undo)> = Vec::new();
    for name in rolling_order(pair) {
        let Some(target) = pair_targets.iter().find(|t| t.host == name) else {
            continue;
        };
        let started = Instant::now();
        let started_wall = unix_now();
        progress.message(&format!("{}: {name}", pair.name));
        let failures: Vec<String> = preflight
            .checks
            .iter()
            .filter(|c| c.host == name && c.outcome == preflight::Outcome::Fail)
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect();
        let planned = work.remove(&name).unwrap_or_else(|| {
            Err(HostFailure::Unreachable {
                host: name.clone(),
                detail: "not looked at".into(),
            })
        });
        let result = if options.cancel.is_set() {
            Err(HostFailure::Interrupted {
                host: name.clone(),
                detail: "not started".into(),
            })
        } else if let Some(first) = &stopped_by {
            Err(HostFailure::PairStopped {
                host: name.clone(),
                first: first.clone(),
            })
        } else if !failures.is_empty() {
            Err(HostFailure::Preflight {
                host: name.clone(),
                detail: failures.join("; "),
            })
        } else {
            match (planned, seen.facts(&name)) {
                (Err(e), _) => Err(e),
                (Ok(w), Some(facts)) => match pool.connect(target).await {
                    Ok(session) => {
                        host::deploy_host(
                            pool,
                            plan,
                            pair,
                            &session,
                            facts,
                            w,
                            pair_targets,
                            options,
                        )
                        .await
                    }
                    Err(e) => Err(e.into()),
                },
                (Ok(_), None) => Err(HostFailure::Unreachable {
                    host: name.clone(),
                    detail: "not looked at".into(),
                }),
            }
        };
        // The first host's time includes the pair's look and preflight.
        let seconds = (started.elapsed()
            + if reports.is_empty() {
                look_time
            } else {
                Duration::ZERO
            })
        .as_secs_f64();
        let report = match result {
            Ok(mut done) => {
                if let Some(undo) = done.undo.take() {
                    applied.push((reports.len(), name.clone(), undo));
                }
                HostReport {
                    host: name.clone(),
                    pair: pair.name.clone(),
                    changed: done.changed,
                    ok: true,
                    error: None,
                    plan: done.plan,
                    diff: done.diff.as_ref().map(|d| d.unified(&name)),
                    config_diff: done.diff,
                    rolled_back: false,
                    seconds,
                    started: started_wall,
                    finished: unix_now(),
                }
            }
            Err(failure) => {
                let touched = matches!(
                    failure,
                    HostFailure::Unhealthy { .. }
                        | HostFailure::RollbackFailed { .. }
                        | HostFailure::Rejected { .. }
                        | HostFailure::PartWay { .. }
                );
                // An interrupted host was put back; the pair's earlier
                // hosts stay as deployed (healthy), nothing more starts.
                if matches!(failure, HostFailure::Interrupted { .. }) {
                    stopped_by.get_or_insert_with(|| name.clone());
                }
                if touched {
                    stopped_by.get_or_insert_with(|| name.clone());
                    undo_pair(pool, pair_targets, &mut applied, &mut reports, &name).await;
                }
                HostReport {
                    host: name.clone(),
                    pair: pair.name.clone(),
                    changed: false,
                    ok: false,
                    error: Some(crate::error_chain(&failure)),
                    plan: Vec::new(),
                    diff: None,
                    config_diff: None,
                    rolled_back: matches!(
                        &failure,
                        HostFailure::Unhealthy { .. } | HostFailure::PartWay { .. }
                    ) || matches!(&failure, HostFailure::Interrupted { detail, .. } if detail == "rolled back"),
                    seconds,
                    started: started_wall,
                    finished: unix_now(),
                }
            }
        };
        progress.advance();
        reports.push(report);
    }
    for held in locks {
        held.release().await;
    }
    (reports, preflight)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Puts the hosts of a pair changed before `failed` back as they were, so
/// the pair is left as it was; each is reported as rolled back.
async fn undo_pair(
    pool: &Pool,
    pair_targets: &[Target],
    applied: &mut Vec<(usize, String, Undo)>,
    reports: &mut [HostReport],
    failed: &str,
) {
    for (index, host, undo) in applied.drain(..).rev() {
        let Some(report) = reports.get_mut(index) else {
            continue;
        };
        report.ok = false;
        report.rolled_back = true;
        let result = match pair_targets.iter().find(|t| t.host == host) {
            Some(target) => match pool.connect(target).await {
                Ok(session) => undo.run(&session).await,
                Err(e) => Err(e.into()),
            },
            None => Ok(()),
        };
        report.error = Some(match result {
            Ok(()) => format!("{host}: rolled back: {failed} of this pair failed"),
            Err(e) => format!(
                "{host}: {failed} of this pair failed and the rollback failed: {}",
                crate::error_chain(&e)
            ),
        });
    }
}

/// Within a pair: hosts that master no instance first, then the others by
/// how many instances they master, the master of the first instance last;
/// inventory order breaks ties.
pub fn rolling_order(pair: &PairPlan) -> Vec<String> {
    let mut hosts: Vec<(usize, bool, usize, String)> = pair
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mastered = pair
                .instances
                .iter()
                .filter(|inst| inst.master == h.name)
                .count();
            let first = pair
                .instances
                .first()
                .is_some_and(|inst| inst.master == h.name);
            (mastered, first, i, h.name.clone())
        })
        .collect();
    hosts.sort_by_key(|(mastered, first, i, _)| (*first, *mastered, *i));
    hosts.into_iter().map(|(_, _, _, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    #[test]
    fn backups_first_master_last() {
        let inv = Inventory::load(std::path::Path::new("inventories/lab.yaml")).unwrap();
        let plan = crate::plan::resolve(&inv, &|_| None).unwrap();
        let orders: Vec<Vec<String>> = plan.pairs.iter().map(rolling_order).collect();
        // web_lb is active/active: lb01 masters `www`, the first instance.
        assert_eq!(orders[0], ["lb02", "lb01"]);
        // api_lb: lb03 masters `api`.
        assert_eq!(orders[1], ["lb04", "lb03"]);
    }

    #[test]
    fn the_lab_check_script_follows_the_drill_flag_convention() {
        let inv = Inventory::load(std::path::Path::new("inventories/lab.yaml")).unwrap();
        let plan = crate::plan::resolve(&inv, &|_| None).unwrap();
        let check = &plan.pairs[0].checks[0];
        assert_eq!(check.script, "/etc/hactl/checks/check_web.sh");
        assert!(check.script.starts_with(crate::remote_layout::CHECKS_DIR));
        let content = check.content.as_deref().unwrap();
        assert!(content.starts_with("#!/bin/sh\n"), "{content}");
        assert!(
            content.contains(&format!(
                "test ! -e {}",
                crate::remote_layout::check_fail_flag("check_web")
            )),
            "{content}"
        );
        assert_eq!(plan.pairs[0].hosts[0].nonlocal_bind, None);
    }

    #[test]
    fn check_content_needs_an_absolute_script_and_nonlocal_bind_a_bool() {
        use crate::inventory::yaml;
        let text = "all:\n  children:\n    hactl_pairs:\n      children:\n        p:\n          vars:\n            hactl_interface: eth0\n            hactl_checks:\n              c: {script: relative.sh, content: \"exit 0\"}\n            hactl_instances:\n              - {name: i, vips: [10.0.0.50/24], master: a}\n          hosts:\n            a: {ansible_host: 10.0.0.1, hactl_nonlocal_bind: maybe}\n            b: {ansible_host: 10.0.0.2, hactl_nonlocal_bind: true}\n";
        let path = std::path::Path::new("inv.yaml");
        let inv = Inventory::from_node(path, &yaml::load_str(text, path).unwrap()).unwrap();
        let errors = crate::plan::resolve(&inv, &|_| None).unwrap_err();
        let messages: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("content needs an absolute script path")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("hactl_nonlocal_bind") && m.contains("true or false")),
            "{messages:?}"
        );
    }

    #[test]
    fn deploy_summary() {
        let host = |name: &str, changed, error: Option<&str>, plan: &[&str]| HostReport {
            host: name.into(),
            pair: "web_lb".into(),
            changed,
            ok: error.is_none(),
            error: error.map(str::to_string),
            plan: plan.iter().map(|s| s.to_string()).collect(),
            diff: None,
            config_diff: None,
            rolled_back: false,
            seconds: 1.25,
            started: 0.0,
            finished: 1.25,
        };
        let report = DeployReport {
            check: false,
            hosts: vec![
                host(
                    "lb02",
                    true,
                    None,
                    &[
                        "upload /etc/hactl/keepalived.conf (mode 600)",
                        "reload hactl-agent (SIGHUP)",
                    ],
                ),
                host(
                    "lb01",
                    false,
                    Some("not deployed: lb02 of this pair failed first"),
                    &[],
                ),
            ],
            preflight: PreflightReport::default(),
        };
        crate::output::golden("deploy_summary.txt", &report.text());
    }
}
