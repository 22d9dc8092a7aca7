//! The lab's wanted shape, computed without touching the machine: the hosts
//! as the caller gave them, validated, and the segments (one per subnet)
//! that tie them together. Each segment gets a bridge and one controller
//! address, the highest address of the subnet that no host uses.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::LabError;

/// At most this many subnets per lab; segment numbers appear in link names.
pub const MAX_SEGMENTS: usize = 100;

/// One inventory host as the lab builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabHost {
    /// The inventory host name; it becomes the host's hostname.
    pub name: String,
    /// The address sshd listens on (`ansible_host`).
    pub address: Ipv4Addr,
    /// Prefix length of the host's subnet; hosts of one subnet share a bridge.
    pub prefix_len: u8,
    /// The port sshd listens on (`ansible_port`).
    pub ssh_port: u16,
    /// The interface name inside the host (`eth0` unless the inventory says).
    pub interface: String,
}

impl LabHost {
    /// A host with sshd on port 22 behind `eth0`.
    pub fn new(name: &str, address: Ipv4Addr, prefix_len: u8) -> LabHost {
        LabHost {
            name: name.to_string(),
            address,
            prefix_len,
            ssh_port: 22,
            interface: "eth0".to_string(),
        }
    }
}

/// A subnet of the lab: its hosts share one bridge and the controller has
/// one address on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
    pub controller_address: Ipv4Addr,
    /// Indices into the host list.
    pub hosts: Vec<usize>,
}

impl Segment {
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix_len)
    }
}

pub(crate) fn mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n)),
    }
}

pub(crate) fn network_of(address: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) & mask(prefix_len))
}

/// Whether two subnets share any address.
pub(crate) fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let shorter = a.1.min(b.1);
    network_of(a.0, shorter) == network_of(b.0, shorter)
}

/// Checks every host and plans the segments, in order of first appearance.
pub(crate) fn plan(hosts: &[LabHost]) -> Result<Vec<Segment>, LabError> {
    if hosts.is_empty() {
        return Err(LabError::InvalidHost {
            host: String::new(),
            reason: "a lab needs at least one host".to_string(),
        });
    }
    let mut names = HashSet::new();
    let mut addresses = HashSet::new();
    for host in hosts {
        check_host(host)?;
        let invalid = |reason: &str| LabError::InvalidHost {
            host: host.name.clone(),
            reason: reason.to_string(),
        };
        if !names.insert(host.name.as_str()) {
            return Err(invalid("the name appears twice"));
        }
        if !addresses.insert(host.address) {
            return Err(invalid("another host has the same address"));
        }
    }

    let mut segments: Vec<Segment> = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        let network = network_of(host.address, host.prefix_len);
        if let Some(segment) = segments
            .iter_mut()
            .find(|s| s.network == network && s.prefix_len == host.prefix_len)
        {
            segment.hosts.push(index);
            continue;
        }
        if let Some(other) = segments
            .iter()
            .find(|s| overlaps((s.network, s.prefix_len), (network, host.prefix_len)))
        {
            return Err(LabError::OverlappingSegments {
                first: other.cidr(),
                second: format!("{network}/{}", host.prefix_len),
            });
        }
        segments.push(Segment {
            network,
            prefix_len: host.prefix_len,
            controller_address: Ipv4Addr::UNSPECIFIED,
            hosts: vec![index],
        });
    }
    if segments.len() > MAX_SEGMENTS {
        return Err(LabError::InvalidHost {
            host: hosts[0].name.clone(),
            reason: format!("a lab has at most {MAX_SEGMENTS} subnets"),
        });
    }
    for segment in &mut segments {
        let network = u32::from(segment.network);
        let broadcast = network | !mask(segment.prefix_len);
        segment.controller_address = ((network + 1)..broadcast)
            .rev()
            .map(Ipv4Addr::from)
            .find(|a| !addresses.contains(a))
            .ok_or_else(|| LabError::InvalidHost {
                host: hosts[segment.hosts[0]].name.clone(),
                reason: format!(
                    "subnet {} has no free address left for the controller",
                    segment.cidr()
                ),
            })?;
    }
    Ok(segments)
}

