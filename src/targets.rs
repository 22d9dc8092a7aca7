//! How hactl reaches each inventory host: Ansible's connection variables
//! turned into SSH targets.
//!
//! - `ansible_host` (else the inventory name), `ansible_port` (22),
//!   `ansible_user` (else the local user, as Ansible does),
//!   `ansible_ssh_private_key_file`, `ansible_become`,
//!   `ansible_ssh_common_args`.
//! - When `hactl lab up` has built a lab for this inventory, its key and
//!   known_hosts are used for every host that does not name its own key, so
//!   the unchanged inventory works against the lab with strict host keys.

use std::path::{Path, PathBuf};

use crate::inventory::Inventory;
use crate::inventory::yaml::{Node, Value};
use crate::lab::{Lab, LabName, LabPaths, SshIdentity};
use crate::ssh::Target;

/// A connection variable that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: host {host}: {key}: {reason}")]
pub struct TargetError {
    pub host: String,
    pub key: String,
    pub origin: String,
    pub reason: String,
}

/// The lab built for `inventory`, if `hactl lab up` has made one.
pub fn lab_identity(inventory: &Path, lab_root: &Path) -> Option<SshIdentity> {
    let name = LabName::from_inventory_path(inventory).ok()?;
    let lab = Lab::new(name, &LabPaths::new(lab_root));
    lab.exists().then(|| lab.ssh_identity())
}

/// The SSH target of every host in `hosts` (inventory names), in that order.
pub fn targets(
    inv: &Inventory,
    hosts: &[String],
    lab: Option<&SshIdentity>,
) -> Result<Vec<Target>, TargetError> {
    hosts.iter().map(|h| target(inv, h, lab)).collect()
}

/// The SSH target of one host.
pub fn target(
    inv: &Inventory,
    host: &str,
    lab: Option<&SshIdentity>,
) -> Result<Target, TargetError> {
    let vars = inv.host_vars(host);
    let fail = |key: &str, node: &Node, reason: &str| TargetError {
        host: host.to_string(),
        key: key.to_string(),
        origin: node.origin.to_string(),
        reason: reason.to_string(),
    };
    let text = |key: &str| -> Result<Option<String>, TargetError> {
        match vars.get(key).map(|v| &v.value) {
            None => Ok(None),
            Some(node) => match &node.value {
                Value::Str(s) => Ok(Some(s.clone())),
                Value::Int(i) => Ok(Some(i.to_string())),
                Value::Null => Ok(None),
                _ => Err(fail(key, node, "must be a string")),
            },
        }
    };
    let address = text("ansible_host")?.unwrap_or_else(|| host.to_string());
    let mut target = Target::new(host, &address);
    if let Some(var) = vars.get("ansible_port") {
        let node = &var.value;
        target.port = match &node.value {
            Value::Int(p) => u16::try_from(*p).ok().filter(|p| *p > 0),
            Value::Str(s) => s.parse::<u16>().ok().filter(|p| *p > 0),
            _ => None,
        }
        .ok_or_else(|| fail("ansible_port", node, "must be a TCP port (1-65535)"))?;
    }
    target.user = match text("ansible_user")? {
        Some(user) => user,
        None => local_user(),
    };
    if let Some(var) = vars.get("ansible_become") {
        let node = &var.value;
        target.become_ = match &node.value {
            Value::Bool(b) => *b,
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" | "y" => true,
                "no" | "false" | "off" | "0" | "n" | "" => false,
                _ => return Err(fail("ansible_become", node, "must be a boolean")),
            },
            Value::Int(i) => *i != 0,
            _ => return Err(fail("ansible_become", node, "must be a boolean")),
        };
    }
    if let Some(args) = text("ansible_ssh_common_args")? {
        target.common_args = Target::common_args(host, &args).map_err(|_| {
            let node = &vars["ansible_ssh_common_args"].value;
            fail("ansible_ssh_common_args", node, "unbalanced quotes")
        })?;
    }
    match text("ansible_ssh_private_key_file")? {
        Some(key) => target.identity_file = Some(expand_home(&key)),
        None => {
            if let Some(lab) = lab {
                target.identity_file = Some(lab.private_key.clone());
            }
        }
    }
    if let Some(lab) = lab {
        target.known_hosts = Some(lab.known_hosts.clone());
    }
    Ok(target)
}

fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::yaml;

    fn inventory(text: &str) -> Inventory {
        let path = Path::new("inv.yaml");
        let root = yaml::load_str(text, path).expect("valid yaml");
        Inventory::from_node(path, &root).expect("valid inventory")
    }

    #[test]
    fn connection_variables_become_the_target() {
        let inv = inventory(
            "all:\n  vars: {ansible_user: ops, ansible_become: yes}\n  hosts:\n    lb01: {ansible_host: 10.0.0.51, ansible_port: 2222, ansible_ssh_private_key_file: /k/id, ansible_ssh_common_args: \"-o ProxyJump='jump host'\"}\n    lb02: {}\n",
        );
        let t = target(&inv, "lb01", None).expect("target");
        assert_eq!(
            (t.address.as_str(), t.port, t.user.as_str(), t.become_),
            ("10.0.0.51", 2222, "ops", true)
        );
        assert_eq!(t.identity_file.as_deref(), Some(Path::new("/k/id")));
        assert_eq!(t.common_args, ["-o", "ProxyJump=jump host"]);
        let t = target(&inv, "lb02", None).expect("target");
        assert_eq!((t.address.as_str(), t.port), ("lb02", 22));
    }

    #[test]
    fn a_lab_supplies_key_and_known_hosts_unless_the_host_names_a_key() {
        let inv = inventory(
            "all:\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n    b: {ansible_host: 10.0.0.2, ansible_ssh_private_key_file: /own}\n",
        );
        let lab = SshIdentity {
            private_key: PathBuf::from("/lab/id_ed25519"),
            known_hosts: PathBuf::from("/lab/known_hosts"),
            ssh_config: PathBuf::from("/lab/ssh_config"),
        };
        let a = target(&inv, "a", Some(&lab)).expect("a");
        assert_eq!(
            a.identity_file.as_deref(),
            Some(Path::new("/lab/id_ed25519"))
        );
        assert_eq!(
            a.known_hosts.as_deref(),
            Some(Path::new("/lab/known_hosts"))
        );
        let b = target(&inv, "b", Some(&lab)).expect("b");
        assert_eq!(b.identity_file.as_deref(), Some(Path::new("/own")));
    }

    #[test]
    fn a_bad_port_names_host_key_and_line() {
        let inv = inventory("all:\n  hosts:\n    a:\n      ansible_port: 70000\n");
        let err = target(&inv, "a", None).expect_err("bad port");
        let text = err.to_string();
        assert!(
            text.contains("inv.yaml:4") && text.contains("ansible_port"),
            "{text}"
        );
    }
}
