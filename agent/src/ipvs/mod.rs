//! IPVS, the kernel's layer-4 load balancer, as the agent sees it: services
//! and their destinations ([`Service`], [`Destination`]), the generic
//! netlink messages that carry them ([`wire`]) and the socket that sends
//! them ([`client::Ipvs`]).
//!
//! The types here are the kernel's table, not the config: a
//! `virtual_server` becomes one or more [`Service`]s (a group makes one per
//! member) and its `real_server`s [`Destination`]s; [`crate::lvs`] decides
//! which. Field meanings follow `include/uapi/linux/ip_vs.h` and
//! ipvsadm(8): a service is found by protocol, address and port, or by
//! firewall mark; a destination by address and port within its service.
//! No crate does this on the netlink stack the agent already uses
//! (netlink-packet-core 0.9, netlink-sys 0.9), hence this module.

pub mod client;
pub mod wire;

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use client::{Ipvs, IpvsError};

use crate::config::{Family, Protocol};

/// How a service is found (`ip_vs.h`: protocol + address + port, or the
/// firewall mark when it is non-zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    Inet {
        protocol: Protocol,
        address: IpAddr,
        port: u16,
    },
    Fwmark {
        family: Family,
        mark: u32,
    },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Inet { address, .. } => Family::of(address),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// As ipvsadm -Ln names it: `TCP 10.0.0.1:80`, `FWM 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                address: IpAddr::V6(a),
                port,
            } => write!(f, "{protocol} [{a}]:{port}"),
            ServiceKey::Inet {
                protocol,
                address,
                port,
            } => write!(f, "{protocol} {address}:{port}"),
            ServiceKey::Fwmark {
                family: Family::Ipv6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
            ServiceKey::Fwmark { mark, .. } => write!(f, "FWM {mark}"),
        }
    }
}

/// `IP_VS_SVC_F_PERSISTENT`: connections of one client stick to one
/// destination for `timeout` seconds.
pub const SVC_F_PERSISTENT: u32 = 0x0001;
/// `IP_VS_SVC_F_HASHED`: set by the kernel on every service in its table.
pub const SVC_F_HASHED: u32 = 0x0002;
/// `IP_VS_SVC_F_ONEPACKET`: one-packet scheduling (keepalived `ops`).
pub const SVC_F_ONEPACKET: u32 = 0x0004;
/// `IP_VS_SVC_F_SCHED1..3`: scheduler flags (sh/mh: fallback, port).
pub const SVC_F_SCHED1: u32 = 0x0008;
pub const SVC_F_SCHED2: u32 = 0x0010;
pub const SVC_F_SCHED3: u32 = 0x0020;

/// One IPVS service: what `ipvsadm -A` creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wlc`, ...), at most 15 bytes.
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` bits the agent sets (never [`SVC_F_HASHED`]).
    pub flags: u32,
    /// Persistence timeout in seconds (0 when not persistent).
    pub timeout: u32,
    /// Persistence granularity as a prefix length: 32 (IPv4) or 128
    /// (IPv6) means per client address.
    pub netmask: u8,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
}

/// `IP_VS_CONN_F_*` forwarding methods (`ip_vs.h`, ipvsadm's -m/-g/-i).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// NAT (`IP_VS_CONN_F_MASQ`, 0).
    Masq,
    /// Local node (1).
    Local,
    /// IP-in-IP tunnel (`IP_VS_CONN_F_TUNNEL`, 2).
    Tunnel,
    /// Direct routing (`IP_VS_CONN_F_DROUTE`, 3).
    Route,
    /// Bypass (4).
    Bypass,
}

impl Forward {
    pub fn to_kernel(self) -> u32 {
        match self {
            Forward::Masq => 0,
            Forward::Local => 1,
            Forward::Tunnel => 2,
            Forward::Route => 3,
            Forward::Bypass => 4,
        }
    }

    /// From the kernel's value, masked with `IP_VS_CONN_F_FWD_MASK`.
    pub fn from_kernel(value: u32) -> Option<Forward> {
        match value & 0x7 {
            0 => Some(Forward::Masq),
            1 => Some(Forward::Local),
            2 => Some(Forward::Tunnel),
            3 => Some(Forward::Route),
            4 => Some(Forward::Bypass),
            _ => None,
        }
    }
}

impl fmt::Display for Forward {
    /// ipvsadm -Ln's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel => "Tunnel",
            Forward::Route => "Route",
            Forward::Bypass => "Bypass",
        })
    }
}

/// One destination (real server) of a service: what `ipvsadm -a` adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub address: IpAddr,
    pub port: u16,
    pub forward: Forward,
    /// 0 keeps the destination but sends it no new connections; the
    /// kernel takes 0..=i32::MAX.
    pub weight: u32,
    /// Connection thresholds (0: none).
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

impl Destination {
    /// Address and port: what identifies it within its service.
    pub fn endpoint(&self) -> (IpAddr, u16) {
        (self.address, self.port)
    }
}

/// A destination as the kernel reports it, with its connection counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationEntry {
    pub destination: Destination,
    pub active_connections: u32,
    pub inactive_connections: u32,
}

/// `IPVS_CMD_GET_INFO`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `major << 16 | minor << 8 | patch` (1.2.1 is 0x010201).
    pub version: u32,
    pub connection_table_size: u32,
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{} (size={})",
            self.version >> 16,
            (self.version >> 8) & 0xff,
            self.version & 0xff,
            self.connection_table_size
        )
    }
}
