//! The inventory model: groups, hosts and their variables, read from an
//! Ansible YAML inventory with Ansible's own semantics (the `yaml` inventory
//! plugin plus the `host_group_vars` vars plugin), so that hactl and
//! `ansible-inventory --list` agree on every group, member and merged variable.
//!
//! Reading goes: YAML ([`yaml`]) -> groups and hosts in creation order (this
//! file) -> reconcile (`all`, `ungrouped`, depths) -> `group_vars/` and
//! `host_vars/` files and precedence ([`vars`]). Host patterns for `--limit`
//! live in [`pattern`], host ranges in [`range`]. An inventory Ansible has
//! already resolved (`ansible-inventory --list` on stdin) is read by
//! [`ansible_json`] into the same model.

pub mod ansible_json;
pub mod pattern;
pub mod range;
pub mod vars;
pub mod yaml;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use vars::{Var, VarMap};
pub use yaml::{Key, Node, Origin, Value, YamlError};

/// Variables whose value is a password: redacted in `--list` output. A
/// `{env: VAR}` or `{file: PATH}` reference is not the password and shows.
pub const SECRET_VARS: &[&str] = &["hactl_auth_pass"];

/// Whether [`Inventory::to_ansible_list`] prints passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSecrets {
    Redact,
    Show,
}

/// Why an inventory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error(transparent)]
    Json(#[from] ansible_json::JsonError),
    #[error("{origin}: {message}")]
    Shape { origin: Origin, message: String },
    #[error("{origin}: {error}")]
    Range {
        origin: Origin,
        error: range::RangeError,
    },
    #[error("{origin}: group `{group}` would become its own ancestor")]
    Cycle { origin: Origin, group: String },
    #[error("cannot list {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl InventoryError {
    /// The file and line the error points at, when it has one.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Yaml(e) => e.origin(),
            Self::Json(e) => e.origin(),
            Self::Shape { origin, .. }
            | Self::Range { origin, .. }
            | Self::Cycle { origin, .. } => Some(origin),
            Self::Dir { .. } => None,
        }
    }
}

/// One inventory group.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Where the group was first named (`None` for the implicit groups).
    pub origin: Option<Origin>,
    /// Variables from the inventory file (`vars:`).
    pub vars: VarMap,
    /// Variables from `group_vars/<name>` files, applied above every group's
    /// inventory-file variables (Ansible's default `VARIABLE_PRECEDENCE`).
    pub file_vars: VarMap,
    /// Direct member hosts, in the order they were added.
    pub hosts: Vec<String>,
    /// Direct child groups, in the order they were added.
    pub children: Vec<String>,
    pub parents: Vec<String>,
    /// `ansible_group_priority` (default 1): orders groups of the same depth.
    pub priority: i64,
    /// Longest path from `all` (which has depth 0).
    pub depth: usize,
}

/// One inventory host.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub origin: Origin,
    /// Variables from the inventory file.
    pub vars: VarMap,
    /// Variables from `host_vars/<name>` files.
    pub file_vars: VarMap,
}

/// A whole inventory, groups and hosts in creation order.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    groups: Vec<Group>,
    group_index: HashMap<String, usize>,
    hosts: Vec<Host>,
    host_index: HashMap<String, usize>,
    /// (group, host) of every direct membership: a range of thousands of
    /// hosts is read in linear time, not quadratic.
    members: HashSet<(usize, usize)>,
}

// ===== impl Inventory =====

