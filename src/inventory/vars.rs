//! Variables: the `group_vars/` and `host_vars/` files beside the inventory
//! and the precedence that merges everything into one host's variables.
//!
//! Files, as Ansible's `host_group_vars` plugin finds them for an entity
//! `NAME`: the first of `NAME` (a file, or a directory walked recursively in
//! sorted order, skipping hidden files, `~` backups and extensions other than
//! `.yml`, `.yaml`, `.json` or none), `NAME.yml`, `NAME.yaml`, `NAME.json`.
//!
//! Precedence (Ansible's default `VARIABLE_PRECEDENCE`, later wins, whole
//! values replaced, `hash_behaviour = replace`):
//! 1. `all`'s inventory-file vars,
//! 2. the host's other groups' inventory-file vars, sorted by depth, then
//!    `ansible_group_priority`, then name,
//! 3. `group_vars/all`,
//! 4. `group_vars/<group>` in the same group order,
//! 5. the host's inventory-file vars,
//! 6. `host_vars/<host>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::yaml::{self, Key, Node, Origin, Value};
use super::{Inventory, InventoryError};

/// One variable: where its key was written, and its value (which carries
/// its own origin).
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub key: Key,
    pub value: Node,
}

impl Var {
    pub fn origin(&self) -> &Origin {
        &self.key.origin
    }
}

/// Variables by name, sorted (as `ansible-inventory` prints them).
pub type VarMap = BTreeMap<String, Var>;

/// Set (replace) a variable.
pub fn set(map: &mut VarMap, key: &Key, value: &Node) {
    map.insert(
        key.name.clone(),
        Var {
            key: key.clone(),
            value: value.clone(),
        },
    );
}

fn merge_into(out: &mut VarMap, from: &VarMap) {
    for (k, v) in from {
        out.insert(k.clone(), v.clone());
    }
}

/// The merged variables of one host.
pub fn merged_host_vars(inv: &Inventory, host: &str) -> VarMap {
    let mut out = VarMap::new();
    let Some(h) = inv.host(host) else {
        return out;
    };
    let groups = inv.host_groups(host);
    let sorted = inv.sorted_groups(groups.into_iter().filter(|g| g.name != "all"));
    let all = inv.group("all");
    if let Some(all) = all {
        merge_into(&mut out, &all.vars);
    }
    for g in &sorted {
        merge_into(&mut out, &g.vars);
    }
    if let Some(all) = all {
        merge_into(&mut out, &all.file_vars);
    }
    for g in &sorted {
        merge_into(&mut out, &g.file_vars);
    }
    merge_into(&mut out, &h.vars);
    merge_into(&mut out, &h.file_vars);
    out
}

/// Load `group_vars/` and `host_vars/` under `dir` into the inventory.
pub fn load_var_files(inv: &mut Inventory, dir: &Path) -> Result<(), InventoryError> {
    let groups: Vec<String> = inv.groups().iter().map(|g| g.name.clone()).collect();
    for name in groups {
        let vars = load_entity(&dir.join("group_vars"), &name)?;
        if let Some(g) = inv.group_mut(&name) {
            g.file_vars = vars;
        }
    }
    let hosts: Vec<String> = inv.hosts().iter().map(|h| h.name.clone()).collect();
    for name in hosts {
        let vars = load_entity(&dir.join("host_vars"), &name)?;
        if let Some(h) = inv.host_mut(&name) {
            h.file_vars = vars;
        }
    }
    Ok(())
}

const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// The files Ansible reads for one group or host, in order.
pub fn entity_files(base: &Path, name: &str) -> Result<Vec<PathBuf>, InventoryError> {
    if !base.is_dir() {
        return Ok(Vec::new());
    }
    let candidates = std::iter::once(String::new()).chain(EXTENSIONS.iter().map(|e| e.to_string()));
    for ext in candidates {
        let path = base.join(format!("{name}{ext}"));
        if path.is_dir() {
            let mut found = Vec::new();
            walk(&path, &mut found)?;
            return Ok(found);
        }
        if path.is_file() {
            return Ok(vec![path]);
        }
    }
    Ok(Vec::new())
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), InventoryError> {
    let read = std::fs::read_dir(dir).map_err(|source| InventoryError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = read
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = dir.join(&name);
        let ext = Path::new(&name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()));
        if path.is_dir() && ext.is_none() {
            walk(&path, found)?;
        } else if path.is_file() && ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            found.push(path);
        }
    }
    Ok(())
}

fn load_entity(base: &Path, name: &str) -> Result<VarMap, InventoryError> {
    let mut out = VarMap::new();
    for file in entity_files(base, name)? {
        let node = yaml::load_file(&file)?;
        match &node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (k, v) in entries {
                    set(&mut out, k, v);
                }
            }
            _ => {
                return Err(InventoryError::Shape {
                    origin: node.origin.clone(),
                    message: format!("a vars file must be a mapping, not {}", node.kind()),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_vars_files_beat_inventory_group_vars_and_host_vars_win() {
        let dir = std::env::temp_dir().join(format!("hactl-vars-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("group_vars/web")).unwrap();
        std::fs::create_dir_all(dir.join("host_vars")).unwrap();
        std::fs::write(dir.join("inv.yml"), "all:\n  vars: {a: inv_all}\n  children:\n    web:\n      vars: {a: inv_web, b: inv_web, c: inv_web}\n      hosts: {h1: {c: inv_host}}\n").unwrap();
        std::fs::write(dir.join("group_vars/all.yml"), "a: file_all\nb: file_all\n").unwrap();
        std::fs::write(dir.join("group_vars/web/10.yml"), "b: file_web_10\n").unwrap();
        std::fs::write(dir.join("group_vars/web/20"), "b: file_web_20\n").unwrap();
        std::fs::write(dir.join("group_vars/web/x.txt"), "b: ignored\n").unwrap();
        std::fs::write(dir.join("group_vars/web.yml"), "b: shadowed_by_dir\n").unwrap();
        std::fs::write(dir.join("host_vars/h1.json"), "{\"c\": \"file_host\"}").unwrap();
        let inv = Inventory::load(&dir.join("inv.yml")).unwrap();
        let v = inv.host_vars("h1");
        let cases = [("a", "file_all"), ("b", "file_web_20"), ("c", "file_host")];
        for (k, want) in cases {
            assert_eq!(v[k].value.value, Value::Str(want.into()), "var {k}");
        }
        assert_eq!(v["b"].origin().file.file_name().unwrap(), "20");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
