//! An inventory as Ansible resolved it: the JSON that `ansible-inventory
//! --list` prints (groups with `hosts` and `children`, `_meta.hostvars`),
//! or `--list --export` (groups also carry their own `vars`, hostvars only
//! the host's own), read from stdin with `-i -` into the same [`Inventory`]
//! a YAML file gives. The Ansible collection feeds it this way, so vaulted
//! values, dynamic inventories and `group_vars/` reach hactl as Ansible saw
//! them; the plan's validation and messages are the same.
//!
//! JSON has no lines worth naming (Ansible printed it, the user did not
//! write it), so every value's [`Origin`] names the host or group it came
//! from: `<stdin>: host lb01: hactl_intrface: unknown hactl variable`.
//!
//! Groups and hosts are created walking `all`'s children depth-first, each
//! group's hosts before its children, as Ansible's own `--list` walks them;
//! member and child lists keep their order, and so do mappings inside
//! variables (a `hactl_checks` mapping renders in the order it was
//! written). The inventory's path (for relative `{file: ...}` secrets,
//! `hactl_templates_dir` and the lab of the inventory) is the hosts'
//! common `inventory_file`, a magic variable Ansible sets and
//! `ansible-inventory` drops but the collection keeps; without one it is
//! `-`.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::yaml::{Key, Node, Origin, Value};
use super::{Inventory, InventoryError, vars};

/// The inventory path that means "read the JSON from stdin".
pub const STDIN: &str = "-";

/// How origins name the source.
const SOURCE: &str = "<stdin>";

/// The magic variable naming the file a host was read from.
const INVENTORY_FILE: &str = "inventory_file";

/// Why the JSON cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("cannot read the inventory JSON from stdin")]
    Read(#[source] std::io::Error),
    #[error("{origin}: invalid JSON: {message}")]
    Syntax { origin: Origin, message: String },
}

impl JsonError {
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Syntax { origin, .. } => Some(origin),
            Self::Read(_) => None,
        }
    }
}

/// Read the JSON from `reader` (stdin).
pub fn read(mut reader: impl Read) -> Result<Inventory, InventoryError> {
    let mut text = String::new();
    reader.read_to_string(&mut text).map_err(JsonError::Read)?;
    from_str(&text)
}

/// Build the inventory from the JSON text.
pub fn from_str(text: &str) -> Result<Inventory, InventoryError> {
    let source = Path::new(SOURCE);
    let top = Origin::of_entity(source, "inventory");
    let root = parse(text, &top)?;
    let Value::Map(entries) = &root.value else {
        return Err(shape(
            &top,
            format!(
                "the inventory must be a mapping of groups and `_meta`, not {}",
                root.kind()
            ),
        ));
    };
    let mut groups: Vec<(&str, &Node)> = Vec::new();
    let mut hostvars: &[(Key, Node)] = &[];
    for (key, node) in entries {
        if key.name == "_meta" {
            hostvars = meta_hostvars(node)?;
        } else {
            groups.push((key.name.as_str(), node));
        }
    }
    let mut inv = Inventory::empty(Path::new(STDIN));
    let mut reader = Reader {
        source,
        groups: &groups,
        done: Vec::new(),
    };
    reader.group(&mut inv, "all")?;
    for (name, _) in &groups {
        reader.group(&mut inv, name)?;
    }
    for (host, node) in hostvars {
        let origin = Origin::of_entity(source, &format!("host {}", host.name));
        let Value::Map(vars) = &node.value else {
            return Err(shape(
                &origin,
                format!("its variables must be a mapping, not {}", node.kind()),
            ));
        };
        if inv.host(&host.name).is_none() {
            inv.add_host(&host.name, "ungrouped", &origin);
        }
        let Some(h) = inv.host_mut(&host.name) else {
            continue;
        };
        for (k, v) in vars {
            let key = Key {
                name: k.name.clone(),
                origin: origin.clone(),
            };
            vars::set(&mut h.vars, &key, &restamp(v, &origin));
        }
    }
    inv.reconcile(&top)?;
    if let Some(path) = common_inventory_file(&inv) {
        inv.path = path;
    }
    Ok(inv)
}

/// Walks the groups from `all`, creating each once.
struct Reader<'a> {
    source: &'a Path,
    groups: &'a [(&'a str, &'a Node)],
    done: Vec<String>,
}

