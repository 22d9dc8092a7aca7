//! Which lab an inventory asks for: every inventory host becomes a lab host
//! at the address hactl would reach it on. A host's address is
//! `hactl_address` (CIDR, which also gives the subnet) or else an IPv4
//! `ansible_host` on a /24; sshd listens on `ansible_port` (22 by default)
//! and the host's interface is `hactl_interface` (`eth0` by default).

use std::net::Ipv4Addr;

use super::{LabError, LabHost};
use crate::inventory::Inventory;
use crate::inventory::yaml::Value;
use crate::plan::parse_cidr;

/// The prefix length of a host that gives only `ansible_host`.
pub const DEFAULT_PREFIX_LEN: u8 = 24;

/// The lab hosts of an inventory, in inventory order.
pub fn lab_hosts(inv: &Inventory) -> Result<Vec<LabHost>, LabError> {
    inv.hosts()
        .iter()
        .map(|host| {
            let vars = inv.host_vars(&host.name);
            let text = |key: &str| vars.get(key).and_then(|v| v.value.as_str());
            let invalid = |reason: String| LabError::InvalidHost {
                host: host.name.clone(),
                reason,
            };
            let (address, prefix_len) = match (text("hactl_address"), text("ansible_host")) {
                (Some(cidr), _) => parse_cidr(cidr)
                    .map(|c| (c.address, c.prefix_len))
                    .ok_or_else(|| {
                        invalid(format!(
                            "hactl_address `{cidr}` is not an IPv4 address/prefix"
                        ))
                    })?,
                (None, Some(addr)) => match addr.parse::<Ipv4Addr>() {
                    Ok(a) => (a, DEFAULT_PREFIX_LEN),
                    Err(_) => {
                        return Err(invalid(format!(
                            "ansible_host `{addr}` is not an IPv4 address (a lab host needs one)"
                        )));
                    }
                },
                (None, None) => {
                    return Err(invalid(
                        "has neither hactl_address nor an IPv4 ansible_host".into(),
                    ));
                }
            };
            let ssh_port = match vars.get("ansible_port").map(|v| &v.value.value) {
                None => 22,
                Some(Value::Int(p)) => u16::try_from(*p)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid(format!("ansible_port {p} is not a TCP port")))?,
                Some(Value::Str(s)) => s
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid(format!("ansible_port `{s}` is not a TCP port")))?,
                Some(_) => return Err(invalid("ansible_port is not a TCP port".into())),
            };
            let mut lab_host = LabHost::new(&host.name, address, prefix_len);
            lab_host.ssh_port = ssh_port;
            if let Some(interface) = text("hactl_interface") {
                lab_host.interface = interface.to_string();
            }
            Ok(lab_host)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::yaml;
    use std::path::Path;

    fn hosts_of(text: &str) -> Result<Vec<LabHost>, LabError> {
        let path = Path::new("inline.yaml");
        let root = yaml::load_str(text, path).expect("valid yaml");
        lab_hosts(&Inventory::from_node(path, &root).expect("valid inventory"))
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
        assert_eq!(hosts[0].interface, "ens3");
        assert_eq!(
            (hosts[1].address, hosts[1].prefix_len, hosts[1].ssh_port),
            ("10.2.0.2".parse().unwrap(), 16, 2222)
        );
    }

    #[test]
    fn a_host_without_an_ipv4_address_is_refused_by_name() {
        let err = hosts_of("all:\n  hosts:\n    web1: {ansible_host: web1.example.com}\n")
            .expect_err("no IPv4 address");
        assert!(err.to_string().contains("web1"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
