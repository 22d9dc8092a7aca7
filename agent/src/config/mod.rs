//! The keepalived.conf model: what a parsed config means, typed.
//!
//! hactl renders keepalived.conf and the agent reads the same file, so this
//! module is the contract between them. It is built in three steps, one file
//! each: [`lexer`] turns files (following `include` globs) into tokens that
//! know their file and line, [`parse`] (with `vrrp.rs` and
//! `virtual_server.rs`) turns the keyword tree into this model with keyword
//! tables per block, [`validate`] runs the checks that need the
//! whole file (names that refer to each other, VRID clashes). Errors are
//! collected, never stopped at the first ([`error`]).
//!
//! Values keep keepalived's meaning (keepalived.conf(5)): durations are
//! [`Duration`]s, addresses are [`IpAddr`] / [`IpPrefix`], and the VRRP
//! password is a [`Secret`] that never prints itself.

pub mod error;
pub mod fuzz;
pub mod keepalived_test;
pub mod lexer;
pub mod parse;
pub mod validate;
mod virtual_server;
mod vrrp;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

pub use error::{ConfigError, Diagnostic, Origin, Severity};

/// A config that parsed without errors, with the warnings it produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Read `path` (and its includes) and build the model.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

/// Build the model from `text` as if it were the file `path`: includes are
/// resolved relative to the directory of `path`, diagnostics name `path`.
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let mut diagnostics = Vec::new();
    let tokens = lexer::lex_main(text, path, &mut diagnostics);
    let tree = parse::build_tree(tokens, &mut diagnostics);
    let config = parse::build_config(&tree, &mut diagnostics);
    validate::check(&config, &mut diagnostics);
    diagnostics
        .sort_by(|a, b| (&a.origin.file, a.origin.line).cmp(&(&b.origin.file, b.origin.line)));
    if diagnostics.iter().any(Diagnostic::is_error) {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })
    } else {
        Ok(Loaded {
            config,
            warnings: diagnostics,
        })
    }
}

// ===== the model =====

/// A whole keepalived.conf.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    pub global_defs: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub vrrp_sync_groups: Vec<SyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    pub vrrp_mcast_group4: Option<Ipv4Addr>,
    pub vrrp_mcast_group6: Option<Ipv6Addr>,
    /// The default VRRP version of instances that do not set `version`.
    pub vrrp_version: Option<u8>,
    pub script_user: Option<ScriptUser>,
    pub enable_script_security: bool,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<SmtpServer>,
    #[serde(serialize_with = "opt_secs")]
    pub smtp_connect_timeout: Option<Duration>,
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_garp_master_delay: Option<Duration>,
    pub vrrp_garp_master_repeat: Option<u32>,
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_garp_master_refresh: Option<Duration>,
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_garp_interval: Option<Duration>,
    #[serde(serialize_with = "opt_secs")]
    pub vrrp_gna_interval: Option<Duration>,
    pub vrrp_skip_check_adv_addr: bool,
    pub vrrp_strict: bool,
    /// `vrrp_iptables [IN_CHAIN [OUT_CHAIN]]`: `Some` when present.
    pub vrrp_iptables: Option<Vec<String>>,
    /// global `smtp_alert` / `smtp_alert_vrrp`: the default of the
    /// instances' `smtp_alert` (`smtp_alert_vrrp` wins for VRRP).
    pub smtp_alert: Option<bool>,
    pub smtp_alert_vrrp: Option<bool>,
    /// Ours: `metrics_listen ADDRESS:PORT` opens the Prometheus listener
    /// (off when absent).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `vrrp_priority -20..19`: the nice value of the VRRP threads.
    pub vrrp_priority: Option<i32>,
    /// `vrrp_rt_priority 1..99`: SCHED_RR at this priority for the VRRP
    /// threads; 0 (ours): SCHED_OTHER. See `daemon::realtime` for the
    /// default when unset.
    pub vrrp_rt_priority: Option<u8>,
    /// `vrrp_no_swap`: lock the daemon's memory (mlockall).
    pub vrrp_no_swap: bool,
    /// `vrrp_rlimit_rttime >=2`: RLIMIT_RTTIME in microseconds while
    /// real-time (keepalived's default 10000).
    pub vrrp_rlimit_rttime: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmtpServer {
    pub host: String,
    pub port: Option<u16>,
}

