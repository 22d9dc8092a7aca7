//! VRRP on the wire: raw IP protocol 112 sockets, one per interface and
//! address family, and the receive-side checks that decide which packets
//! reach the state machine.
//!
//! Sockets (RFC 5798 5.1.1.3 / 5.1.2.3, RFC 3768 5.2.3): the IP header is
//! built by the kernel (IP_HDRINCL off) with TTL / hop limit 255 for both
//! multicast and unicast; multicast loopback is off so a host never hears its
//! own adverts; the socket is bound to its interface (SO_BINDTODEVICE) and
//! joins each configured group there. The source address of every advert is
//! set per packet with IP_PKTINFO / IPV6_PKTINFO, so the address the peers
//! see is the instance's primary address whatever the routing table prefers
//! (the VRRPv3 checksum covers it, RFC 5798 5.2.8).
//!
//! Receive (RFC 5798 7.1): IPv4 raw sockets hand over the IP header, which
//! carries the TTL; IPv6 raw sockets do not, so the hop limit and the
//! destination come as ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO).
//! [`Received::check`] refuses a TTL other than 255, then lets
//! [`crate::packet::decode`] check length, version, type and checksum; the
//! daemon checks VRID and authentication against its instances. Each refusal
//! has a stable reason label so the status API can count it.
//!
//! The host queries the daemon needs without netlink (addresses and link
//! flags of an interface) come from getifaddrs(3).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{InterfaceFlags, if_nametoindex};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, SockaddrIn6,
    SockaddrStorage, recvmsg, sendmmsg, sendmsg, setsockopt, sockopt,
};
use std::time::Duration;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use thiserror::Error;

use crate::config::Family;
use crate::packet::{self, Advertisement, DecodeError, IPPROTO_VRRP};

/// Large enough for any VRRP packet with its IP header.
const RECV_BUFFER: usize = 2048;

/// How long a blocking receive waits before it returns to check whether
/// its reader should stop.
pub const RECV_POLL: Duration = Duration::from_millis(200);

/// The receive buffer of a VRRP socket, bytes (the kernel doubles it for
/// bookkeeping): room for a burst of a few thousand adverts.
pub const SOCKET_RECV_BUFFER: usize = 4 << 20;

#[derive(Debug, Error)]
pub enum NetworkError {
    #[error("interface {interface} not found")]
    NoInterface {
        interface: String,
        #[source]
        source: nix::Error,
    },
    #[error("cannot set up the {family} vrrp socket on {interface} ({step})")]
    Socket {
        interface: String,
        family: Family,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot send to {destination} from {source_address}")]
    Send {
        source_address: IpAddr,
        destination: IpAddr,
        #[source]
        source: io::Error,
    },
}

/// One packet as the socket delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4 header) or hop limit (IPv6 ancillary data); `None` when the
    /// kernel did not say, which is refused like a wrong value.
    pub ttl: Option<u8>,
    /// The VRRP message, IP header removed.
    pub payload: Vec<u8>,
    /// Set when the IPv4 header itself was unusable (its reason label).
    pub header_fault: Option<&'static str>,
}

/// Why a received packet never reached an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The VRID byte when the packet was long enough to carry one, so the
    /// drop can be counted on the instance it was meant for.
    pub vrid: Option<u8>,
    pub reason: &'static str,
}

impl Dropped {
    pub fn new(vrid: Option<u8>, reason: &'static str) -> Dropped {
        Dropped { vrid, reason }
    }
}

impl Received {
    /// The VRID byte, if the message is long enough to hold it.
    pub fn vrid_hint(&self) -> Option<u8> {
        self.payload.get(1).copied().filter(|v| *v != 0)
    }

    /// TTL and wire-format checks (RFC 5798 7.1 items 1-4).
    pub fn check(&self) -> Result<Advertisement, Dropped> {
        let vrid = self.vrid_hint();
        if let Some(reason) = self.header_fault {
            return Err(Dropped::new(None, reason));
        }
        // RFC 5798 7.1: the TTL / hop limit MUST be 255.
        let ttl = self.ttl.unwrap_or(0);
        packet::check_ttl(ttl).map_err(|e| Dropped::new(vrid, e.reason()))?;
        packet::decode(&self.payload, self.src, self.dst)
            .map_err(|e: DecodeError| Dropped::new(vrid, e.reason()))
    }
}

