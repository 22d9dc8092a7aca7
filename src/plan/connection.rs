//! How hactl reaches each inventory host: Ansible's connection variables,
//! read once here into a [`Connection`] (the SSH layer turns it into its
//! target).
//!
//! - `ansible_host` (else the inventory name), `ansible_port` (22),
//!   `ansible_user` (else the local user, as Ansible does),
//!   `ansible_ssh_private_key_file`, `ansible_become`,
//!   `ansible_ssh_common_args` (split like a shell).

use std::path::PathBuf;

use serde::Serialize;

use crate::inventory::Inventory;
use crate::inventory::yaml::{Node, Value};

use super::PlanError;

/// How to log into one host, from its connection variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// Where to connect (`ansible_host`, else the inventory name).
    pub address: String,
    pub port: u16,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    #[serde(rename = "become")]
    pub become_: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub common_args: Vec<String>,
}

/// The connection of one host.
pub fn connection(inv: &Inventory, host: &str) -> Result<Connection, PlanError> {
    let vars = inv.host_vars(host);
    let fail = |key: &str, node: &Node, reason: &str| PlanError {
        origin: Some(node.origin.clone()),
        key: key.to_string(),
        message: format!("host {host}: {reason}"),
    };
    let text = |key: &str| -> Result<Option<String>, PlanError> {
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
    // Each value below becomes one argument of ssh (never shell text), but
    // a leading `-` would still be read as an option, and a newline or blank
    // is never part of an address or a login (issue 14).
    let checked = |key: &str| -> Result<Option<String>, PlanError> {
        let value = text(key)?;
        if let Some(v) = &value {
            let rule = match key {
                "ansible_host" | "ansible_user" => super::names::ssh_word(v),
                _ => super::names::no_control(v),
            };
            if let Err(rule) = rule {
                return Err(fail(key, &vars[key].value, &rule));
            }
        }
        Ok(value)
    };
    let text = checked;
    let address = text("ansible_host")?.unwrap_or_else(|| host.to_string());
    let mut target = Connection {
        address,
        port: 22,
        user: String::new(),
        identity_file: None,
        become_: false,
        common_args: Vec::new(),
    };
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
        target.common_args = shlex::split(&args).ok_or_else(|| {
            let node = &vars["ansible_ssh_common_args"].value;
            fail("ansible_ssh_common_args", node, "unbalanced quotes")
        })?;
    }
    target.identity_file = text("ansible_ssh_private_key_file")?.map(|key| expand_home(&key));
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
    use std::path::Path;

    fn inventory(text: &str) -> Inventory {
        let path = Path::new("inv.yaml");
        let root = yaml::load_str(text, path).expect("valid yaml");
        Inventory::from_node(path, &root).expect("valid inventory")
    }

    #[test]
    fn connection_variables_become_the_connection() {
        let inv = inventory(
            "all:\n  vars: {ansible_user: ops, ansible_become: yes}\n  hosts:\n    lb01: {ansible_host: 10.0.0.51, ansible_port: 2222, ansible_ssh_private_key_file: /k/id, ansible_ssh_common_args: \"-o ProxyJump='jump host'\"}\n    lb02: {}\n",
        );
        let t = connection(&inv, "lb01").expect("connection");
        assert_eq!(
            (t.address.as_str(), t.port, t.user.as_str(), t.become_),
            ("10.0.0.51", 2222, "ops", true)
        );
        assert_eq!(t.identity_file.as_deref(), Some(Path::new("/k/id")));
        assert_eq!(t.common_args, ["-o", "ProxyJump=jump host"]);
        let t = connection(&inv, "lb02").expect("connection");
        assert_eq!((t.address.as_str(), t.port), ("lb02", 22));
    }

    #[test]
    fn a_bad_port_names_host_key_and_line() {
        let inv = inventory("all:\n  hosts:\n    a:\n      ansible_port: 70000\n");
        let err = connection(&inv, "a").expect_err("bad port");
        let text = err.to_string();
        assert!(
            text.contains("inv.yaml:4") && text.contains("ansible_port"),
            "{text}"
        );
    }
}
