//! One pair as read from its hosts' merged variables: the pair-level
//! variables (which must agree across the pair), its VRRP version, default
//! advert interval, backend, password and L2 segment.

use super::*;

/// Bad host names of one pair listed one by one; the rest are counted.
const BAD_HOST_NAMES_LISTED: usize = 10;

impl Resolver<'_> {
    pub(super) fn pair(
        &mut self,
        inv: &Inventory,
        name: &str,
        owner: &mut BTreeMap<String, String>,
    ) -> Option<(PairPlan, Explicit)> {
        let group = inv.group(name)?;
        let hosts = inv.group_hosts(name);
        // Issue 14: a pair named with an embedded `vrrp_script evil {...}`
        // once reached the rendered file; names are checked before use.
        let named_ok = self.rule(
            group.origin.clone(),
            PAIRS_GROUP,
            &format!("pair {name:?}: a pair (group) name"),
            names::word(name, 64),
        );
        // Each bad host name is an error of its own, up to
        // BAD_HOST_NAMES_LISTED; a range of thousands of bad names ends in
        // one line for the rest.
        let mut bad = 0;
        for h in &hosts {
            let result = names::host_name(h);
            if result.is_err() {
                bad += 1;
                if bad <= BAD_HOST_NAMES_LISTED {
                    let origin = inv.host(h).map(|x| x.origin.clone());
                    self.rule(origin, "hosts", &format!("host {h:?}:"), result);
                }
            }
        }
        if bad > BAD_HOST_NAMES_LISTED {
            self.err(
                group.origin.clone(),
                "hosts",
                format!(
                    "pair {name:?}: {} more host(s) with names refused as above",
                    bad - BAD_HOST_NAMES_LISTED
                ),
            );
        }
        let hosts_ok = bad == 0;
        if !named_ok || !hosts_ok {
            return None;
        }
        if hosts.len() < 2 {
            self.err(
                group.origin.clone(),
                name,
                format!(
                    "pair `{name}` has {} host(s); a pair needs 2 or more",
                    hosts.len()
                ),
            );
            return None;
        }
        for h in &hosts {
            if let Some(other) = owner.insert(h.clone(), name.to_string()) {
                let origin = inv.host(h).map(|x| x.origin.clone());
                self.err(
                    origin,
                    name,
                    format!("host `{h}` is in two pairs, `{other}` and `{name}`"),
                );
                return None;
            }
        }
        let vars: Vec<VarMap> = hosts.iter().map(|h| inv.host_vars(h)).collect();
        // Pair-level variables must agree across the pair's hosts.
        for key in PAIR_VARS {
            let first = vars[0].get(*key).map(|v| v.value.to_json());
            for (i, v) in vars.iter().enumerate().skip(1) {
                if v.get(*key).map(|v| v.value.to_json()) != first {
                    let origin = v
                        .get(*key)
                        .or(vars[0].get(*key))
                        .map(|v| v.origin().clone());
                    self.err(
                        origin,
                        key,
                        format!(
                            "hosts `{}` and `{}` of pair `{name}` see different values; set it on the pair's group",
                            hosts[0], hosts[i]
                        ),
                    );
                }
            }
        }
        let pv = &vars[0];
        let version = match pv.get("hactl_vrrp_version") {
            None => 2,
            Some(v) => match v.value.value {
                Value::Int(2) => 2,
                Value::Int(3) => 3,
                _ => {
                    self.err_at(&v.value, "hactl_vrrp_version", "must be 2 or 3".into());
                    2
                }
            },
        };
        let default_advert = match pv.get("hactl_advert_int") {
            None => 100,
            Some(v) => self
                .advert_int(&v.value, "hactl_advert_int", version)
                .unwrap_or(100),
        };
        let backend = match pv.get("hactl_backend") {
            None => Backend::Agent,
            Some(v) => match v.value.as_str() {
                Some("agent") => Backend::Agent,
                Some("keepalived") => Backend::Keepalived,
                _ => {
                    self.err_at(
                        &v.value,
                        "hactl_backend",
                        "must be `agent` or `keepalived`".into(),
                    );
                    Backend::Agent
                }
            },
        };
        let auth_pass = pv
            .get("hactl_auth_pass")
            .and_then(|v| self.auth_pass(v, version));
        let host_plans: Vec<HostPlan> = hosts
            .iter()
            .zip(&vars)
            .map(|(h, v)| self.host(inv, h, v))
            .collect();
        let checks = pv
            .get("hactl_checks")
            .map(|v| self.checks(&v.value))
            .unwrap_or_default();
        let virtual_servers = pv
            .get("hactl_virtual_servers")
            .map(|v| self.virtual_servers(&v.value))
            .unwrap_or_default();
        let mut explicit = Explicit {
            mcast: None,
            vrids: Vec::new(),
            vip_origins: Vec::new(),
        };
        if let Some(v) = pv.get("hactl_mcast_group") {
            match v.value.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
                Some(a) if a.is_multicast() => explicit.mcast = Some((a, v.value.origin.clone())),
                _ => self.err_at(
                    &v.value,
                    "hactl_mcast_group",
                    "must be an IPv4 multicast address (224.0.0.0/4)".into(),
                ),
            }
        }
        let mut instances = Vec::new();
        match pv.get("hactl_instances") {
            None => self.err(
                group.origin.clone(),
                "hactl_instances",
                format!("pair `{name}` defines no instances"),
            ),
            Some(v) => match v.value.as_seq() {
                Some(items) if !items.is_empty() => {
                    for item in items {
                        if let Some(ReadInstance {
                            plan: inst,
                            vrid,
                            vip_origins,
                        }) = self.instance(
                            item,
                            &hosts,
                            &host_plans,
                            &checks,
                            default_advert,
                            version,
                            &instances,
                        ) {
                            instances.push(inst);
                            explicit.vrids.push(vrid);
                            explicit.vip_origins.push(vip_origins);
                        }
                    }
                }
                _ => self.err_at(
                    &v.value,
                    "hactl_instances",
                    "must be a non-empty list of instances".into(),
                ),
            },
        }
        let segment = self.segment(
            name,
            pv,
            &host_plans,
            &vars,
            &instances,
            group.origin.clone(),
        );
        Some((
            PairPlan {
                name: name.to_string(),
                segment: segment.unwrap_or_default(),
                mcast_group: Ipv4Addr::UNSPECIFIED,
                vrrp_version: version,
                backend,
                auth_pass,
                hosts: host_plans,
                checks,
                instances,
                virtual_servers,
            },
            explicit,
        ))
    }

    pub(super) fn advert_int(&mut self, node: &Node, key: &str, version: u8) -> Option<u16> {
        let secs = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => f64::NAN,
        };
        let centis = (secs * 100.0).round();
        let ok = match version {
            // RFC 3768 5.3.7: whole seconds in 8 bits.
            2 => secs.fract() == 0.0 && (1.0..=255.0).contains(&secs),
            // RFC 5798 5.2.7: 12 bits of centiseconds.
            _ => (1.0..=4095.0).contains(&centis) && (secs * 100.0 - centis).abs() < 1e-6,
        };
        if !ok {
            let range = if version == 2 {
                "whole seconds from 1 to 255 with VRRPv2"
            } else {
                "seconds from 0.01 to 40.95 with VRRPv3"
            };
            self.err_at(node, key, format!("must be {range}"));
            return None;
        }
        Some(centis as u16)
    }

    pub(super) fn auth_pass(&mut self, var: &Var, version: u8) -> Option<Secret> {
        let key = "hactl_auth_pass";
        let node = &var.value;
        let source = match &node.value {
            Value::Str(s) => {
                if let Some(kept) = cut_by_comment(node, s) {
                    self.err_at(
                        node,
                        key,
                        format!("a ` #` after the password starts a YAML comment, so only its first {kept} byte(s) would be used; quote the whole password"),
                    );
                    return None;
                }
                SecretSource::Literal(Secret::new(s.clone()))
            }
            // YAML 1.1 (as Ansible reads it) turns `0644` into 420, `1e3`
            // into 1000.0 and `yes` into true: the password would not be
            // the one written.
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                self.err_at(
                    node,
                    key,
                    format!("YAML reads this password as {}, which changes it (`0644` becomes 420, `yes` becomes true); quote it", node.kind()),
                );
                return None;
            }
            Value::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                match (k.name.as_str(), v.as_str()) {
                    ("env", Some(s)) => SecretSource::Env(s.to_string()),
                    ("file", Some(s)) => SecretSource::File(s.to_string()),
                    _ => {
                        self.err_at(
                            node,
                            key,
                            "must be a string, {env: VAR} or {file: PATH}".into(),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.err_at(
                    node,
                    key,
                    "must be a string, {env: VAR} or {file: PATH}".into(),
                );
                return None;
            }
        };
        if version == 3 {
            self.err_at(
                node,
                key,
                "VRRPv3 has no authentication (RFC 5798); drop it or set hactl_vrrp_version: 2"
                    .into(),
            );
            return None;
        }
        match source.resolve(&self.base, self.env) {
            Ok(s) if s.len() > 8 => {
                self.err_at(
                    node,
                    key,
                    format!(
                        "is {} bytes; VRRPv2 PASS authentication takes at most 8",
                        s.len()
                    ),
                );
                None
            }
            Ok(s) => {
                let ok = self.rule(
                    Some(node.origin.clone()),
                    key,
                    "is refused:",
                    names::auth_pass(s.expose()),
                );
                ok.then_some(s)
            }
            Err(e) => {
                self.err_at(node, key, e.to_string());
                None
            }
        }
    }

    pub(super) fn segment(
        &mut self,
        pair: &str,
        pv: &VarMap,
        hosts: &[HostPlan],
        vars: &[VarMap],
        instances: &[InstancePlan],
        origin: Option<Origin>,
    ) -> Option<String> {
        if let Some(v) = pv.get("hactl_segment") {
            return match v.value.scalar_text() {
                Some(s) if !s.is_empty() && names::no_control(&s).is_ok() => {
                    Some(format!("segment {s}"))
                }
                _ => {
                    self.err_at(&v.value, "hactl_segment", "must be a name".into());
                    None
                }
            };
        }
        let first_vip_prefix = instances
            .iter()
            .flat_map(|i| i.vips.first())
            .map(|v| v.prefix_len)
            .next();
        let mut nets = Vec::new();
        for (h, v) in hosts.iter().zip(vars) {
            let prefix = v
                .get("hactl_address")
                .and_then(|a| a.value.as_str())
                .and_then(parse_cidr)
                .map(|c| c.prefix_len)
                .or(first_vip_prefix)
                .unwrap_or(24);
            let Some(addr) = h.address else {
                self.err(origin.clone(), "hactl_segment", format!(
                    "cannot tell the L2 segment of pair `{pair}`: host `{}` has no IPv4 ansible_host or hactl_address; set one, or hactl_segment",
                    h.name
                ));
                return None;
            };
            nets.push((format!("{}/{prefix}", network(addr, prefix)), &h.name));
        }
        if let Some((first, fh)) = nets.first()
            && let Some((other, oh)) = nets.iter().find(|(n, _)| n != first)
        {
            self.err(origin, "hactl_address", format!(
                "hosts of pair `{pair}` are on different subnets ({fh} on {first}, {oh} on {other}); a pair shares one L2 segment"
            ));
            return None;
        }
        nets.first()
            .map(|(n, _)| format!("{n}@{}", hosts[0].interface))
    }
}

/// When the line `node` was written on shows `VALUE #...` after a plain
/// password, the YAML reader dropped the rest as a comment: the bytes kept.
/// Only a plain scalar can be cut: a quoted one keeps its `#`.
fn cut_by_comment(node: &Node, value: &str) -> Option<usize> {
    if node.origin.line == 0 || value.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(node.origin.file.as_path()).ok()?;
    let line = text.lines().nth(node.origin.line - 1)?;
    // Look after the key (a password such as `pass` is also in its name).
    let start = line
        .find("hactl_auth_pass")
        .and_then(|k| line[k..].find(':').map(|c| k + c + 1))
        .unwrap_or(0);
    let at = start + line[start..].find(value)?;
    let before = &line[..at];
    if before.trim_end().ends_with(['"', '\'']) {
        return None;
    }
    let rest = &line[at + value.len()..];
    let trimmed = rest.trim_start();
    (trimmed.starts_with('#') && trimmed.len() < rest.len() && trimmed.len() > 1)
        .then_some(value.len())
}