impl Reader<'_> {
    fn group(&mut self, inv: &mut Inventory, name: &str) -> Result<(), InventoryError> {
        if self.done.iter().any(|d| d == name) {
            return Ok(());
        }
        self.done.push(name.to_string());
        let origin = Origin::of_entity(self.source, &format!("group {name}"));
        inv.add_group(name, Some(&origin));
        // A group Ansible printed nothing for (no hosts, children or vars)
        // is only named in its parent's children.
        let Some((_, node)) = self.groups.iter().find(|(n, _)| *n == name) else {
            return Ok(());
        };
        let sections = match &node.value {
            Value::Null => return Ok(()),
            Value::Map(m) => m,
            _ => {
                return Err(shape(
                    &origin,
                    format!(
                        "a group must be a mapping of hosts, children and vars, not {}",
                        node.kind()
                    ),
                ));
            }
        };
        let mut children = Vec::new();
        for (section, value) in sections {
            match section.name.as_str() {
                "hosts" => {
                    for host in names(value, &origin, "hosts")? {
                        let host_origin = Origin::of_entity(self.source, &format!("host {host}"));
                        inv.add_host(&host, name, &host_origin);
                    }
                }
                "children" => children = names(value, &origin, "children")?,
                "vars" => match &value.value {
                    Value::Null => {}
                    Value::Map(vars) => {
                        for (k, v) in vars {
                            let key = Key {
                                name: k.name.clone(),
                                origin: origin.clone(),
                            };
                            inv.set_group_var(name, &key, &restamp(v, &origin))?;
                        }
                    }
                    _ => {
                        return Err(shape(
                            &origin,
                            format!("`vars` must be a mapping, not {}", value.kind()),
                        ));
                    }
                },
                other => {
                    return Err(shape(
                        &origin,
                        format!("unexpected key `{other}` (expected hosts, children or vars)"),
                    ));
                }
            }
        }
        for child in children {
            self.group(inv, &child)?;
            inv.add_child(name, &child, &origin)?;
        }
        Ok(())
    }
}

/// `_meta.hostvars`: host name to its variables.
fn meta_hostvars(node: &Node) -> Result<&[(Key, Node)], InventoryError> {
    let origin = Origin::of_entity(Path::new(SOURCE), "_meta");
    let hostvars = match &node.value {
        Value::Map(_) => node.get("hostvars"),
        Value::Null => None,
        _ => {
            return Err(shape(
                &origin,
                format!("must be a mapping with `hostvars`, not {}", node.kind()),
            ));
        }
    };
    match hostvars.map(|h| &h.value) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Map(m)) => Ok(m),
        Some(_) => Err(shape(
            &origin,
            "`hostvars` must map host names to their variables".into(),
        )),
    }
}

/// A list of host or group names.
fn names(node: &Node, origin: &Origin, what: &str) -> Result<Vec<String>, InventoryError> {
    match &node.value {
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    shape(
                        origin,
                        format!("`{what}` must list names (strings), not {}", item.kind()),
                    )
                })
            })
            .collect(),
        _ => Err(shape(
            origin,
            format!("`{what}` must be a list of names, not {}", node.kind()),
        )),
    }
}

/// The `inventory_file` every host shares, if they share one.
fn common_inventory_file(inv: &Inventory) -> Option<PathBuf> {
    let mut found: Option<&str> = None;
    for h in inv.hosts() {
        let file = h.vars.get(INVENTORY_FILE)?.value.as_str()?;
        match found {
            Some(f) if f != file => return None,
            _ => found = Some(file),
        }
    }
    found.filter(|f| !f.is_empty()).map(PathBuf::from)
}

fn shape(origin: &Origin, message: String) -> InventoryError {
    InventoryError::Shape {
        origin: origin.clone(),
        message,
    }
}

/// The same value with every origin (its own, nested values' and keys')
/// set to `origin`.
fn restamp(node: &Node, origin: &Origin) -> Node {
    let value = match &node.value {
        Value::Seq(items) => Value::Seq(items.iter().map(|i| restamp(i, origin)).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = Key {
                        name: k.name.clone(),
                        origin: origin.clone(),
                    };
                    (key, restamp(v, origin))
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Node {
        value,
        origin: origin.clone(),
    }
}

// ===== JSON to Node, mappings in document order =====

fn parse(text: &str, origin: &Origin) -> Result<Node, JsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let node = NodeSeed(origin)
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|()| n))
        .map_err(|e| {
            // serde_json ends its message with the position, which the
            // origin already gives.
            let text = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            JsonError::Syntax {
                origin: Origin::new(Path::new(SOURCE), e.line()),
                message: format!(
                    "{} (column {})",
                    text.strip_suffix(&position).unwrap_or(&text),
                    e.column()
                ),
            }
        })?;
    Ok(node)
}

