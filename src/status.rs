//! `hactl status`: per instance, who is master, each host's state and
//! priority as its daemon reports them, which hosts hold the VIPs (read
//! from their interfaces, not only the agent's word) and whether each
//! daemon is up. The looking is `crate::observe` (one round trip per
//! host); this module only shapes the report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::observe::{HostInstanceView, Limit, Observation, Wants, observe};
use crate::output::plain_table;
use crate::plan::{ClusterPlan, State};
use crate::ssh::{Pool, Target};

/// One host's view of one instance, beside its planned role.
#[derive(Debug, Clone, Serialize)]
pub struct HostInstance {
    /// The plan's role.
    pub role: State,
    pub planned_priority: u8,
    /// What was seen: host, daemon, state, priorities, VIPs held.
    #[serde(flatten)]
    pub seen: HostInstanceView,
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

/// One host's view of one virtual server (its agent's status).
#[derive(Debug, Clone, Serialize)]
pub struct HostVirtualServer {
    pub host: String,
    /// `None`: the agent did not answer, or runs no such virtual server.
    pub seen: Option<hactl_agent::status::VirtualServerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VirtualServerReport {
    pub pair: String,
    /// As hactl-agent names it: `10.0.0.50 80 TCP`, `fwmark 7`.
    pub virtual_server: String,
    pub hosts: Vec<HostVirtualServer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub instances: Vec<InstanceReport>,
    /// `hactl_virtual_servers`, per host (absent without any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub virtual_servers: Vec<VirtualServerReport>,
}

impl StatusReport {
    /// Whether some host could not be reached.
    pub fn unreachable(&self) -> bool {
        self.instances
            .iter()
            .flat_map(|i| &i.hosts)
            .any(|h| h.seen.error.is_some())
    }

    /// `hactl status`: one row per instance and host.
    pub fn table(&self) -> String {
        let report = self;
        let mut table = plain_table(vec![
            "pair",
            "instance",
            "host",
            "role",
            "agent",
            "state",
            "priority",
            "holds VIPs",
        ]);
        for inst in &report.instances {
            for h in &inst.hosts {
                table.add_row(vec![
                    inst.pair.clone(),
                    inst.instance.clone(),
                    h.seen.host.clone(),
                    h.role.to_string(),
                    match (h.seen.daemon_up, &h.seen.error) {
                        (_, Some(e)) => format!("unreachable: {e}"),
                        (Some(true), _) => "up".into(),
                        _ => "down".into(),
                    },
                    h.seen.state.clone().unwrap_or_else(|| "-".into()),
                    match (h.seen.priority, h.seen.effective_priority) {
                        (Some(p), Some(e)) if p != e => format!("{p} (effective {e})"),
                        (Some(p), _) => p.to_string(),
                        _ => format!("{} (planned)", h.planned_priority),
                    },
                    h.seen.holds.join(" "),
                ]);
            }
        }
        if self.virtual_servers.is_empty() {
            return format!("{table}\n");
        }
        format!("{table}\n{}\n", self.virtual_server_table())
    }

