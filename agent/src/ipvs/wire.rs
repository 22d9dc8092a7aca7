//! The IPVS generic netlink family on the wire: commands, attributes and
//! their byte layout, encoded and decoded without a socket.
//!
//! Layout from `include/uapi/linux/ip_vs.h` and the kernel's
//! `ip_vs_genl_parse_service` / `ip_vs_genl_parse_dest` (net/netfilter/
//! ipvs/ip_vs_ctl.c), checked against the kernel in the VM tests:
//!
//! ```text
//! nlmsghdr | genlmsghdr (cmd, version 1) | attributes:
//!   IPVS_CMD_ATTR_SERVICE (nested)
//!     AF u16 | PROTOCOL u16 | ADDR 16 bytes | PORT be16     (or FWMARK u32)
//!     SCHED_NAME "wlc\0" | FLAGS {u32 flags, u32 mask} | TIMEOUT u32
//!     NETMASK be32 (IPv4: the mask; IPv6: the prefix length, host order)
//!   IPVS_CMD_ATTR_DEST (nested)
//!     ADDR 16 bytes | PORT be16 | FWD_METHOD u32 | WEIGHT u32
//!     U_THRESH u32 | L_THRESH u32 | ADDR_FAMILY u16
//! ```
//!
//! Numbers are host order except ports (and the IPv4 netmask), which are
//! network order. Creating a service needs the whole entry (scheduler,
//! flags, timeout, netmask); deleting one, or naming the service of a
//! destination, needs only its key. The answer to `GET_INFO` is `SET_INFO`
//! with the info attributes at the top level, whose numbers overlap the
//! command attributes, so decoding looks at the command first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, Emitable, Nla, NlaBuffer, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use super::{Destination, DestinationEntry, Forward, Info, Service, ServiceKey};
use crate::config::{Family, Protocol};

/// The family name the controller resolves (`IPVS_GENL_NAME`).
pub const FAMILY_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const FAMILY_VERSION: u8 = 1;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;
const IPPROTO_SCTP: u16 = 132;
/// `IP_VS_SCHEDNAME_MAXLEN`, with the NUL.
pub const SCHEDNAME_MAXLEN: usize = 16;

/// `IPVS_CMD_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    SetInfo,
    GetInfo,
    Flush,
    Other(u8),
}

impl Command {
    pub fn number(self) -> u8 {
        match self {
            Command::NewService => 1,
            Command::SetService => 2,
            Command::DelService => 3,
            Command::GetService => 4,
            Command::NewDest => 5,
            Command::SetDest => 6,
            Command::DelDest => 7,
            Command::GetDest => 8,
            Command::SetInfo => 14,
            Command::GetInfo => 15,
            Command::Flush => 17,
            Command::Other(n) => n,
        }
    }

    pub fn from_number(n: u8) -> Command {
        match n {
            1 => Command::NewService,
            2 => Command::SetService,
            3 => Command::DelService,
            4 => Command::GetService,
            5 => Command::NewDest,
            6 => Command::SetDest,
            7 => Command::DelDest,
            8 => Command::GetDest,
            14 => Command::SetInfo,
            15 => Command::GetInfo,
            17 => Command::Flush,
            other => Command::Other(other),
        }
    }
}

// ===== attributes =====

// IPVS_CMD_ATTR_*
const CMD_ATTR_SERVICE: u16 = 1;
const CMD_ATTR_DEST: u16 = 2;
// IPVS_SVC_ATTR_*
const SVC_ATTR_AF: u16 = 1;
const SVC_ATTR_PROTOCOL: u16 = 2;
const SVC_ATTR_ADDR: u16 = 3;
const SVC_ATTR_PORT: u16 = 4;
const SVC_ATTR_FWMARK: u16 = 5;
const SVC_ATTR_SCHED_NAME: u16 = 6;
const SVC_ATTR_FLAGS: u16 = 7;
const SVC_ATTR_TIMEOUT: u16 = 8;
const SVC_ATTR_NETMASK: u16 = 9;
const SVC_ATTR_PE_NAME: u16 = 11;
// IPVS_DEST_ATTR_*
const DEST_ATTR_ADDR: u16 = 1;
const DEST_ATTR_PORT: u16 = 2;
const DEST_ATTR_FWD_METHOD: u16 = 3;
const DEST_ATTR_WEIGHT: u16 = 4;
const DEST_ATTR_U_THRESH: u16 = 5;
const DEST_ATTR_L_THRESH: u16 = 6;
const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
const DEST_ATTR_INACT_CONNS: u16 = 8;
const DEST_ATTR_ADDR_FAMILY: u16 = 11;
// IPVS_INFO_ATTR_*
const INFO_ATTR_VERSION: u16 = 1;
const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

