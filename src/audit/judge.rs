//! The audit's judgement: from what was observed on the hosts and the
//! cluster plan to findings, with no I/O (gathering is `gather.rs`), so
//! every rule is tested on hand-built observations.
//!
//! Rules, per instance of the plan (holders count the pair's hosts only):
//!
//! | kind | when | severity |
//! |---|---|---|
//! | `split_brain` | a VIP is on the interfaces of two hosts, or the VIPs of one instance sit on different hosts (holders > 1), or two agents say MASTER | CRITICAL |
//! | `no_holder` | a VIP is on no host's interfaces | CRITICAL (UNKNOWN when a host that might hold it did not answer) |
//! | `agent_down` | a host's agent does not answer, or does not run the instance | WARNING |
//! | `fault` | an agent reports the instance in FAULT | WARNING |
//! | `drift` | the peers' config files differ in VRID, version, advert interval, multicast group, authentication or VIPs, or one lacks the instance, or an agent runs another VRID or version than its file (not reloaded) | WARNING |
//! | `unreachable` | a host did not answer (SSH failed, or the deadline passed) | UNKNOWN |
//!
//! Per pair and across pairs:
//!
//! | kind | when | severity |
//! |---|---|---|
//! | `config` | a host's config file is missing or does not parse | WARNING |
//! | `collision` | two pairs on one segment share a VRID or a multicast group in their running configs | WARNING |
//! | `stale_vip` | a host holds a VIP of another pair, or an address its agent's ledger recorded that no instance of its config or pair wants | WARNING |
//!
//! Per virtual server of `hactl_virtual_servers`, from the agents' status
//! (stock keepalived reports none, so its pairs are not judged here):
//!
//! | kind | when | severity |
//! |---|---|---|
//! | `no_real_server` | an agent's virtual server has no real server up | CRITICAL |
//! | `below_quorum` | its live weight is below its quorum (the sorry server, if any, serves) | WARNING |
//! | `drift` | the IPVS table of the host holding the VIP (its destinations and weights) differs from a peer's, or an agent that answers runs no such virtual server | WARNING |
//!
//! The VIP holders are the hosts' interfaces (ground truth), never the
//! agents' word; the masters are the agents' word. The overall status is
//! the worst finding, ordered CRITICAL > WARNING > UNKNOWN > OK: a known
//! problem outranks an unknown one, so an unreachable host never hides a
//! split-brain elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::running::{RunningConfig, RunningInstance};
use crate::plan::{ClusterPlan, InstancePlan, PairPlan};

// ===== observations =====

/// Everything gathered, by inventory host name.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub hosts: BTreeMap<String, HostObservation>,
}

#[derive(Debug, Clone)]
pub enum HostObservation {
    /// SSH failed or the deadline passed; why, without secrets.
    Unreachable(String),
    Reached(HostFacts),
}

#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Every address on every interface.
    pub addresses: Vec<IpAddr>,
    pub agent: AgentState,
    pub config: ConfigState,
    /// Addresses the agent's ledger says it added.
    pub ledger: Vec<IpAddr>,
    /// The agent's virtual servers by name (`10.0.0.50 80 TCP`).
    pub virtual_servers: BTreeMap<String, VirtualServerSeen>,
}

/// One virtual server as an agent runs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualServerSeen {
    pub real_servers: usize,
    pub real_servers_up: usize,
    pub alive_weight: u64,
    pub quorum: u32,
    pub quorum_up: bool,
    /// The destinations in its table, `ADDRESS:PORT=WEIGHT`, sorted.
    pub table: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum AgentState {
    /// The agent answered; its instances by name.
    Up(BTreeMap<String, AgentInstance>),
    /// The daemon runs but cannot say its states (stock keepalived).
    Running,
    Down(String),
}

impl Default for AgentState {
    fn default() -> Self {
        AgentState::Down("not asked".into())
    }
}

/// One instance as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInstance {
    /// MASTER, BACKUP, FAULT or INIT.
    pub state: String,
    pub vrid: Option<u8>,
    pub version: Option<u8>,
}