    /// One row per virtual server and host: quorum, live real servers, the
    /// ones out.
    fn virtual_server_table(&self) -> String {
        let mut table = plain_table(vec![
            "pair",
            "virtual server",
            "host",
            "quorum",
            "real servers up",
            "down",
        ]);
        for vs in &self.virtual_servers {
            for h in &vs.hosts {
                let (quorum, up, down) = match &h.seen {
                    None => (
                        "-".to_string(),
                        "no agent answer".to_string(),
                        String::new(),
                    ),
                    Some(s) => {
                        let live = s.real_servers.iter().filter(|r| r.up).count();
                        let down: Vec<String> = s
                            .real_servers
                            .iter()
                            .filter(|r| !r.up)
                            .map(|r| format!("{}:{}", r.address, r.port))
                            .collect();
                        let quorum = format!(
                            "{}/{}{}",
                            s.alive_weight,
                            s.quorum,
                            if s.sorry_server_active {
                                " (sorry server)"
                            } else if s.quorum_up {
                                ""
                            } else {
                                " (lost)"
                            }
                        );
                        (
                            quorum,
                            format!("{live}/{}", s.real_servers.len()),
                            down.join(" "),
                        )
                    }
                };
                table.add_row(vec![
                    vs.pair.clone(),
                    vs.virtual_server.clone(),
                    h.host.clone(),
                    quorum,
                    up,
                    down,
                ]);
            }
        }
        format!("{table}\n")
    }
}

/// How long one host may take to answer.
const HOST_TIMEOUT: Duration = Duration::from_secs(15);

/// Looks at every pair host in `targets` (one round trip each) and
/// reports.
pub async fn gather(pool: &Arc<Pool>, plan: &ClusterPlan, targets: &[Target]) -> StatusReport {
    let seen = observe(
        pool,
        plan,
        targets,
        &Wants::placement(),
        Limit::PerHost(HOST_TIMEOUT),
    )
    .await;
    report(plan, &seen)
}

/// The report of what was observed (pure).
pub fn report(plan: &ClusterPlan, seen: &Observation) -> StatusReport {
    let mut instances = Vec::new();
    for pair in &plan.pairs {
        for inst in &pair.instances {
            let view = seen.instance(pair, inst);
            let hosts = inst
                .roles
                .iter()
                .filter_map(|role| {
                    let h = view.host(&role.host)?;
                    Some(HostInstance {
                        role: role.state,
                        planned_priority: role.priority,
                        seen: h.clone(),
                    })
                })
                .collect();
            instances.push(InstanceReport {
                pair: pair.name.clone(),
                instance: inst.name.clone(),
                vrid: inst.vrid,
                planned_master: inst.master.clone(),
                masters: view.masters,
                vip_holders: view.vip_holders,
                hosts,
            });
        }
    }
    let mut virtual_servers = Vec::new();
    for pair in &plan.pairs {
        for vs in &pair.virtual_servers {
            let name = vs.agent_name();
            let hosts = pair
                .hosts
                .iter()
                .filter(|h| seen.hosts.contains_key(&h.name))
                .map(|h| HostVirtualServer {
                    host: h.name.clone(),
                    seen: seen
                        .facts(&h.name)
                        .and_then(|f| f.agent_virtual_server(&name))
                        .cloned(),
                })
                .collect();
            virtual_servers.push(VirtualServerReport {
                pair: pair.name.clone(),
                virtual_server: name,
                hosts,
            });
        }
    }
    StatusReport {
        instances,
        virtual_servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::golden;

    #[test]
    fn status_table_shows_holders_and_agents() {
        let line = |host: &str, role, state: Option<&str>, holds: &[&str]| HostInstance {
            role,
            planned_priority: if role == State::Master { 150 } else { 100 },
            seen: HostInstanceView {
                host: host.into(),
                daemon_up: Some(state.is_some()),
                state: state.map(str::to_string),
                priority: state.map(|_| if role == State::Master { 150 } else { 100 }),
                effective_priority: state.map(|_| if role == State::Master { 90 } else { 100 }),
                holds: holds.iter().map(|s| s.to_string()).collect(),
                error: None,
            },
        };
        let report = StatusReport {
            instances: vec![InstanceReport {
                pair: "web_lb".into(),
                instance: "www".into(),
                vrid: 1,
                planned_master: "lb01".into(),
                masters: vec!["lb01".into()],
                vip_holders: [("10.213.0.100/24".to_string(), vec!["lb01".to_string()])].into(),
                hosts: vec![
                    line("lb01", State::Master, Some("MASTER"), &["10.213.0.100/24"]),
                    line("lb02", State::Backup, None, &[]),
                ],
            }],
            virtual_servers: Vec::new(),
        };
        golden("status_table.txt", &report.table());
    }

    /// Issue 11: the virtual servers below the instances.
    #[test]
    fn status_table_shows_virtual_servers() {
        use hactl_agent::status::{RealServerStatus, VirtualServerStatus};
        let rs = |last: u8, up: bool| RealServerStatus {
            address: std::net::IpAddr::from([10, 0, 10, last]),
            port: 80,
            up,
            weight: up.then_some(1),
            last_check: None,
            last_check_time: None,
            transitions: 0,
        };
        let seen = VirtualServerStatus {
            name: "10.0.10.100 80 TCP".into(),
            services: vec!["TCP 10.0.10.100:80".into()],
            quorum: 1,
            quorum_up: true,
            alive_weight: 1,
            sorry_server_active: false,
            real_servers: vec![rs(11, true), rs(12, false)],
            transitions: 1,
        };
        let report = StatusReport {
            instances: Vec::new(),
            virtual_servers: vec![VirtualServerReport {
                pair: "lvs_pair".into(),
                virtual_server: "10.0.10.100 80 TCP".into(),
                hosts: vec![
                    HostVirtualServer {
                        host: "lvs01".into(),
                        seen: Some(seen),
                    },
                    HostVirtualServer {
                        host: "lvs02".into(),
                        seen: None,
                    },
                ],
            }],
        };
        golden("status_virtual_servers.txt", &report.table());
    }
}
