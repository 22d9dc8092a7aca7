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
//!   `hactl_segment`, `hactl_backend`, `hactl_virtual_servers`) are read from the pair's hosts' merged
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

pub mod addressing;
pub mod allocate;
mod checks;
pub mod connection;
mod host;
mod instance;
mod names;
mod numbers;
mod pair;
mod parse;
pub mod secret;
pub mod virtual_servers;

pub(crate) use parse::parse_cidr;
use parse::parse_vip;
pub use parse::{did_you_mean, network};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inventory::{Inventory, Node, Origin, Value, Var, VarMap};
pub use connection::Connection;
pub use secret::{Secret, SecretSource};
pub use virtual_servers::VirtualServerPlan;

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
    "hactl_virtual_servers",
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
    "hactl_virtual_servers",
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// `hactl_virtual_servers`: the pair's IPVS half.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub virtual_servers: Vec<VirtualServerPlan>,
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
        recorded: HashSet::new(),
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
    /// The errors above, once each (an inventory of thousands of bad
    /// hosts is checked in linear time).
    recorded: HashSet<PlanError>,
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
        if self.recorded.insert(e.clone()) {
            self.errors.push(e);
        }
    }

    fn err_at(&mut self, node: &Node, key: &str, message: String) {
        self.err(Some(node.origin.clone()), key, message);
    }

    /// Records a broken name rule ([`names`]) as `WHAT RULE`; true when
    /// the value passed.
    fn rule(
        &mut self,
        origin: Option<Origin>,
        key: &str,
        what: &str,
        result: Result<(), String>,
    ) -> bool {
        match result {
            Ok(()) => true,
            Err(rule) => {
                self.err(origin, key, format!("{what} {rule}"));
                false
            }
        }
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
        // The hosts of a range share their variables' origin: one error
        // each, and one guess per name.
        found.sort();
        found.dedup();
        let mut hints: HashMap<String, String> = HashMap::new();
        for (origin, name) in found {
            let hint = hints
                .entry(name.clone())
                .or_insert_with(|| did_you_mean(&name, KNOWN_VARS))
                .clone();
            self.err(Some(origin), &name, format!("unknown hactl variable{hint}"));
        }
    }
}

#[cfg(test)]
mod tests;
