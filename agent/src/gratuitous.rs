//! Announcing a VIP's new owner: gratuitous ARP (IPv4) and unsolicited
//! neighbour advertisement (IPv6).
//!
//! A new master has to tell the segment that the VIP now lives behind its MAC
//! before the neighbours' caches time out (RFC 5798 6.4.2: "broadcast a
//! gratuitous ARP request ... for each IPv4 address"; "send an unsolicited ND
//! Neighbor Advertisement with the Router Flag ... for each IPv6 address").
//! The frames are built by pure functions returning bytes, tested against
//! hand-checked vectors; [`Announcer`] only puts them on an `AF_PACKET`
//! socket of one interface.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use socket2::{Domain, Socket, Type};

use crate::sys;

/// Ethertype of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Ethertype of IPv6 (RFC 8200).
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Ethernet broadcast, the destination of a gratuitous ARP.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Length of an ARP frame padded to the Ethernet minimum (60 bytes without
/// the FCS): some switches and NICs drop runts that a veth would pass.
pub const ARP_FRAME_LEN: usize = 60;
/// Ethernet (14) + IPv6 (40) + neighbour advertisement (24) + target
/// link-layer address option (8).
pub const NA_FRAME_LEN: usize = 86;

const ETHERNET_HEADER_LEN: usize = 14;
const IPV6_HEADER_LEN: usize = 40;
const NA_LEN: usize = 32;
const ICMPV6: u8 = 58;
const ICMPV6_NEIGHBOUR_ADVERTISEMENT: u8 = 136;
const ND_OPTION_TARGET_LINK_LAYER_ADDRESS: u8 = 2;

/// ARP opcode of a gratuitous ARP. Linux updates neighbour caches from
/// either; a request is what RFC 5798 asks for, a reply is what some
/// appliances only listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    Request,
    Reply,
}

// ===== frames =====

/// The ARP packet inside an Ethernet frame (RFC 826):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Hardware type = 1 (Ethernet)  |  Protocol type = 0x0800     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  HLEN = 6     |  PLEN = 4     |  Operation (1 request, 2 reply)|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Sender hardware address (6) | Sender protocol address (4)    |
/// |  Target hardware address (6) | Target protocol address (4)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Gratuitous: sender and target protocol addresses are both the VIP, the
/// sender hardware address is `mac`, the frame goes to broadcast. The
/// target hardware address is zero in a request (RFC 5227 2.1.1: ignored)
/// and `mac` in a reply (RFC 5944 4.6).
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr, operation: ArpOperation) -> [u8; ARP_FRAME_LEN] {
    let mut frame = [0u8; ARP_FRAME_LEN];
    ethernet_header(&mut frame, BROADCAST_MAC, mac, ETHERTYPE_ARP);
    let arp = &mut frame[ETHERNET_HEADER_LEN..];
    arp[0..2].copy_from_slice(&1u16.to_be_bytes());
    arp[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    arp[4] = 6;
    arp[5] = 4;
    let (opcode, target_mac) = match operation {
        ArpOperation::Request => (1u16, [0u8; 6]),
        ArpOperation::Reply => (2u16, mac),
    };
    arp[6..8].copy_from_slice(&opcode.to_be_bytes());
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&vip.octets());
    arp[18..24].copy_from_slice(&target_mac);
    arp[24..28].copy_from_slice(&vip.octets());
    frame
}

