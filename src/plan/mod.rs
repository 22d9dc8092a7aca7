//! The cluster plan: what the inventory's `hactl_` variables mean once
//! resolved and checked. Pairs are the child groups of `hactl_pairs`; each
//! pair runs the VRRP instances of `hactl_instances`; every host of a pair gets
//! a role (MASTER or BACKUP) and a priority per instance; VRIDs and multicast
//! groups are allocated ([`allocate`]). Every problem found is collected with
//! the file, line and variable it comes from, so one run reports them all.
//!
//! Reading rules (the README's variable reference repeats them):
//! - Pair-level variables (`hactl_instances`, `hactl_checks`, `hactl_auth_pass`,
//!   `hactl_vrrp_version`, `hactl_advert_int`, `hactl_mcast_group`,
//!   `hactl_segment`, `hactl_backend`) are read from the pair's hosts' merged
//!   variables and must be the same on every host of the pair.
//! - Host-level ones (`hactl_interface`, `hactl_address`, `hactl_script_user`,
//!   `hactl_templates_dir`, `hactl_nonlocal_bind`) may differ per host.
//! - A check in `hactl_checks` may carry its script's text as `content:`;
//!   deploy then uploads it to `script` (an absolute path).
//! - A host's address is `hactl_address` (CIDR, e.g. `10.0.0.51/24`) or else
//!   `ansible_host` when it is an IPv4 address. The subnet a VIP must lie in
//!   is the host address under `hactl_address`'s prefix, or else under the
//!   VIP's own prefix.
//! - The L2 segment of a pair is `hactl_segment` when set, else the hosts'
//!   common subnet plus the first host's interface: VRIDs are unique per
//!   segment, multicast groups unique per pair on a segment.
//! - VRRP version 2 by default (keepalived's default and the widest
//!   interoperability); `hactl_auth_pass` gives v2 PASS authentication (at
//!   most 8 bytes, RFC 3768 5.3.10) and is refused with v3, which has none.

pub mod allocate;
pub mod connection;
pub mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inventory::{Inventory, Node, Origin, Value, Var, VarMap};
pub use connection::Connection;
pub use secret::{Secret, SecretSource};

/// Every variable hactl reads; any other `hactl_` name is an error.
pub const KNOWN_VARS: &[&str] = &[
    "hactl_address",
    "hactl_advert_int",
    "hactl_auth_pass",
    "hactl_backend",
    "hactl_checks",
    "hactl_instances",
    "hactl_interface",
    "hactl_lab",
    "hactl_mcast_group",
    "hactl_nonlocal_bind",
    "hactl_script_user",
    "hactl_segment",
    "hactl_templates_dir",
    "hactl_vrrp_version",
];

const PAIR_VARS: &[&str] = &[
    "hactl_advert_int",
    "hactl_auth_pass",
    "hactl_backend",
    "hactl_checks",
    "hactl_instances",
    "hactl_mcast_group",
    "hactl_segment",
    "hactl_vrrp_version",
];

const INSTANCE_KEYS: &[&str] = &[
    "advert_int",
    "master",
    "name",
    "preempt",
    "priority",
    "track",
    "vips",
    "vrid",
];

const CHECK_KEYS: &[&str] = &[
    "content", "fall", "interval", "rise", "script", "timeout", "user", "weight",
];

/// The group whose children are the pairs.
pub const PAIRS_GROUP: &str = "hactl_pairs";

// ===== errors =====

/// One problem, with where it was written and the variable it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub origin: Option<Origin>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{o}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every problem of one inventory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the inventory", .0.len())]
pub struct PlanErrors(pub Vec<PlanError>);

// ===== the plan =====

