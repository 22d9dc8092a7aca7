//! The one place hactl looks at hosts: one round trip per host (a fact
//! [`Batch`]) gathers what a command needs, and [`Observation`] turns the
//! answers into who holds each VIP (the interfaces: ground truth), which
//! daemons run and what each agent says. `hactl status`, the audit's
//! judge, the drills and deploy's health wait all read the pair through
//! here.
//!
//! ```text
//!  per host, at most --forks at once, each within its own limit:
//!    connect ── Batch { daemon, interfaces, [agent status], [config],
//!                       [ledger], [file hashes] } ── HostFacts
//!  per instance of a pair:
//!    HostFacts of its hosts ── InstanceView { holders, masters,
//!                                             agents_down, unreachable }
//! ```
//!
//! A host that cannot be reached, or whose batch fails or does not finish
//! in time, is `Unreachable` with the reason; it never delays the others
//! beyond its own limit.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::agent_control::AgentControl;
use crate::facts::{
    AgentAnswer, AgentStatus, Batch, Daemon, DaemonState, FactError, FileHash, FileText, Interface,
    Interfaces,
};
use crate::plan::{Backend, ClusterPlan, InstancePlan, PairPlan};
use crate::remote_layout as layout;
use crate::ssh::{HostSession, Pool, Target};

/// What to gather besides the daemon and the interfaces (always asked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wants {
    /// hactl-agent's status document (agent backend, daemon running).
    pub agent_status: bool,
    /// The text of the daemon's config file.
    pub config: bool,
    /// The agent's VIP ledger.
    pub ledger: bool,
    /// SHA-256 of these files.
    pub hashes: Vec<String>,
}

impl Wants {
    /// What `status`, drills and deploy's health wait need.
    pub fn placement() -> Wants {
        Wants {
            agent_status: true,
            ..Wants::default()
        }
    }
}

/// A file's text, `None` when it does not exist, or why it is unreadable.
pub type FileRead = Result<Option<String>, String>;

/// Everything one round trip told about one host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub control: AgentControl,
    pub daemon: DaemonState,
    /// The agent's status (backend agent, when asked and the agent runs).
    pub agent: Option<AgentAnswer>,
    pub interfaces: Vec<Interface>,
    pub config: Option<FileRead>,
    pub ledger: Option<FileRead>,
    /// Path -> SHA-256 (`None`: the file does not exist).
    pub hashes: BTreeMap<String, Result<Option<String>, String>>,
}

impl HostFacts {
    /// Whether the daemon runs: its supervisor knows its process, or the
    /// agent answers on its status socket (an agent started by other means).
    pub fn daemon_up(&self) -> bool {
        self.daemon.pid().is_some() || matches!(self.agent, Some(AgentAnswer::Up(_)))
    }

    /// Every address on every interface.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(|a| a.address))
    }

    /// Whether `address` is on one of the host's interfaces.
    pub fn holds(&self, address: IpAddr) -> bool {
        self.addresses().any(|a| a == address)
    }

    /// The agent's view of `instance`, when it answered.
    pub fn agent_instance(&self, instance: &str) -> Option<&hactl_agent::status::InstanceStatus> {
        match &self.agent {
            Some(AgentAnswer::Up(status)) => status.instances.iter().find(|i| i.name == instance),
            _ => None,
        }
    }
}

/// One host: observed, or why not.
#[derive(Debug, Clone)]
pub enum HostView {
    Reached(Box<HostFacts>),
    Unreachable(String),
}

/// Every host looked at in one go.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub hosts: BTreeMap<String, HostView>,
}

/// How long a look may take.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// Every host must have answered by then (the audit's `--timeout`).
    Deadline(Instant),
    /// Each host, from its turn to its answer.
    PerHost(Duration),
}