impl Inventory {
    /// Read an inventory file and the `group_vars/` and `host_vars/`
    /// directories beside it; `-` reads the JSON of `ansible-inventory
    /// --list` from stdin instead ([`ansible_json`]).
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        if path == Path::new(ansible_json::STDIN) {
            return ansible_json::read(std::io::stdin().lock());
        }
        let root = yaml::load_file(path)?;
        let mut inv = Self::from_node(path, &root)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        vars::load_var_files(&mut inv, dir)?;
        Ok(inv)
    }

    /// Build the model from parsed YAML, without vars files.
    pub fn from_node(path: &Path, root: &Node) -> Result<Self, InventoryError> {
        let mut inv = Self::empty(path);
        match &root.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (key, node) in entries {
                    inv.parse_group(&key.name, key, node)?;
                }
            }
            _ => {
                return Err(InventoryError::Shape {
                    origin: root.origin.clone(),
                    message: format!(
                        "the inventory must be a mapping of groups, not {}",
                        root.kind()
                    ),
                });
            }
        }
        inv.reconcile(&root.origin)?;
        Ok(inv)
    }

    /// Only `all` and its child `ungrouped`, as every inventory starts.
    fn empty(path: &Path) -> Self {
        let mut inv = Self {
            path: path.to_path_buf(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            hosts: Vec::new(),
            host_index: HashMap::new(),
            members: HashSet::new(),
        };
        inv.add_group("all", None);
        inv.add_group("ungrouped", None);
        if let Some(all) = inv.group_mut("all") {
            all.children.push("ungrouped".into());
        }
        if let Some(ungrouped) = inv.group_mut("ungrouped") {
            ungrouped.parents.push("all".into());
        }
        inv
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.group_index.get(name).map(|i| &self.groups[*i])
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.host_index.get(name).map(|i| &self.hosts[*i])
    }

    pub(crate) fn group_mut(&mut self, name: &str) -> Option<&mut Group> {
        self.group_index.get(name).map(|i| &mut self.groups[*i])
    }

    pub(crate) fn host_mut(&mut self, name: &str) -> Option<&mut Host> {
        self.host_index.get(name).map(|i| &mut self.hosts[*i])
    }

    /// Every host of a group and of its descendants, without duplicates, in
    /// the order Ansible lists them: the group's own hosts, then its
    /// children's, then their children's, level by level. `all` holds every
    /// host, in creation order.
    pub fn group_hosts(&self, name: &str) -> Vec<String> {
        if name == "all" {
            return self.hosts.iter().map(|h| h.name.clone()).collect();
        }
        let mut out: Vec<String> = Vec::new();
        // Beside `out`, for a group of thousands of hosts (linear, not
        // quadratic).
        let mut listed: HashSet<&str> = HashSet::new();
        let mut seen: Vec<&str> = vec![name];
        let mut level: Vec<&str> = vec![name];
        while !level.is_empty() {
            let mut next = Vec::new();
            for g in level.iter().filter_map(|n| self.group(n)) {
                for h in &g.hosts {
                    if listed.insert(h.as_str()) {
                        out.push(h.clone());
                    }
                }
                for c in &g.children {
                    if !seen.contains(&c.as_str()) {
                        seen.push(c);
                        next.push(c.as_str());
                    }
                }
            }
            level = next;
        }
        out
    }

    /// The groups a host belongs to, directly or through a child group,
    /// `all` included.
    pub fn host_groups(&self, host: &str) -> Vec<&Group> {
        let mut names: Vec<&str> = Vec::new();
        // Direct memberships from the set: a scan of every group's host
        // list here made planning a pair of thousands of hosts quadratic.
        let mut todo: Vec<&str> = match self.host_index.get(host) {
            Some(&h) => self
                .groups
                .iter()
                .enumerate()
                .filter(|(g, _)| self.members.contains(&(*g, h)))
                .map(|(_, g)| g.name.as_str())
                .collect(),
            None => Vec::new(),
        };
        while let Some(n) = todo.pop() {
            if names.contains(&n) {
                continue;
            }
            names.push(n);
            if let Some(g) = self.group(n) {
                todo.extend(g.parents.iter().map(String::as_str));
            }
        }
        if self.host(host).is_some() && !names.contains(&"all") {
            names.push("all");
        }
        names.iter().filter_map(|n| self.group(n)).collect()
    }

    // ----- building -----

    fn add_group(&mut self, name: &str, origin: Option<&Origin>) {
        if self.group_index.contains_key(name) {
            return;
        }
        self.group_index.insert(name.to_string(), self.groups.len());
        self.groups.push(Group {
            name: name.to_string(),
            origin: origin.cloned(),
            vars: VarMap::new(),
            file_vars: VarMap::new(),
            hosts: Vec::new(),
            children: Vec::new(),
            parents: Vec::new(),
            priority: 1,
            depth: 0,
        });
    }

    fn add_child(
        &mut self,
        parent: &str,
        child: &str,
        origin: &Origin,
    ) -> Result<(), InventoryError> {
        if parent == child || self.is_ancestor(child, parent) {
            return Err(InventoryError::Cycle {
                origin: origin.clone(),
                group: child.to_string(),
            });
        }
        if let Some(p) = self.group_mut(parent)
            && !p.children.iter().any(|c| c == child)
        {
            p.children.push(child.to_string());
        }
        if let Some(c) = self.group_mut(child)
            && !c.parents.iter().any(|p| p == parent)
        {
            c.parents.push(parent.to_string());
        }
        Ok(())
    }

    /// Is `a` an ancestor of (or equal to) `b`?
    fn is_ancestor(&self, a: &str, b: &str) -> bool {
        let mut todo = vec![b.to_string()];
        let mut seen = Vec::new();
        while let Some(n) = todo.pop() {
            if n == a {
                return true;
            }
            if seen.contains(&n) {
                continue;
            }
            if let Some(g) = self.group(&n) {
                todo.extend(g.parents.iter().cloned());
            }
            seen.push(n);
        }
        false
    }

    fn add_host(&mut self, name: &str, group: &str, origin: &Origin) {
        let h = match self.host_index.get(name) {
            Some(&h) => h,
            None => {
                self.host_index.insert(name.to_string(), self.hosts.len());
                self.hosts.push(Host {
                    name: name.to_string(),
                    origin: origin.clone(),
                    vars: VarMap::new(),
                    file_vars: VarMap::new(),
                });
                self.hosts.len() - 1
            }
        };
        if group != "all"
            && let Some(&g) = self.group_index.get(group)
            && self.members.insert((g, h))
        {
            self.groups[g].hosts.push(name.to_string());
        }
    }

    /// One of a group's inventory variables; `ansible_group_priority` is
    /// the group's merge priority, not a variable.
    fn set_group_var(&mut self, group: &str, k: &Key, v: &Node) -> Result<(), InventoryError> {
        if k.name == "ansible_group_priority" {
            let p = match &v.value {
                Value::Int(i) => Some(*i),
                Value::Str(s) => s.trim().parse().ok(),
                _ => None,
            };
            let p = p.ok_or_else(|| {
                shape(
                    &v.origin,
                    "ansible_group_priority must be an integer".into(),
                )
            })?;
            if let Some(g) = self.group_mut(group) {
                g.priority = p;
            }
        } else if let Some(g) = self.group_mut(group) {
            vars::set(&mut g.vars, k, v);
        }
        Ok(())
    }

    fn parse_group(&mut self, name: &str, key: &Key, node: &Node) -> Result<(), InventoryError> {
        self.add_group(name, Some(&key.origin));
        let entries = match &node.value {
            Value::Null => return Ok(()),
            Value::Map(entries) => entries,
            _ => {
                return Err(shape(
                    &node.origin,
                    format!(
                        "group `{name}` must be a mapping of vars, hosts and children, not {}",
                        node.kind()
                    ),
                ));
            }
        };
        for (section, value) in entries {
            match section.name.as_str() {
                "vars" => {
                    for (k, v) in mapping(value, || format!("`vars` of group `{name}`"))? {
                        self.set_group_var(name, k, v)?;
                    }
                }
                "children" => {
                    for (k, v) in mapping(value, || format!("`children` of group `{name}`"))? {
                        self.parse_group(&k.name, k, v)?;
                        self.add_child(name, &k.name, &k.origin)?;
                    }
                }
                "hosts" => {
                    for (k, v) in mapping(value, || format!("`hosts` of group `{name}`"))? {
                        let (pattern, port) = split_port(&k.name);
                        let names =
                            range::expand(pattern).map_err(|error| InventoryError::Range {
                                origin: k.origin.clone(),
                                error,
                            })?;
                        let host_vars = match &v.value {
                            Value::Null => &[][..],
                            Value::Map(m) => m.as_slice(),
                            _ => {
                                return Err(shape(
                                    &v.origin,
                                    format!(
                                        "host `{}` must map to its variables, not {}",
                                        k.name,
                                        v.kind()
                                    ),
                                ));
                            }
                        };
                        for host in names {
                            self.add_host(&host, name, &k.origin);
                            let Some(h) = self.host_mut(&host) else {
                                continue;
                            };
                            if let Some(port) = port {
                                let port_key = Key {
                                    name: "ansible_port".into(),
                                    origin: k.origin.clone(),
                                };
                                let port_node = Node {
                                    value: Value::Int(port),
                                    origin: k.origin.clone(),
                                };
                                vars::set(&mut h.vars, &port_key, &port_node);
                            }
                            for (vk, vv) in host_vars {
                                vars::set(&mut h.vars, vk, vv);
                            }
                        }
                    }
                }
                // Ansible warns and skips other keys; a typo here would
                // silently drop hosts, so hactl refuses it.
                other => {
                    return Err(shape(
                        &section.origin,
                        format!(
                            "group `{name}` has an unexpected key `{other}` (expected vars, hosts or children)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Ansible's reconcile step: groups without a parent hang under `all`,
    /// hosts without a group go to `ungrouped`; then depths.
    fn reconcile(&mut self, origin: &Origin) -> Result<(), InventoryError> {
        let orphans: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.name != "all" && g.parents.is_empty())
            .map(|g| g.name.clone())
            .collect();
        for g in orphans {
            self.add_child("all", &g, origin)?;
        }
        if let Some(&u) = self.group_index.get("ungrouped") {
            let grouped: HashSet<usize> = self
                .members
                .iter()
                .filter(|(g, _)| *g != u)
                .map(|(_, h)| *h)
                .collect();
            // Ungrouped keeps its order; a host in no other group joins it.
            let mut ungrouped: Vec<usize> = self.groups[u]
                .hosts
                .iter()
                .map(|name| self.host_index[name])
                .filter(|h| !grouped.contains(h))
                .collect();
            let members = &self.members;
            ungrouped.extend(
                (0..self.hosts.len())
                    .filter(|h| !grouped.contains(h) && !members.contains(&(u, *h))),
            );
            self.members.retain(|(g, _)| *g != u);
            self.members.extend(ungrouped.iter().map(|&h| (u, h)));
            self.groups[u].hosts = ungrouped
                .into_iter()
                .map(|h| self.hosts[h].name.clone())
                .collect();
        }
        let mut depths: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..self.groups.len() {
            let name = self.groups[i].name.clone();
            let d = self.depth_of(&name, &mut depths, 0);
            self.groups[i].depth = d;
        }
        Ok(())
    }

    fn depth_of(&self, name: &str, memo: &mut BTreeMap<String, usize>, guard: usize) -> usize {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let Some(g) = self.group(name) else { return 0 };
        if guard > self.groups.len() {
            return 0;
        }
        let d = g
            .parents
            .iter()
            .map(|p| self.depth_of(p, memo, guard + 1) + 1)
            .max()
            .unwrap_or(0);
        memo.insert(name.to_string(), d);
        d
    }

    /// Groups sorted the way Ansible merges their variables: by depth, then
    /// `ansible_group_priority`, then name; later groups win.
    pub fn sorted_groups<'a>(&self, groups: impl IntoIterator<Item = &'a Group>) -> Vec<&'a Group> {
        let mut v: Vec<&Group> = groups.into_iter().collect();
        v.sort_by(|a, b| (a.depth, a.priority, &a.name).cmp(&(b.depth, b.priority, &b.name)));
        v
    }

    /// A host's variables merged with Ansible's precedence (see [`vars`]).
    pub fn host_vars(&self, host: &str) -> VarMap {
        vars::merged_host_vars(self, host)
    }

    /// The JSON `ansible-inventory --list` prints, restricted to `hosts`
    /// (every host when `None`); a password written in the inventory
    /// ([`SECRET_VARS`]) shows as `<redacted>` unless `secrets` says show.
    pub fn to_ansible_list(
        &self,
        hosts: Option<&[String]>,
        secrets: ListSecrets,
    ) -> serde_json::Value {
        use serde_json::{Map, Value as J};
        let available: HashSet<&str> = match hosts {
            Some(h) => h.iter().map(String::as_str).collect(),
            None => self.hosts.iter().map(|h| h.name.as_str()).collect(),
        };
        let mut out = Map::new();
        for g in &self.groups {
            let mut entry = Map::new();
            if g.name != "all" {
                let members: Vec<J> = g
                    .hosts
                    .iter()
                    .filter(|h| available.contains(&h.as_str()))
                    .map(|h| J::String(h.clone()))
                    .collect();
                if !members.is_empty() {
                    entry.insert("hosts".into(), J::Array(members));
                }
            }
            if !g.children.is_empty() {
                entry.insert(
                    "children".into(),
                    J::Array(g.children.iter().map(|c| J::String(c.clone())).collect()),
                );
            }
            if !entry.is_empty() {
                out.insert(g.name.clone(), J::Object(entry));
            }
        }
        let mut hostvars = Map::new();
        for h in &self.hosts {
            if !available.contains(&h.name.as_str()) {
                continue;
            }
            let vars = self.host_vars(&h.name);
            if !vars.is_empty() {
                let obj: Map<String, J> = vars
                    .iter()
                    .map(|(k, v)| {
                        let value = v.value.to_json();
                        let hide = secrets == ListSecrets::Redact
                            && SECRET_VARS.contains(&k.as_str())
                            && !value.is_object();
                        let value = if hide { J::from("<redacted>") } else { value };
                        (k.clone(), value)
                    })
                    .collect();
                hostvars.insert(h.name.clone(), J::Object(obj));
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), J::Object(hostvars));
        out.insert("_meta".into(), J::Object(meta));
        J::Object(out)
    }
}

fn shape(origin: &Origin, message: String) -> InventoryError {
    InventoryError::Shape {
        origin: origin.clone(),
        message,
    }
}

/// The entries of a mapping section; null is an empty mapping.
fn mapping(node: &Node, what: impl Fn() -> String) -> Result<&[(Key, Node)], InventoryError> {
    match &node.value {
        Value::Null => Ok(&[]),
        Value::Map(m) => Ok(m),
        _ => Err(shape(
            &node.origin,
            format!("{} must be a mapping, not {}", what(), node.kind()),
        )),
    }
}

/// `host:2222` and `[::1]:22` carry a port; anything else with colons (an
/// IPv6 address) does not.
fn split_port(pattern: &str) -> (&str, Option<i64>) {
    if let Some(rest) = pattern.strip_prefix('[')
        && let Some((addr, port)) = rest.split_once("]:")
        && let Ok(p) = port.parse()
    {
        return (addr, Some(p));
    }
    // `name:port`, where name may hold ranges (`lb[01:04]:2222`); a colon
    // left outside brackets means an IPv6 address without a port.
    if let Some((host, port)) = pattern.rsplit_once(':')
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && let Ok(p) = port.parse()
    {
        let mut depth = 0usize;
        let bare_colon = host.chars().any(|c| {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            c == ':' && depth == 0
        });
        if !bare_colon && !host.is_empty() {
            return (host, Some(p));
        }
    }
    (pattern, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(text: &str) -> Inventory {
        let node = yaml::load_str(text, Path::new("inv.yml")).unwrap();
        Inventory::from_node(Path::new("inv.yml"), &node).unwrap()
    }

    #[test]
    fn same_depth_groups_merge_by_priority_then_name_and_children_win() {
        let i = inv(concat!(
            "all:\n  vars: {v: all}\n  children:\n",
            "    z: {vars: {v: z, p: z}, hosts: {h1: }}\n",
            "    a:\n      vars: {v: a, p: a, q: a}\n      hosts: {h1: }\n",
            "      children: {sub: {vars: {q: sub}, hosts: {h1: }}}\n",
            "    prio: {vars: {ansible_group_priority: 10, p: prio}, hosts: {h1: }}\n",
        ));
        let v = i.host_vars("h1");
        let get = |k: &str| v.get(k).map(|x| x.value.value.clone());
        let cases = [("v", "z"), ("p", "prio"), ("q", "sub")];
        for (k, want) in cases {
            assert_eq!(get(k), Some(Value::Str(want.into())), "var {k}");
        }
        assert_eq!(get("ansible_group_priority"), None);
    }

    #[test]
    fn host_vars_win_and_ports_are_read() {
        let i = inv("g:\n  vars: {a: 1}\n  hosts:\n    \"h:2222\": {a: 2}\n    h2:\n");
        assert_eq!(i.host_vars("h")["a"].value.value, Value::Int(2));
        assert_eq!(
            i.host_vars("h")["ansible_port"].value.value,
            Value::Int(2222)
        );
        assert_eq!(i.host_vars("h2")["a"].value.value, Value::Int(1));
    }

    #[test]
    fn host_ports() {
        let cases: &[(&str, (&str, Option<i64>))] = &[
            ("h:22", ("h", Some(22))),
            ("lb[01:02]:2222", ("lb[01:02]", Some(2222))),
            ("lb[01:02]", ("lb[01:02]", None)),
            ("[::1]:22", ("::1", Some(22))),
            ("fe80::1", ("fe80::1", None)),
            ("10.0.0.1:2201", ("10.0.0.1", Some(2201))),
        ];
        for (input, want) in cases {
            assert_eq!(split_port(input), *want, "input {input}");
        }
    }

    #[test]
    fn ungrouped_and_orphans() {
        let i = inv(
            "all:\n  hosts: {u: , h: }\n  children:\n    g: {hosts: {h: }}\nother: {hosts: {o: }}\n",
        );
        assert_eq!(i.group("ungrouped").unwrap().hosts, vec!["u"]);
        assert_eq!(
            i.group("all").unwrap().children,
            vec!["ungrouped", "g", "other"]
        );
    }

    #[test]
    fn cycles_and_bad_shapes_are_errors() {
        let node = yaml::load_str(
            "a:\n  children:\n    b:\n      children:\n        a:\n",
            Path::new("c.yml"),
        )
        .unwrap();
        let err = Inventory::from_node(Path::new("c.yml"), &node).unwrap_err();
        assert!(matches!(err, InventoryError::Cycle { .. }), "{err}");
        let node = yaml::load_str("a:\n  hosts: [x]\n", Path::new("c.yml")).unwrap();
        let err = Inventory::from_node(Path::new("c.yml"), &node).unwrap_err();
        assert_eq!(err.origin().unwrap().line, 2, "{err}");
    }
}
