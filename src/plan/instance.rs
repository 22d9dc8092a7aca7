//! One entry of `hactl_instances`: its keys, VIPs (in each host's subnet,
//! never a host address), master and the roles and priorities of every
//! host.

use super::*;

impl Resolver<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn instance(
        &mut self,
        item: &Node,
        hosts: &[String],
        host_plans: &[HostPlan],
        checks: &[CheckPlan],
        default_advert: u16,
        version: u8,
        done: &[InstancePlan],
    ) -> Option<ReadInstance> {
        let key = "hactl_instances";
        if item.as_map().is_none() {
            self.err_at(
                item,
                key,
                "each instance must be a mapping {name, vips, master, ...}".into(),
            );
            return None;
        }
        for (k, _) in item.as_map().unwrap_or_default() {
            if !INSTANCE_KEYS.contains(&k.name.as_str()) {
                let hint = did_you_mean(&k.name, INSTANCE_KEYS);
                self.err(
                    Some(k.origin.clone()),
                    key,
                    format!("unknown instance key `{}`{hint}", k.name),
                );
            }
        }
        let name = match item.get("name").and_then(Node::scalar_text) {
            Some(n) if names::word(&n, 64).is_ok() => n,
            Some(_) => {
                let rule = names::word("", 64).unwrap_err();
                self.err_at(
                    item.get("name").unwrap_or(item),
                    key,
                    format!("an instance name {rule}"),
                );
                return None;
            }
            None => {
                self.err_at(
                    item,
                    key,
                    "an instance needs a `name` without spaces".into(),
                );
                return None;
            }
        };
        if done.iter().any(|i| i.name == name) {
            self.err_at(
                item,
                key,
                format!("instance name `{name}` is used twice in the pair"),
            );
        }
        let master = match item.get("master").and_then(Node::scalar_text) {
            Some(m) if hosts.contains(&m) => m,
            Some(m) => {
                let hint = did_you_mean(&m, &hosts.iter().map(String::as_str).collect::<Vec<_>>());
                self.err_at(
                    item.get("master").unwrap_or(item),
                    key,
                    format!("instance `{name}`: master `{m}` is not a host of the pair{hint}"),
                );
                return None;
            }
            None => {
                self.err_at(
                    item,
                    key,
                    format!("instance `{name}` needs a `master` host"),
                );
                return None;
            }
        };
        let mut vips = Vec::new();
        let mut vip_origins = Vec::new();
        match item.get("vips").and_then(Node::as_seq) {
            Some(list) if !list.is_empty() => {
                for v in list {
                    match v.as_str().and_then(parse_vip) {
                        Some(vip) => {
                            self.check_vip(v, &name, vip, host_plans);
                            vips.push(vip);
                            vip_origins.push(v.origin.clone());
                        }
                        None => self.err_at(v, key, format!("instance `{name}`: VIP must be an IPv4 address with a prefix length, like 10.0.0.50/24")),
                    }
                }
            }
            _ => self.err_at(
                item.get("vips").unwrap_or(item),
                key,
                format!("instance `{name}` needs a non-empty `vips` list"),
            ),
        }
        let mut track = Vec::new();
        if let Some(t) = item.get("track") {
            match t.as_seq() {
                Some(list) => {
                    for c in list {
                        match c.scalar_text() {
                            Some(c) if checks.iter().any(|x| x.name == c) => track.push(c),
                            Some(c) => {
                                let names: Vec<&str> =
                                    checks.iter().map(|x| x.name.as_str()).collect();
                                let hint = did_you_mean(&c, &names);
                                self.err_at(t, key, format!("instance `{name}` tracks `{c}`, which is not in hactl_checks{hint}"));
                            }
                            None => self.err_at(
                                t,
                                key,
                                format!("instance `{name}`: track must list check names"),
                            ),
                        }
                    }
                }
                None => self.err_at(
                    t,
                    key,
                    format!("instance `{name}`: track must be a list of check names"),
                ),
            }
        }
        let advert_int = match item.get("advert_int") {
            Some(n) => self.advert_int(n, key, version).unwrap_or(default_advert),
            None => default_advert,
        };
        let preempt = match item.get("preempt") {
            None => true,
            Some(n) => match n.value {
                Value::Bool(b) => b,
                _ => {
                    self.err_at(
                        n,
                        key,
                        format!("instance `{name}`: preempt must be true or false"),
                    );
                    true
                }
            },
        };
        let vrid = match item.get("vrid") {
            None => None,
            Some(n) => match n.value {
                Value::Int(i) if (1..=255).contains(&i) => Some((i as u8, n.origin.clone())),
                _ => {
                    self.err_at(
                        n,
                        key,
                        format!("instance `{name}`: vrid must be an integer from 1 to 255"),
                    );
                    None
                }
            },
        };
        let roles = self.roles(item, &name, &master, hosts);
        Some(ReadInstance {
            plan: InstancePlan {
                name,
                vrid: vrid.as_ref().map_or(0, |v| v.0),
                advert_int,
                vips,
                master,
                track,
                preempt,
                roles,
            },
            vrid,
            vip_origins,
        })
    }

    /// The master first, then the other hosts in inventory order, with
    /// descending priorities: defaults 150, 100, 50 (closer steps for bigger
    /// groups); explicit values (`priority: {host: N}`) win but must keep
    /// that order and stay in 1..254 (255 is reserved for the address owner).
    pub(super) fn roles(
        &mut self,
        item: &Node,
        name: &str,
        master: &str,
        hosts: &[String],
    ) -> Vec<Role> {
        let key = "hactl_instances";
        let mut order: Vec<&String> = hosts.iter().filter(|h| *h == master).collect();
        order.extend(hosts.iter().filter(|h| *h != master));
        let step = (149 / (order.len() as i64 - 1).max(1)).min(50);
        let mut explicit: BTreeMap<String, (i64, Origin)> = BTreeMap::new();
        if let Some(p) = item.get("priority") {
            match p.as_map() {
                Some(entries) => {
                    for (k, v) in entries {
                        if !hosts.contains(&k.name) {
                            self.err(Some(k.origin.clone()), key, format!("instance `{name}`: priority names `{}`, not a host of the pair", k.name));
                            continue;
                        }
                        match v.value {
                            Value::Int(i) if (1..=254).contains(&i) => {
                                explicit.insert(k.name.clone(), (i, v.origin.clone()));
                            }
                            _ => self.err_at(v, key, format!("instance `{name}`: priority of `{}` must be from 1 to 254", k.name)),
                        }
                    }
                }
                None => self.err_at(p, key, format!("instance `{name}`: priority must map hosts to priorities, like {{lb01: 200, lb02: 100}}")),
            }
        }
        let mut roles = Vec::new();
        let mut prev: Option<(i64, &String)> = None;
        for (i, h) in order.iter().enumerate() {
            let (prio, origin) = match explicit.get(*h) {
                Some((p, o)) => (*p, Some(o.clone())),
                None => ((150 - step * i as i64).max(1), None),
            };
            if let Some((pp, ph)) = prev
                && prio >= pp
            {
                let origin = origin.or_else(|| item.get("priority").map(|p| p.origin.clone()));
                self.err(origin, key, format!(
                    "instance `{name}`: priority {prio} of `{h}` must be below {pp} of `{ph}` (the master `{master}` gets the highest, then the other hosts in inventory order)"
                ));
            }
            prev = Some((prio, h));
            roles.push(Role {
                host: (*h).clone(),
                state: if i == 0 { State::Master } else { State::Backup },
                priority: prio.clamp(1, 254) as u8,
            });
        }
        roles
    }

    pub(super) fn check_vip(&mut self, node: &Node, instance: &str, vip: Vip, hosts: &[HostPlan]) {
        let key = "hactl_instances";
        for h in hosts {
            let Some(addr) = h.address else { continue };
            if addr == vip.address {
                self.err_at(
                    node,
                    key,
                    format!(
                        "instance `{instance}`: VIP {vip} is the address of host `{}`",
                        h.name
                    ),
                );
                continue;
            }
            let prefix = h.prefix_len.unwrap_or(vip.prefix_len);
            if network(addr, prefix) != network(vip.address, prefix) {
                self.err_at(node, key, format!(
                    "instance `{instance}`: VIP {vip} is outside the subnet {}/{prefix} of host `{}` on {}",
                    network(addr, prefix), h.name, h.interface
                ));
            }
        }
    }
}
