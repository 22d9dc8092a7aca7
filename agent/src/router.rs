//! The VRRP router of one host: its instances and the sync groups that make
//! some of them move together.
//!
//! keepalived's `vrrp_sync_group` semantics (keepalived.conf(5)): when one
//! member becomes Master every member becomes Master; when one falls back to
//! Backup the others follow; when one enters Fault (a weight-0 track is down)
//! every member is held in Fault until no member has a fault, and then they
//! all return to Backup together. Transitions forced on members do not
//! cascade further: only the member that received the input leads.
//!
//! Like [`crate::instance`], this takes inputs and returns actions: no I/O.

use std::time::Duration;

use thiserror::Error;

use crate::instance::{Action, Event, Instance, Reason, State};

/// Index of an instance inside its [`Router`], in configuration order.
pub type InstanceId = usize;

/// An action for one instance of the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterAction {
    pub instance: InstanceId,
    pub action: Action,
}

/// A named set of instances that share their state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RouterError {
    #[error("instance {name} is defined twice")]
    DuplicateInstance { name: String },
    #[error("sync group {group} names unknown instance {name}")]
    UnknownMember { group: String, name: String },
    #[error("instance {name} is in sync groups {first} and {second}")]
    TwoGroups {
        name: String,
        first: String,
        second: String,
    },
    #[error("sync group {group} has no members")]
    EmptyGroup { group: String },
}

#[derive(Clone, Debug)]
struct Group {
    name: String,
    members: Vec<InstanceId>,
}

/// All instances of one host.
#[derive(Clone, Debug)]
pub struct Router {
    instances: Vec<Instance>,
    groups: Vec<Group>,
    group_of: Vec<Option<usize>>,
}

impl Router {
    pub fn new(
        instances: Vec<Instance>,
        sync_groups: Vec<SyncGroup>,
    ) -> Result<Router, RouterError> {
        for (i, instance) in instances.iter().enumerate() {
            if instances[..i].iter().any(|o| o.name() == instance.name()) {
                return Err(RouterError::DuplicateInstance {
                    name: instance.name().to_owned(),
                });
            }
        }
        let mut group_of = vec![None; instances.len()];
        let mut groups = Vec::new();
        for (g, group) in sync_groups.into_iter().enumerate() {
            if group.members.is_empty() {
                return Err(RouterError::EmptyGroup { group: group.name });
            }
            let mut members = Vec::new();
            for name in &group.members {
                let Some(id) = instances.iter().position(|i| i.name() == name) else {
                    return Err(RouterError::UnknownMember {
                        group: group.name.clone(),
                        name: name.clone(),
                    });
                };
                if let Some(first) = group_of[id] {
                    let first = groups
                        .get(first)
                        .map_or(&group.name, |first: &Group| &first.name);
                    return Err(RouterError::TwoGroups {
                        name: name.clone(),
                        first: first.clone(),
                        second: group.name.clone(),
                    });
                }
                group_of[id] = Some(g);
                members.push(id);
            }
            groups.push(Group {
                name: group.name,
                members,
            });
        }
        Ok(Router {
            instances,
            groups,
            group_of,
        })
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn find(&self, name: &str) -> Option<InstanceId> {
        self.instances.iter().position(|i| i.name() == name)
    }

    /// Feeds `event` to instance `id` (which must come from this router) and
    /// brings its sync group along.
    pub fn handle(&mut self, id: InstanceId, now: Duration, event: Event) -> Vec<RouterAction> {
        let Some(g) = self.group_of[id] else {
            return tag(id, self.instances[id].handle(now, event));
        };
        let members = self.groups[g].members.clone();
        let group = self.groups[g].name.clone();
        let others_fault = members
            .iter()
            .any(|&m| m != id && self.instances[m].own_fault());
        if self.instances[id].state() == State::Initialize {
            // A member starting while the group is in fault starts in Fault.
            self.instances[id].set_group_fault(now, others_fault, Reason::Startup);
        }
        let mut out = tag(id, self.instances[id].handle(now, event));
        let transition = out.iter().find_map(|a| match &a.action {
            Action::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        });
        let follow = Reason::SyncGroup {
            group,
            member: self.instances[id].name().to_owned(),
        };

        let any_fault = others_fault || self.instances[id].own_fault();
        for &m in &members {
            let reason = if m == id {
                Reason::FaultCleared
            } else {
                follow.clone()
            };
            let actions = self.instances[m].set_group_fault(now, any_fault, reason);
            out.extend(tag(m, actions));
        }

        let leader = self.instances[id].state();
        let other_master = members
            .iter()
            .copied()
            .find(|&m| m != id && self.instances[m].state() == State::Master);
        match transition {
            Some((_, State::Master)) if leader == State::Master => {
                self.follow_all(&members, id, State::Master, &follow, &mut out);
            }
            Some((State::Master, State::Backup)) if leader == State::Backup => {
                self.follow_all(&members, id, State::Backup, &follow, &mut out);
            }
            Some((State::Initialize | State::Fault, State::Backup)) => {
                // A member (re)starting while the group is Master joins it.
                if let Some(master) = other_master {
                    let reason = Reason::SyncGroup {
                        group: self.groups[g].name.clone(),
                        member: self.instances[master].name().to_owned(),
                    };
                    let actions = self.instances[id].follow(State::Master, reason);
                    out.extend(tag(id, actions));
                }
            }
            _ => {}
        }
        out
    }

    fn follow_all(
        &mut self,
        members: &[InstanceId],
        leader: InstanceId,
        to: State,
        reason: &Reason,
        out: &mut Vec<RouterAction>,
    ) {
        for &m in members.iter().filter(|&&m| m != leader) {
            let actions = self.instances[m].follow(to, reason.clone());
            out.extend(tag(m, actions));
        }
    }
}

fn tag(instance: InstanceId, actions: Vec<Action>) -> Vec<RouterAction> {
    actions
        .into_iter()
        .map(|action| RouterAction { instance, action })
        .collect()
}
