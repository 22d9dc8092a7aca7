//! Network facts: how a host resolves a peer's name, and its interfaces
//! with their addresses.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::{Fact, ParseError};
use crate::ssh::{CommandOutput, RemoteCommand};

// ===== name resolution =====

/// `getent ahostsv4 NAME`: the IPv4 addresses the host's resolver (files,
/// DNS, as nsswitch says) gives for a name, in its order, each once. An
/// empty list means the name does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    pub name: String,
}

/// getent(1): "One or more supplied key could not be found in the database."
const GETENT_NOT_FOUND: i32 = 2;

impl Fact for Resolve {
    type Output = Vec<Ipv4Addr>;

    fn name(&self) -> &'static str {
        "name resolution"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["getent", "ahostsv4", "--", &self.name]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<Vec<Ipv4Addr>, ParseError> {
        match output.status {
            Some(0) => {}
            Some(GETENT_NOT_FOUND) => return Ok(Vec::new()),
            _ => return Err(ParseError::unexpected(output)),
        }
        // "10.0.0.1        STREAM lb1": one line per socket type.
        let mut addresses = Vec::new();
        for line in output.stdout_text().lines() {
            let Some(first) = line.split_whitespace().next() else {
                continue;
            };
            let address: Ipv4Addr = first
                .parse()
                .map_err(|_| ParseError::new(format!("not an IPv4 address: {line:?}")))?;
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        Ok(addresses)
    }
}

// ===== interfaces =====

/// One interface as `ip -j addr show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// Administratively up (`UP` flag).
    pub up: bool,
    /// Carrier present (`LOWER_UP` flag).
    pub lower_up: bool,
    /// `operstate`: UP, DOWN, UNKNOWN (loopback, some virtual links)...
    pub oper_state: String,
    pub mtu: u32,
    pub mac: Option<String>,
    pub addresses: Vec<InterfaceAddress>,
}

impl Interface {
    /// Whether `address` is inside one of the interface's subnets.
    pub fn subnet_contains(&self, address: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.subnet_contains(address))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// `global`, `link`, `host`.
    pub scope: String,
}

impl InterfaceAddress {
    pub fn subnet_contains(&self, other: IpAddr) -> bool {
        let (mine, theirs, bits) = match (self.address, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.prefix_len.min(32),
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                (u128::from(a), u128::from(b), self.prefix_len.min(128))
            }
            _ => return false,
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(bits))
        };
        mine & mask == theirs & mask
    }
}

/// `ip -j addr show`: every interface with its addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Interfaces;

#[derive(Deserialize)]
struct RawLink {
    ifindex: u32,
    ifname: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    mtu: u32,
    #[serde(default)]
    operstate: String,
    #[serde(default)]
    link_type: String,
    address: Option<String>,
    #[serde(default)]
    addr_info: Vec<RawAddress>,
}

#[derive(Deserialize)]
struct RawAddress {
    local: Option<IpAddr>,
    prefixlen: Option<u8>,
    #[serde(default)]
    scope: String,
}

impl Fact for Interfaces {
    type Output = Vec<Interface>;

    fn name(&self) -> &'static str {
        "interfaces"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["ip", "-j", "addr", "show"]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<Vec<Interface>, ParseError> {
        if !output.success() {
            return Err(ParseError::unexpected(output));
        }
        let links: Vec<RawLink> = serde_json::from_slice(&output.stdout)
            .map_err(|e| ParseError::new(format!("ip -j output: {e}")))?;
        Ok(links
            .into_iter()
            .map(|link| Interface {
                up: link.flags.iter().any(|f| f == "UP"),
                lower_up: link.flags.iter().any(|f| f == "LOWER_UP"),
                mac: link.address.filter(|_| link.link_type == "ether"),
                addresses: link
                    .addr_info
                    .into_iter()
                    .filter_map(|a| {
                        Some(InterfaceAddress {
                            address: a.local?,
                            prefix_len: a.prefixlen?,
                            scope: a.scope,
                        })
                    })
                    .collect(),
                name: link.ifname,
                index: link.ifindex,
                oper_state: link.operstate,
                mtu: link.mtu,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    #[test]
    fn resolution_keeps_each_address_once_in_order() {
        let fact = Resolve { name: "lb2".into() };
        assert_eq!(fact.command().argv, ["getent", "ahostsv4", "--", "lb2"]);
        let text = include_str!("testdata/getent_ahostsv4.txt");
        assert_eq!(
            fact.parse(&output(0, text, "")).unwrap(),
            [Ipv4Addr::new(10, 213, 201, 2), Ipv4Addr::new(192, 0, 2, 7)]
        );
        assert_eq!(
            fact.parse(&output(2, "", "")).unwrap(),
            Vec::<Ipv4Addr>::new()
        );
        assert!(fact.parse(&output(0, "garbage STREAM x\n", "")).is_err());
        assert!(fact.parse(&output(1, "", "getent: boom")).is_err());
    }

    #[test]
    fn interfaces_from_ip_json() {
        let text = include_str!("testdata/ip_addr.json");
        let interfaces = Interfaces.parse(&output(0, text, "")).unwrap();
        let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "v1", "v0"]);
        let v0 = &interfaces[2];
        assert!(v0.up);
        assert!(!v0.lower_up);
        assert_eq!(v0.oper_state, "LOWERLAYERDOWN");
        assert_eq!(v0.mac.as_deref(), Some("72:76:37:78:dc:54"));
        assert_eq!(v0.addresses.len(), 2);
        assert_eq!(
            v0.addresses[0].address,
            "10.9.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(v0.addresses[0].prefix_len, 24);
        assert!(v0.subnet_contains("10.9.0.200".parse().unwrap()));
        assert!(!v0.subnet_contains("10.9.1.1".parse().unwrap()));
        assert!(v0.subnet_contains("fd00::abcd".parse().unwrap()));
        assert!(!interfaces[1].up);
        assert_eq!(interfaces[0].mac, None, "loopback has no MAC");
        assert!(Interfaces.parse(&output(0, "{", "")).is_err());
    }
}
