//! One host's own checks, from one round trip: a fact batch of hostname,
//! peer resolution, time sync, `ip_nonlocal_bind`, interfaces, SELinux and
//! the firewall rules (kept for the VRRP probe's verdict). A login that is
//! not root checks `sudo -n` first, on its own: without it nothing that
//! needs root can run.

use std::net::IpAddr;

use super::{HostFacts, Outcome, PreflightReport};
use crate::facts::{
    Batch, FactError, Hostname, Interface, Interfaces, Resolve, Selinux, SelinuxMode, Sudo,
    SudoState, Sysctl, TimeSyncFact, VrrpFirewall,
};
use crate::plan::{ClusterPlan, HostPlan, PairPlan};
use crate::ssh::HostSession;

const NONLOCAL_BIND: &str = "net.ipv4.ip_nonlocal_bind";

/// The checks of one host on its own; returns what the pair checks need.
pub(super) async fn checks(
    session: &HostSession,
    plan: &ClusterPlan,
    host: &str,
    in_lab: bool,
    report: &mut PreflightReport,
) -> HostFacts {
    let mut facts = HostFacts {
        session: None,
        interface: None,
        addresses: Vec::new(),
        firewall: None,
    };
    let Some(pair) = plan.pair_of(host) else {
        return facts;
    };
    let Some(hp) = pair.host(host) else {
        return facts;
    };
    let target = session.target();
    if target.become_ && target.user != "root" {
        match crate::facts::gather(session, &Sudo).await {
            Ok(SudoState::Works) => {
                report.push(host, "sudo", Outcome::Pass, "sudo -n works".into(), None)
            }
            Ok(state) => {
                report.push(
                    host,
                    "sudo",
                    Outcome::Fail,
                    format!("{state:?}"),
                    Some(format!(
                        "allow {} passwordless sudo (NOPASSWD)",
                        target.user
                    )),
                );
                return facts;
            }
            Err(e) => {
                report.push(host, "sudo", Outcome::Fail, cannot(&e), None);
                return facts;
            }
        }
    }

    let mut batch = Batch::new();
    let hostname = batch.add(&Hostname);
    let peers: Vec<(&HostPlan, Resolve)> = pair
        .hosts
        .iter()
        .filter(|p| p.name != host && p.address.is_some())
        .map(|p| {
            (
                p,
                Resolve {
                    name: p.name.clone(),
                },
            )
        })
        .collect();
    let resolves: Vec<_> = peers.iter().map(|(_, f)| batch.add(f)).collect();
    let time = batch.add(&TimeSyncFact);
    let sysctl = hp
        .nonlocal_bind
        .and_then(|_| Sysctl::new(NONLOCAL_BIND))
        .map(|fact| (batch.add(&fact), fact));
    let interfaces = batch.add(&Interfaces);
    let selinux = batch.add(&Selinux);
    let firewall = batch.add(&VrrpFirewall);
    let answers = match batch.run(session).await {
        Ok(a) => a,
        Err(e) => {
            report.push(
                host,
                "facts",
                Outcome::Fail,
                format!("could not gather the host's facts: {e}"),
                None,
            );
            return facts;
        }
    };

    match answers.parse(hostname, &Hostname) {
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
        Err(e) => report.push(host, "hostname", Outcome::Fail, cannot(&e), None),
    }

    for ((peer, fact), slot) in peers.iter().zip(resolves) {
        let Some(want) = peer.address else { continue };
        let check = format!("resolve {}", peer.name);
        match answers.parse(slot, fact) {
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
            Err(e) => report.push(host, &check, Outcome::Fail, cannot(&e), None),
        }
    }

    match answers.parse(time, &TimeSyncFact) {
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
        Err(e) => report.push(host, "time sync", Outcome::Fail, cannot(&e), None),
    }

    if let (Some(want), Some((slot, fact))) = (hp.nonlocal_bind, &sysctl) {
        let want_value = if want { "1" } else { "0" };
        match answers.parse(*slot, fact) {
            Ok(Some(value)) if value == want_value => {
                report.push(host, NONLOCAL_BIND, Outcome::Pass, value, None)
            }
            Ok(value) => report.push(
                host,
                NONLOCAL_BIND,
                Outcome::Fail,
                format!(
                    "is {}, the inventory asks {want_value} (hactl_nonlocal_bind: {want})",
                    value.unwrap_or_else(|| "absent".into())
                ),
                Some(format!(
                    "sysctl -w {NONLOCAL_BIND}={want_value} and persist it in /etc/sysctl.d/"
                )),
            ),
            Err(e) => report.push(host, NONLOCAL_BIND, Outcome::Fail, cannot(&e), None),
        }
    }

    match answers.parse(interfaces, &Interfaces) {
        Ok(all) => {
            facts.addresses = all
                .iter()
                .flat_map(|i| i.addresses.iter().map(|a| a.address))
                .collect();
            facts.interface = interface_check(all, pair, hp, report);
        }
        Err(e) => report.push(
            host,
            &format!("interface {}", hp.interface),
            Outcome::Fail,
            cannot(&e),
            None,
        ),
    }

    match answers.parse(selinux, &Selinux) {
        Ok(mode) => {
            let enforcing = mode == SelinuxMode::Enforcing;
            report.push(
                host,
                "selinux",
                if enforcing {
                    Outcome::Warn
                } else {
                    Outcome::Pass
                },
                format!("{mode:?}").to_lowercase(),
                enforcing.then(|| {
                    "allow keepalived_t (or the agent) raw sockets and netlink, or run permissive"
                        .to_string()
                }),
            )
        }
        Err(e) => report.push(host, "selinux", Outcome::Warn, cannot(&e), None),
    }
    facts.firewall = Some(
        answers
            .parse(firewall, &VrrpFirewall)
            .map_err(|e| e.to_string()),
    );
    facts
}

fn cannot(e: &FactError) -> String {
    format!("cannot check: {e}")
}

/// The interface exists and is up, and every VIP of the pair lies in one
/// of its subnets.
fn interface_check(
    interfaces: Vec<Interface>,
    pair: &PairPlan,
    hp: &HostPlan,
    report: &mut PreflightReport,
) -> Option<Interface> {
    let host = hp.name.as_str();
    let check = format!("interface {}", hp.interface);
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