/// `vrrp_script NAME { ... }`: a command run periodically; its result moves
/// the priority of the instances that track it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    #[serde(skip)]
    pub origin: Origin,
    pub script: String,
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    #[serde(serialize_with = "opt_secs")]
    pub timeout: Option<Duration>,
    pub weight: i32,
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<ScriptUser>,
}

/// `vrrp_sync_group NAME { group { ... } }`: instances that change state
/// together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    #[serde(skip)]
    pub origin: Origin,
    pub group: Vec<Named>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify: Option<String>,
}

/// A name that refers to another block, with the line that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Named {
    pub name: String,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    Master,
    Backup,
}

impl fmt::Display for InitialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InitialState::Master => "MASTER",
            InitialState::Backup => "BACKUP",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// `vrrp_instance NAME { ... }`: one virtual router.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    #[serde(skip)]
    pub origin: Origin,
    pub state: InitialState,
    pub interface: String,
    pub virtual_router_id: u8,
    #[serde(skip)]
    pub vrid_origin: Origin,
    pub priority: u8,
    /// The VRRP version on the wire: `version`, else global `vrrp_version`,
    /// else 2; IPv6 instances always use 3.
    pub version: u8,
    /// The address family of the VIPs (all VIPs of an instance share one).
    pub family: Family,
    #[serde(serialize_with = "secs")]
    pub advert_int: Duration,
    pub nopreempt: bool,
    #[serde(serialize_with = "opt_secs")]
    pub preempt_delay: Option<Duration>,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualAddress>,
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    pub track_script: Vec<TrackScript>,
    pub track_interface: Vec<TrackInterface>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    pub notify: Option<String>,
    /// `None`: the global `smtp_alert_vrrp` / `smtp_alert` decides.
    pub smtp_alert: Option<bool>,
    pub mcast_src_ip: Option<IpAddr>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    /// `use_vmac [NAME]`: `Some(None)` without a name.
    pub use_vmac: Option<Option<String>>,
    #[serde(serialize_with = "opt_secs")]
    pub garp_master_delay: Option<Duration>,
    pub garp_master_repeat: Option<u32>,
    #[serde(serialize_with = "opt_secs")]
    pub garp_master_refresh: Option<Duration>,
    pub accept: bool,
    pub dont_track_primary: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    Pass,
    Ah,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// At most 8 bytes: RFC 3768 5.3.11 carries 8 octets of password, and a
    /// longer one is truncated as keepalived does.
    pub auth_pass: Secret,
}

/// A password. It prints and serializes as `<redacted>`; only
/// [`Secret::expose`] gives the value, for the packet encoder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// One line of `virtual_ipaddress`: `ADDR[/LEN] [brd X] [dev IF] [scope S]
/// [label L]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualAddress {
    pub address: IpPrefix,
    pub brd: Option<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    pub name: String,
    #[serde(skip)]
    pub origin: Origin,
    /// Overrides the script's own weight.
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    pub weight: Option<i32>,
}

