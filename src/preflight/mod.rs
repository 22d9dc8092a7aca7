//! `hactl preflight`: what must hold on every pair host before a deploy,
//! each check a pass, warn or fail with the fix to apply. Facts come from
//! `crate::facts`; this module only judges them against the plan.
//!
//! Per host: SSH login (and sudo when the login is not root), hostname ==
//! inventory name, peers resolve to their addresses (a wrong address
//! fails, no answer warns: VRRP itself needs no names), time sync (none
//! fails; in a lab it warns, since every lab host reads this machine's one
//! kernel clock), `net.ipv4.ip_nonlocal_bind` as `hactl_nonlocal_bind`
//! asks, the VRRP interface exists and is up, each VIP inside its subnet,
//! SELinux reported. Per pair: VRRP passes both ways between every two
//! hosts (an active protocol-112 probe; when it does not arrive, the
//! receiver's firewall rules that drop VRRP are named), and each VIP is
//! not answering on the segment (checked from the instance's master; a
//! VIP held by a host of the pair itself is a redeploy, not a conflict).
//! A probe that could not run (python3 missing, a host too slow to get
//! ready) is a warning saying which host and stage, never a firewall
//! verdict.
//!
//! Files: `host.rs` (one host's checks, one round trip), `pair.rs` (the
//! probes between a pair's hosts, one exchange).

mod host;
mod pair;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::facts::{FirewallRules, Interface};
use crate::output::plain_table;
use crate::plan::ClusterPlan;
use crate::ssh::{HostSession, Pool, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        })
    }
}

/// One check on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub host: String,
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PreflightReport {
    pub checks: Vec<CheckResult>,
}

impl PreflightReport {
    /// Hosts with at least one failure.
    pub fn failed_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.host.clone())
            .collect();
        hosts.dedup();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    pub fn has_failures(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Fail)
    }

    /// `hactl preflight`: one row per host and check.
    pub fn table(&self) -> String {
        let report = self;
        let mut table = plain_table(vec!["host", "check", "result", "detail", "fix"]);
        for c in &report.checks {
            table.add_row(vec![
                c.host.clone(),
                c.check.clone(),
                c.outcome.to_string(),
                c.detail.clone(),
                c.fix.clone().unwrap_or_default(),
            ]);
        }
        let failed = report.failed_hosts();
        let verdict = if failed.is_empty() {
            "preflight: every host passes\n".to_string()
        } else {
            format!("preflight: failures on {}\n", failed.join(", "))
        };
        format!("{table}\n{verdict}")
    }

    fn push(
        &mut self,
        host: &str,
        check: &str,
        outcome: Outcome,
        detail: String,
        fix: Option<String>,
    ) {
        self.checks.push(CheckResult {
            host: host.to_string(),
            check: check.to_string(),
            outcome,
            detail,
            fix,
        });
    }
}

/// What preflight knows of one host after its own checks.
struct HostFacts {
    session: Option<Arc<HostSession>>,
    interface: Option<Interface>,
    /// Every address of the host, to tell a VIP it holds itself.
    addresses: Vec<IpAddr>,
    firewall: Option<Result<FirewallRules, String>>,
}

/// Runs every check on the pair hosts in `targets` (inventory order):
/// each host's own checks in one round trip, then per pair the probes in
/// one exchange. `in_lab`: the hosts are a `hactl lab` (time sync only
/// warns).
pub async fn run(
    pool: &Pool,
    plan: &ClusterPlan,
    targets: &[Target],
    in_lab: bool,
) -> PreflightReport {
    let mut report = PreflightReport::default();
    let results = pool
        .fan_out(targets, |session| async move {
            let host = session.host().to_string();
            let mut rows = PreflightReport::default();
            let facts = host::checks(&session, plan, &host, in_lab, &mut rows).await;
            Ok::<_, crate::ssh::SshError>((session, rows, facts))
        })
        .await;
    let mut known: BTreeMap<String, HostFacts> = BTreeMap::new();
    for result in results {
        match result.result {
            Ok((session, rows, facts)) => {
                report.push(
                    &result.host,
                    "ssh login",
                    Outcome::Pass,
                    format!("as {}", session.target().user),
                    None,
                );
                report.checks.extend(rows.checks);
                known.insert(
                    result.host.clone(),
                    HostFacts {
                        session: Some(session),
                        ..facts
                    },
                );
            }
            Err(error) => {
                report.push(
                    &result.host,
                    "ssh login",
                    Outcome::Fail,
                    error.to_string(),
                    Some("make the host reachable over SSH with the inventory's connection variables".into()),
                );
                known.insert(
                    result.host.clone(),
                    HostFacts {
                        session: None,
                        interface: None,
                        addresses: Vec::new(),
                        firewall: None,
                    },
                );
            }
        }
    }
    let pairs = plan
        .pairs
        .iter()
        .filter(|pair| pair.hosts.iter().any(|h| known.contains_key(&h.name)))
        .map(|pair| {
            let known = &known;
            async move {
                let mut rows = PreflightReport::default();
                pair::checks(pair, known, &mut rows).await;
                rows
            }
        })
        .collect();
    for rows in crate::ssh::join_all(pairs).await {
        report.checks.extend(rows.checks);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::golden;

    fn preflight() -> PreflightReport {
        let row = |host: &str, check: &str, outcome, detail: &str, fix: Option<&str>| CheckResult {
            host: host.into(),
            check: check.into(),
            outcome,
            detail: detail.into(),
            fix: fix.map(str::to_string),
        };
        PreflightReport {
            checks: vec![
                row("lb01", "hostname", Outcome::Pass, "lb01", None),
                row(
                    "lb02",
                    "hostname",
                    Outcome::Fail,
                    "uname -n says \"other\", the inventory says \"lb02\"",
                    Some("hostnamectl set-hostname lb02 (or rename the host in the inventory)"),
                ),
                row(
                    "lb02",
                    "time sync",
                    Outcome::Warn,
                    "no time sync service answers",
                    None,
                ),
            ],
        }
    }

    #[test]
    fn preflight_table_names_failures_and_fixes() {
        golden("preflight_table.txt", &preflight().table());
    }
}