/// A raw VRRP socket on one interface for one family.
///
/// Receiving blocks (with a [`RECV_POLL`] timeout) and belongs on a thread
/// of its own; sending never blocks (`MSG_DONTWAIT`), so the daemon's main
/// loop can send from the same socket.
pub struct VrrpSocket {
    socket: Socket,
    interface: String,
    ifindex: u32,
    family: Family,
}

impl VrrpSocket {
    /// Opens the socket and joins `groups` (multicast addresses of the
    /// socket's family; others are ignored) on `interface`.
    pub fn open(
        interface: &str,
        family: Family,
        groups: &[IpAddr],
    ) -> Result<VrrpSocket, NetworkError> {
        let ifindex = if_nametoindex(interface).map_err(|source| NetworkError::NoInterface {
            interface: interface.to_owned(),
            source,
        })?;
        let fail = |step: &'static str| {
            let interface = interface.to_owned();
            move |source: io::Error| NetworkError::Socket {
                interface,
                family,
                step,
                source,
            }
        };
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let socket = Socket::new(
            domain,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(fail("socket"))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(fail("SO_BINDTODEVICE"))?;
        match family {
            Family::Ipv4 => {
                socket
                    .set_header_included_v4(false)
                    .map_err(fail("IP_HDRINCL"))?;
                socket.set_ttl_v4(255).map_err(fail("IP_TTL"))?;
                socket
                    .set_multicast_ttl_v4(255)
                    .map_err(fail("IP_MULTICAST_TTL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .map_err(fail("IP_MULTICAST_LOOP"))?;
                for group in groups {
                    if let IpAddr::V4(g) = group
                        && g.is_multicast()
                    {
                        socket
                            .join_multicast_v4_n(g, &InterfaceIndexOrAddress::Index(ifindex))
                            .map_err(fail("IP_ADD_MEMBERSHIP"))?;
                    }
                }
            }
            Family::Ipv6 => {
                socket
                    .set_unicast_hops_v6(255)
                    .map_err(fail("IPV6_UNICAST_HOPS"))?;
                socket
                    .set_multicast_hops_v6(255)
                    .map_err(fail("IPV6_MULTICAST_HOPS"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .map_err(fail("IPV6_MULTICAST_LOOP"))?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .map_err(fail("IPV6_MULTICAST_IF"))?;
                setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)
                    .map_err(|e| fail("IPV6_RECVHOPLIMIT")(io::Error::from(e)))?;
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| fail("IPV6_RECVPKTINFO")(io::Error::from(e)))?;
                for group in groups {
                    if let IpAddr::V6(g) = group
                        && g.is_multicast()
                    {
                        socket
                            .join_multicast_v6(g, ifindex)
                            .map_err(fail("IPV6_JOIN_GROUP"))?;
                    }
                }
            }
        }
        socket
            .set_read_timeout(Some(RECV_POLL))
            .map_err(fail("SO_RCVTIMEO"))?;
        // A peer with hundreds of instances sends their adverts in one
        // burst; the default buffer (about 200 packets) would drop the
        // tail and time out those instances here. As root, FORCE passes
        // net.core.rmem_max; otherwise the capped size is the best we get.
        if setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_RECV_BUFFER).is_err() {
            let _ = socket.set_recv_buffer_size(SOCKET_RECV_BUFFER);
        }
        Ok(VrrpSocket {
            socket,
            interface: interface.to_owned(),
            ifindex,
            family,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Waits for the next packet, at most [`RECV_POLL`]; `None` when none
    /// came.
    pub fn recv(&self) -> io::Result<Option<Received>> {
        match recv_one(&self.socket, self.family) {
            Ok(r) => Ok(Some(r)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one VRRP message from `src` to `dst`.
    pub fn send(&self, src: IpAddr, dst: IpAddr, message: &[u8]) -> Result<(), NetworkError> {
        let fail = |source: io::Error| NetworkError::Send {
            source_address: src,
            destination: dst,
            source,
        };
        let fd = self.socket.as_raw_fd();
        let iov = [IoSlice::new(message)];
        let ifindex = self.ifindex;
        let sent = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                let to = SockaddrIn::from(std::net::SocketAddrV4::new(d, 0));
                sendmsg(fd, &iov, &cmsg, MsgFlags::MSG_DONTWAIT, Some(&to))
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                let scope = if d.is_unicast_link_local() || d.is_multicast() {
                    ifindex
                } else {
                    0
                };
                let to = SockaddrIn6::from(std::net::SocketAddrV6::new(d, 0, 0, scope));
                sendmsg(fd, &iov, &cmsg, MsgFlags::MSG_DONTWAIT, Some(&to))
            }
            _ => Err(nix::Error::EAFNOSUPPORT),
        };
        sent.map(|_| ()).map_err(|e| fail(io::Error::from(e)))
    }

    /// Sends `messages` (destination, VRRP message) from `src` with one
    /// sendmmsg(2); returns how many the kernel took, in order (the caller
    /// sends the rest one by one, which reports their errors).
    pub fn send_batch(&self, src: IpAddr, messages: &[(IpAddr, Vec<u8>)]) -> usize {
        let fd = self.socket.as_raw_fd();
        let iovs: Vec<[IoSlice<'_>; 1]> = messages.iter().map(|(_, m)| [IoSlice::new(m)]).collect();
        let ifindex = self.ifindex;
        let sent = match src {
            IpAddr::V4(s) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                let addrs: Vec<Option<SockaddrIn>> = messages
                    .iter()
                    .map(|(d, _)| match d {
                        IpAddr::V4(d) => Some(SockaddrIn::from(std::net::SocketAddrV4::new(*d, 0))),
                        IpAddr::V6(_) => None,
                    })
                    .collect();
                if addrs.iter().any(Option::is_none) {
                    return 0;
                }
                let mut headers = MultiHeaders::<SockaddrIn>::preallocate(
                    messages.len(),
                    Some(nix::cmsg_space!(libc::in_pktinfo)),
                );
                sendmmsg(fd, &mut headers, &iovs, addrs, cmsg, MsgFlags::MSG_DONTWAIT)
                    .map(Iterator::count)
            }
            IpAddr::V6(s) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                let addrs: Vec<Option<SockaddrIn6>> = messages
                    .iter()
                    .map(|(d, _)| match d {
                        IpAddr::V6(d) => {
                            let scope = if d.is_unicast_link_local() || d.is_multicast() {
                                ifindex
                            } else {
                                0
                            };
                            Some(SockaddrIn6::from(std::net::SocketAddrV6::new(
                                *d, 0, 0, scope,
                            )))
                        }
                        IpAddr::V4(_) => None,
                    })
                    .collect();
                if addrs.iter().any(Option::is_none) {
                    return 0;
                }
                let mut headers = MultiHeaders::<SockaddrIn6>::preallocate(
                    messages.len(),
                    Some(nix::cmsg_space!(libc::in6_pktinfo)),
                );
                sendmmsg(fd, &mut headers, &iovs, addrs, cmsg, MsgFlags::MSG_DONTWAIT)
                    .map(Iterator::count)
            }
        };
        sent.unwrap_or(0)
    }
}

fn recv_one(socket: &Socket, family: Family) -> io::Result<Received> {
    let mut buf = [0u8; RECV_BUFFER];
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let fd = socket.as_raw_fd();
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let len = msg.bytes;
    let from = msg.address.and_then(|a| sockaddr_ip(&a));
    let mut ttl = None;
    let mut dst = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv6HopLimit(h) => ttl = u8::try_from(h).ok(),
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
        }
    }
    let data = buf.get(..len).unwrap_or_default();
    match family {
        Family::Ipv4 => match packet::parse_ipv4_header(data) {
            Ok((header, payload)) => Ok(Received {
                src: IpAddr::V4(header.src),
                dst: IpAddr::V4(header.dst),
                ttl: Some(header.ttl),
                payload: payload.to_vec(),
                header_fault: None,
            }),
            // A raw IPv4 socket always returns a header; a broken one is
            // refused with the codec's reason, from wherever it came.
            Err(e) => Ok(Received {
                src: from.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                ttl: None,
                payload: Vec::new(),
                header_fault: Some(e.reason()),
            }),
        },
        Family::Ipv6 => Ok(Received {
            src: from.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            dst: dst.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            ttl,
            payload: data.to_vec(),
            header_fault: None,
        }),
    }
}

fn sockaddr_ip(a: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

// ===== host queries =====

/// The addresses of every interface now, in one getifaddrs(3) call (a
/// status of 1000 instances must not read the table 1000 times).
pub fn all_interface_addresses() -> std::collections::HashMap<String, Vec<IpAddr>> {
    let mut all: std::collections::HashMap<String, Vec<IpAddr>> = std::collections::HashMap::new();
    let Ok(addrs) = getifaddrs() else {
        return all;
    };
    for a in addrs {
        if let Some(ip) = a.address.as_ref().and_then(sockaddr_ip) {
            all.entry(a.interface_name).or_default().push(ip);
        }
    }
    all
}

/// The addresses on `interface` now, in kernel order.
pub fn interface_addresses(interface: &str) -> Vec<IpAddr> {
    let Ok(addrs) = getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| a.interface_name == interface)
        .filter_map(|a| a.address.as_ref().and_then(sockaddr_ip))
        .collect()
}

/// The primary address of `interface` for `family`, skipping `exclude`
/// (the VIPs, which must never become the advert source): the first IPv4
/// address, or the IPv6 link-local address (RFC 5798 5.1.2.1).
pub fn primary_address(interface: &str, family: Family, exclude: &[IpAddr]) -> Option<IpAddr> {
    interface_addresses(interface)
        .into_iter()
        .filter(|a| !exclude.contains(a))
        .find(|a| match (family, a) {
            (Family::Ipv4, IpAddr::V4(_)) => true,
            (Family::Ipv6, IpAddr::V6(v6)) => v6.is_unicast_link_local(),
            _ => false,
        })
}

/// Whether `interface` is up and running (has carrier); `None` when it does
/// not exist.
pub fn link_up(interface: &str) -> Option<bool> {
    let addrs = getifaddrs().ok()?;
    let mut found = None;
    for a in addrs.filter(|a| a.interface_name == interface) {
        let up = a.flags.contains(InterfaceFlags::IFF_UP)
            && a.flags.contains(InterfaceFlags::IFF_RUNNING);
        found = Some(found.unwrap_or(false) || up);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Auth, Version};

    fn received(ttl: Option<u8>, payload: Vec<u8>) -> Received {
        Received {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
            ttl,
            payload,
            header_fault: None,
        }
    }

    fn good() -> Vec<u8> {
        let advert = Advertisement {
            version: Version::V3,
            vrid: 9,
            priority: 100,
            advert_interval_cs: 100,
            auth: Auth::None,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 50))],
        };
        let r = received(None, Vec::new());
        advert.encode(r.src, r.dst).expect("encode")
    }

    #[test]
    fn check_accepts_ttl_255_and_decodes() {
        let advert = received(Some(255), good()).check().expect("valid");
        assert_eq!((advert.vrid, advert.priority), (9, 100));
    }

    /// Each refusal keeps the VRID (when there is one) and names its reason.
    #[test]
    fn check_refusals_by_reason() {
        let mut bad_sum = good();
        bad_sum[6] ^= 1;
        let cases = [
            (received(Some(64), good()), Some(9), "bad_ttl"),
            (received(None, good()), Some(9), "bad_ttl"),
            (received(Some(255), bad_sum), Some(9), "bad_checksum"),
            (
                received(Some(255), good()[..5].to_vec()),
                Some(9),
                "too_short",
            ),
            (received(Some(255), vec![0x31]), None, "too_short"),
            (
                Received {
                    header_fault: Some("bad_ip_header"),
                    ..received(Some(255), good())
                },
                None,
                "bad_ip_header",
            ),
        ];
        for (packet, vrid, reason) in cases {
            assert_eq!(packet.check(), Err(Dropped::new(vrid, reason)));
        }
    }
}
