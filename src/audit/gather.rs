//! What the audit asks each host, in one round trip within one deadline
//! (`crate::observe`): its interface addresses, the daemon and the agent's
//! status (for stock keepalived only whether its process runs), the config
//! file the daemon runs, and the agent's VIP ledger. This module only files
//! the answers as [`Observations`] for `judge.rs`.
//!
//! A host that fails to connect, or has not answered when the deadline
//! passes, is [`HostObservation::Unreachable`]; the others are unaffected.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::time::Instant;

use super::judge::{
    AgentInstance, AgentState, ConfigState, HostFacts, HostObservation, Observations,
};
use super::running::parse_running;
use crate::facts::{AgentAnswer, ParseError};
use crate::observe::{self, HostView, Limit, Observation, Wants};
use crate::plan::{Backend, ClusterPlan};
use crate::remote_layout as layout;
use crate::ssh::{Pool, Target};

#[derive(Deserialize)]
struct LedgerEntry {
    address: String,
}

/// The addresses of a ledger file (`[{"interface": .., "address": "A/L"}]`).
pub fn parse_ledger(text: &str) -> Result<Vec<IpAddr>, ParseError> {
    let entries: Vec<LedgerEntry> =
        serde_json::from_str(text).map_err(|e| ParseError(format!("ledger json: {e}")))?;
    entries
        .iter()
        .map(|e| {
            e.address
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| ParseError(format!("ledger address {:?}", e.address)))
        })
        .collect()
}

/// What the audit wants of every host.
pub fn wants() -> Wants {
    Wants {
        agent_status: true,
        config: true,
        ledger: true,
        hashes: Vec::new(),
    }
}

/// Asks every target at most `forks` at a time; whatever has not answered
/// at `deadline` is unreachable.
pub async fn gather_all(
    pool: Arc<Pool>,
    plan: &ClusterPlan,
    targets: &[Target],
    deadline: Instant,
) -> Observations {
    let seen = observe::observe(&pool, plan, targets, &wants(), Limit::Deadline(deadline)).await;
    observations(plan, &seen)
}

/// The judge's input from an observation (pure).
pub fn observations(plan: &ClusterPlan, seen: &Observation) -> Observations {
    let hosts = seen
        .hosts
        .iter()
        .map(|(host, view)| {
            let backend = plan.pair_of(host).map_or(Backend::Agent, |p| p.backend);
            let observation = match view {
                HostView::Unreachable(why) => HostObservation::Unreachable(why.clone()),
                HostView::Reached(facts) => HostObservation::Reached(host_facts(facts, backend)),
            };
            (host.clone(), observation)
        })
        .collect::<BTreeMap<_, _>>();
    Observations { hosts }
}

fn host_facts(facts: &observe::HostFacts, backend: Backend) -> HostFacts {
    let agent = match (backend, &facts.agent) {
        (Backend::Agent, Some(AgentAnswer::Up(status))) => AgentState::Up(
            status
                .instances
                .iter()
                .map(|i| {
                    let live = AgentInstance {
                        state: i.state.clone(),
                        vrid: Some(i.vrid),
                        version: Some(i.version),
                    };
                    (i.name.clone(), live)
                })
                .collect(),
        ),
        (Backend::Agent, Some(AgentAnswer::Down(why))) => AgentState::Down(why.clone()),
        (Backend::Agent, None) => AgentState::Down("not asked".into()),
        (Backend::Keepalived, _) if facts.daemon_up() => AgentState::Running,
        (Backend::Keepalived, _) => AgentState::Down(format!(
            "keepalived is not running ({})",
            describe_process(&facts.daemon.process)
        )),
    };
    let config_path = layout::config_path(backend);
    let config = match &facts.config {
        Some(Ok(Some(text))) => match parse_running(text, config_path) {
            Ok(running) => ConfigState::Parsed(running),
            Err(e) => ConfigState::Broken(format!("{config_path}: {e}")),
        },
        Some(Ok(None)) | None => ConfigState::Missing,
        Some(Err(e)) => ConfigState::Broken(e.clone()),
    };
    // A missing or unreadable ledger only means nothing is recorded.
    let ledger = match &facts.ledger {
        Some(Ok(Some(text))) => parse_ledger(text).unwrap_or_default(),
        _ => Vec::new(),
    };
    HostFacts {
        addresses: facts.addresses().collect(),
        agent,
        config,
        ledger,
    }
}

fn describe_process(process: &crate::facts::ProcessState) -> String {
    use crate::facts::ProcessState;
    match process {
        ProcessState::NoPidFile => "no pid file".into(),
        ProcessState::Malformed => "its pid file holds no pid".into(),
        ProcessState::NotRunning { pid } => format!("pid {pid} is gone"),
        ProcessState::Running { pid, .. } => format!("pid {pid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_addresses() {
        let ledger = parse_ledger(r#"[{"interface": "eth0", "address": "10.0.0.5/24"}]"#).unwrap();
        assert_eq!(ledger, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert!(parse_ledger(r#"[{"interface": "eth0", "address": "x"}]"#).is_err());
    }
}
