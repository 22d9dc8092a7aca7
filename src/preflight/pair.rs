//! The checks between a pair's hosts, from one probe exchange
//! (`crate::facts::probe_pair`): VRRP both ways between every two hosts,
//! and each VIP not answering on the segment (checked from the instance's
//! master, else the first host that answered).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::{HostFacts, Outcome, PreflightReport};
use crate::facts::{AddressUse, ProbeHost, VrrpReachability, probe_pair};
use crate::plan::PairPlan;

pub(super) async fn checks(
    pair: &PairPlan,
    known: &BTreeMap<String, HostFacts>,
    report: &mut PreflightReport,
) {
    // Hosts that logged in, have an address and an interface to probe on.
    let mut ends = Vec::new();
    for h in &pair.hosts {
        let Some(facts) = known.get(&h.name) else {
            continue;
        };
        let (Some(session), Some(address)) = (&facts.session, h.address) else {
            continue;
        };
        if facts.interface.is_none() {
            continue;
        }
        ends.push((h, facts, session.as_ref(), address));
    }
    // Who checks which VIP: the instance's master, else the first end.
    let mut held_locally: Vec<(String, Ipv4Addr)> = Vec::new();
    let mut targets: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    for inst in &pair.instances {
        let Some((checker, facts, _, _)) = ends
            .iter()
            .find(|(h, ..)| h.name == inst.master)
            .or_else(|| ends.first())
        else {
            continue;
        };
        for vip in &inst.vips {
            if facts.addresses.contains(&IpAddr::V4(vip.address)) {
                held_locally.push((checker.name.clone(), vip.address));
            } else {
                targets
                    .entry(checker.name.clone())
                    .or_default()
                    .push(vip.address);
            }
        }
    }
    let probe_hosts: Vec<ProbeHost<'_>> = ends
        .iter()
        .map(|(h, _, session, address)| ProbeHost {
            session,
            address: *address,
            interface: h.interface.clone(),
            arp_targets: targets.get(&h.name).cloned().unwrap_or_default(),
        })
        .collect();
    let needs_probe = probe_hosts.len() >= 2 || !targets.is_empty();
    let seen = if needs_probe {
        probe_pair(&probe_hosts, pair.mcast_group).await
    } else {
        Default::default()
    };

    for ((sender, receiver), verdict) in &seen.vrrp {
        let check = format!("vrrp from {sender}");
        let from = pair.host(sender).and_then(|h| h.address);
        match verdict {
            VrrpReachability::Received => report.push(
                receiver,
                &check,
                Outcome::Pass,
                format!("probe to {} arrived", pair.mcast_group),
                None,
            ),
            VrrpReachability::NotReceived { sender_error } => {
                let rules = match known.get(receiver).and_then(|f| f.firewall.as_ref()) {
                    Some(Ok(rules)) if !rules.blocking.is_empty() => rules
                        .blocking
                        .iter()
                        .map(|r| format!("{} `{}`", r.location, r.rule))
                        .collect::<Vec<_>>()
                        .join("; "),
                    Some(Ok(_)) => "no firewall rule found that drops it".to_string(),
                    Some(Err(e)) => format!("firewall rules unreadable: {e}"),
                    None => "firewall rules not read".to_string(),
                };
                let mut detail = format!(
                    "protocol 112 probe from {sender} to {} did not arrive; {rules}",
                    pair.mcast_group
                );
                if let Some(e) = sender_error {
                    detail.push_str(&format!("; sender: {e}"));
                }
                report.push(
                    receiver,
                    &check,
                    Outcome::Fail,
                    detail,
                    Some(format!(
                        "accept IP protocol 112 (vrrp){} on {receiver}: e.g. nft insert rule inet filter input ip protocol vrrp accept",
                        from.map(|a| format!(" from {a}")).unwrap_or_default()
                    )),
                );
            }
            VrrpReachability::CouldNotRun { why } => report.push(
                receiver,
                &check,
                Outcome::Warn,
                format!("could not run: {why}"),
                Some("the probe needs python3 and root on both hosts".into()),
            ),
        }
    }

    for (host, address) in held_locally {
        report.push(
            &host,
            &format!("vip {address} free"),
            Outcome::Pass,
            "held here (deployed before)".into(),
            None,
        );
    }
    let pair_macs: BTreeMap<String, String> = ends
        .iter()
        .filter_map(|(h, facts, ..)| {
            let mac = facts.interface.as_ref()?.mac.clone()?;
            Some((mac.to_ascii_lowercase(), h.name.clone()))
        })
        .collect();
    for ((host, address), verdict) in &seen.arp {
        let check = format!("vip {address} free");
        match verdict {
            Ok(AddressUse::Free) => {
                report.push(host, &check, Outcome::Pass, "nobody answers".into(), None)
            }
            Ok(AddressUse::HeldLocally) => report.push(
                host,
                &check,
                Outcome::Pass,
                "held here (deployed before)".into(),
                None,
            ),
            Ok(AddressUse::InUse { mac }) => {
                match mac
                    .as_ref()
                    .and_then(|m| pair_macs.get(&m.to_ascii_lowercase()))
                {
                    Some(peer) => report.push(
                        host,
                        &check,
                        Outcome::Pass,
                        format!("held by {peer} of this pair"),
                        None,
                    ),
                    None => report.push(
                        host,
                        &check,
                        Outcome::Fail,
                        format!(
                            "already answering on the segment (MAC {})",
                            mac.clone().unwrap_or_else(|| "unknown".into())
                        ),
                        Some(format!(
                            "remove {address} from the host that holds it, or choose another VIP"
                        )),
                    ),
                }
            }
            Err(why) => report.push(
                host,
                &check,
                Outcome::Warn,
                format!("could not run: {why}"),
                Some("the probe needs python3 and root on the host".into()),
            ),
        }
    }
}
