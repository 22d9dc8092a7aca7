//! Addresses and links over rtnetlink: the host side of holding a VIP.
//!
//! A master adds its virtual addresses to an interface and a backup removes
//! them; `track_interface` needs to know when a link goes down or comes back.
//! This module does both through an rtnetlink socket and nothing else: no
//! shelling out to `ip`, no state of its own. Adding an address that is
//! already there, or removing one that is gone, is a success that says so
//! ([`Change::Unchanged`]), because an agent that restarts after a crash
//! replays both without knowing what the kernel kept.
//!
//! The netlink socket belongs to the network namespace of the thread that
//! opens it ([`Netlink::open`], [`LinkEvents::open`]); after that it may be
//! used from anywhere. Both need a running tokio runtime, which drives the
//! connection task.
//!
//! rtnetlink breaks its API often: every type of it stays inside this file,
//! the rest of the agent sees [`Vip`], [`Link`], [`LinkEvent`] and
//! [`NetlinkError`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::{Handle, MulticastGroup};
use tokio::task::JoinHandle;

// ===== errors =====

/// What went wrong talking to the kernel, naming the interface and address.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket")]
    Open(#[source] io::Error),
    #[error("interface {interface} does not exist")]
    NoSuchInterface { interface: String },
    #[error("cannot look up interface {interface}")]
    Link {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot list the addresses of {interface}")]
    List {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot add {address}/{prefix_len} to {interface}")]
    Add {
        interface: String,
        address: IpAddr,
        prefix_len: u8,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove {address}/{prefix_len} from {interface}")]
    Remove {
        interface: String,
        address: IpAddr,
        prefix_len: u8,
        #[source]
        source: io::Error,
    },
    #[error("{address}/{prefix_len} is not a valid address for {interface}: {reason}")]
    Invalid {
        interface: String,
        address: IpAddr,
        prefix_len: u8,
        reason: &'static str,
    },
}

/// The kernel's answer as an `io::Error`, so the message reads like `ip`'s
/// ("File exists (os error 17)") and callers can match on the errno.
fn to_io(error: rtnetlink::Error) -> io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| -code.get()),
        _ => None,
    }
}

// ===== addresses =====

/// `scope` of a `virtual_ipaddress` line (`ip-address(8)` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Global,
    Site,
    Link,
    Host,
    Nowhere,
}

impl Scope {
    fn to_kernel(self) -> AddressScope {
        match self {
            Scope::Global => AddressScope::Universe,
            Scope::Site => AddressScope::Site,
            Scope::Link => AddressScope::Link,
            Scope::Host => AddressScope::Host,
            Scope::Nowhere => AddressScope::Nowhere,
        }
    }

    fn from_kernel(scope: AddressScope) -> Option<Scope> {
        match scope {
            AddressScope::Universe => Some(Scope::Global),
            AddressScope::Site => Some(Scope::Site),
            AddressScope::Link => Some(Scope::Link),
            AddressScope::Host => Some(Scope::Host),
            AddressScope::Nowhere => Some(Scope::Nowhere),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Global => "global",
            Scope::Site => "site",
            Scope::Link => "link",
            Scope::Host => "host",
            Scope::Nowhere => "nowhere",
        })
    }
}

/// A `scope` word that `ip-address(8)` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?} (expected global, site, link, host or nowhere)")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for Scope {
    type Err = UnknownScope;

    /// The names `ip` accepts; `universe` is the kernel's name for global.
    fn from_str(word: &str) -> Result<Scope, UnknownScope> {
        match word {
            "global" | "universe" => Ok(Scope::Global),
            "site" => Ok(Scope::Site),
            "link" => Ok(Scope::Link),
            "host" => Ok(Scope::Host),
            "nowhere" => Ok(Scope::Nowhere),
            other => Err(UnknownScope(other.to_owned())),
        }
    }
}

/// One `virtual_ipaddress` entry as the kernel is asked to hold it:
/// `<IPADDR>[/<MASK>] [brd <IPADDR>] [scope <SCOPE>] [label <LABEL>]
/// [-nodad] [noprefixroute]` (keepalived.conf(5)). The interface is given
/// apart, so one `Vip` can be tried on several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// IPv4 only; `None` leaves the broadcast unset, as keepalived does
    /// without `brd`.
    pub broadcast: Option<Ipv4Addr>,
    pub scope: Scope,
    /// IPv4 only; the kernel wants it to begin with the interface name
    /// (`eth0:vip`).
    pub label: Option<String>,
    /// IPv6 only: run duplicate address detection. Off by default (keepalived
    /// `-nodad` turns it on) because a VIP moving between peers is a
    /// "duplicate" on purpose and must be usable at once.
    pub dad: bool,
    /// Do not add the prefix route for the address.
    pub noprefixroute: bool,
}