fn check_host(host: &LabHost) -> Result<(), LabError> {
    let invalid = |reason: String| LabError::InvalidHost {
        host: host.name.clone(),
        reason,
    };
    // sethostname(2) takes up to 64 bytes; the name also goes into a
    // namespace name and a shell script, so keep to hostname characters.
    let name_ok = !host.name.is_empty()
        && host.name.len() <= 64
        && !host.name.starts_with(['-', '.'])
        && host
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !name_ok {
        return Err(invalid(
            "a lab host name has 1 to 64 of A-Z a-z 0-9 - . _ and starts with a letter or digit"
                .to_string(),
        ));
    }
    let interface_ok = !host.interface.is_empty()
        && host.interface.len() <= 15
        && host.interface != "lo"
        && !host.interface.starts_with(['-', '.'])
        && host
            .interface
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !interface_ok {
        return Err(invalid(format!(
            "interface {:?} is not a usable interface name (1 to 15 of A-Z a-z 0-9 - . _)",
            host.interface
        )));
    }
    if !(1..=30).contains(&host.prefix_len) {
        return Err(invalid(format!(
            "prefix length /{} leaves no room for the controller (use /1 to /30)",
            host.prefix_len
        )));
    }
    let network = network_of(host.address, host.prefix_len);
    let broadcast = u32::from(network) | !mask(host.prefix_len);
    if host.address == network || u32::from(host.address) == broadcast {
        return Err(invalid(format!(
            "{} is the network or broadcast address of {network}/{}",
            host.address, host.prefix_len
        )));
    }
    if host.address.is_loopback() || host.address.is_multicast() || host.address.is_unspecified() {
        return Err(invalid(format!(
            "{} is not a unicast address",
            host.address
        )));
    }
    if host.ssh_port == 0 {
        return Err(invalid("ssh port 0 is not a port".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, address: &str, prefix_len: u8) -> LabHost {
        LabHost::new(name, address.parse().unwrap(), prefix_len)
    }

    #[test]
    fn hosts_of_one_subnet_share_a_segment() {
        let hosts = [
            host("lb1", "10.213.1.1", 24),
            host("web1", "10.213.2.10", 24),
            host("lb2", "10.213.1.2", 24),
        ];
        let segments = plan(&hosts).unwrap();
        assert_eq!(
            segments,
            [
                Segment {
                    network: "10.213.1.0".parse().unwrap(),
                    prefix_len: 24,
                    controller_address: "10.213.1.254".parse().unwrap(),
                    hosts: vec![0, 2],
                },
                Segment {
                    network: "10.213.2.0".parse().unwrap(),
                    prefix_len: 24,
                    controller_address: "10.213.2.254".parse().unwrap(),
                    hosts: vec![1],
                },
            ]
        );
    }

    #[test]
    fn the_controller_takes_the_highest_free_address() {
        let hosts = [host("a", "10.0.0.6", 29), host("b", "10.0.0.5", 29)];
        let segments = plan(&hosts).unwrap();
        assert_eq!(segments[0].controller_address, Ipv4Addr::new(10, 0, 0, 4));

        let full = [host("a", "10.0.0.1", 30), host("b", "10.0.0.2", 30)];
        let err = plan(&full).unwrap_err().to_string();
        assert!(err.contains("no free address"), "{err}");
    }

    #[test]
    fn invalid_hosts_are_refused() {
        let mut bad_port = host("a", "10.0.0.1", 24);
        bad_port.ssh_port = 0;
        let mut long_interface = host("a", "10.0.0.1", 24);
        long_interface.interface = "a-very-long-ifname".to_string();
        let cases = [
            (vec![], "at least one host"),
            (vec![host("", "10.0.0.1", 24)], "host name"),
            (vec![host("a b", "10.0.0.1", 24)], "host name"),
            (vec![host("-a", "10.0.0.1", 24)], "host name"),
            (vec![host("a", "10.0.0.1", 31)], "prefix length"),
            (vec![host("a", "10.0.0.0", 24)], "network or broadcast"),
            (vec![host("a", "10.0.0.255", 24)], "network or broadcast"),
            (vec![host("a", "127.0.0.2", 8)], "not a unicast"),
            (vec![bad_port], "port 0"),
            (vec![long_interface], "interface"),
            (
                vec![host("a", "10.0.0.1", 24), host("a", "10.0.0.2", 24)],
                "appears twice",
            ),
            (
                vec![host("a", "10.0.0.1", 24), host("b", "10.0.0.1", 24)],
                "same address",
            ),
        ];
        for (hosts, want) in cases {
            let err = plan(&hosts).unwrap_err().to_string();
            assert!(err.contains(want), "{hosts:?}: {err}");
        }
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let hosts = [host("a", "10.0.1.1", 24), host("b", "10.0.2.1", 16)];
        assert!(matches!(
            plan(&hosts),
            Err(LabError::OverlappingSegments { .. })
        ));
        assert!(overlaps(
            (Ipv4Addr::new(10, 0, 0, 0), 8),
            (Ipv4Addr::new(10, 9, 0, 0), 16)
        ));
        assert!(!overlaps(
            (Ipv4Addr::new(10, 0, 0, 0), 24),
            (Ipv4Addr::new(10, 0, 1, 0), 24)
        ));
    }
}
