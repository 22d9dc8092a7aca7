//! One host's own checks, from one round trip: a fact batch of hostname,
//! peer resolution, time sync, `ip_nonlocal_bind`, interfaces, SELinux,
//! IPVS and the sysctls its forwarding methods need (when the pair has
//! virtual servers) and the firewall rules (kept for the VRRP probe's
//! verdict). A login that is
//! not root checks `sudo -n` first, on its own: without it nothing that
//! needs root can run.

use std::net::IpAddr;

use super::{HostFacts, Outcome, PreflightReport};
use crate::facts::{
    Batch, FactError, Hostname, Interface, Interfaces, IpvsModule, IpvsState, Resolve, Selinux,
    SelinuxMode, Sudo, SudoState, Sysctl, TimeSyncFact, VrrpFirewall,
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
    let ipvs = (!pair.virtual_servers.is_empty()).then(|| batch.add(&IpvsModule));
    let lvs_sysctls: Vec<_> = lvs_needs(pair, hp)
        .into_iter()
        .filter_map(|need| {
            let fact = Sysctl::new(need.key)?;
            Some((batch.add(&fact), fact, need))
        })
        .collect();
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

    if let Some(slot) = ipvs {
        let check = "ip_vs";
        let fix = "modprobe ip_vs, and list ip_vs in /etc/modules-load.d/ipvs.conf";
        match answers.parse(slot, &IpvsModule) {
            Ok(IpvsState::Loaded) => report.push(host, check, Outcome::Pass, "loaded".into(), None),
            // The agent (and keepalived) load it when they start.
            Ok(IpvsState::Available(file)) => report.push(
                host,
                check,
                Outcome::Pass,
                format!("not loaded, loads on start ({file})"),
                None,
            ),
            Ok(IpvsState::Missing) => report.push(
                host,
                check,
                Outcome::Fail,
                "the kernel has no IPVS and modinfo finds no ip_vs module".into(),
                Some(format!("install the kernel's modules (linux-modules-extra on some distributions); {fix}")),
            ),
            Err(e) => report.push(host, check, Outcome::Fail, cannot(&e), None),
        }
    }
    for (slot, fact, need) in &lvs_sysctls {
        match answers.parse(*slot, fact) {
            Ok(Some(value)) if value == need.want => {
                report.push(host, need.key, Outcome::Pass, value, None)
            }
            Ok(value) => report.push(
                host,
                need.key,
                Outcome::Fail,
                format!(
                    "is {}, {} needs {}",
                    value.unwrap_or_else(|| "absent".into()),
                    need.why,
                    need.want
                ),
                Some(format!(
                    "sysctl -w {}={} and persist it in /etc/sysctl.d/",
                    need.key, need.want
                )),
            ),
            Err(e) => report.push(host, need.key, Outcome::Fail, cannot(&e), None),
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

/// A sysctl a pair's virtual servers need on one of its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SysctlNeed {
    pub key: &'static str,
    pub want: &'static str,
    pub why: String,
}

/// The sysctls `hp` needs for its pair's virtual servers: LVS-NAT routes
/// the real servers' replies back through the LB (`ip_forward`); an LB
/// that is itself a real server of a DR or TUN service holds the VIP on
/// every box and must not answer ARP for it on the wire (`arp_ignore=1`,
/// `arp_announce=2`, the LVS-DR recipe of the keepalived docs).
pub(super) fn lvs_needs(pair: &PairPlan, hp: &HostPlan) -> Vec<SysctlNeed> {
    let mut needs = Vec::new();
    if let Some(vs) = pair.virtual_servers.iter().find(|v| v.is_nat()) {
        needs.push(SysctlNeed {
            key: "net.ipv4.ip_forward",
            want: "1",
            why: format!("virtual server {} (lb_kind NAT)", vs.target),
        });
    }
    let own = pair.virtual_servers.iter().find(|v| {
        !v.is_nat()
            && hp
                .address
                .is_some_and(|a| v.real_servers.iter().any(|r| r.address == a))
    });
    if let Some(vs) = own {
        let why = format!(
            "this host is a real server of {} (lb_kind {})",
            vs.target, vs.lb_kind
        );
        needs.push(SysctlNeed {
            key: "net.ipv4.conf.all.arp_ignore",
            want: "1",
            why: why.clone(),
        });
        needs.push(SysctlNeed {
            key: "net.ipv4.conf.all.arp_announce",
            want: "2",
            why,
        });
    }
    needs
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Inventory, yaml};
    use std::path::Path;

    fn pair(vs: &str) -> PairPlan {
        let text = format!(
            "all:\n  children:\n    hactl_pairs:\n      children:\n        web:\n          vars:\n            hactl_interface: eth0\n            hactl_instances:\n              - {{name: www, vips: [10.0.0.50/24], master: lb01}}\n            hactl_virtual_servers:\n{vs}          hosts:\n            lb01: {{ansible_host: 10.0.0.51}}\n            lb02: {{ansible_host: 10.0.0.52}}\n"
        );
        let node = yaml::load_str(&text, Path::new("t.yml")).unwrap();
        let inv = Inventory::from_node(Path::new("t.yml"), &node).unwrap();
        let plan = crate::plan::resolve(&inv, &|_| None).unwrap();
        plan.pairs[0].clone()
    }

    #[test]
    fn nat_needs_forwarding_and_a_dr_real_server_on_the_lb_needs_arp_settings() {
        let nat = pair(
            "              - {address: 10.0.0.50, port: 53, protocol: UDP, lb_algo: rr, lb_kind: NAT, real_servers: [{address: 10.0.1.1}]}\n",
        );
        let keys: Vec<&str> = lvs_needs(&nat, &nat.hosts[0])
            .iter()
            .map(|n| n.key)
            .collect();
        assert_eq!(keys, ["net.ipv4.ip_forward"]);
        let dr = pair(
            "              - {address: 10.0.0.50, port: 80, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.52}, {address: 10.0.1.1}]}\n",
        );
        assert!(
            lvs_needs(&dr, &dr.hosts[0]).is_empty(),
            "lb01 only balances"
        );
        let needs = lvs_needs(&dr, &dr.hosts[1]);
        let got: Vec<(&str, &str)> = needs.iter().map(|n| (n.key, n.want)).collect();
        assert_eq!(
            got,
            [
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2")
            ]
        );
        assert!(
            needs[0].why.contains("real server of 10.0.0.50 80"),
            "{needs:?}"
        );
    }
}
