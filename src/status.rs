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

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub instances: Vec<InstanceReport>,
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
    StatusReport { instances }
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
        };
        golden("status_table.txt", &report.table());
    }
}
