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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent_control::ControlError;
use crate::facts::FactError;
use crate::output::Progress;
use crate::plan::{ClusterPlan, PairPlan, State};
use crate::preflight::{self, PreflightReport};
use crate::render::RenderError;
use crate::ssh::{HostSession, Pool, SshError, Target};

pub use host::{Action, ConfigDiff, HostChange, Step, Undo};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Print the plan, change nothing.
    pub check: bool,
    /// Show config differences (secrets redacted).
    pub diff: bool,
    /// The agent binary's bytes (backend agent).
    pub agent_bin: Arc<Vec<u8>>,
    pub templates: Option<PathBuf>,
    /// The hosts are a `hactl lab`.
    pub in_lab: bool,
}

/// Why a host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostFailure {
    #[error("preflight failed: {0}")]
    Preflight(String),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Fact(#[from] FactError),
    #[error(transparent)]
    Render(#[from] RenderError),
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
    #[error("not deployed: {0} of this pair failed first")]
    PairStopped(String),
}

/// One host's line of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub pair: String,
    /// A non-empty plan was applied (or would be, with --check).
    pub changed: bool,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was (or would be) done, or the no-op's reason.
    pub plan: Vec<String>,
    /// The config diff, unified (`--diff`, when the config changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The same config before and after, whole, for tools that show
    /// their own diff (the Ansible collection's `diff` mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_diff: Option<ConfigDiff>,
    pub rolled_back: bool,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub check: bool,
    pub hosts: Vec<HostReport>,
    pub preflight: PreflightReport,
}

impl DeployReport {
    pub fn ok(&self) -> bool {
        self.hosts.iter().all(|h| h.ok)
    }
}

/// Deploys every pair host in `targets` (hosts of the plan selected by
/// the caller).
pub async fn deploy(
    pool: &Pool,
    plan: &ClusterPlan,
    targets: &[Target],
    options: &DeployOptions,
    progress: &Progress,
) -> DeployReport {
    progress.message("preflight");
    let preflight = preflight::run(pool, plan, targets, options.in_lab).await;
    let by_host: BTreeMap<&str, &Target> = targets.iter().map(|t| (t.host.as_str(), t)).collect();
    let mut hosts = Vec::new();
    for pair in &plan.pairs {
        let order = rolling_order(pair);
        let mut stopped_by: Option<String> = None;
        // Hosts of this pair changed so far, to undo if a later one fails.
        let mut applied: Vec<(usize, Arc<HostSession>, Undo)> = Vec::new();
        for name in order {
            let Some(target) = by_host.get(name.as_str()) else {
                continue;
            };
            let started = Instant::now();
            progress.message(&format!("{}: {name}", pair.name));
            let failures: Vec<String> = preflight
                .checks
                .iter()
                .filter(|c| c.host == name && c.outcome == preflight::Outcome::Fail)
                .map(|c| format!("{}: {}", c.check, c.detail))
                .collect();
            let mut session = None;
            let result = if let Some(first) = &stopped_by {
                Err(HostFailure::PairStopped(first.clone()))
            } else if !failures.is_empty() {
                Err(HostFailure::Preflight(failures.join("; ")))
            } else {
                match pool.connect(target).await {
                    Ok(s) => {
                        session = Some(s.clone());
                        host::deploy_host(pool, plan, pair, &s, &by_host, options).await
                    }
                    Err(e) => Err(e.into()),
                }
            };
            let report = match result {
                Ok(mut done) => {
                    if let (Some(undo), Some(s)) = (done.undo.take(), session) {
                        applied.push((hosts.len(), s, undo));
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
                        seconds: started.elapsed().as_secs_f64(),
                    }
                }
                Err(failure) => {
                    let touched = matches!(
                        failure,
                        HostFailure::Unhealthy { .. } | HostFailure::RollbackFailed { .. }
                    );
                    if touched || matches!(failure, HostFailure::Rejected { .. }) {
                        stopped_by.get_or_insert_with(|| name.clone());
                        undo_pair(&mut applied, &mut hosts, &name).await;
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
                        rolled_back: matches!(failure, HostFailure::Unhealthy { .. }),
                        seconds: started.elapsed().as_secs_f64(),
                    }
                }
            };
            progress.advance();
            hosts.push(report);
        }
    }
    DeployReport {
        check: options.check,
        hosts,
        preflight,
    }
}

/// Puts the hosts of a pair changed before `failed` back as they were, so
/// the pair is left as it was; each is reported as rolled back.
async fn undo_pair(
    applied: &mut Vec<(usize, Arc<HostSession>, Undo)>,
    hosts: &mut [HostReport],
    failed: &str,
) {
    for (index, session, undo) in applied.drain(..).rev() {
        let Some(report) = hosts.get_mut(index) else {
            continue;
        };
        report.ok = false;
        report.rolled_back = true;
        report.error = Some(match undo.run(&session).await {
            Ok(()) => format!("rolled back: {failed} of this pair failed"),
            Err(e) => format!(
                "{failed} of this pair failed and the rollback failed: {}",
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

/// What the host's instances should look like, given which masters run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub instance: String,
    pub state: State,
    /// The instance's planned master runs, so a backup must be BACKUP.
    pub master_runs: bool,
}

/// Polls `probe` until it returns `Ok(())` or the deadline passes; the
/// last complaint is the error.
pub(crate) async fn settle<F, Fut>(limit: Duration, mut probe: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(()) => return Ok(()),
            Err(why) if Instant::now() >= deadline => return Err(why),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The session of another host of the run, if it connected.
pub(crate) async fn session_of(
    pool: &Pool,
    targets: &BTreeMap<&str, &Target>,
    host: &str,
) -> Option<Arc<HostSession>> {
    pool.connect(targets.get(host)?).await.ok()
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
}
