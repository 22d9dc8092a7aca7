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

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::facts::{
    self, AddressUse, DuplicateAddress, Hostname, Interface, Interfaces, Resolve, Selinux,
    SelinuxMode, Sudo, SudoState, Sysctl, TimeSyncFact, VrrpFirewall, VrrpProbe, VrrpReachability,
};
use crate::output::plain_table;
use crate::plan::{ClusterPlan, HostPlan, PairPlan};
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
}

/// Runs every check on the pair hosts in `hosts` (inventory order).
/// `in_lab`: the hosts are a `hactl lab` (time sync only warns).
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
            let interface = host_checks(&session, plan, &host, in_lab, &mut rows).await;
            Ok::<_, crate::ssh::SshError>((session, rows, interface))
        })
        .await;
    let mut known: BTreeMap<String, HostFacts> = BTreeMap::new();
    for result in results {
        match result.result {
            Ok((session, rows, interface)) => {
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
                        interface,
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
                    },
                );
            }
        }
    }
    let pairs = plan
        .pairs
        .iter()
        .map(|pair| {
            let known = &known;
            async move {
                let mut rows = PreflightReport::default();
                pair_checks(pair, known, &mut rows).await;
                rows
            }
        })
        .collect();
    for rows in crate::ssh::join_all(pairs).await {
        report.checks.extend(rows.checks);
    }
    report
}

/// The checks of one host on its own; returns its VRRP interface.
async fn host_checks(
    session: &HostSession,
    plan: &ClusterPlan,
    host: &str,
    in_lab: bool,
    report: &mut PreflightReport,
) -> Option<Interface> {
    let pair = plan.pair_of(host)?;
    let hp = pair.host(host)?;
    let fail = |e: &dyn std::fmt::Display| format!("cannot check: {e}");

    let target = session.target();
    if target.become_ && target.user != "root" {
        match facts::gather(session, &Sudo).await {
            Ok(SudoState::Works) => {
                report.push(host, "sudo", Outcome::Pass, "sudo -n works".into(), None)
            }
            Ok(state) => report.push(
                host,
                "sudo",
                Outcome::Fail,
                format!("{state:?}"),
                Some(format!(
                    "allow {} passwordless sudo (NOPASSWD)",
                    target.user
                )),
            ),
            Err(e) => report.push(host, "sudo", Outcome::Fail, fail(&e), None),
        }
    }

    match facts::gather(session, &Hostname).await {
        Ok(name) if name == host || name.split('.').next() == Some(host) => {
            report.push(host, "hostname", Outcome::Pass, name, None)
        }
        Ok(name) => report.push(
            host,
            "hostname",
            Outcome::Fail,
            format!("uname -n says {name:?}, the inventory says {host:?}"),
            Some(format!(
                "hostnamectl set-hostname {host} (or rename the host in the inventory)"
            )),
        ),
        Err(e) => report.push(host, "hostname", Outcome::Fail, fail(&e), None),
    }

    for peer in pair.hosts.iter().filter(|p| p.name != host) {
        let Some(want) = peer.address else { continue };
        let check = format!("resolve {}", peer.name);
        match facts::gather(
            session,
            &Resolve {
                name: peer.name.clone(),
            },
        )
        .await
        {
            Ok(found) if found.contains(&want) => {
                report.push(host, &check, Outcome::Pass, want.to_string(), None)
            }
            Ok(found) if found.is_empty() => report.push(
                host,
                &check,
                Outcome::Warn,
                format!("{} does not resolve", peer.name),
                Some(format!("add `{want} {}` to /etc/hosts or DNS", peer.name)),
            ),
            Ok(found) => report.push(
                host,
                &check,
                Outcome::Fail,
                format!("{} resolves to {found:?}, not {want}", peer.name),
                Some(format!("fix /etc/hosts or DNS: {} is {want}", peer.name)),
            ),
            Err(e) => report.push(host, &check, Outcome::Fail, fail(&e), None),
        }
    }

    match facts::gather(session, &TimeSyncFact).await {
        Ok(sync) if sync.is_synchronized() => report.push(
            host,
            "time sync",
            Outcome::Pass,
            "synchronised".into(),
            None,
        ),
        Ok(sync) => {
            let detail = if sync.has_no_service() {
                "no time sync service answers".to_string()
            } else {
                "not synchronised".to_string()
            };
            let (outcome, detail) = if in_lab {
                (
                    Outcome::Warn,
                    format!("{detail} (lab hosts share this machine's clock)"),
                )
            } else {
                (Outcome::Fail, detail)
            };
            report.push(
                host,
                "time sync",
                outcome,
                detail,
                Some("install and start chrony (or systemd-timesyncd)".into()),
            )
        }
        Err(e) => report.push(host, "time sync", Outcome::Fail, fail(&e), None),
    }

    if let Some(want) = hp.nonlocal_bind {
        nonlocal_bind_check(session, host, want, report).await;
    }

    let interface = interface_check(session, pair, hp, report).await;

    match facts::gather(session, &Selinux).await {
        Ok(mode) => {
            let outcome = if mode == SelinuxMode::Enforcing {
                Outcome::Warn
            } else {
                Outcome::Pass
            };
            let fix = (mode == SelinuxMode::Enforcing).then(|| {
                "allow keepalived_t (or the agent) raw sockets and netlink, or run permissive"
                    .to_string()
            });
            report.push(
                host,
                "selinux",
                outcome,
                format!("{mode:?}").to_lowercase(),
                fix,
            )
        }
        Err(e) => report.push(host, "selinux", Outcome::Warn, fail(&e), None),
    }
    interface
}