const NLA_F_NESTED: u16 = 0x8000;

/// One attribute as bytes: its kind and value, encoded by the codec of the
/// structure it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    kind: u16,
    value: Vec<u8>,
}

impl Attr {
    fn u16(kind: u16, v: u16) -> Attr {
        Attr {
            kind,
            value: v.to_ne_bytes().to_vec(),
        }
    }

    fn be16(kind: u16, v: u16) -> Attr {
        Attr {
            kind,
            value: v.to_be_bytes().to_vec(),
        }
    }

    fn u32(kind: u16, v: u32) -> Attr {
        Attr {
            kind,
            value: v.to_ne_bytes().to_vec(),
        }
    }

    fn string(kind: u16, s: &str) -> Attr {
        let mut value = s.as_bytes().to_vec();
        value.push(0);
        Attr { kind, value }
    }

    fn address(kind: u16, a: IpAddr) -> Attr {
        // union nf_inet_addr: 16 bytes, an IPv4 address in the first four.
        let mut value = vec![0; 16];
        match a {
            IpAddr::V4(v4) => value[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => value.copy_from_slice(&v6.octets()),
        }
        Attr { kind, value }
    }

    fn nested(kind: u16, attrs: &[Attr]) -> Attr {
        let mut value = vec![0; attrs.buffer_len()];
        attrs.emit(&mut value);
        Attr {
            kind: kind | NLA_F_NESTED,
            value,
        }
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        self.value.len()
    }

    fn kind(&self) -> u16 {
        self.kind
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(&self.value);
    }
}

/// The attributes in `payload`, each as (kind without flags, value).
fn attributes(payload: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, DecodeError> {
    NlasIterator::new(payload)
        .map(|nla| {
            let nla: NlaBuffer<&[u8]> = nla?;
            Ok((nla.kind(), nla.value().to_vec()))
        })
        .collect()
}

fn fixed<const N: usize>(what: &str, value: &[u8]) -> Result<[u8; N], DecodeError> {
    value
        .get(..N)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(|| DecodeError::from(format!("{what}: {} bytes, want {N}", value.len())))
}

fn get_u16(what: &str, v: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(fixed(what, v)?))
}

fn get_be16(what: &str, v: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(fixed(what, v)?))
}

fn get_u32(what: &str, v: &[u8]) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(fixed(what, v)?))
}

fn get_string(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

fn get_address(family: Family, v: &[u8]) -> Result<IpAddr, DecodeError> {
    Ok(match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::from(fixed::<4>("address", v)?)),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(fixed::<16>("address", v)?)),
    })
}

fn family_number(f: Family) -> u16 {
    match f {
        Family::Ipv4 => AF_INET,
        Family::Ipv6 => AF_INET6,
    }
}

fn family_from(n: u16) -> Result<Family, DecodeError> {
    match n {
        AF_INET => Ok(Family::Ipv4),
        AF_INET6 => Ok(Family::Ipv6),
        other => Err(format!("unknown address family {other}").into()),
    }
}