/// Gathers `wants` from one host in one round trip.
pub async fn observe_host(
    session: &HostSession,
    backend: Backend,
    wants: &Wants,
) -> Result<HostFacts, FactError> {
    let mut batch = Batch::new();
    let daemon_fact = Daemon { backend };
    let daemon = batch.add(&daemon_fact);
    let interfaces = batch.add(&Interfaces);
    let status = (wants.agent_status && backend == Backend::Agent).then(|| batch.add(&AgentStatus));
    let config_fact = FileText {
        path: layout::config_path(backend).to_string(),
    };
    let config = wants.config.then(|| batch.add(&config_fact));
    let ledger_fact = FileText {
        path: layout::AGENT_LEDGER.to_string(),
    };
    let ledger = wants.ledger.then(|| batch.add(&ledger_fact));
    let hash_facts: Vec<FileHash> = wants
        .hashes
        .iter()
        .map(|path| FileHash { path: path.clone() })
        .collect();
    let hashes: Vec<_> = hash_facts.iter().map(|f| batch.add(f)).collect();

    let answers = batch.run(session).await?;
    let daemon = answers.parse(daemon, &daemon_fact)?;
    let interfaces = answers.parse(interfaces, &Interfaces)?;
    let agent = status.map(|slot| {
        answers
            .parse(slot, &AgentStatus)
            .unwrap_or_else(|e| AgentAnswer::Down(e.to_string()))
    });
    let read = |slot, fact: &FileText| answers.parse(slot, fact).map_err(|e| e.to_string());
    Ok(HostFacts {
        control: AgentControl {
            backend,
            supervisor: daemon.supervisor,
        },
        daemon,
        agent,
        interfaces,
        config: config.map(|slot| read(slot, &config_fact)),
        ledger: ledger.map(|slot| read(slot, &ledger_fact)),
        hashes: hash_facts
            .iter()
            .zip(hashes)
            .map(|(fact, slot)| {
                (
                    fact.path.clone(),
                    answers.parse(slot, fact).map_err(|e| e.to_string()),
                )
            })
            .collect(),
    })
}

/// Looks at every target at most `forks` at a time (the pool's setting).
pub async fn observe(
    pool: &Arc<Pool>,
    plan: &ClusterPlan,
    targets: &[Target],
    wants: &Wants,
    limit: Limit,
) -> Observation {
    let permits = Arc::new(Semaphore::new(pool.options().forks.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let backend = plan
            .pair_of(&target.host)
            .map_or(Backend::Agent, |p| p.backend);
        let (pool, permits, target, wants) =
            (pool.clone(), permits.clone(), target.clone(), wants.clone());
        tasks.spawn(async move {
            let host = target.host.clone();
            let view = match limit {
                Limit::Deadline(deadline) => {
                    let work = async {
                        let _permit = permits.acquire().await.ok();
                        look(&pool, &target, backend, &wants).await
                    };
                    tokio::time::timeout_at(deadline, work)
                        .await
                        .unwrap_or_else(|_| {
                            HostView::Unreachable("no answer before the deadline".into())
                        })
                }
                Limit::PerHost(within) => {
                    let _permit = permits.acquire().await.ok();
                    tokio::time::timeout(within, look(&pool, &target, backend, &wants))
                        .await
                        .unwrap_or_else(|_| {
                            HostView::Unreachable(format!(
                                "no answer within {} ms",
                                within.as_millis()
                            ))
                        })
                }
            };
            (host, view)
        });
    }
    let mut hosts = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((host, view)) = joined {
            hosts.insert(host, view);
        }
    }
    Observation { hosts }
}

async fn look(pool: &Pool, target: &Target, backend: Backend, wants: &Wants) -> HostView {
    let session = match pool.connect(target).await {
        Ok(s) => s,
        Err(e) => return HostView::Unreachable(e.to_string()),
    };
    match observe_host(&session, backend, wants).await {
        Ok(facts) => HostView::Reached(Box::new(facts)),
        Err(e) => HostView::Unreachable(e.to_string()),
    }
}

// ===== instance views =====