/// An unsolicited neighbour advertisement for `vip` (RFC 4861 4.4, 7.2.6),
/// from `source` (an address of the sending interface: the VIP itself or
/// its link-local address) to all-nodes ff02::1, hop limit 255:
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type = 136    |     Code = 0  |          Checksum           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |R|S|O|                     Reserved                            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Target Address (16)                     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Type = 2      | Length = 1    |  Target link-layer address (6) |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Solicited is clear (RFC 4861 7.2.6: unsolicited; 7.1.2 drops a
/// multicast NA with S set), Override is set so receivers replace the old
/// owner's MAC, Router says whether the sender is a router (RFC 5798 6.4.2
/// sets it on a VRRP router).
pub fn unsolicited_na(
    mac: [u8; 6],
    vip: Ipv6Addr,
    source: Ipv6Addr,
    router: bool,
) -> [u8; NA_FRAME_LEN] {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut frame = [0u8; NA_FRAME_LEN];
    ethernet_header(&mut frame, multicast_mac(all_nodes), mac, ETHERTYPE_IPV6);

    let ip = &mut frame[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + IPV6_HEADER_LEN];
    ip[0] = 0x60; // version 6, traffic class and flow label zero
    ip[4..6].copy_from_slice(&(NA_LEN as u16).to_be_bytes());
    ip[6] = ICMPV6;
    ip[7] = 255; // RFC 4861 7.1.2: receivers drop ND with any other hop limit
    ip[8..24].copy_from_slice(&source.octets());
    ip[24..40].copy_from_slice(&all_nodes.octets());

    let na = &mut frame[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN..];
    na[0] = ICMPV6_NEIGHBOUR_ADVERTISEMENT;
    na[4] = if router { 0x80 } else { 0 } | 0x20;
    na[8..24].copy_from_slice(&vip.octets());
    na[24] = ND_OPTION_TARGET_LINK_LAYER_ADDRESS;
    na[25] = 1; // in units of 8 bytes
    na[26..32].copy_from_slice(&mac);
    let checksum = icmpv6_checksum(source, all_nodes, na);
    na[2..4].copy_from_slice(&checksum.to_be_bytes());
    frame
}

fn ethernet_header(frame: &mut [u8], destination: [u8; 6], source: [u8; 6], ethertype: u16) {
    frame[0..6].copy_from_slice(&destination);
    frame[6..12].copy_from_slice(&source);
    frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// RFC 2464 7: 33:33 followed by the last four bytes of the group.
fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// RFC 4443 2.3 / RFC 8200 8.1: one's complement sum over the pseudo-header
/// (source, destination, upper-layer length, next header) and the message,
/// whose checksum field must be zero here.
fn icmpv6_checksum(source: Ipv6Addr, destination: Ipv6Addr, message: &[u8]) -> u16 {
    let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&source.octets());
    pseudo[16..32].copy_from_slice(&destination.octets());
    pseudo[32..36].copy_from_slice(&length.to_be_bytes());
    pseudo[39] = ICMPV6;
    let sum = ones_complement_sum(&pseudo, 0);
    let sum = ones_complement_sum(message, sum);
    !(sum as u16)
}

fn ones_complement_sum(bytes: &[u8], mut sum: u32) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

// ===== impl Announcer =====

/// Why an announcement could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("interface {interface} does not exist")]
    NoSuchInterface { interface: String },
    #[error("interface {interface} has no ethernet address")]
    NoMac { interface: String },
    #[error("cannot read the addresses of interface {interface}")]
    Lookup {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot open a packet socket for {interface}")]
    Open {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot announce {address} on {interface}")]
    Send {
        interface: String,
        address: IpAddr,
        #[source]
        source: io::Error,
    },
}

/// A send-only `AF_PACKET` socket on one interface that announces VIPs
/// with the interface's own MAC.
#[derive(Debug)]
pub struct Announcer {
    socket: Socket,
    interface: String,
    ifindex: u32,
    mac: [u8; 6],
    router: bool,
}

impl Announcer {
    /// Opens the socket for `interface` of the calling thread's network
    /// namespace, reading its index and MAC there.
    pub fn open(interface: &str) -> Result<Announcer, AnnounceError> {
        let (ifindex, mac) = interface_index_and_mac(interface)?;
        // Protocol 0: the socket receives nothing, it only sends.
        let socket =
            Socket::new(Domain::PACKET, Type::RAW, None).map_err(|source| AnnounceError::Open {
                interface: interface.to_owned(),
                source,
            })?;
        Ok(Announcer {
            socket,
            interface: interface.to_owned(),
            ifindex,
            mac,
            router: false,
        })
    }

    /// Sets the Router flag of the neighbour advertisements (RFC 5798 6.4.2
    /// sets it; a plain host holding a service address does not).
    pub fn with_router_flag(mut self, router: bool) -> Announcer {
        self.router = router;
        self
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one gratuitous ARP request (IPv4) or one unsolicited neighbour
    /// advertisement from the VIP itself (IPv6). Bursts and refresh timing
    /// are the caller's.
    pub fn announce(&self, vip: IpAddr) -> Result<(), AnnounceError> {
        match vip {
            IpAddr::V4(v4) => self.send_arp(v4, ArpOperation::Request),
            IpAddr::V6(v6) => self.send(
                vip,
                &unsolicited_na(self.mac, v6, v6, self.router),
                ETHERTYPE_IPV6,
                multicast_mac(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
            ),
        }
    }

    /// Sends one gratuitous ARP of the given kind.
    pub fn send_arp(&self, vip: Ipv4Addr, operation: ArpOperation) -> Result<(), AnnounceError> {
        let frame = gratuitous_arp(self.mac, vip, operation);
        self.send(IpAddr::V4(vip), &frame, ETHERTYPE_ARP, BROADCAST_MAC)
    }

    fn send(
        &self,
        vip: IpAddr,
        frame: &[u8],
        ethertype: u16,
        destination: [u8; 6],
    ) -> Result<(), AnnounceError> {
        let address = sys::link_layer_address(self.ifindex, ethertype, destination);
        let failed = |source| AnnounceError::Send {
            interface: self.interface.clone(),
            address: vip,
            source,
        };
        let sent = self.socket.send_to(frame, &address).map_err(failed)?;
        if sent != frame.len() {
            return Err(failed(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", frame.len()),
            )));
        }
        Ok(())
    }
}

/// Index and MAC of `interface`, read through getifaddrs(3), which asks
/// netlink and so answers for the calling thread's namespace (sysfs would
/// answer for the namespace it was mounted in).
fn interface_index_and_mac(interface: &str) -> Result<(u32, [u8; 6]), AnnounceError> {
    let lookup_failed = |errno: nix::errno::Errno| AnnounceError::Lookup {
        interface: interface.to_owned(),
        source: io::Error::from(errno),
    };
    let entries = nix::ifaddrs::getifaddrs().map_err(lookup_failed)?;
    let mut found = false;
    for entry in entries.filter(|entry| entry.interface_name == interface) {
        found = true;
        let Some(link) = entry
            .address
            .as_ref()
            .and_then(|address| address.as_link_addr())
        else {
            continue;
        };
        let Some(mac) = link.addr() else {
            continue;
        };
        if mac == [0; 6] {
            continue;
        }
        let ifindex =
            u32::try_from(link.ifindex()).map_err(|_| AnnounceError::NoSuchInterface {
                interface: interface.to_owned(),
            })?;
        return Ok((ifindex, mac));
    }
    if found {
        Err(AnnounceError::NoMac {
            interface: interface.to_owned(),
        })
    } else {
        Err(AnnounceError::NoSuchInterface {
            interface: interface.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a];

    #[test]
    fn gratuitous_arp_request_bytes() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 10), ArpOperation::Request);
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a, // source: the interface
            0x08, 0x06,                         // ethertype ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet / IPv4, 6 / 4
            0x00, 0x01,                         // request
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a, // sender MAC
            0xc0, 0x00, 0x02, 0x0a,             // sender IP = VIP
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC: unknown
            0xc0, 0x00, 0x02, 0x0a,             // target IP = VIP
        ];
        assert_eq!(frame[..42], expected);
        assert_eq!(frame[42..], [0u8; 18], "padding to 60 bytes");
    }

    #[test]
    fn gratuitous_arp_reply_names_the_sender_as_target() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(10, 1, 2, 3), ArpOperation::Reply);
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a,
            0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
            0x00, 0x02,                         // reply
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a,
            0x0a, 0x01, 0x02, 0x03,
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a, // target MAC = sender MAC
            0x0a, 0x01, 0x02, 0x03,
        ];
        assert_eq!(frame[..42], expected);
    }

    #[test]
    fn unsolicited_na_bytes() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let frame = unsolicited_na(MAC, vip, vip, false);
        // Checksum 0x7af3 worked out apart from this code (a Python one's
        // complement sum over pseudo-header and message), and tcpdump says
        // "icmp6 sum ok" for such frames sent in a lab.
        #[rustfmt::skip]
        let expected: [u8; NA_FRAME_LEN] = [
            0x33, 0x33, 0x00, 0x00, 0x00, 0x01, // destination: ff02::1
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a,
            0x86, 0xdd,
            0x60, 0x00, 0x00, 0x00,             // version 6
            0x00, 0x20, 0x3a, 0xff,             // length 32, ICMPv6, hop limit 255
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // source
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,       // ff02::1
            0x88, 0x00, 0x7a, 0xf3,             // type 136, code 0, checksum
            0x20, 0x00, 0x00, 0x00,             // override
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // target
            0x02, 0x01,                         // target link-layer address, 8 bytes
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x0a,
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn router_flag_changes_flags_and_checksum_only() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let host = unsolicited_na(MAC, vip, vip, false);
        let router = unsolicited_na(MAC, vip, vip, true);
        assert_eq!(router[58], 0xa0, "router and override");
        let differing: Vec<usize> = (0..NA_FRAME_LEN)
            .filter(|&i| host[i] != router[i])
            .collect();
        assert_eq!(differing, [56, 57, 58]);
        // 0x8000 more in the sum carries around: worked out apart, as above.
        assert_eq!(u16::from_be_bytes([router[56], router[57]]), 0xfaf2);
    }

    #[test]
    fn checksum_of_a_message_with_its_checksum_verifies_to_zero() {
        let source: Ipv6Addr = "fe80::1".parse().unwrap();
        let destination: Ipv6Addr = "ff02::1".parse().unwrap();
        let vip: Ipv6Addr = "fd00:77::100".parse().unwrap();
        let frame = unsolicited_na(MAC, vip, source, false);
        let message = &frame[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN..];
        assert_eq!(icmpv6_checksum(source, destination, message), 0);
        // Odd lengths pad with a zero byte (RFC 1071).
        assert_eq!(ones_complement_sum(&[0x12, 0x34, 0x56], 0), 0x1234 + 0x5600);
    }

    #[test]
    fn multicast_mac_keeps_the_low_32_bits() {
        assert_eq!(
            multicast_mac("ff02::1:ff00:10".parse().unwrap()),
            [0x33, 0x33, 0xff, 0x00, 0x00, 0x10]
        );
    }

    #[test]
    fn missing_interface_is_named() {
        let error = Announcer::open("hxnosuch0").unwrap_err();
        assert_eq!(error.to_string(), "interface hxnosuch0 does not exist");
    }
}