/// Deserializes one JSON value into a [`Node`] (serde_json's own map would
/// sort the keys).
struct NodeSeed<'a>(&'a Origin);

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(self.node(Value::Null))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(self.node(Value::Bool(b)))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Node, E> {
        Ok(self.node(Value::Int(i)))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Node, E> {
        Ok(self.node(match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(u as f64),
        }))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Node, E> {
        Ok(self.node(Value::Float(f)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(self.node(Value::Str(s.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NodeSeed(self.0))? {
            items.push(item);
        }
        Ok(self.node(Value::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(NodeSeed(self.0))?;
            // A repeated key keeps its first place and its last value, as
            // the YAML loader does.
            match entries.iter_mut().find(|(k, _)| k.name == name) {
                Some(entry) => entry.1 = value,
                None => entries.push((
                    Key {
                        name,
                        origin: self.0.clone(),
                    },
                    value,
                )),
            }
        }
        Ok(self.node(Value::Map(entries)))
    }
}

impl NodeSeed<'_> {
    fn node(&self, value: Value) -> Node {
        Node {
            value,
            origin: self.0.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    fn load(json: &str) -> Inventory {
        from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The JSON `ansible-inventory -i inventories/lab.yaml --list` prints
    /// (ansible-core 2.19), abridged to one pair.
    const LIST: &str = r#"{
        "_meta": {"hostvars": {
            "lb01": {"ansible_host": "10.0.0.11", "ansible_user": "root", "hactl_interface": "eth0",
                     "hactl_auth_pass": "s3cret",
                     "hactl_checks": {"z_check": {"script": "/z", "weight": -10}, "a_check": {"script": "/a", "weight": -20}},
                     "hactl_instances": [{"name": "www", "vips": ["10.0.0.100/24"], "master": "lb02"}],
                     "inventory_file": "/srv/inv/lab.yaml"},
            "lb02": {"ansible_host": "10.0.0.12", "ansible_user": "root", "hactl_interface": "eth0",
                     "hactl_auth_pass": "s3cret",
                     "hactl_checks": {"z_check": {"script": "/z", "weight": -10}, "a_check": {"script": "/a", "weight": -20}},
                     "hactl_instances": [{"name": "www", "vips": ["10.0.0.100/24"], "master": "lb02"}],
                     "inventory_file": "/srv/inv/lab.yaml"}
        }},
        "all": {"children": ["ungrouped", "hactl_pairs"]},
        "hactl_pairs": {"children": ["web_lb"]},
        "web_lb": {"hosts": ["lb02", "lb01"]}
    }"#;

    #[test]
    fn groups_children_and_hostvars_become_the_model() {
        let inv = load(LIST);
        assert_eq!(
            inv.group("all").unwrap().children,
            ["ungrouped", "hactl_pairs"]
        );
        assert_eq!(inv.group("hactl_pairs").unwrap().children, ["web_lb"]);
        assert_eq!(inv.group_hosts("web_lb"), ["lb02", "lb01"]);
        assert_eq!(inv.group("web_lb").unwrap().depth, 2);
        let vars = inv.host_vars("lb01");
        assert_eq!(vars["ansible_host"].value.as_str(), Some("10.0.0.11"));
        let checks: Vec<&str> = vars["hactl_checks"]
            .value
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.name.as_str())
            .collect();
        assert_eq!(checks, ["z_check", "a_check"], "mappings keep their order");
        assert_eq!(inv.path, Path::new("/srv/inv/lab.yaml"));
        let plan = plan::resolve(&inv, &|_| None).unwrap_or_else(|e| panic!("{:?}", e.0));
        let www = &plan.pairs[0].instances[0];
        assert_eq!(www.master, "lb02");
        assert_eq!(www.roles[0].host, "lb02");
        assert_eq!(plan.pairs[0].checks[0].name, "z_check");
    }

    #[test]
    fn export_form_group_vars_merge_under_host_vars() {
        let inv = load(
            r#"{"all": {"children": ["g"], "vars": {"a": "all", "b": "all"}},
                "g": {"hosts": ["h"], "vars": {"b": "g", "c": "g", "ansible_group_priority": 3}},
                "_meta": {"hostvars": {"h": {"c": "h"}}}}"#,
        );
        let v = inv.host_vars("h");
        let got: Vec<(&str, &str)> = ["a", "b", "c"]
            .into_iter()
            .map(|k| (k, v[k].value.as_str().unwrap()))
            .collect();
        assert_eq!(got, [("a", "all"), ("b", "g"), ("c", "h")]);
        assert_eq!(inv.group("g").unwrap().priority, 3);
        assert!(!v.contains_key("ansible_group_priority"));
        assert_eq!(inv.path, Path::new(STDIN), "no inventory_file: `-`");
    }

    #[test]
    fn hosts_without_a_group_are_ungrouped_and_empty_groups_exist() {
        let inv = load(
            r#"{"all": {"children": ["ungrouped", "empty"]}, "ungrouped": {"hosts": ["u"]},
                "_meta": {"hostvars": {"v": {"x": 1}}}}"#,
        );
        assert_eq!(inv.group("ungrouped").unwrap().hosts, ["u", "v"]);
        assert!(inv.group("empty").is_some());
        assert_eq!(inv.host_vars("v")["x"].value.value, Value::Int(1));
    }

    #[test]
    fn plan_errors_name_the_host_and_the_variable() {
        let json = LIST.replace(
            "\"hactl_interface\": \"eth0\",\n                     \"hactl_auth_pass\"",
            "\"hactl_intrface\": \"eth0\",\n                     \"hactl_auth_pass\"",
        );
        let inv = load(&json);
        let errors = plan::resolve(&inv, &|_| None).unwrap_err().0;
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(
                &"<stdin>: host lb01: hactl_intrface: unknown hactl variable (did you mean `hactl_interface`?)"
                    .to_string()
            ),
            "{text:#?}"
        );
        let json = LIST.replacen(
            "\"hactl_auth_pass\": \"s3cret\"",
            "\"hactl_auth_pass\": \"other\"",
            1,
        );
        let errors = plan::resolve(&load(&json), &|_| None).unwrap_err().0;
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t
                    .starts_with("<stdin>: host lb01: hactl_auth_pass: hosts `lb02` and `lb01`")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .all(|t| !t.contains("s3cret") && !t.contains("other")),
            "{text:#?}"
        );
    }

    #[test]
    fn bad_shapes_are_refused_with_where() {
        let cases: &[(&str, &str)] = &[
            (
                "[1]",
                "<stdin>: inventory: the inventory must be a mapping of groups and `_meta`, not a list",
            ),
            (
                "{\"all\": {\"children\": \"g\"}}",
                "<stdin>: group all: `children` must be a list of names, not a string",
            ),
            (
                "{\"g\": {\"hosts\": [1]}}",
                "<stdin>: group g: `hosts` must list names (strings), not an integer",
            ),
            (
                "{\"g\": {\"host\": []}}",
                "<stdin>: group g: unexpected key `host` (expected hosts, children or vars)",
            ),
            (
                "{\"g\": {\"vars\": []}}",
                "<stdin>: group g: `vars` must be a mapping, not a list",
            ),
            (
                "{\"_meta\": {\"hostvars\": {\"h\": 3}}}",
                "<stdin>: host h: its variables must be a mapping, not an integer",
            ),
            (
                "{\"_meta\": {\"hostvars\": []}}",
                "<stdin>: _meta: `hostvars` must map host names to their variables",
            ),
            (
                "{\"a\": {\"children\": [\"b\"]}, \"b\": {\"children\": [\"a\"]}}",
                "<stdin>: group a: group `b` would become its own ancestor",
            ),
            (
                "{\n\"all\": {,}}",
                "<stdin>:2: invalid JSON: key must be a string (column 9)",
            ),
        ];
        for (json, want) in cases {
            let err = from_str(json).expect_err(json);
            assert_eq!(err.to_string(), *want, "{json}");
        }
    }

    #[test]
    fn values_keep_their_json_types() {
        let inv = load(
            r#"{"_meta": {"hostvars": {"h": {"i": 3, "f": 0.5, "b": true, "n": null, "big": 18446744073709551615, "l": [1, "x"]}}}}"#,
        );
        let v = inv.host_vars("h");
        assert_eq!(v["i"].value.value, Value::Int(3));
        assert_eq!(v["f"].value.value, Value::Float(0.5));
        assert_eq!(v["b"].value.value, Value::Bool(true));
        assert_eq!(v["n"].value.value, Value::Null);
        assert!(matches!(v["big"].value.value, Value::Float(_)));
        assert_eq!(v["l"].value.to_json(), serde_json::json!([1, "x"]));
        assert_eq!(v["i"].origin().to_string(), "<stdin>: host h");
    }
}