#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    pub pairs: Vec<PairPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Agent,
    Keepalived,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairPlan {
    pub name: String,
    pub segment: String,
    pub mcast_group: Ipv4Addr,
    pub vrrp_version: u8,
    pub backend: Backend,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<Secret>,
    pub hosts: Vec<HostPlan>,
    pub checks: Vec<CheckPlan>,
    pub instances: Vec<InstancePlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub name: String,
    pub address: Option<Ipv4Addr>,
    /// The prefix length of `hactl_address`, when given.
    pub prefix_len: Option<u8>,
    pub interface: String,
    pub script_user: String,
    /// `hactl_nonlocal_bind`: what preflight wants `net.ipv4.ip_nonlocal_bind`
    /// to be; `None` when the inventory does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonlocal_bind: Option<bool>,
    #[serde(skip)]
    pub templates_dir: Option<PathBuf>,
    /// `hactl_lab: true`: the host is a lab made by other means (drills
    /// may run without `--yes`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lab: bool,
    /// How to log in (Ansible's connection variables).
    #[serde(skip)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckPlan {
    pub name: String,
    pub script: String,
    pub interval: u32,
    pub timeout: Option<u32>,
    pub weight: i32,
    pub fall: Option<u32>,
    pub rise: Option<u32>,
    pub user: Option<String>,
    /// The script's text, when the inventory carries it (`content:`):
    /// deploy uploads it to `script` (mode 0755) before the config.
    #[serde(skip)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl Serialize for Vip {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Master,
    Backup,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Master => "MASTER",
            Self::Backup => "BACKUP",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub host: String,
    pub state: State,
    pub priority: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstancePlan {
    pub name: String,
    pub vrid: u8,
    /// Advertisement interval in centiseconds (VRRPv3 counts in those).
    #[serde(serialize_with = "centis_as_seconds")]
    pub advert_int: u16,
    pub vips: Vec<Vip>,
    pub master: String,
    pub track: Vec<String>,
    pub preempt: bool,
    pub roles: Vec<Role>,
}

fn centis_as_seconds<S: serde::Serializer>(c: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*c) / 100.0)
}

/// Seconds as keepalived reads them: `1`, `0.5`, `1.25`.
pub fn format_centis(c: u16) -> String {
    if c % 100 == 0 {
        (c / 100).to_string()
    } else {
        let s = format!("{}.{:02}", c / 100, c % 100);
        s.trim_end_matches('0').to_string()
    }
}

impl ClusterPlan {
    pub fn pair_of(&self, host: &str) -> Option<&PairPlan> {
        self.pairs
            .iter()
            .find(|p| p.hosts.iter().any(|h| h.name == host))
    }
}

impl PairPlan {
    pub fn host(&self, name: &str) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

impl InstancePlan {
    pub fn role(&self, host: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.host == host)
    }
}

// ===== resolving =====