impl AgentInstance {
    pub fn new(state: &str) -> AgentInstance {
        AgentInstance {
            state: state.to_string(),
            vrid: None,
            version: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub enum ConfigState {
    Parsed(RunningConfig),
    #[default]
    Missing,
    /// Unreadable or invalid; why.
    Broken(String),
}

// ===== findings =====

/// Nagios plugin states; the derive order is "how bad" (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl Severity {
    /// The Nagios plugin exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SplitBrain,
    NoHolder,
    Unreachable,
    AgentDown,
    Fault,
    Drift,
    Config,
    Collision,
    StaleVip,
    NoRealServer,
    BelowQuorum,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::SplitBrain,
        Kind::NoHolder,
        Kind::Unreachable,
        Kind::AgentDown,
        Kind::Fault,
        Kind::Drift,
        Kind::Config,
        Kind::Collision,
        Kind::StaleVip,
        Kind::NoRealServer,
        Kind::BelowQuorum,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SplitBrain => "split_brain",
            Kind::NoHolder => "no_holder",
            Kind::Unreachable => "unreachable",
            Kind::AgentDown => "agent_down",
            Kind::Fault => "fault",
            Kind::Drift => "drift",
            Kind::Config => "config",
            Kind::Collision => "collision",
            Kind::StaleVip => "stale_vip",
            Kind::NoRealServer => "no_real_server",
            Kind::BelowQuorum => "below_quorum",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    pub pair: String,
    /// `None` for findings about a pair or a host as a whole.
    pub instance: Option<String>,
    pub hosts: Vec<String>,
    pub detail: String,
}

/// One instance's observed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceReport {
    pub pair: String,
    pub instance: String,
    pub vips: Vec<String>,
    /// Hosts with at least one of the VIPs on an interface.
    pub holders: Vec<String>,
    /// Hosts whose agent says MASTER.
    pub masters: Vec<String>,
    /// Hosts whose agent answered.
    pub agents_up: Vec<String>,
    /// Hosts that did not answer.
    pub unreachable: Vec<String>,
    pub hosts: Vec<String>,
    /// The worst of the instance's findings.
    pub status: Severity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub status: Severity,
    pub instances: Vec<InstanceReport>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, kind: Kind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }
}

// ===== judgement =====

/// Judges the observations of every host of `plan`.
pub fn judge(plan: &ClusterPlan, obs: &Observations) -> Report {
    let mut findings = Vec::new();
    let mut instances = Vec::new();
    for pair in &plan.pairs {
        for inst in &pair.instances {
            let (report, mut found) = judge_instance(pair, inst, obs);
            instances.push(report);
            findings.append(&mut found);
        }
        findings.extend(config_findings(pair, obs));
        findings.extend(stale_vips(plan, pair, obs));
        findings.extend(virtual_server_findings(pair, obs));
    }
    findings.extend(collisions(plan, obs));
    for report in &mut instances {
        report.status = findings
            .iter()
            .filter(|f| f.pair == report.pair && f.instance.as_deref() == Some(&report.instance))
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.pair.cmp(&b.pair))
            .then(a.instance.cmp(&b.instance))
    });
    let status = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok);
    Report {
        status,
        instances,
        findings,
    }
}

fn facts<'a>(obs: &'a Observations, host: &str) -> Option<&'a HostFacts> {
    match obs.hosts.get(host) {
        Some(HostObservation::Reached(f)) => Some(f),
        _ => None,
    }
}