/// An address with a prefix length, `10.0.0.1/24` or `2001:db8::1/64`.
/// Without `/LEN` the length is the full address (32 or 128), as keepalived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("invalid address '{0}'")]
    Address(String),
    #[error("invalid prefix length '{0}'")]
    Length(String),
    #[error("prefix length {len} is longer than {max}")]
    TooLong { len: u8, max: u8 },
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| PrefixError::Address(addr_text.to_string()))?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let len = match len_text {
            None => max,
            Some(l) => {
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(PrefixError::Length(l.to_string()));
                }
                let len: u8 = l.parse().map_err(|_| PrefixError::Length(l.to_string()))?;
                if len > max {
                    return Err(PrefixError::TooLong { len, max });
                }
                len
            }
        };
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for IpPrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `virtual_server IP PORT | fwmark N | group NAME { ... }`: an IPVS
/// service (a group: one per member), its real servers and checkers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub target: VsTarget,
    #[serde(skip)]
    pub origin: Origin,
    /// Seconds between checks of every checker below (keepalived: 60).
    #[serde(serialize_with = "opt_secs")]
    pub delay_loop: Option<Duration>,
    pub lb_algo: String,
    pub lb_kind: LbKind,
    /// Seconds; `persistence_timeout` without a value means keepalived's 360.
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity`: a netmask (IPv4) or prefix length (IPv6),
    /// kept as the prefix length.
    pub persistence_granularity: Option<u8>,
    pub protocol: Protocol,
    /// `ip_family inet|inet6`: the family of a fwmark service (else its
    /// real servers').
    pub ip_family: Option<Family>,
    /// `ops`: one-packet scheduling (UDP).
    pub ops: bool,
    pub sorry_server: Option<Endpoint>,
    /// `sorry_server_inhibit`: the sorry server stays with weight 0 while
    /// unused instead of being removed.
    pub sorry_server_inhibit: bool,
    /// Minimum total weight of the live real servers (keepalived: 1).
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// `alpha`: real servers start down until a check passes.
    pub alpha: bool,
    /// `omega`: quorum_down and notify_down also run at shutdown.
    pub omega: bool,
    pub virtualhost: Option<String>,
    pub real_servers: Vec<RealServer>,
}

/// What a `virtual_server` line names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VsTarget {
    Inet { address: IpAddr, port: u16 },
    Fwmark { mark: u32 },
    Group { name: String },
}

impl fmt::Display for VsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsTarget::Inet { address, port } => write!(f, "{address} {port}"),
            VsTarget::Fwmark { mark } => write!(f, "fwmark {mark}"),
            VsTarget::Group { name } => write!(f, "group {name}"),
        }
    }
}

/// `virtual_server_group NAME { IP[-LAST] PORT ... fwmark N ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    #[serde(skip)]
    pub origin: Origin,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GroupMember {
    /// `10.0.0.1 80`, or a range of the last part: `10.0.0.1-10 80`.
    Inet {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LbKind {
    Nat,
    Dr,
    Tun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for LbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LbKind::Nat => "NAT",
            LbKind::Dr => "DR",
            LbKind::Tun => "TUN",
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub address: IpAddr,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub address: IpAddr,
    pub port: u16,
    /// keepalived: 1.
    pub weight: Option<u32>,
    pub inhibit_on_failure: bool,
    /// `lvs_method`: a forwarding method of its own.
    pub lb_kind: Option<LbKind>,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Overrides the virtual server's.
    #[serde(serialize_with = "opt_secs")]
    pub delay_loop: Option<Duration>,
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum HealthCheck {
    #[serde(rename = "TCP_CHECK")]
    Tcp(CheckCommon),
    /// HTTP_GET, or SSL_GET when `tls`.
    #[serde(rename = "HTTP_GET")]
    Http {
        #[serde(flatten)]
        common: CheckCommon,
        urls: Vec<HttpUrl>,
        tls: bool,
        virtualhost: Option<String>,
    },
    #[serde(rename = "MISC_CHECK")]
    Misc {
        #[serde(flatten)]
        common: CheckCommon,
        misc_path: String,
        #[serde(serialize_with = "opt_secs")]
        misc_timeout: Option<Duration>,
        /// Exit codes 2..=255 set the weight to code - 2.
        misc_dynamic: bool,
        user: Option<ScriptUser>,
    },
}

impl HealthCheck {
    pub fn common(&self) -> &CheckCommon {
        match self {
            HealthCheck::Tcp(c) => c,
            HealthCheck::Http { common, .. } | HealthCheck::Misc { common, .. } => common,
        }
    }

    /// keepalived's block name.
    pub fn kind(&self) -> &'static str {
        match self {
            HealthCheck::Tcp(_) => "TCP_CHECK",
            HealthCheck::Http { tls: false, .. } => "HTTP_GET",
            HealthCheck::Http { tls: true, .. } => "SSL_GET",
            HealthCheck::Misc { .. } => "MISC_CHECK",
        }
    }
}

/// Keywords every checker shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckCommon {
    #[serde(serialize_with = "opt_secs")]
    pub connect_timeout: Option<Duration>,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub retry: Option<u32>,
    #[serde(serialize_with = "opt_secs")]
    pub delay_before_retry: Option<Duration>,
    /// Overrides the real server's and virtual server's.
    #[serde(serialize_with = "opt_secs")]
    pub delay_loop: Option<Duration>,
    /// A random delay of up to this long before the first check.
    #[serde(serialize_with = "opt_secs")]
    pub warmup: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpUrl {
    pub path: String,
    /// Inclusive ranges; `status_code 200` is `[(200, 200)]`.
    pub status_code: Vec<(u16, u16)>,
    pub digest: Option<String>,
    pub virtualhost: Option<String>,
}

// ===== serde helpers =====

/// Durations serialize as seconds (a number), the unit keepalived.conf uses.
fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => secs(d, s),
        None => s.serialize_none(),
    }
}