impl Vip {
    /// A host address: /32 for IPv4, /128 for IPv6, global scope, which is
    /// keepalived's default for an address without a mask.
    pub fn new(address: IpAddr) -> Vip {
        let prefix_len = if address.is_ipv4() { 32 } else { 128 };
        Vip::with_prefix(address, prefix_len)
    }

    pub fn with_prefix(address: IpAddr, prefix_len: u8) -> Vip {
        Vip {
            address,
            prefix_len,
            broadcast: None,
            scope: Scope::Global,
            label: None,
            dad: false,
            noprefixroute: false,
        }
    }

    fn check(&self, interface: &str) -> Result<(), NetlinkError> {
        let invalid = |reason| NetlinkError::Invalid {
            interface: interface.to_owned(),
            address: self.address,
            prefix_len: self.prefix_len,
            reason,
        };
        let max = if self.address.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(invalid("prefix length too long"));
        }
        if self.address.is_multicast() || self.address.is_unspecified() {
            return Err(invalid("not a unicast address"));
        }
        if self.address.is_ipv6() && self.broadcast.is_some() {
            return Err(invalid("broadcast is for IPv4 only"));
        }
        if let Some(label) = &self.label {
            if self.address.is_ipv6() {
                return Err(invalid("label is for IPv4 only"));
            }
            // IFNAMSIZ - 1: the kernel copies the label into a 16-byte field.
            if label.is_empty() || label.len() > 15 {
                return Err(invalid("label must be 1 to 15 bytes"));
            }
        }
        Ok(())
    }

    /// The request message: header plus attributes, nothing the kernel would
    /// have to guess. `IFA_LOCAL` is what identifies an IPv4 address for
    /// both add and delete.
    fn message(&self, index: u32) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.family = match self.address {
            IpAddr::V4(_) => rtnetlink::packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => rtnetlink::packet_route::AddressFamily::Inet6,
        };
        message.header.prefix_len = self.prefix_len;
        message.header.scope = self.scope.to_kernel();
        message.header.index = index;
        message
            .attributes
            .push(AddressAttribute::Local(self.address));
        message
            .attributes
            .push(AddressAttribute::Address(self.address));
        if let Some(broadcast) = self.broadcast {
            message
                .attributes
                .push(AddressAttribute::Broadcast(broadcast));
        }
        if let Some(label) = &self.label {
            message
                .attributes
                .push(AddressAttribute::Label(label.clone()));
        }
        let mut flags = AddressFlags::empty();
        if self.address.is_ipv6() && !self.dad {
            flags |= AddressFlags::Nodad;
            message.header.flags |= AddressHeaderFlags::Nodad;
        }
        if self.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            message.attributes.push(AddressAttribute::Flags(flags));
        }
        message
    }
}

/// One address the kernel holds on an interface (`ip addr show dev X`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
    /// `None` for a scope number `ip` has no name for.
    pub scope: Option<Scope>,
    pub label: Option<String>,
    /// IPv6 duplicate address detection still running: not usable yet.
    pub tentative: bool,
}

impl InterfaceAddress {
    fn from_message(message: &AddressMessage) -> Option<InterfaceAddress> {
        let mut local = None;
        let mut address = None;
        let mut broadcast = None;
        let mut label = None;
        let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Broadcast(ip) => broadcast = Some(*ip),
                AddressAttribute::Label(text) => label = Some(text.clone()),
                AddressAttribute::Flags(all) => flags = *all,
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer
        // on point-to-point links and equal to it elsewhere.
        Some(InterfaceAddress {
            address: local.or(address)?,
            prefix_len: message.header.prefix_len,
            broadcast,
            scope: Scope::from_kernel(message.header.scope),
            label,
            tentative: flags.contains(AddressFlags::Tentative),
        })
    }
}

/// What an idempotent add or remove did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The kernel's state changed.
    Done,
    /// It already was as asked: the address was present (add) or absent
    /// (remove).
    Unchanged,
}

// ===== links =====

/// RFC 2863 operational state, as `IFLA_OPERSTATE` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl OperState {
    fn from_kernel(state: &State) -> OperState {
        match state {
            State::NotPresent => OperState::NotPresent,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Testing => OperState::Testing,
            State::Dormant => OperState::Dormant,
            State::Up => OperState::Up,
            _ => OperState::Unknown,
        }
    }
}