fn judge_instance(
    pair: &PairPlan,
    inst: &InstancePlan,
    obs: &Observations,
) -> (InstanceReport, Vec<Finding>) {
    let hosts: Vec<String> = pair.hosts.iter().map(|h| h.name.clone()).collect();
    let finding = |severity, kind, hosts: Vec<String>, detail: String| Finding {
        severity,
        kind,
        pair: pair.name.clone(),
        instance: Some(inst.name.clone()),
        hosts,
        detail,
    };
    let mut found = Vec::new();
    let mut unreachable = Vec::new();
    for host in &hosts {
        match obs.hosts.get(host) {
            Some(HostObservation::Reached(_)) => {}
            Some(HostObservation::Unreachable(why)) => {
                unreachable.push(host.clone());
                let detail = if why.starts_with(&format!("{host}: ")) {
                    why.clone()
                } else {
                    format!("{host}: {why}")
                };
                found.push(finding(
                    Severity::Unknown,
                    Kind::Unreachable,
                    vec![host.clone()],
                    detail,
                ));
            }
            None => {
                unreachable.push(host.clone());
                found.push(finding(
                    Severity::Unknown,
                    Kind::Unreachable,
                    vec![host.clone()],
                    format!("{host}: not audited"),
                ));
            }
        }
    }

    // Ground truth: who has which VIP on an interface.
    let mut holders = BTreeSet::new();
    let mut unheld = Vec::new();
    let mut doubly_held = Vec::new();
    for vip in &inst.vips {
        let address = IpAddr::V4(vip.address);
        let on: Vec<&String> = hosts
            .iter()
            .filter(|h| facts(obs, h).is_some_and(|f| f.addresses.contains(&address)))
            .collect();
        match on.len() {
            0 => unheld.push(vip.address.to_string()),
            1 => {}
            _ => doubly_held.push(format!(
                "{} on {}",
                vip.address,
                on.iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
        holders.extend(on.into_iter().cloned());
    }
    let holders: Vec<String> = hosts
        .iter()
        .filter(|h| holders.contains(*h))
        .cloned()
        .collect();

    // The agents' word.
    let mut masters = Vec::new();
    let mut agents_up = Vec::new();
    for host in &hosts {
        let Some(f) = facts(obs, host) else { continue };
        match &f.agent {
            AgentState::Up(states) => {
                agents_up.push(host.clone());
                match states.get(&inst.name).map(|i| i.state.as_str()) {
                    Some("MASTER") => masters.push(host.clone()),
                    Some("FAULT") => found.push(finding(
                        Severity::Warning,
                        Kind::Fault,
                        vec![host.clone()],
                        format!("{host}: the agent reports {} in FAULT", inst.name),
                    )),
                    Some(_) => {}
                    None => found.push(finding(
                        Severity::Warning,
                        Kind::AgentDown,
                        vec![host.clone()],
                        format!(
                            "{host}: the agent runs no instance {} (not reloaded?)",
                            inst.name
                        ),
                    )),
                }
            }
            AgentState::Running => agents_up.push(host.clone()),
            AgentState::Down(why) => {
                let served = if holders.is_empty() {
                    String::new()
                } else {
                    format!("; the VIP is still served by {}", holders.join(", "))
                };
                found.push(finding(
                    Severity::Warning,
                    Kind::AgentDown,
                    vec![host.clone()],
                    format!("{host}: agent down: {why}{served}"),
                ));
            }
        }
    }

    if holders.len() > 1 || masters.len() > 1 {
        let mut named: Vec<String> = holders.clone();
        for m in &masters {
            if !named.contains(m) {
                named.push(m.clone());
            }
        }
        let mut detail = Vec::new();
        if !doubly_held.is_empty() {
            detail.push(format!("VIP {}", doubly_held.join(", ")));
        } else if holders.len() > 1 {
            detail.push(format!("the VIPs are spread over {}", holders.join(", ")));
        }
        if masters.len() > 1 {
            detail.push(format!(
                "{} agents say MASTER: {}",
                masters.len(),
                masters.join(", ")
            ));
        }
        found.push(finding(
            Severity::Critical,
            Kind::SplitBrain,
            named,
            detail.join("; "),
        ));
    }
    // With no host reached there is nothing to say beyond `unreachable`.
    if !unheld.is_empty() && unreachable.len() < hosts.len() {
        let (severity, tail) = if unreachable.is_empty() {
            (Severity::Critical, String::new())
        } else {
            (
                Severity::Unknown,
                format!(" ({} did not answer)", unreachable.join(", ")),
            )
        };
        let what = if unheld.len() == inst.vips.len() {
            "no host holds".to_string()
        } else {
            "no host holds part of".to_string()
        };
        found.push(finding(
            severity,
            Kind::NoHolder,
            hosts.clone(),
            format!(
                "{what} the VIP: {} is on no interface{tail}",
                unheld.join(", ")
            ),
        ));
    }
    found.extend(drift(pair, inst, obs));

    let report = InstanceReport {
        pair: pair.name.clone(),
        instance: inst.name.clone(),
        vips: inst.vips.iter().map(|v| v.to_string()).collect(),
        holders,
        masters,
        agents_up,
        unreachable,
        hosts,
        status: Severity::Ok,
    };
    (report, found)
}

/// Peers' running configs that disagree about one instance.
fn drift(pair: &PairPlan, inst: &InstancePlan, obs: &Observations) -> Option<Finding> {
    let mut present: Vec<(&str, &RunningInstance)> = Vec::new();
    let mut lacking = Vec::new();
    for host in &pair.hosts {
        let Some(HostFacts {
            config: ConfigState::Parsed(config),
            ..
        }) = facts(obs, &host.name)
        else {
            continue;
        };
        match config.instance(&inst.name) {
            Some(i) => present.push((&host.name, i)),
            None => lacking.push(host.name.clone()),
        }
    }
    let mut parts = Vec::new();
    let mut differing = BTreeSet::new();
    // An agent that has not reloaded its edited file runs other values.
    for (host, file) in &present {
        let Some(HostFacts {
            agent: AgentState::Up(states),
            ..
        }) = facts(obs, host)
        else {
            continue;
        };
        let Some(live) = states.get(&inst.name) else {
            continue;
        };
        for (what, running, wanted) in [
            ("VRID", live.vrid, file.vrid),
            ("version", live.version, file.version),
        ] {
            if let Some(running) = running.filter(|r| *r != wanted) {
                parts.push(format!(
                    "{host}'s agent runs {what} {running}, its config file says {wanted} (not reloaded)"
                ));
                differing.insert(host.to_string());
            }
        }
    }
    if !lacking.is_empty() {
        parts.push(format!(
            "no vrrp_instance {} in the config of {}",
            inst.name,
            lacking.join(", ")
        ));
    }
    let mut compare = |what: &str, value: &dyn Fn(&RunningInstance) -> String| {
        let values: BTreeSet<String> = present.iter().map(|(_, i)| value(i)).collect();
        if values.len() > 1 {
            let each: Vec<String> = present
                .iter()
                .map(|(h, i)| format!("{h} {}", value(i)))
                .collect();
            parts.push(format!("{what} differs: {}", each.join(", ")));
            differing.extend(present.iter().map(|(h, _)| h.to_string()));
        }
    };
    compare("VRID", &|i| i.vrid.to_string());
    compare("version", &|i| i.version.to_string());
    compare("advert_int", &|i| {
        format!("{}s", i.advert_int.as_secs_f64())
    });
    compare("multicast group", &|i| {
        i.mcast_group
            .map_or_else(|| "unicast".to_string(), |g| g.to_string())
    });
    compare("VIPs", &|i| i.vips.join(" "));
    // Authentication: only equal or not, never a value or a digest.
    let auth_classes: Vec<&super::running::AuthDigest> = {
        let mut seen = Vec::new();
        for (_, i) in &present {
            if !seen.contains(&&i.auth) {
                seen.push(&i.auth);
            }
        }
        seen
    };
    if auth_classes.len() > 1 {
        let hosts: Vec<&str> = present.iter().map(|(h, _)| *h).collect();
        parts.push(format!(
            "authentication differs between {}",
            hosts.join(" and ")
        ));
        differing.extend(hosts.iter().map(|h| h.to_string()));
    }
    if parts.is_empty() {
        return None;
    }
    differing.extend(lacking);
    let hosts = pair
        .hosts
        .iter()
        .filter(|h| differing.contains(&h.name))
        .map(|h| h.name.clone())
        .collect();
    Some(Finding {
        severity: Severity::Warning,
        kind: Kind::Drift,
        pair: pair.name.clone(),
        instance: Some(inst.name.clone()),
        hosts,
        detail: parts.join("; "),
    })
}

/// The rules of the virtual servers (module doc): per virtual server,
/// each agent's pool, and the VIP holder's table against its peers'.
fn virtual_server_findings(pair: &PairPlan, obs: &Observations) -> Vec<Finding> {
    let mut found = Vec::new();
    for vs in &pair.virtual_servers {
        let name = vs.agent_name();
        let finding = |severity, kind, hosts: Vec<String>, detail: String| Finding {
            severity,
            kind,
            pair: pair.name.clone(),
            instance: None,
            hosts,
            detail,
        };
        let mut seen: Vec<(&str, Option<&VirtualServerSeen>)> = Vec::new();
        for h in &pair.hosts {
            let Some(f) = facts(obs, &h.name) else {
                continue;
            };
            if let AgentState::Up(_) = f.agent {
                seen.push((h.name.as_str(), f.virtual_servers.get(&name)));
            }
        }
        for (host, v) in &seen {
            let Some(v) = v else {
                found.push(finding(
                    Severity::Warning,
                    Kind::Drift,
                    vec![host.to_string()],
                    format!("{host} runs no virtual server {name} (config not reloaded?)"),
                ));
                continue;
            };
            if v.real_servers_up == 0 {
                found.push(finding(
                    Severity::Critical,
                    Kind::NoRealServer,
                    vec![host.to_string()],
                    format!(
                        "virtual server {name} on {host}: none of its {} real servers is up",
                        v.real_servers
                    ),
                ));
            } else if v.alive_weight < u64::from(v.quorum) {
                found.push(finding(
                    Severity::Warning,
                    Kind::BelowQuorum,
                    vec![host.to_string()],
                    format!(
                        "virtual server {name} on {host}: live weight {} below quorum {} ({}/{} real servers up)",
                        v.alive_weight, v.quorum, v.real_servers_up, v.real_servers
                    ),
                ));
            }
        }
        // The host that holds the VIP serves: its peers must be ready to
        // serve the same way.
        let holder = vs.address.and_then(|a| {
            seen.iter()
                .map(|(h, _)| *h)
                .find(|h| facts(obs, h).is_some_and(|f| f.addresses.contains(&IpAddr::V4(a))))
        });
        let Some(holder) = holder else { continue };
        let Some(Some(master)) = seen.iter().find(|(h, _)| *h == holder).map(|(_, v)| *v) else {
            continue;
        };
        for (host, v) in &seen {
            let Some(v) = v else { continue };
            if *host == holder || v.table == master.table {
                continue;
            }
            found.push(finding(
                Severity::Warning,
                Kind::Drift,
                vec![holder.to_string(), host.to_string()],
                format!(
                    "IPVS table of {name} differs: {holder} (holds the VIP) has [{}], {host} has [{}]",
                    master.table.join(" "),
                    v.table.join(" ")
                ),
            ));
        }
    }
    found
}

/// Config files that are missing or do not parse.
fn config_findings(pair: &PairPlan, obs: &Observations) -> Vec<Finding> {
    pair.hosts
        .iter()
        .filter_map(|h| {
            let why = match &facts(obs, &h.name)?.config {
                ConfigState::Parsed(_) => return None,
                ConfigState::Missing => "no config file".to_string(),
                ConfigState::Broken(why) => why.clone(),
            };
            Some(Finding {
                severity: Severity::Warning,
                kind: Kind::Config,
                pair: pair.name.clone(),
                instance: None,
                hosts: vec![h.name.clone()],
                detail: format!("{}: {why}", h.name),
            })
        })
        .collect()
}

/// Addresses on a host of `pair` that no instance of its pair wants.
fn stale_vips(plan: &ClusterPlan, pair: &PairPlan, obs: &Observations) -> Vec<Finding> {
    let own: BTreeSet<IpAddr> = pair
        .instances
        .iter()
        .flat_map(|i| i.vips.iter().map(|v| IpAddr::V4(v.address)))
        .collect();
    let mut found = Vec::new();
    for host in &pair.hosts {
        let Some(f) = facts(obs, &host.name) else {
            continue;
        };
        let configured: BTreeSet<IpAddr> = match &f.config {
            ConfigState::Parsed(c) => c
                .instances
                .iter()
                .flat_map(|i| i.vips.iter())
                .filter_map(|v| v.split('/').next()?.parse().ok())
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut seen = BTreeSet::new();
        for address in &f.addresses {
            if own.contains(address) || !seen.insert(*address) {
                continue;
            }
            let foreign = plan
                .pairs
                .iter()
                .filter(|p| p.name != pair.name)
                .find_map(|p| {
                    p.instances
                        .iter()
                        .find(|i| i.vips.iter().any(|v| IpAddr::V4(v.address) == *address))
                        .map(|i| format!("{}/{}", p.name, i.name))
                });
            let detail = match foreign {
                Some(owner) => format!(
                    "{}: holds {address}, a VIP of {owner}; no instance of {} wants it there",
                    host.name, pair.name
                ),
                None if f.ledger.contains(address) && !configured.contains(address) => format!(
                    "{}: holds {address}, recorded in the agent's ledger, but no instance of its config wants it",
                    host.name
                ),
                None => continue,
            };
            found.push(Finding {
                severity: Severity::Warning,
                kind: Kind::StaleVip,
                pair: pair.name.clone(),
                instance: None,
                hosts: vec![host.name.clone()],
                detail,
            });
        }
    }
    found
}

/// Pairs on one segment whose running configs share a VRID or a group.
fn collisions(plan: &ClusterPlan, obs: &Observations) -> Vec<Finding> {
    // Per pair: (VRID -> instance names) and (group -> instance names),
    // from every host's running config.
    struct Used<'a> {
        pair: &'a PairPlan,
        vrids: BTreeMap<u8, BTreeSet<String>>,
        groups: BTreeMap<IpAddr, BTreeSet<String>>,
    }
    let used: Vec<Used> = plan
        .pairs
        .iter()
        .map(|pair| {
            let mut u = Used {
                pair,
                vrids: BTreeMap::new(),
                groups: BTreeMap::new(),
            };
            for host in &pair.hosts {
                if let Some(HostFacts {
                    config: ConfigState::Parsed(c),
                    ..
                }) = facts(obs, &host.name)
                {
                    for i in &c.instances {
                        u.vrids.entry(i.vrid).or_default().insert(i.name.clone());
                        if let Some(g) = i.mcast_group {
                            u.groups.entry(g).or_default().insert(i.name.clone());
                        }
                    }
                }
            }
            u
        })
        .collect();
    let mut found = Vec::new();
    for (n, a) in used.iter().enumerate() {
        for b in &used[n + 1..] {
            if a.pair.segment != b.pair.segment {
                continue;
            }
            let mut shared = Vec::new();
            let mut instance = None;
            for (vrid, names) in &a.vrids {
                if let Some(others) = b.vrids.get(vrid) {
                    instance.get_or_insert_with(|| names.iter().next().cloned());
                    shared.push(format!(
                        "VRID {vrid} ({}/{} and {}/{})",
                        a.pair.name,
                        join(names),
                        b.pair.name,
                        join(others)
                    ));
                }
            }
            for group in a.groups.keys() {
                if b.groups.contains_key(group) {
                    shared.push(format!("multicast group {group}"));
                }
            }
            if shared.is_empty() {
                continue;
            }
            let hosts = a
                .pair
                .hosts
                .iter()
                .chain(&b.pair.hosts)
                .map(|h| h.name.clone())
                .collect();
            found.push(Finding {
                severity: Severity::Warning,
                kind: Kind::Collision,
                pair: a.pair.name.clone(),
                instance: instance.flatten(),
                hosts,
                detail: format!(
                    "{} and {} share {} on segment {}",
                    a.pair.name,
                    b.pair.name,
                    shared.join(" and "),
                    a.pair.segment
                ),
            });
        }
    }
    found
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(",")
}