/// Resolve and check the plan of an inventory. `env` looks up environment
/// variables (for `hactl_auth_pass: {env: VAR}`).
pub fn resolve(
    inv: &Inventory,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClusterPlan, PlanErrors> {
    let mut r = Resolver {
        errors: Vec::new(),
        base: inv.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        env,
    };
    r.check_unknown_vars(inv);
    let mut pairs = Vec::new();
    let mut explicit = Vec::new();
    match inv.group(PAIRS_GROUP) {
        None => r.err(
            None,
            PAIRS_GROUP,
            "the inventory has no `hactl_pairs` group (its child groups are the LB pairs)".into(),
        ),
        Some(g) => {
            for h in &g.hosts {
                let origin = inv.host(h).map(|x| x.origin.clone());
                r.err(
                    origin,
                    PAIRS_GROUP,
                    format!("host `{h}` sits directly in `hactl_pairs`; put it in a pair (a child group)"),
                );
            }
            let mut owner: BTreeMap<String, String> = BTreeMap::new();
            for pair in &g.children {
                if let Some((p, e)) = r.pair(inv, pair, &mut owner) {
                    pairs.push(p);
                    explicit.push(e);
                }
            }
            if g.children.is_empty() {
                r.err(
                    g.origin.clone(),
                    PAIRS_GROUP,
                    "`hactl_pairs` has no child groups: each child group is one LB pair".into(),
                );
            }
        }
    }
    r.allocate(&mut pairs, &explicit);
    if r.errors.is_empty() {
        Ok(ClusterPlan { pairs })
    } else {
        Err(PlanErrors(r.errors))
    }
}

/// Values given explicitly in a pair, with where they were written.
struct Explicit {
    mcast: Option<(Ipv4Addr, Origin)>,
    /// Per instance (same order as the pair's instances).
    vrids: Vec<Option<(u8, Origin)>>,
    /// Where each instance's VIPs were written (same order as its `vips`).
    vip_origins: Vec<Vec<Origin>>,
}

/// One instance as read, with the explicit values' origins.
struct ReadInstance {
    plan: InstancePlan,
    vrid: Option<(u8, Origin)>,
    vip_origins: Vec<Origin>,
}

struct Resolver<'a> {
    errors: Vec<PlanError>,
    base: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver<'_> {
    fn err(&mut self, origin: Option<Origin>, key: &str, message: String) {
        let e = PlanError {
            origin,
            key: key.to_string(),
            message,
        };
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn err_at(&mut self, node: &Node, key: &str, message: String) {
        self.err(Some(node.origin.clone()), key, message);
    }

    fn check_unknown_vars(&mut self, inv: &Inventory) {
        let maps = inv
            .groups()
            .iter()
            .flat_map(|g| [&g.vars, &g.file_vars])
            .chain(inv.hosts().iter().flat_map(|h| [&h.vars, &h.file_vars]));
        let mut found: Vec<(Origin, String)> = Vec::new();
        for map in maps {
            for (name, var) in map {
                if name.starts_with("hactl_") && !KNOWN_VARS.contains(&name.as_str()) {
                    found.push((var.origin().clone(), name.clone()));
                }
            }
        }
        found.sort();
        for (origin, name) in found {
            let hint = did_you_mean(&name, KNOWN_VARS);
            self.err(Some(origin), &name, format!("unknown hactl variable{hint}"));
        }
    }

    fn pair(
        &mut self,
        inv: &Inventory,
        name: &str,
        owner: &mut BTreeMap<String, String>,
    ) -> Option<(PairPlan, Explicit)> {
        let group = inv.group(name)?;
        let hosts = inv.group_hosts(name);
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
            },
            explicit,
        ))
    }

    fn advert_int(&mut self, node: &Node, key: &str, version: u8) -> Option<u16> {
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

    fn auth_pass(&mut self, var: &Var, version: u8) -> Option<Secret> {
        let key = "hactl_auth_pass";
        let node = &var.value;
        let source = match &node.value {
            Value::Str(_) | Value::Int(_) => {
                SecretSource::Literal(Secret::new(node.scalar_text().unwrap_or_default()))
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
            Ok(s) => Some(s),
            Err(e) => {
                self.err_at(node, key, e.to_string());
                None
            }
        }
    }

    fn host(&mut self, inv: &Inventory, name: &str, vars: &VarMap) -> HostPlan {
        let interface = match vars.get("hactl_interface") {
            Some(v) => match v.value.as_str() {
                Some(s) if !s.is_empty() && s.len() <= 15 && !s.contains([' ', '/']) => {
                    s.to_string()
                }
                _ => {
                    self.err_at(
                        &v.value,
                        "hactl_interface",
                        "must be an interface name (at most 15 characters)".into(),
                    );
                    String::new()
                }
            },
            None => {
                let origin = inv.host(name).map(|h| h.origin.clone());
                self.err(
                    origin,
                    "hactl_interface",
                    format!("host `{name}` has no hactl_interface"),
                );
                String::new()
            }
        };
        let mut address = None;
        if let Some(v) = vars.get("hactl_address") {
            match v.value.as_str().and_then(parse_cidr) {
                Some(c) => address = Some(c),
                None => self.err_at(
                    &v.value,
                    "hactl_address",
                    "must be an IPv4 address with a prefix, like 10.0.0.51/24".into(),
                ),
            }
        }
        let ansible_host = vars
            .get("ansible_host")
            .and_then(|v| v.value.as_str())
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        let script_user = match vars.get("hactl_script_user") {
            None => "nobody".to_string(),
            Some(v) => match v.value.as_str() {
                Some(s) if is_token(s) => s.to_string(),
                _ => {
                    self.err_at(&v.value, "hactl_script_user", "must be a user name".into());
                    "nobody".to_string()
                }
            },
        };
        let templates_dir = vars
            .get("hactl_templates_dir")
            .and_then(|v| v.value.as_str())
            .map(|s| self.base.join(s));
        let nonlocal_bind = match vars.get("hactl_nonlocal_bind").map(|v| &v.value) {
            None => None,
            Some(node) => match node.value {
                Value::Bool(b) => Some(b),
                _ => {
                    self.err_at(node, "hactl_nonlocal_bind", "must be true or false".into());
                    None
                }
            },
        };
        let lab = match vars.get("hactl_lab").map(|v| &v.value) {
            None => false,
            Some(node) => match node.value {
                Value::Bool(b) => b,
                _ => {
                    self.err_at(node, "hactl_lab", "must be true or false".into());
                    false
                }
            },
        };
        let connection = connection::connection(inv, name).unwrap_or_else(|e| {
            self.errors.push(e);
            connection::Connection::default()
        });
        HostPlan {
            name: name.to_string(),
            address: address.map(|a: Vip| a.address).or(ansible_host),
            prefix_len: address.map(|a| a.prefix_len),
            interface,
            script_user,
            nonlocal_bind,
            templates_dir,
            lab,
            connection,
        }
    }

    fn checks(&mut self, node: &Node) -> Vec<CheckPlan> {
        let key = "hactl_checks";
        let Some(entries) = node.as_map() else {
            self.err_at(
                node,
                key,
                "must map check names to {script, interval, weight, ...}".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(fields) = v.as_map() else {
                self.err_at(
                    v,
                    key,
                    format!("check `{}` must be a mapping with a script", k.name),
                );
                continue;
            };
            for (fk, _) in fields {
                if !CHECK_KEYS.contains(&fk.name.as_str()) {
                    let hint = did_you_mean(&fk.name, CHECK_KEYS);
                    self.err(
                        Some(fk.origin.clone()),
                        key,
                        format!("check `{}` has an unknown key `{}`{hint}", k.name, fk.name),
                    );
                }
            }
            if !is_token(&k.name) {
                self.err(
                    Some(k.origin.clone()),
                    key,
                    format!(
                        "check name `{}` may only hold letters, digits, `_`, `-` and `.`",
                        k.name
                    ),
                );
                continue;
            }
            let script = match v.get("script").and_then(Node::as_str) {
                Some(s) if !s.trim().is_empty() && !s.contains(['"', '\n', '\\']) => s.to_string(),
                _ => {
                    self.err_at(v, key, format!("check `{}` needs a script (a command line without quotes or backslashes)", k.name));
                    continue;
                }
            };
            let mut num = |field: &str, lo: i64, hi: i64| -> Option<i64> {
                let n = v.get(field)?;
                match n.value {
                    Value::Int(i) if (lo..=hi).contains(&i) => Some(i),
                    _ => {
                        self.err_at(
                            n,
                            key,
                            format!(
                                "check `{}`: {field} must be an integer from {lo} to {hi}",
                                k.name
                            ),
                        );
                        None
                    }
                }
            };
            let interval = num("interval", 1, 3600).unwrap_or(2) as u32;
            let timeout = num("timeout", 1, 3600).map(|t| t as u32);
            let weight = num("weight", -253, 253).unwrap_or(0) as i32;
            let fall = num("fall", 1, 1000).map(|t| t as u32);
            let rise = num("rise", 1, 1000).map(|t| t as u32);
            let user = match v.get("user") {
                None => None,
                Some(u) => match u.as_str() {
                    Some(name) if is_token(name) => Some(name.to_string()),
                    _ => {
                        self.err_at(
                            u,
                            key,
                            format!("check `{}`: user must be a user name", k.name),
                        );
                        None
                    }
                },
            };
            let content = match v.get("content") {
                None => None,
                Some(c) => match (c.as_str(), script.starts_with('/')) {
                    (Some(text), true) => Some(text.to_string()),
                    (Some(_), false) => {
                        self.err_at(
                            c,
                            key,
                            format!("check `{}`: content needs an absolute script path", k.name),
                        );
                        None
                    }
                    (None, _) => {
                        self.err_at(
                            c,
                            key,
                            format!("check `{}`: content must be the script's text", k.name),
                        );
                        None
                    }
                },
            };
            out.push(CheckPlan {
                name: k.name.clone(),
                script,
                interval,
                timeout,
                weight,
                fall,
                rise,
                user,
                content,
            });
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn instance(
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
            Some(n) if !n.is_empty() && !n.contains(char::is_whitespace) => n,
            _ => {
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
    fn roles(&mut self, item: &Node, name: &str, master: &str, hosts: &[String]) -> Vec<Role> {
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

    fn check_vip(&mut self, node: &Node, instance: &str, vip: Vip, hosts: &[HostPlan]) {
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

    fn segment(
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
                Some(s) if !s.is_empty() => Some(format!("segment {s}")),
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

    /// VRIDs unique per segment, multicast groups unique per pair on a
    /// segment; explicit values first, then the allocator.
    fn allocate(&mut self, pairs: &mut [PairPlan], explicit: &[Explicit]) {
        let mut segments: Vec<String> = pairs
            .iter()
            .map(|p| p.segment.clone())
            .filter(|s| !s.is_empty())
            .collect();
        segments.sort();
        segments.dedup();
        for seg in segments {
            let idx: Vec<usize> = (0..pairs.len())
                .filter(|i| pairs[*i].segment == seg)
                .collect();
            // VRIDs.
            let mut taken: Vec<(u8, String, Origin)> = Vec::new();
            let mut wanted: Vec<(usize, usize, String)> = Vec::new();
            for &p in &idx {
                for (j, inst) in pairs[p].instances.iter().enumerate() {
                    let label = format!("{}/{}", pairs[p].name, inst.name);
                    match explicit[p].vrids.get(j).cloned().flatten() {
                        Some((vrid, origin)) => {
                            if let Some((_, other, oo)) = taken.iter().find(|(v, _, _)| *v == vrid)
                            {
                                let msg = format!(
                                    "VRID {vrid} of `{label}` is already used by `{other}` ({oo}) on {seg}"
                                );
                                self.err(Some(origin.clone()), "hactl_instances", msg);
                            }
                            taken.push((vrid, label, origin));
                        }
                        None => wanted.push((p, j, label)),
                    }
                }
            }
            let names: Vec<String> = wanted.iter().map(|w| w.2.clone()).collect();
            let used: Vec<u8> = taken.iter().map(|t| t.0).collect();
            match allocate::allocate(&names, &used, &allocate::vrid_pool()) {
                Some(vals) => {
                    for ((p, j, _), v) in wanted.iter().zip(vals) {
                        pairs[*p].instances[*j].vrid = v;
                    }
                }
                None => self.err(
                    None,
                    "hactl_instances",
                    format!("more than 255 VRRP instances on {seg}"),
                ),
            }
            // VIPs: one owner per address on a segment.
            let mut seen: Vec<(Ipv4Addr, String, Origin)> = Vec::new();
            for &p in &idx {
                for (j, inst) in pairs[p].instances.iter().enumerate() {
                    let origins = explicit[p].vip_origins.get(j);
                    for (k, vip) in inst.vips.iter().enumerate() {
                        let label = format!("{}/{}", pairs[p].name, inst.name);
                        let origin = origins.and_then(|o| o.get(k)).cloned();
                        if let Some((_, other, oo)) =
                            seen.iter().find(|(a, _, _)| *a == vip.address)
                        {
                            let msg = format!(
                                "VIP {} of `{label}` is already used by `{other}` ({oo})",
                                vip.address
                            );
                            self.err(origin.clone(), "hactl_instances", msg);
                        }
                        if let Some(o) = origin {
                            seen.push((vip.address, label, o));
                        }
                    }
                }
            }
            // Multicast groups.
            let mut taken: Vec<(Ipv4Addr, String, Origin)> = Vec::new();
            let mut wanted: Vec<usize> = Vec::new();
            for &p in &idx {
                match &explicit[p].mcast {
                    Some((g, origin)) => {
                        if let Some((_, other, oo)) = taken.iter().find(|(x, _, _)| x == g) {
                            let msg = format!(
                                "multicast group {g} of pair `{}` is already used by pair `{other}` ({oo}) on {seg}",
                                pairs[p].name
                            );
                            self.err(Some(origin.clone()), "hactl_mcast_group", msg);
                        }
                        taken.push((*g, pairs[p].name.clone(), origin.clone()));
                        pairs[p].mcast_group = *g;
                    }
                    None => wanted.push(p),
                }
            }
            let names: Vec<String> = wanted.iter().map(|p| pairs[*p].name.clone()).collect();
            let used: Vec<Ipv4Addr> = taken.iter().map(|t| t.0).collect();
            match allocate::allocate(&names, &used, &allocate::mcast_pool()) {
                Some(vals) => {
                    for (p, g) in wanted.iter().zip(vals) {
                        pairs[*p].mcast_group = g;
                    }
                }
                None => self.err(
                    None,
                    "hactl_mcast_group",
                    format!("no free multicast group left on {seg}; set hactl_mcast_group"),
                ),
            }
        }
    }
}

// ===== small parsers =====

/// A word keepalived.conf reads as one token: letters, digits, `_-.@:`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | ':'))
}

/// An IPv4 address with a prefix length, `10.0.0.51/24`.
pub(crate) fn parse_cidr(s: &str) -> Option<Vip> {
    let (a, p) = s.split_once('/')?;
    let address: Ipv4Addr = a.trim().parse().ok()?;
    let prefix_len: u8 = p.trim().parse().ok()?;
    (prefix_len <= 32).then_some(Vip {
        address,
        prefix_len,
    })
}

fn parse_vip(s: &str) -> Option<Vip> {
    parse_cidr(s)
}

/// The network address of `addr` under a prefix length.
pub fn network(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    };
    Ipv4Addr::from(u32::from(addr) & mask)
}

/// ` (did you mean `x`?)` for the closest candidate, or nothing.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let best = candidates.iter().map(|c| (levenshtein(word, c), *c)).min();
    match best {
        Some((d, c)) if d <= 3.max(word.len() / 3) => format!(" (did you mean `{c}`?)"),
        _ => String::new(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
