//! `hactl status`: per instance, who is master, each host's state and
//! priority as its daemon reports them, which hosts hold the VIPs (read
//! from their interfaces, not only the agent's word) and whether each
//! daemon is up.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::agent_control::AgentControl;
use crate::facts::{self, Interface, Interfaces};
use crate::plan::{ClusterPlan, State};
use crate::ssh::{Pool, Target};

/// One host's view of one instance.
#[derive(Debug, Clone, Serialize)]
pub struct HostInstance {
    pub host: String,
    /// The plan's role.
    pub role: State,
    pub planned_priority: u8,
    /// Whether the daemon runs; `None` when the host could not be reached.
    pub agent_up: Option<bool>,
    /// MASTER, BACKUP, FAULT, INIT as the agent says; `None` without an
    /// answer (keepalived, or the agent down).
    pub state: Option<String>,
    pub priority: Option<u8>,
    pub effective_priority: Option<u8>,
    /// VIPs of the instance found on the host's interfaces.
    pub holds: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub pair: String,
    pub instance: String,
    pub vrid: u8,
    pub planned_master: String,
    /// Hosts whose agent says MASTER.
    pub masters: Vec<String>,
    /// Per VIP, the hosts holding it.
    pub vip_holders: BTreeMap<String, Vec<String>>,
    pub hosts: Vec<HostInstance>,
}

impl InstanceReport {
    /// One master, every VIP on exactly that host, as planned.
    pub fn is_as_planned(&self) -> bool {
        self.vip_holders
            .values()
            .all(|holders| holders.len() == 1 && holders[0] == self.planned_master)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub instances: Vec<InstanceReport>,
}

/// Why a host's view is missing, as text (the report carries it).
#[derive(Debug, Clone)]
struct ViewError(String);

impl From<crate::ssh::SshError> for ViewError {
    fn from(e: crate::ssh::SshError) -> Self {
        ViewError(e.to_string())
    }
}

struct HostView {
    agent_up: bool,
    status: Option<hactl_agent::status::Status>,
    interfaces: Vec<Interface>,
}

/// Gathers the status of every pair host in `targets`.
pub async fn gather(pool: &Pool, plan: &ClusterPlan, targets: &[Target]) -> StatusReport {
    let results = pool
        .fan_out(targets, |session| async move {
            let backend = plan
                .pair_of(session.host())
                .map_or(crate::plan::Backend::Agent, |p| p.backend);
            let control = AgentControl::detect(&session, backend)
                .await
                .map_err(|e| ViewError(e.to_string()))?;
            let agent_up = control
                .running_pid(&session)
                .await
                .map_err(|e| ViewError(e.to_string()))?
                .is_some();
            let status = if agent_up {
                control
                    .status(&session)
                    .await
                    .map_err(|e| ViewError(e.to_string()))?
            } else {
                None
            };
            let interfaces = facts::gather(&session, &Interfaces)
                .await
                .map_err(|e| ViewError(e.to_string()))?;
            Ok::<_, ViewError>(HostView {
                agent_up,
                status,
                interfaces,
            })
        })
        .await;
    let views: BTreeMap<String, Result<HostView, ViewError>> =
        results.into_iter().map(|r| (r.host, r.result)).collect();
    let mut instances = Vec::new();
    for pair in &plan.pairs {
        for inst in &pair.instances {
            let mut report = InstanceReport {
                pair: pair.name.clone(),
                instance: inst.name.clone(),
                vrid: inst.vrid,
                planned_master: inst.master.clone(),
                masters: Vec::new(),
                vip_holders: inst
                    .vips
                    .iter()
                    .map(|v| (v.to_string(), Vec::new()))
                    .collect(),
                hosts: Vec::new(),
            };
            for role in &inst.roles {
                let Some(view) = views.get(&role.host) else {
                    continue;
                };
                let mut line = HostInstance {
                    host: role.host.clone(),
                    role: role.state,
                    planned_priority: role.priority,
                    agent_up: None,
                    state: None,
                    priority: None,
                    effective_priority: None,
                    holds: Vec::new(),
                    error: None,
                };
                match view {
                    Err(e) => line.error = Some(e.0.clone()),
                    Ok(view) => {
                        line.agent_up = Some(view.agent_up);
                        if let Some(s) = view
                            .status
                            .as_ref()
                            .and_then(|s| s.instances.iter().find(|i| i.name == inst.name))
                        {
                            line.state = Some(s.state.clone());
                            line.priority = Some(s.priority);
                            line.effective_priority = Some(s.effective_priority);
                            if s.state == "MASTER" {
                                report.masters.push(role.host.clone());
                            }
                        }
                        for vip in &inst.vips {
                            let held = view.interfaces.iter().any(|i| {
                                i.addresses
                                    .iter()
                                    .any(|a| a.address == IpAddr::V4(vip.address))
                            });
                            if held {
                                line.holds.push(vip.to_string());
                                if let Some(h) = report.vip_holders.get_mut(&vip.to_string()) {
                                    h.push(role.host.clone());
                                }
                            }
                        }
                    }
                }
                report.hosts.push(line);
            }
            instances.push(report);
        }
    }
    StatusReport { instances }
}