/// An interface as `ip link show` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `None` on links without a 6-byte hardware address (loopback has
    /// zeros, tunnels have none or a longer one).
    pub mac: Option<[u8; 6]>,
    pub oper_state: OperState,
    /// `IFF_UP`: administratively up (`ip link set X up`).
    pub admin_up: bool,
    /// `IFF_RUNNING`: the kernel considers the link usable (carrier and
    /// operational state up).
    pub running: bool,
}

impl Link {
    /// Up as `track_interface` means it: set up by the administrator and
    /// running. A veth whose peer is down is admin up but not running.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.running
    }

    fn from_message(message: &LinkMessage) -> Link {
        let mut name = String::new();
        let mut mac = None;
        let mut oper_state = OperState::Unknown;
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(text) => name = text.clone(),
                LinkAttribute::Address(bytes) => mac = <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                LinkAttribute::OperState(state) => oper_state = OperState::from_kernel(state),
                _ => {}
            }
        }
        Link {
            index: message.header.index,
            name,
            mac,
            oper_state,
            admin_up: message.header.flags.contains(LinkFlags::Up),
            running: message.header.flags.contains(LinkFlags::Running),
        }
    }
}

// ===== impl Netlink =====

/// A request socket: link lookups and address changes.
#[derive(Debug)]
pub struct Netlink {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace and spawns
    /// its connection task on the current tokio runtime.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Open)?;
        let connection = tokio::spawn(connection);
        Ok(Netlink { handle, connection })
    }

    /// The interface named `interface`.
    pub async fn link(&self, interface: &str) -> Result<Link, NetlinkError> {
        let mut replies = self
            .handle
            .link()
            .get()
            .match_name(interface.to_owned())
            .execute();
        let lookup_failed = |source| NetlinkError::Link {
            interface: interface.to_owned(),
            source,
        };
        match replies.try_next().await {
            Ok(Some(message)) => Ok(Link::from_message(&message)),
            Ok(None) => Err(NetlinkError::NoSuchInterface {
                interface: interface.to_owned(),
            }),
            Err(error) if errno(&error) == Some(libc_errno::ENODEV) => {
                Err(NetlinkError::NoSuchInterface {
                    interface: interface.to_owned(),
                })
            }
            Err(error) => Err(lookup_failed(to_io(error))),
        }
    }

    /// Every address on `interface`, IPv4 and IPv6.
    pub async fn addresses(&self, interface: &str) -> Result<Vec<InterfaceAddress>, NetlinkError> {
        let link = self.link(interface).await?;
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute()
            .try_collect()
            .await
            .map_err(|error| NetlinkError::List {
                interface: interface.to_owned(),
                source: to_io(error),
            })?;
        Ok(messages
            .iter()
            .filter_map(InterfaceAddress::from_message)
            .collect())
    }

    /// Whether `address` (any prefix length) is on `interface` now.
    pub async fn has_address(
        &self,
        interface: &str,
        address: IpAddr,
    ) -> Result<bool, NetlinkError> {
        let held = self.addresses(interface).await?;
        Ok(held.iter().any(|entry| entry.address == address))
    }

    /// Adds `vip` to `interface`; [`Change::Unchanged`] when the kernel
    /// already holds that address with that prefix length there.
    pub async fn add_address(&self, interface: &str, vip: &Vip) -> Result<Change, NetlinkError> {
        vip.check(interface)?;
        let link = self.link(interface).await?;
        let failed = |source| NetlinkError::Add {
            interface: interface.to_owned(),
            address: vip.address,
            prefix_len: vip.prefix_len,
            source,
        };
        // NLM_F_EXCL rather than NLM_F_REPLACE: EEXIST tells "already there"
        // apart from "added", which the agent logs.
        let mut request = self
            .handle
            .address()
            .add(link.index, vip.address, vip.prefix_len);
        *request.message_mut() = vip.message(link.index);
        match request.execute().await {
            Ok(()) => Ok(Change::Done),
            Err(error) if errno(&error) == Some(libc_errno::EEXIST) => Ok(Change::Unchanged),
            Err(error) => Err(failed(to_io(error))),
        }
    }

    /// Removes `vip` from `interface`; [`Change::Unchanged`] when it was not
    /// there (with that prefix length).
    pub async fn remove_address(&self, interface: &str, vip: &Vip) -> Result<Change, NetlinkError> {
        vip.check(interface)?;
        let link = self.link(interface).await?;
        let mut message = vip.message(link.index);
        // Delete matches on the label when one is given; the address and
        // prefix are what identify a VIP, whatever label it was added with.
        message.attributes.retain(|attribute| {
            matches!(
                attribute,
                AddressAttribute::Local(_) | AddressAttribute::Address(_)
            )
        });
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(Change::Done),
            Err(error) if errno(&error) == Some(libc_errno::EADDRNOTAVAIL) => Ok(Change::Unchanged),
            Err(error) => Err(NetlinkError::Remove {
                interface: interface.to_owned(),
                address: vip.address,
                prefix_len: vip.prefix_len,
                source: to_io(error),
            }),
        }
    }
}