fn protocol_number(p: Protocol) -> u16 {
    match p {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

fn protocol_from(n: u16) -> Result<Protocol, DecodeError> {
    match n {
        IPPROTO_TCP => Ok(Protocol::Tcp),
        IPPROTO_UDP => Ok(Protocol::Udp),
        IPPROTO_SCTP => Ok(Protocol::Sctp),
        other => Err(format!("unknown protocol {other}").into()),
    }
}

/// The NETMASK attribute's 4 bytes for a granularity of `prefix` bits.
fn netmask_bytes(family: Family, prefix: u8) -> [u8; 4] {
    match family {
        // A network-order mask, as ipvsadm sends inet_addr("255.255.255.0").
        Family::Ipv4 => {
            let bits = u32::from(prefix.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            mask.to_be_bytes()
        }
        // ip_vs_ctl.c compares the value with 1..128 as a number.
        Family::Ipv6 => u32::from(prefix.min(128)).to_ne_bytes(),
    }
}

fn netmask_prefix(family: Family, bytes: [u8; 4]) -> u8 {
    match family {
        Family::Ipv4 => u8::try_from(u32::from_be_bytes(bytes).leading_ones()).unwrap_or(32),
        Family::Ipv6 => u8::try_from(u32::from_ne_bytes(bytes).min(128)).unwrap_or(128),
    }
}

// ===== services and destinations =====

fn key_attrs(key: &ServiceKey) -> Vec<Attr> {
    match key {
        ServiceKey::Inet {
            protocol,
            address,
            port,
        } => vec![
            Attr::u16(SVC_ATTR_AF, family_number(Family::of(address))),
            Attr::u16(SVC_ATTR_PROTOCOL, protocol_number(*protocol)),
            Attr::address(SVC_ATTR_ADDR, *address),
            Attr::be16(SVC_ATTR_PORT, *port),
        ],
        ServiceKey::Fwmark { family, mark } => vec![
            Attr::u16(SVC_ATTR_AF, family_number(*family)),
            Attr::u32(SVC_ATTR_FWMARK, *mark),
        ],
    }
}

/// The SERVICE attribute naming `key` only (delete, destinations of).
pub fn service_key_attr(key: &ServiceKey) -> Attr {
    Attr::nested(CMD_ATTR_SERVICE, &key_attrs(key))
}

/// The SERVICE attribute with the whole entry (create, change).
pub fn service_attr(s: &Service) -> Attr {
    let family = s.key.family();
    let mut attrs = key_attrs(&s.key);
    attrs.push(Attr::string(SVC_ATTR_SCHED_NAME, &s.scheduler));
    // struct ip_vs_flags { u32 flags; u32 mask; }: the mask says which bits
    // the kernel takes from `flags`; all of them.
    let mut flags = s.flags.to_ne_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    attrs.push(Attr {
        kind: SVC_ATTR_FLAGS,
        value: flags,
    });
    attrs.push(Attr::u32(SVC_ATTR_TIMEOUT, s.timeout));
    attrs.push(Attr {
        kind: SVC_ATTR_NETMASK,
        value: netmask_bytes(family, s.netmask).to_vec(),
    });
    if let Some(pe) = &s.pe_name {
        attrs.push(Attr::string(SVC_ATTR_PE_NAME, pe));
    }
    Attr::nested(CMD_ATTR_SERVICE, &attrs)
}

/// The DEST attribute for `d` (of a service of `family`).
pub fn destination_attr(family: Family, d: &Destination) -> Attr {
    let mut attrs = vec![
        Attr::address(DEST_ATTR_ADDR, d.address),
        Attr::be16(DEST_ATTR_PORT, d.port),
        Attr::u32(DEST_ATTR_FWD_METHOD, d.forward.to_kernel()),
        Attr::u32(DEST_ATTR_WEIGHT, d.weight.min(i32::MAX.unsigned_abs())),
        Attr::u32(DEST_ATTR_U_THRESH, d.upper_threshold),
        Attr::u32(DEST_ATTR_L_THRESH, d.lower_threshold),
    ];
    // Only for a destination of the other family than its service (a
    // kernel of 4.x and later); otherwise the service's family applies.
    if Family::of(&d.address) != family {
        attrs.push(Attr::u16(
            DEST_ATTR_ADDR_FAMILY,
            family_number(Family::of(&d.address)),
        ));
    }
    Attr::nested(CMD_ATTR_DEST, &attrs)
}

/// A SERVICE attribute's value back into a [`Service`].
pub fn parse_service(value: &[u8]) -> Result<Service, DecodeError> {
    let mut family = None;
    let mut protocol = None;
    let mut address = None;
    let mut port = None;
    let mut fwmark = 0;
    let mut scheduler = String::new();
    let mut flags = 0;
    let mut timeout = 0;
    let mut netmask = None;
    let mut pe_name = None;
    for (kind, v) in attributes(value)? {
        match kind {
            SVC_ATTR_AF => family = Some(family_from(get_u16("af", &v)?)?),
            SVC_ATTR_PROTOCOL => protocol = Some(get_u16("protocol", &v)?),
            SVC_ATTR_ADDR => address = Some(v),
            SVC_ATTR_PORT => port = Some(get_be16("port", &v)?),
            SVC_ATTR_FWMARK => fwmark = get_u32("fwmark", &v)?,
            SVC_ATTR_SCHED_NAME => scheduler = get_string(&v),
            SVC_ATTR_FLAGS => flags = get_u32("flags", &v)?,
            SVC_ATTR_TIMEOUT => timeout = get_u32("timeout", &v)?,
            SVC_ATTR_NETMASK => netmask = Some(fixed::<4>("netmask", &v)?),
            SVC_ATTR_PE_NAME => pe_name = Some(get_string(&v)).filter(|s| !s.is_empty()),
            _ => {}
        }
    }
    let family = family.ok_or_else(|| DecodeError::from("service without an address family"))?;
    let key = if fwmark != 0 {
        ServiceKey::Fwmark {
            family,
            mark: fwmark,
        }
    } else {
        let (Some(protocol), Some(address), Some(port)) = (protocol, address, port) else {
            return Err("service without protocol, address and port".into());
        };
        ServiceKey::Inet {
            protocol: protocol_from(protocol)?,
            address: get_address(family, &address)?,
            port,
        }
    };
    let full = match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    Ok(Service {
        key,
        scheduler,
        flags,
        timeout,
        netmask: netmask.map_or(full, |b| netmask_prefix(family, b)),
        pe_name,
    })
}

/// A DEST attribute's value back into a destination (of a service of
/// `family`, unless the attribute names its own).
pub fn parse_destination(family: Family, value: &[u8]) -> Result<DestinationEntry, DecodeError> {
    let mut address = None;
    let mut port = None;
    let mut forward = Forward::Masq;
    let mut weight = 0;
    let mut upper = 0;
    let mut lower = 0;
    let mut active = 0;
    let mut inactive = 0;
    let mut own_family = None;
    for (kind, v) in attributes(value)? {
        match kind {
            DEST_ATTR_ADDR => address = Some(v),
            DEST_ATTR_PORT => port = Some(get_be16("port", &v)?),
            DEST_ATTR_FWD_METHOD => {
                let n = get_u32("fwd_method", &v)?;
                forward = Forward::from_kernel(n)
                    .ok_or_else(|| DecodeError::from(format!("unknown forwarding method {n}")))?;
            }
            DEST_ATTR_WEIGHT => {
                // An int in the kernel, never negative.
                weight = get_u32("weight", &v)?;
                if weight > i32::MAX.unsigned_abs() {
                    return Err(format!("weight {} is negative", weight as i32).into());
                }
            }
            DEST_ATTR_U_THRESH => upper = get_u32("u_thresh", &v)?,
            DEST_ATTR_L_THRESH => lower = get_u32("l_thresh", &v)?,
            DEST_ATTR_ACTIVE_CONNS => active = get_u32("activeconns", &v)?,
            DEST_ATTR_INACT_CONNS => inactive = get_u32("inactconns", &v)?,
            DEST_ATTR_ADDR_FAMILY => own_family = Some(family_from(get_u16("addr_family", &v)?)?),
            _ => {}
        }
    }
    let (Some(address), Some(port)) = (address, port) else {
        return Err("destination without address and port".into());
    };
    Ok(DestinationEntry {
        destination: Destination {
            address: get_address(own_family.unwrap_or(family), &address)?,
            port,
            forward,
            weight,
            upper_threshold: upper,
            lower_threshold: lower,
        },
        active_connections: active,
        inactive_connections: inactive,
    })
}

// ===== the message =====

/// One IPVS generic netlink message: a command and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub command: Command,
    pub attrs: Vec<Attr>,
}

impl IpvsMessage {
    pub fn new(command: Command, attrs: Vec<Attr>) -> IpvsMessage {
        IpvsMessage { command, attrs }
    }

    /// The SERVICE attribute's value, when there is one.
    pub fn service(&self) -> Option<&[u8]> {
        self.find(CMD_ATTR_SERVICE)
    }

    /// The DEST attribute's value, when there is one.
    pub fn destination(&self) -> Option<&[u8]> {
        self.find(CMD_ATTR_DEST)
    }

    fn find(&self, kind: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|a| a.kind & !NLA_F_NESTED == kind)
            .map(|a| a.value.as_slice())
    }

    /// The info of a `SET_INFO` answer.
    pub fn info(&self) -> Result<Info, DecodeError> {
        let mut version = None;
        let mut size = 0;
        for a in &self.attrs {
            match a.kind & !NLA_F_NESTED {
                INFO_ATTR_VERSION => version = Some(get_u32("version", &a.value)?),
                INFO_ATTR_CONN_TAB_SIZE => size = get_u32("conn_tab_size", &a.value)?,
                _ => {}
            }
        }
        Ok(Info {
            version: version.ok_or_else(|| DecodeError::from("info without a version"))?,
            connection_table_size: size,
        })
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.command.number()
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let mut attrs = Vec::new();
        for nla in NlasIterator::new(buf) {
            let nla: NlaBuffer<&[u8]> = nla?;
            attrs.push(Attr {
                kind: nla.kind() | if nla.nested_flag() { NLA_F_NESTED } else { 0 },
                value: nla.value().to_vec(),
            });
        }
        Ok(IpvsMessage {
            command: Command::from_number(header.cmd),
            attrs,
        })
    }
}

/// The decoder's property, for the fuzz target and the seeded test:
/// `bytes` as a SERVICE value (`selector` even) or a DEST value of an IPv4
/// or IPv6 service; decoding never panics, and what decodes survives an
/// encode and decode unchanged. Panics when the property fails.
pub fn check_round_trip(selector: u8, bytes: &[u8]) {
    let strip = |a: &Attr| a.value.clone();
    if selector % 2 == 0 {
        if let Ok(s) = parse_service(bytes) {
            let again = parse_service(&strip(&service_attr(&s))).ok();
            assert_eq!(again.as_ref(), Some(&s), "service round trip of {bytes:?}");
        }
    } else {
        let family = if selector % 4 == 1 {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        if let Ok(d) = parse_destination(family, bytes) {
            let again =
                parse_destination(family, &strip(&destination_attr(family, &d.destination)));
            assert_eq!(
                again.ok().map(|e| e.destination).as_ref(),
                Some(&d.destination),
                "destination round trip of {bytes:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(attr: &Attr) -> Vec<u8> {
        let mut out = vec![0; attr.buffer_len()];
        attr.emit(&mut out);
        out
    }

    fn tcp_service() -> Service {
        Service {
            key: ServiceKey::Inet {
                protocol: Protocol::Tcp,
                address: "10.0.0.1".parse().expect("ip"),
                port: 80,
            },
            scheduler: "wlc".to_owned(),
            flags: 0,
            timeout: 0,
            netmask: 32,
            pe_name: None,
        }
    }

    #[test]
    fn service_bytes_follow_ip_vs_h() {
        let bytes = emit(&service_attr(&tcp_service()));
        let mut want: Vec<u8> = Vec::new();
        // Nested SERVICE: 4 header + 8 af + 8 protocol + 20 addr + 8 port
        // + 8 sched "wlc\0" + 12 flags + 8 timeout + 8 netmask = 84.
        want.extend([84, 0, 0x01, 0x80]);
        want.extend([6, 0, 1, 0]);
        want.extend(2u16.to_ne_bytes());
        want.extend([0, 0]);
        want.extend([6, 0, 2, 0]);
        want.extend(6u16.to_ne_bytes());
        want.extend([0, 0]);
        want.extend([20, 0, 3, 0, 10, 0, 0, 1]);
        want.extend([0; 12]);
        // The port in network order: 80 = 0x0050.
        want.extend([6, 0, 4, 0, 0x00, 0x50, 0, 0]);
        want.extend([8, 0, 6, 0, b'w', b'l', b'c', 0]);
        want.extend([12, 0, 7, 0]);
        want.extend(0u32.to_ne_bytes());
        want.extend(u32::MAX.to_ne_bytes());
        want.extend([8, 0, 8, 0]);
        want.extend(0u32.to_ne_bytes());
        // The IPv4 netmask is a network-order mask: 255.255.255.255.
        want.extend([8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn fwmark_and_timeout_are_host_order() {
        let service = Service {
            key: ServiceKey::Fwmark {
                family: Family::Ipv4,
                mark: 0x0102_0304,
            },
            scheduler: "rr".to_owned(),
            flags: crate::ipvs::SVC_F_PERSISTENT,
            timeout: 360,
            netmask: 24,
            pe_name: None,
        };
        let bytes = emit(&service_attr(&service));
        let attrs = attributes(&bytes[4..]).expect("attrs");
        let get = |k: u16| {
            attrs
                .iter()
                .find(|(kind, _)| *kind == k)
                .map(|(_, v)| v.clone())
                .expect("attr")
        };
        assert_eq!(get(SVC_ATTR_FWMARK), 0x0102_0304u32.to_ne_bytes());
        assert_eq!(get(SVC_ATTR_TIMEOUT), 360u32.to_ne_bytes());
        assert_eq!(get(SVC_ATTR_NETMASK), [255, 255, 255, 0]);
        assert!(attrs.iter().all(|(k, _)| *k != SVC_ATTR_ADDR));
        assert_eq!(parse_service(&bytes[4..]).expect("parse"), service);
    }

    #[test]
    fn ipv6_service_round_trips_with_a_prefix_length_netmask() {
        let service = Service {
            key: ServiceKey::Inet {
                protocol: Protocol::Udp,
                address: "fd00::50".parse().expect("ip"),
                port: 53,
            },
            scheduler: "sh".to_owned(),
            flags: crate::ipvs::SVC_F_SCHED1 | crate::ipvs::SVC_F_SCHED2,
            timeout: 0,
            netmask: 64,
            pe_name: None,
        };
        let bytes = emit(&service_attr(&service));
        let attrs = attributes(&bytes[4..]).expect("attrs");
        let netmask = attrs
            .iter()
            .find(|(k, _)| *k == SVC_ATTR_NETMASK)
            .map(|(_, v)| v.clone());
        assert_eq!(netmask, Some(64u32.to_ne_bytes().to_vec()));
        assert_eq!(parse_service(&bytes[4..]).expect("parse"), service);
    }

    #[test]
    fn destination_bytes_and_round_trip() {
        let d = Destination {
            address: "10.0.0.11".parse().expect("ip"),
            port: 8080,
            forward: Forward::Route,
            weight: 3,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let bytes = emit(&destination_attr(Family::Ipv4, &d));
        // 4 + addr 20 + port 8 + fwd 8 + weight 8 + u 8 + l 8 = 64.
        assert_eq!(&bytes[..4], &[64, 0, 0x02, 0x80]);
        // Port 8080 = 0x1f90, network order.
        assert_eq!(&bytes[24..32], &[6, 0, 2, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(&bytes[36..40], &3u32.to_ne_bytes());
        assert_eq!(&bytes[44..48], &3u32.to_ne_bytes());
        let back = parse_destination(Family::Ipv4, &bytes[4..]).expect("parse");
        assert_eq!(back.destination, d);
    }

    #[test]
    fn a_key_only_attribute_has_no_scheduler() {
        let bytes = emit(&service_key_attr(&tcp_service().key));
        let attrs = attributes(&bytes[4..]).expect("attrs");
        let kinds: Vec<u16> = attrs.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [SVC_ATTR_AF, SVC_ATTR_PROTOCOL, SVC_ATTR_ADDR, SVC_ATTR_PORT]
        );
    }

    #[test]
    fn malformed_attributes_are_errors_not_panics() {
        // A port of one byte, an address family the kernel does not have,
        // a length running past the buffer.
        let short_port = [6, 0, 1, 0, 2, 0, 0, 0, 5, 0, 4, 0, 0x50, 0, 0, 0];
        assert!(parse_service(&short_port).is_err());
        let bad_af = [6, 0, 1, 0, 7, 0, 0, 0];
        assert!(parse_service(&bad_af).is_err());
        let overrun = [40, 0, 1, 0, 2, 0];
        assert!(parse_service(&overrun).is_err());
        assert!(parse_destination(Family::Ipv4, &[8, 0, 3, 0, 9, 0, 0, 0]).is_err());
    }

    /// The fuzz target's property, seeded: random bytes and valid
    /// encodings with random bytes changed.
    #[test]
    fn decoding_never_panics_and_round_trips() {
        let mut seed: u64 = 0x1234_5678_9abc_def0;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = [
            emit(&service_attr(&tcp_service()))[4..].to_vec(),
            emit(&destination_attr(
                Family::Ipv4,
                &Destination {
                    address: "10.0.0.11".parse().expect("ip"),
                    port: 80,
                    forward: Forward::Masq,
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                },
            ))[4..]
                .to_vec(),
        ];
        for round in 0..20_000u32 {
            let selector = (next() & 0xff) as u8;
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 96) as usize;
                (0..len).map(|_| (next() & 0xff) as u8).collect()
            } else {
                let mut b = valid[(round as usize / 2) % 2].clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % b.len();
                    b[i] = (next() & 0xff) as u8;
                }
                b
            };
            check_round_trip(selector, &bytes);
        }
    }

    #[test]
    fn netmask_prefixes_round_trip() {
        for p in [0u8, 1, 8, 24, 31, 32] {
            assert_eq!(
                netmask_prefix(Family::Ipv4, netmask_bytes(Family::Ipv4, p)),
                p
            );
        }
        for p in [1u8, 48, 64, 128] {
            assert_eq!(
                netmask_prefix(Family::Ipv6, netmask_bytes(Family::Ipv6, p)),
                p
            );
        }
    }
}
