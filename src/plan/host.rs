//! One host of a pair: its interface, address, script user, templates,
//! `hactl_nonlocal_bind`, `hactl_lab` and connection variables.

use super::*;

impl Resolver<'_> {
    pub(super) fn host(&mut self, inv: &Inventory, name: &str, vars: &VarMap) -> HostPlan {
        let interface = match vars.get("hactl_interface") {
            Some(v) => match v.value.as_str().map(|s| (s, names::interface(s))) {
                Some((s, Ok(()))) => s.to_string(),
                Some((_, Err(rule))) => {
                    self.err_at(&v.value, "hactl_interface", rule);
                    String::new()
                }
                None => {
                    self.err_at(
                        &v.value,
                        "hactl_interface",
                        "must be an interface name (a string)".into(),
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
            Some(v) => match v.value.as_str().map(|s| (s, names::user(s))) {
                Some((s, Ok(()))) => s.to_string(),
                Some((_, Err(rule))) => {
                    self.err_at(&v.value, "hactl_script_user", rule);
                    "nobody".to_string()
                }
                None => {
                    self.err_at(&v.value, "hactl_script_user", "must be a user name".into());
                    "nobody".to_string()
                }
            },
        };
        let templates_dir = match vars.get("hactl_templates_dir") {
            None => None,
            Some(v) => match v.value.as_str().map(|s| (s, names::no_control(s))) {
                Some((s, Ok(()))) => Some(self.base.join(s)),
                Some((_, Err(rule))) => {
                    self.err_at(&v.value, "hactl_templates_dir", rule);
                    None
                }
                None => {
                    self.err_at(&v.value, "hactl_templates_dir", "must be a path".into());
                    None
                }
            },
        };
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
}