async fn nonlocal_bind_check(
    session: &HostSession,
    host: &str,
    want: bool,
    report: &mut PreflightReport,
) {
    let key = "net.ipv4.ip_nonlocal_bind";
    let Some(fact) = Sysctl::new(key) else { return };
    let want_value = if want { "1" } else { "0" };
    match facts::gather(session, &fact).await {
        Ok(Some(value)) if value == want_value => {
            report.push(host, key, Outcome::Pass, value, None)
        }
        Ok(value) => report.push(
            host,
            key,
            Outcome::Fail,
            format!(
                "is {}, the inventory asks {want_value} (hactl_nonlocal_bind: {want})",
                value.unwrap_or_else(|| "absent".into())
            ),
            Some(format!(
                "sysctl -w {key}={want_value} and persist it in /etc/sysctl.d/"
            )),
        ),
        Err(e) => report.push(host, key, Outcome::Fail, format!("cannot check: {e}"), None),
    }
}

/// The interface exists and is up, and every VIP of the pair lies in one
/// of its subnets.
async fn interface_check(
    session: &HostSession,
    pair: &PairPlan,
    hp: &HostPlan,
    report: &mut PreflightReport,
) -> Option<Interface> {
    let host = hp.name.as_str();
    let check = format!("interface {}", hp.interface);
    let interfaces = match facts::gather(session, &Interfaces).await {
        Ok(i) => i,
        Err(e) => {
            report.push(
                host,
                &check,
                Outcome::Fail,
                format!("cannot check: {e}"),
                None,
            );
            return None;
        }
    };
    let Some(interface) = interfaces.into_iter().find(|i| i.name == hp.interface) else {
        report.push(
            host,
            &check,
            Outcome::Fail,
            "does not exist".into(),
            Some("set hactl_interface to the host's LAN interface".into()),
        );
        return None;
    };
    if interface.up && interface.lower_up {
        report.push(host, &check, Outcome::Pass, "up".into(), None);
    } else {
        report.push(
            host,
            &check,
            Outcome::Fail,
            format!("is {}", interface.oper_state.to_lowercase()),
            Some(format!(
                "ip link set {} up (and check its cable/bridge)",
                hp.interface
            )),
        );
    }
    for inst in &pair.instances {
        for vip in &inst.vips {
            let check = format!("vip {vip} subnet");
            if interface.subnet_contains(IpAddr::V4(vip.address)) {
                report.push(
                    host,
                    &check,
                    Outcome::Pass,
                    format!("on {}", hp.interface),
                    None,
                );
            } else {
                report.push(
                    host,
                    &check,
                    Outcome::Fail,
                    format!("outside every subnet of {}", hp.interface),
                    Some("pick a VIP in the interface's subnet".into()),
                );
            }
        }
    }
    Some(interface)
}

