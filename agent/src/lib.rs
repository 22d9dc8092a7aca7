//! hactl-agent: the VRRP (v2 and v3) and IPVS daemon behind hactl.
//!
//! The library holds everything that decides: the keepalived.conf model
//! ([`config`]), the wire format ([`packet`]) and the RFC state machine
//! ([`instance`]). None of it touches a socket or the real clock, so tests
//! drive it with byte vectors and a virtual clock; the binary wires it to the
//! network.

pub mod check;
pub mod config;
pub mod daemon;
pub mod email;
pub mod glue;
pub mod gratuitous;
pub mod instance;
pub mod ipvs;
pub mod lvs;
pub mod metrics;
pub mod netlink;
pub mod network;
pub mod notify;
pub mod packet;
pub mod router;
pub mod script_security;
pub mod sim;
pub mod status;
// The one module allowed `unsafe` (see its doc).
#[allow(unsafe_code)]
mod sys;
pub mod track;
