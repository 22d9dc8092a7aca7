//! Where every inventory host sits on its network, for the lab (which
//! builds each host at the address hactl would reach it on): the address
//! is `hactl_address` (CIDR, which also gives the subnet) or else an IPv4
//! `ansible_host` on a /24; sshd listens on `ansible_port` (22 by default);
//! the interface is `hactl_interface` when given (the lab's default is
//! `eth0`). Read here, beside the rest of the plan, so that the lab and
//! the plan never read these variables differently.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::{PlanError, PlanErrors, parse_cidr};
use crate::inventory::Inventory;
use crate::inventory::yaml::Value;

/// The prefix length of a host that gives only `ansible_host`.
pub const DEFAULT_PREFIX_LEN: u8 = 24;

/// One inventory host's place on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostAddress {
    pub name: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub ssh_port: u16,
    /// `hactl_interface`, when set.
    pub interface: Option<String>,
}

/// Every inventory host's address, in inventory order; every host that
/// has none is an error naming it.
pub fn host_addresses(inv: &Inventory) -> Result<Vec<HostAddress>, PlanErrors> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for host in inv.hosts() {
        match host_address(inv, &host.name) {
            Ok(a) => out.push(a),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(PlanErrors(errors))
    }
}

fn host_address(inv: &Inventory, name: &str) -> Result<HostAddress, PlanError> {
    let origin = inv.host(name).map(|h| h.origin.clone());
    let vars = inv.host_vars(name);
    let text = |key: &str| vars.get(key).and_then(|v| v.value.as_str());
    let invalid = |key: &str, reason: String| PlanError {
        origin: vars
            .get(key)
            .map(|v| v.value.origin.clone())
            .or_else(|| origin.clone()),
        key: key.to_string(),
        message: format!("host {name}: {reason}"),
    };
    let (address, prefix_len) = match (text("hactl_address"), text("ansible_host")) {
        (Some(cidr), _) => parse_cidr(cidr)
            .map(|c| (c.address, c.prefix_len))
            .ok_or_else(|| {
                invalid(
                    "hactl_address",
                    format!("`{cidr}` is not an IPv4 address/prefix"),
                )
            })?,
        (None, Some(addr)) => match addr.parse::<Ipv4Addr>() {
            Ok(a) => (a, DEFAULT_PREFIX_LEN),
            Err(_) => {
                return Err(invalid(
                    "ansible_host",
                    format!("`{addr}` is not an IPv4 address (a lab host needs one)"),
                ));
            }
        },
        (None, None) => {
            return Err(invalid(
                "ansible_host",
                "has neither hactl_address nor an IPv4 ansible_host".into(),
            ));
        }
    };
    let ssh_port = match vars.get("ansible_port").map(|v| &v.value.value) {
        None => 22,
        Some(Value::Int(p)) => u16::try_from(*p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("ansible_port", format!("{p} is not a TCP port")))?,
        Some(Value::Str(s)) => s
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("ansible_port", format!("`{s}` is not a TCP port")))?,
        Some(_) => return Err(invalid("ansible_port", "is not a TCP port".into())),
    };
    Ok(HostAddress {
        name: name.to_string(),
        address,
        prefix_len,
        ssh_port,
        interface: text("hactl_interface").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::yaml;
    use std::path::Path;

    fn hosts_of(text: &str) -> Result<Vec<HostAddress>, PlanErrors> {
        let path = Path::new("inline.yaml");
        let root = yaml::load_str(text, path).expect("valid yaml");
        host_addresses(&Inventory::from_node(path, &root).expect("valid inventory"))
    }

    #[test]
    fn addresses_ports_and_interfaces_come_from_the_inventory() {
        let hosts = hosts_of(
            "all:\n  vars: {hactl_interface: ens3}\n  hosts:\n    a: {ansible_host: 10.1.0.1}\n    b: {hactl_address: 10.2.0.2/16, ansible_port: 2222}\n",
        )
        .expect("lab hosts");
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            (hosts[0].address, hosts[0].prefix_len, hosts[0].ssh_port),
            ("10.1.0.1".parse().unwrap(), 24, 22)
        );
        assert_eq!(hosts[0].interface.as_deref(), Some("ens3"));
        assert_eq!(
            (hosts[1].address, hosts[1].prefix_len, hosts[1].ssh_port),
            ("10.2.0.2".parse().unwrap(), 16, 2222)
        );
    }

    #[test]
    fn a_host_without_an_ipv4_address_is_refused_by_name() {
        let err = hosts_of("all:\n  hosts:\n    web1: {ansible_host: web1.example.com}\n")
            .expect_err("no IPv4 address");
        let text = err.0[0].to_string();
        assert!(
            text.contains("web1") && text.contains("inline.yaml:3"),
            "{text}"
        );
    }
}