/// The errno values this module tells apart, from the libc nix re-exports.
mod libc_errno {
    pub const EEXIST: i32 = nix::libc::EEXIST;
    pub const ENODEV: i32 = nix::libc::ENODEV;
    pub const EADDRNOTAVAIL: i32 = nix::libc::EADDRNOTAVAIL;
}

// ===== impl LinkEvents =====

/// A change of one link, from the kernel's `RTNLGRP_LINK` notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// New or changed link. The kernel sends one for many changes besides
    /// up/down (MTU, promiscuity, statistics): compare [`Link::is_up`] with
    /// the last known state rather than treating each event as a flap.
    Changed(Link),
    /// The link is gone (deleted, or moved to another namespace).
    Removed { index: u32, name: String },
}

impl LinkEvent {
    pub fn name(&self) -> &str {
        match self {
            LinkEvent::Changed(link) => &link.name,
            LinkEvent::Removed { name, .. } => name,
        }
    }
}

type Notifications = UnboundedReceiver<(
    NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

/// Stream of [`LinkEvent`]s for every link of the namespace the socket was
/// opened in (`ip monitor link`). Ends only if the socket fails.
#[derive(Debug)]
pub struct LinkEvents {
    notifications: Notifications,
    connection: JoinHandle<()>,
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl LinkEvents {
    /// Subscribes in the calling thread's network namespace. Events from the
    /// moment this returns are kept until read.
    pub fn open() -> Result<LinkEvents, NetlinkError> {
        let (connection, _, notifications) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
                .map_err(NetlinkError::Open)?;
        let connection = tokio::spawn(connection);
        Ok(LinkEvents {
            notifications,
            connection,
        })
    }

    /// Only the events that change whether a link is up ([`Link::is_up`])
    /// or remove it, judged against `states` (seed it with the links the
    /// caller already looked up, or leave it empty to get every link's
    /// first event).
    pub fn transitions(self, mut states: LinkStates) -> impl Stream<Item = LinkEvent> + Unpin {
        self.filter(move |event| std::future::ready(states.observe(event)))
    }
}

/// Last known up/down state per interface index: turns the kernel's chatty
/// link notifications into transitions for `track_interface`.
#[derive(Debug, Clone, Default)]
pub struct LinkStates {
    up: HashMap<u32, bool>,
}

impl LinkStates {
    /// States known from a lookup, so their first event reports only a
    /// change.
    pub fn with_links<'a>(links: impl IntoIterator<Item = &'a Link>) -> LinkStates {
        LinkStates {
            up: links
                .into_iter()
                .map(|link| (link.index, link.is_up()))
                .collect(),
        }
    }

    /// Records `event`; true when it is a transition: a link seen for the
    /// first time, a change of [`Link::is_up`], or a known link removed.
    pub fn observe(&mut self, event: &LinkEvent) -> bool {
        match event {
            LinkEvent::Changed(link) => {
                self.up.insert(link.index, link.is_up()) != Some(link.is_up())
            }
            LinkEvent::Removed { index, .. } => self.up.remove(index).is_some(),
        }
    }
}

impl Stream for LinkEvents {
    type Item = LinkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkEvent>> {
        loop {
            let Some((message, _)) = std::task::ready!(self.notifications.poll_next_unpin(cx))
            else {
                return Poll::Ready(None);
            };
            let event = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    LinkEvent::Changed(Link::from_message(&link))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    let link = Link::from_message(&link);
                    LinkEvent::Removed {
                        index: link.index,
                        name: link.name,
                    }
                }
                _ => continue,
            };
            return Poll::Ready(Some(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn scope_names_round_trip() {
        for scope in [
            Scope::Global,
            Scope::Site,
            Scope::Link,
            Scope::Host,
            Scope::Nowhere,
        ] {
            assert_eq!(scope.to_string().parse::<Scope>(), Ok(scope));
        }
        assert_eq!("universe".parse::<Scope>(), Ok(Scope::Global));
        assert_eq!(
            "galactic".parse::<Scope>().unwrap_err().to_string(),
            "unknown scope \"galactic\" (expected global, site, link, host or nowhere)"
        );
    }

    #[test]
    fn default_prefix_is_a_host_route() {
        assert_eq!(
            Vip::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))).prefix_len,
            32
        );
        assert_eq!(Vip::new(IpAddr::V6(Ipv6Addr::LOCALHOST)).prefix_len, 128);
    }

    #[test]
    fn ipv6_vip_skips_dad_unless_asked() {
        let mut vip = Vip::with_prefix("2001:db8::10".parse().unwrap(), 64);
        let message = vip.message(7);
        assert_eq!(message.header.index, 7);
        assert!(message.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(
            message
                .attributes
                .contains(&AddressAttribute::Flags(AddressFlags::Nodad))
        );
        vip.dad = true;
        let message = vip.message(7);
        assert!(!message.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(
            !message
                .attributes
                .iter()
                .any(|attribute| matches!(attribute, AddressAttribute::Flags(_)))
        );
    }

    #[test]
    fn ipv4_vip_carries_broadcast_scope_and_label() {
        let vip = Vip {
            broadcast: Some(Ipv4Addr::new(192, 0, 2, 255)),
            scope: Scope::Link,
            label: Some("eth0:vip".into()),
            ..Vip::with_prefix("192.0.2.10".parse().unwrap(), 24)
        };
        let message = vip.message(3);
        assert_eq!(message.header.prefix_len, 24);
        assert_eq!(message.header.scope, AddressScope::Link);
        let address: IpAddr = "192.0.2.10".parse().unwrap();
        for wanted in [
            AddressAttribute::Local(address),
            AddressAttribute::Address(address),
            AddressAttribute::Broadcast(Ipv4Addr::new(192, 0, 2, 255)),
            AddressAttribute::Label("eth0:vip".into()),
        ] {
            assert!(message.attributes.contains(&wanted), "missing {wanted:?}");
        }
    }

    #[test]
    fn invalid_vips_are_refused_naming_interface_and_address() {
        let cases = [
            (
                Vip::with_prefix("192.0.2.1".parse().unwrap(), 33),
                "prefix length too long",
            ),
            (
                Vip::new("224.0.0.18".parse().unwrap()),
                "not a unicast address",
            ),
            (
                Vip {
                    label: Some("eth0:a".into()),
                    ..Vip::new("2001:db8::1".parse().unwrap())
                },
                "label is for IPv4 only",
            ),
            (
                Vip {
                    label: Some("eth0:0123456789ab".into()),
                    ..Vip::new("192.0.2.1".parse().unwrap())
                },
                "label must be 1 to 15 bytes",
            ),
        ];
        for (vip, reason) in cases {
            let error = vip.check("eth9").unwrap_err();
            let text = error.to_string();
            assert!(text.contains("eth9"), "{text}");
            assert!(text.contains(&vip.address.to_string()), "{text}");
            assert!(text.ends_with(reason), "{text}");
        }
    }

    fn link(index: u32, up: bool) -> Link {
        Link {
            index,
            name: format!("eth{index}"),
            mac: None,
            oper_state: if up { OperState::Up } else { OperState::Down },
            admin_up: true,
            running: up,
        }
    }

    #[test]
    fn link_states_report_transitions_only() {
        let mut states = LinkStates::with_links(&[link(1, true)]);
        let script = [
            (
                LinkEvent::Changed(link(1, true)),
                false,
                "unchanged, e.g. an MTU change",
            ),
            (LinkEvent::Changed(link(1, false)), true, "carrier lost"),
            (LinkEvent::Changed(link(1, false)), false, "still down"),
            (LinkEvent::Changed(link(1, true)), true, "back up"),
            (
                LinkEvent::Changed(link(2, false)),
                true,
                "first sight of eth2",
            ),
            (
                LinkEvent::Removed {
                    index: 2,
                    name: "eth2".into(),
                },
                true,
                "known link removed",
            ),
            (
                LinkEvent::Removed {
                    index: 2,
                    name: "eth2".into(),
                },
                false,
                "removed twice",
            ),
        ];
        for (event, transition, why) in script {
            assert_eq!(states.observe(&event), transition, "{why}: {event:?}");
        }
    }

    #[test]
    fn link_up_needs_admin_up_and_running() {
        let mut message = LinkMessage::default();
        message.header.index = 4;
        message.header.flags = LinkFlags::Up;
        message
            .attributes
            .push(LinkAttribute::IfName("eth0".into()));
        message
            .attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]));
        message
            .attributes
            .push(LinkAttribute::OperState(State::LowerLayerDown));
        let link = Link::from_message(&message);
        assert_eq!(link.name, "eth0");
        assert_eq!(link.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(link.oper_state, OperState::LowerLayerDown);
        assert!(!link.is_up());
        message.header.flags = LinkFlags::Up | LinkFlags::Running;
        assert!(Link::from_message(&message).is_up());
    }
}