/// VRRP probes both ways between the pair's hosts, and duplicate address
/// checks of its VIPs.
async fn pair_checks(
    pair: &PairPlan,
    known: &BTreeMap<String, HostFacts>,
    report: &mut PreflightReport,
) {
    let reachable: Vec<(&HostPlan, &Arc<HostSession>)> = pair
        .hosts
        .iter()
        .filter_map(|h| {
            let facts = known.get(&h.name)?;
            Some((h, facts.session.as_ref()?))
        })
        .collect();
    for (sender, sender_session) in &reachable {
        for (receiver, receiver_session) in &reachable {
            if sender.name == receiver.name {
                continue;
            }
            let (Some(from), Some(to)) = (sender.address, receiver.address) else {
                continue;
            };
            let mut probe = VrrpProbe::multicast(from, to);
            probe.destination = pair.mcast_group;
            let check = format!("vrrp from {}", sender.name);
            match facts::probe_vrrp(sender_session, receiver_session, &probe).await {
                Ok(VrrpReachability::Received) => report.push(
                    &receiver.name,
                    &check,
                    Outcome::Pass,
                    format!("probe to {} arrived", pair.mcast_group),
                    None,
                ),
                Ok(VrrpReachability::NotReceived { sender_error }) => {
                    let rules = match facts::gather(receiver_session, &VrrpFirewall).await {
                        Ok(rules) if !rules.blocking.is_empty() => rules
                            .blocking
                            .iter()
                            .map(|r| format!("{} `{}`", r.location, r.rule))
                            .collect::<Vec<_>>()
                            .join("; "),
                        Ok(_) => "no firewall rule found that drops it".to_string(),
                        Err(e) => format!("firewall rules unreadable: {e}"),
                    };
                    let mut detail = format!(
                        "protocol 112 probe from {} to {} did not arrive; {rules}",
                        sender.name, pair.mcast_group
                    );
                    if let Some(e) = sender_error {
                        detail.push_str(&format!("; sender: {e}"));
                    }
                    report.push(
                        &receiver.name,
                        &check,
                        Outcome::Fail,
                        detail,
                        Some(format!(
                            "accept IP protocol 112 (vrrp) from {from} on {}: e.g. nft insert rule inet filter input ip protocol vrrp accept",
                            receiver.name
                        )),
                    );
                }
                Err(e) => report.push(
                    &receiver.name,
                    &check,
                    Outcome::Fail,
                    format!("probe failed: {e}"),
                    Some("python3 must be installed on both hosts for the probe".into()),
                ),
            }
        }
    }
    let pair_macs: BTreeMap<String, String> = pair
        .hosts
        .iter()
        .filter_map(|h| {
            let mac = known.get(&h.name)?.interface.as_ref()?.mac.clone()?;
            Some((mac.to_ascii_lowercase(), h.name.clone()))
        })
        .collect();
    let mut vip_checks = Vec::new();
    for inst in &pair.instances {
        let Some((checker, session)) = reachable
            .iter()
            .find(|(h, _)| h.name == inst.master)
            .or_else(|| reachable.first())
        else {
            continue;
        };
        for vip in &inst.vips {
            let fact = DuplicateAddress {
                interface: checker.interface.clone(),
                address: IpAddr::V4(vip.address),
            };
            vip_checks.push(async move {
                let found = facts::gather(session, &fact).await;
                (checker, vip, found)
            });
        }
    }
    for (checker, vip, found) in crate::ssh::join_all(vip_checks).await {
        let check = format!("vip {} free", vip.address);
        match found {
            Ok(AddressUse::Free) => report.push(
                &checker.name,
                &check,
                Outcome::Pass,
                "nobody answers".into(),
                None,
            ),
            Ok(AddressUse::HeldLocally) => report.push(
                &checker.name,
                &check,
                Outcome::Pass,
                "held here (deployed before)".into(),
                None,
            ),
            Ok(AddressUse::InUse { mac }) => {
                let peer = mac
                    .as_ref()
                    .and_then(|m| pair_macs.get(&m.to_ascii_lowercase()));
                match peer {
                    Some(peer) => report.push(
                        &checker.name,
                        &check,
                        Outcome::Pass,
                        format!("held by {peer} of this pair"),
                        None,
                    ),
                    None => report.push(
                        &checker.name,
                        &check,
                        Outcome::Fail,
                        format!(
                            "already answering on the segment (MAC {})",
                            mac.unwrap_or_else(|| "unknown".into())
                        ),
                        Some(format!(
                            "remove {} from the host that holds it, or choose another VIP",
                            vip.address
                        )),
                    ),
                }
            }
            Err(e) => report.push(
                &checker.name,
                &check,
                Outcome::Fail,
                format!("cannot check: {e}"),
                None,
            ),
        }
    }
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