/// One host's part in an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostInstanceView {
    pub host: String,
    /// Whether the daemon runs; `None`: the host did not answer (see
    /// `error`).
    #[serde(rename = "agent_up")]
    pub daemon_up: Option<bool>,
    /// MASTER, BACKUP, FAULT, INIT as the agent says; for stock
    /// keepalived read from the interfaces (every VIP: MASTER, none:
    /// BACKUP); `None` without an answer.
    pub state: Option<String>,
    pub priority: Option<u8>,
    pub effective_priority: Option<u8>,
    /// The instance's VIPs found on the host's interfaces.
    pub holds: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where one instance's VIPs are and who runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstanceView {
    /// Hosts holding a VIP of the instance on an interface.
    pub holders: Vec<String>,
    /// Per VIP (`A/L`), the hosts holding it.
    pub vip_holders: BTreeMap<String, Vec<String>>,
    /// Hosts whose agent says MASTER.
    pub masters: Vec<String>,
    /// Hosts whose daemon does not run.
    pub agents_down: Vec<String>,
    /// Hosts that did not answer.
    pub unreachable: Vec<String>,
    /// The pair's hosts, in role order.
    pub hosts: Vec<HostInstanceView>,
}

impl InstanceView {
    /// Why a drill must not touch the pair; `None` when exactly one host
    /// holds the VIPs and every daemon runs.
    pub fn unhealthy(&self) -> Option<String> {
        if !self.unreachable.is_empty() {
            return Some(format!("unreachable: {}", self.unreachable.join(", ")));
        }
        if !self.agents_down.is_empty() {
            return Some(format!("agent down on {}", self.agents_down.join(", ")));
        }
        if self.holders.len() != 1 {
            return Some(format!(
                "{} VIP holders ({})",
                self.holders.len(),
                self.holders.join(", ")
            ));
        }
        None
    }

    /// The view of `host`.
    pub fn host(&self, host: &str) -> Option<&HostInstanceView> {
        self.hosts.iter().find(|h| h.host == host)
    }
}

impl Observation {
    /// The facts of `host`, when it answered.
    pub fn facts(&self, host: &str) -> Option<&HostFacts> {
        match self.hosts.get(host)? {
            HostView::Reached(facts) => Some(facts),
            HostView::Unreachable(_) => None,
        }
    }

    /// How `inst` of `pair` stands on the hosts that were looked at.
    pub fn instance(&self, pair: &PairPlan, inst: &InstancePlan) -> InstanceView {
        let mut view = InstanceView {
            vip_holders: inst
                .vips
                .iter()
                .map(|v| (v.to_string(), Vec::new()))
                .collect(),
            ..InstanceView::default()
        };
        for role in &inst.roles {
            let Some(seen) = self.hosts.get(&role.host) else {
                continue;
            };
            let mut line = HostInstanceView {
                host: role.host.clone(),
                daemon_up: None,
                state: None,
                priority: None,
                effective_priority: None,
                holds: Vec::new(),
                error: None,
            };
            match seen {
                HostView::Unreachable(why) => {
                    view.unreachable.push(role.host.clone());
                    line.error = Some(why.clone());
                }
                HostView::Reached(facts) => {
                    let up = facts.daemon_up();
                    line.daemon_up = Some(up);
                    if !up {
                        view.agents_down.push(role.host.clone());
                    }
                    for vip in &inst.vips {
                        if facts.holds(IpAddr::V4(vip.address)) {
                            line.holds.push(vip.to_string());
                            if let Some(h) = view.vip_holders.get_mut(&vip.to_string()) {
                                h.push(role.host.clone());
                            }
                        }
                    }
                    if !line.holds.is_empty() {
                        view.holders.push(role.host.clone());
                    }
                    match (pair.backend, facts.agent_instance(&inst.name)) {
                        (Backend::Agent, Some(agent)) => {
                            line.state = Some(agent.state.clone());
                            line.priority = Some(agent.priority);
                            line.effective_priority = Some(agent.effective_priority);
                            if agent.state == "MASTER" {
                                view.masters.push(role.host.clone());
                            }
                        }
                        (Backend::Keepalived, _) if up => {
                            let all = line.holds.len() == inst.vips.len() && !inst.vips.is_empty();
                            line.state = Some(if all { "MASTER" } else { "BACKUP" }.into());
                        }
                        _ => {}
                    }
                }
            }
            view.hosts.push(line);
        }
        view
    }
}
