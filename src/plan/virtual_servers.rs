//! `hactl_virtual_servers`: a pair's IPVS virtual servers (keepalived's LVS
//! half), read with keepalived.conf(5)'s names so a keepalived user finds
//! the keys they know, and checked with the file and line of each mistake.
//!
//! ```yaml
//! hactl_virtual_servers:
//!   - {address: 10.0.0.50, port: 80, protocol: TCP, lb_algo: wrr, lb_kind: DR,
//!      delay_loop: 5, persistence_timeout: 300, sorry_server: "10.0.0.99:80",
//!      quorum: 1, hysteresis: 0, inhibit_on_failure: true,
//!      real_servers:
//!        - {address: 10.0.0.11, weight: 2,
//!           check: {type: HTTP_GET, path: /health, status_code: 200, retry: 2}}
//!        - {address: 10.0.0.12, check: {type: TCP_CHECK, connect_timeout: 3}}}
//!   - {fwmark: 7, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.11}]}
//! ```
//!
//! The template renders them as `virtual_server` blocks; the host's agent
//! (or keepalived) checks the rendered file again before it is used.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use super::{Resolver, did_you_mean};
use crate::inventory::{Node, Origin, Value};

const KEY: &str = "hactl_virtual_servers";

const VS_KEYS: &[&str] = &[
    "address",
    "delay_loop",
    "fwmark",
    "hysteresis",
    "inhibit_on_failure",
    "lb_algo",
    "lb_kind",
    "persistence_granularity",
    "persistence_timeout",
    "port",
    "protocol",
    "quorum",
    "real_servers",
    "sorry_server",
];

const RS_KEYS: &[&str] = &["address", "check", "inhibit_on_failure", "port", "weight"];

const CHECK_KEYS: &[&str] = &[
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "digest",
    "misc_dynamic",
    "misc_path",
    "misc_timeout",
    "path",
    "retry",
    "status_code",
    "type",
    "virtualhost",
];

const LB_ALGOS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// One virtual server of a pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerPlan {
    /// `ADDRESS PORT` or `fwmark N`: what follows `virtual_server`.
    pub target: String,
    /// The VIP address (none for a firewall mark).
    pub address: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    pub protocol: String,
    pub lb_algo: String,
    pub lb_kind: String,
    pub delay_loop: Option<u32>,
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<String>,
    pub quorum: Option<u32>,
    pub hysteresis: Option<u32>,
    /// `IP PORT` as keepalived writes it.
    pub sorry_server: Option<String>,
    pub real_servers: Vec<RealServerPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServerPlan {
    pub address: Ipv4Addr,
    pub port: Option<u16>,
    pub weight: Option<u32>,
    pub inhibit_on_failure: bool,
    pub check: Option<CheckerPlan>,
}

/// One checker; `kind` is keepalived's block name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckerPlan {
    pub kind: String,
    pub connect_timeout: Option<u32>,
    pub connect_port: Option<u16>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<u32>,
    pub path: Option<String>,
    pub status_code: Option<u16>,
    pub digest: Option<String>,
    pub virtualhost: Option<String>,
    pub misc_path: Option<String>,
    pub misc_timeout: Option<u32>,
    pub misc_dynamic: bool,
}

impl VirtualServerPlan {
    /// The name hactl-agent's status gives it (`10.0.0.50 80 TCP`,
    /// `fwmark 7`).
    pub fn agent_name(&self) -> String {
        match self.fwmark {
            Some(_) => self.target.clone(),
            None => format!("{} {}", self.target, self.protocol),
        }
    }

    /// Whether NAT forwarding is used (the LB then routes the replies:
    /// `net.ipv4.ip_forward` must be on).
    pub fn is_nat(&self) -> bool {
        self.lb_kind == "NAT"
    }
}

/// A string keepalived.conf reads as one bare word: no quote, brace,
/// comment sign, blank or control character.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['"', '\\', '{', '}', '#', '!'])
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Resolver<'_> {
    pub(super) fn virtual_servers(&mut self, node: &Node) -> Vec<VirtualServerPlan> {
        let Some(items) = node.as_seq() else {
            self.err_at(node, KEY, "must be a list of virtual servers".into());
            return Vec::new();
        };
        // The agent (and keepalived) refuse a second block for one service:
        // refuse it here, at its line, rather than render it.
        let mut first: HashMap<String, Origin> = HashMap::new();
        let mut plans = Vec::new();
        for v in items {
            let Some(plan) = self.virtual_server(v) else {
                continue;
            };
            let name = plan.agent_name();
            if let Some(at) = first.get(&name) {
                let message = format!("virtual server {name} is already defined at {at}");
                self.err_at(v, KEY, message);
                continue;
            }
            first.insert(name, v.origin.clone());
            plans.push(plan);
        }
        plans
    }

    fn unknown_keys(&mut self, node: &Node, what: &str, known: &[&str]) {
        for (k, _) in node.as_map().unwrap_or_default() {
            if !known.contains(&k.name.as_str()) {
                let hint = did_you_mean(&k.name, known);
                self.err(
                    Some(k.origin.clone()),
                    KEY,
                    format!("{what} has an unknown key `{}`{hint}", k.name),
                );
            }
        }
    }

    fn int_field(&mut self, node: &Node, field: &str, what: &str, lo: i64, hi: i64) -> Option<i64> {
        let n = node.get(field)?;
        match n.value {
            Value::Int(i) if (lo..=hi).contains(&i) => Some(i),
            _ => {
                self.err_at(
                    n,
                    KEY,
                    format!("{what}: {field} must be an integer from {lo} to {hi}"),
                );
                None
            }
        }
    }

    fn str_field(&mut self, node: &Node, field: &str, what: &str) -> Option<String> {
        let n = node.get(field)?;
        // misc_path is a command line, rendered inside quotes.
        let ok = |s: &str| match field {
            "misc_path" => super::names::command_line(s).is_ok(),
            _ => plain(s),
        };
        match n.as_str() {
            Some(s) if ok(s) => Some(s.to_string()),
            _ => {
                self.err_at(
                    n,
                    KEY,
                    format!("{what}: {field} must be a string without quotes, braces, blanks or newlines"),
                );
                None
            }
        }
    }

    fn address_field(&mut self, node: &Node, what: &str) -> Option<Ipv4Addr> {
        let n = node.get("address")?;
        match n.as_str().and_then(|s| s.parse().ok()) {
            Some(a) => Some(a),
            None => {
                self.err_at(n, KEY, format!("{what}: address must be an IPv4 address"));
                None
            }
        }
    }

    fn choice(&mut self, node: &Node, field: &str, what: &str, allowed: &[&str]) -> Option<String> {
        let n = node.get(field)?;
        match n.as_str() {
            Some(s) if allowed.contains(&s) => Some(s.to_string()),
            _ => {
                self.err_at(
                    n,
                    KEY,
                    format!("{what}: {field} must be one of {}", allowed.join(", ")),
                );
                None
            }
        }
    }

    fn virtual_server(&mut self, v: &Node) -> Option<VirtualServerPlan> {
        if v.as_map().is_none() {
            self.err_at(v, KEY, "a virtual server must be a mapping".into());
            return None;
        }
        let address = self.address_field(v, "virtual server");
        let port = self
            .int_field(v, "port", "virtual server", 1, 65535)
            .map(|p| p as u16);
        let fwmark = self
            .int_field(v, "fwmark", "virtual server", 1, i64::from(u32::MAX))
            .map(|m| m as u32);
        let what = match (address, port, fwmark) {
            (Some(a), Some(p), None) => format!("virtual server {a} {p}"),
            (None, None, Some(m)) => format!("virtual server fwmark {m}"),
            _ => {
                self.err_at(
                    v,
                    KEY,
                    "a virtual server has `address` and `port`, or `fwmark`".into(),
                );
                return None;
            }
        };
        self.unknown_keys(v, &what, VS_KEYS);
        let protocol = self
            .choice(v, "protocol", &what, &["TCP", "UDP", "SCTP"])
            .unwrap_or_else(|| "TCP".into());
        let lb_algo = self.choice(v, "lb_algo", &what, LB_ALGOS);
        let lb_kind = self.choice(v, "lb_kind", &what, &["NAT", "DR", "TUN"]);
        for (field, value) in [("lb_algo", &lb_algo), ("lb_kind", &lb_kind)] {
            if value.is_none() && v.get(field).is_none() {
                self.err_at(v, KEY, format!("{what} needs {field}"));
            }
        }
        let sorry_server = v.get("sorry_server").and_then(|s| {
            let text = s.as_str().unwrap_or_default();
            let parsed = match text.rsplit_once(':') {
                Some((a, p)) => a
                    .parse::<Ipv4Addr>()
                    .ok()
                    .zip(p.parse::<u16>().ok().filter(|p| *p > 0))
                    .map(|(a, p)| format!("{a} {p}")),
                None => text.parse::<Ipv4Addr>().ok().map(|a| a.to_string()),
            };
            if parsed.is_none() {
                self.err_at(
                    s,
                    KEY,
                    format!("{what}: sorry_server must be IP or IP:PORT"),
                );
            }
            parsed
        });
        let granularity = self.str_field(v, "persistence_granularity", &what);
        if let (Some(g), Some(n)) = (&granularity, v.get("persistence_granularity"))
            && g.parse::<IpAddr>().is_err()
        {
            self.err_at(
                n,
                KEY,
                format!("{what}: persistence_granularity must be a netmask"),
            );
        }
        let real_servers = match v.get("real_servers").map(|r| (r, r.as_seq())) {
            Some((_, Some(items))) if !items.is_empty() => {
                self.real_server_list(items, &what, port.filter(|_| fwmark.is_none()))
            }
            Some((r, _)) => {
                self.err_at(
                    r,
                    KEY,
                    format!("{what}: real_servers must be a non-empty list"),
                );
                Vec::new()
            }
            None => {
                self.err_at(v, KEY, format!("{what} has no real_servers"));
                Vec::new()
            }
        };
        let inhibit = v
            .get("inhibit_on_failure")
            .map(|n| n.value == Value::Bool(true));
        let mut real_servers: Vec<RealServerPlan> = real_servers;
        if inhibit == Some(true) {
            for rs in &mut real_servers {
                rs.inhibit_on_failure = true;
            }
        }
        Some(VirtualServerPlan {
            target: match fwmark {
                Some(m) => format!("fwmark {m}"),
                None => format!("{} {}", address?, port?),
            },
            address,
            port,
            fwmark,
            protocol,
            lb_algo: lb_algo?,
            lb_kind: lb_kind?,
            delay_loop: self
                .int_field(v, "delay_loop", &what, 1, 86_400)
                .map(|d| d as u32),
            persistence_timeout: self
                .int_field(v, "persistence_timeout", &what, 1, 2_678_400)
                .map(|d| d as u32),
            persistence_granularity: granularity,
            quorum: self
                .int_field(v, "quorum", &what, 1, i64::from(u32::MAX))
                .map(|d| d as u32),
            hysteresis: self
                .int_field(v, "hysteresis", &what, 0, i64::from(u32::MAX))
                .map(|d| d as u32),
            sorry_server,
            real_servers,
        })
    }

    /// The real servers of one virtual server. A real server is one
    /// address and port (the virtual server's port when it gives none;
    /// a firewall mark's real servers have no port of their own): a second
    /// entry for it is refused at its line, as the agent refuses it.
    fn real_server_list(
        &mut self,
        items: &[Node],
        vs: &str,
        vs_port: Option<u16>,
    ) -> Vec<RealServerPlan> {
        let mut first: HashMap<(Ipv4Addr, Option<u16>), Origin> = HashMap::new();
        let mut plans = Vec::new();
        for r in items {
            let Some(rs) = self.real_server(r, vs) else {
                continue;
            };
            let port = vs_port.and(rs.port.or(vs_port));
            if let Some(at) = first.get(&(rs.address, port)) {
                let shown = match port {
                    Some(p) => format!("{} {p}", rs.address),
                    None => rs.address.to_string(),
                };
                let message = format!("{vs}: real server {shown} is already listed at {at}");
                self.err_at(r, KEY, message);
                continue;
            }
            first.insert((rs.address, port), r.origin.clone());
            plans.push(rs);
        }
        plans
    }

    fn real_server(&mut self, r: &Node, vs: &str) -> Option<RealServerPlan> {
        if r.as_map().is_none() {
            self.err_at(r, KEY, format!("{vs}: a real server must be a mapping"));
            return None;
        }
        let Some(address) = self.address_field(r, &format!("{vs}: real server")) else {
            if r.get("address").is_none() {
                self.err_at(r, KEY, format!("{vs}: a real server needs an address"));
            }
            return None;
        };
        let what = format!("{vs}: real server {address}");
        self.unknown_keys(r, &what, RS_KEYS);
        let port = self.int_field(r, "port", &what, 1, 65535).map(|p| p as u16);
        let weight = self
            .int_field(r, "weight", &what, 0, i64::from(i32::MAX))
            .map(|w| w as u32);
        let inhibit_on_failure = match r.get("inhibit_on_failure") {
            None => false,
            Some(n) => match n.value {
                Value::Bool(b) => b,
                _ => {
                    self.err_at(
                        n,
                        KEY,
                        format!("{what}: inhibit_on_failure must be true or false"),
                    );
                    false
                }
            },
        };
        let check = r.get("check").and_then(|c| self.checker(c, &what));
        Some(RealServerPlan {
            address,
            port,
            weight,
            inhibit_on_failure,
            check,
        })
    }

    fn checker(&mut self, c: &Node, rs: &str) -> Option<CheckerPlan> {
        if c.as_map().is_none() {
            self.err_at(c, KEY, format!("{rs}: check must be a mapping with a type"));
            return None;
        }
        let kinds = ["TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK"];
        let Some(kind) = self.choice(c, "type", &format!("{rs}: check"), &kinds) else {
            if c.get("type").is_none() {
                self.err_at(
                    c,
                    KEY,
                    format!("{rs}: check needs a type ({})", kinds.join(", ")),
                );
            }
            return None;
        };
        let what = format!("{rs}: {kind}");
        self.unknown_keys(c, &what, CHECK_KEYS);
        let num = |r: &mut Self, f: &str, lo: i64, hi: i64| {
            r.int_field(c, f, &what, lo, hi).map(|n| n as u32)
        };
        let connect_timeout = num(self, "connect_timeout", 1, 3600);
        let connect_port = num(self, "connect_port", 1, 65535).map(|p| p as u16);
        let retry = num(self, "retry", 0, 1000);
        let delay_before_retry = num(self, "delay_before_retry", 0, 3600);
        let status_code = num(self, "status_code", 100, 599).map(|s| s as u16);
        let misc_timeout = num(self, "misc_timeout", 1, 3600);
        let path = self.str_field(c, "path", &what);
        let virtualhost = self.str_field(c, "virtualhost", &what);
        let misc_path = self.str_field(c, "misc_path", &what);
        let digest = self.str_field(c, "digest", &what);
        if let (Some(d), Some(n)) = (&digest, c.get("digest"))
            && !(d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.err_at(
                n,
                KEY,
                format!("{what}: digest must be 32 hexadecimal digits (an MD5)"),
            );
        }
        let misc_dynamic = c
            .get("misc_dynamic")
            .is_some_and(|n| n.value == Value::Bool(true));
        let http = kind == "HTTP_GET" || kind == "SSL_GET";
        if http && path.is_none() && c.get("path").is_none() {
            self.err_at(c, KEY, format!("{what} needs a path"));
        }
        if kind == "MISC_CHECK" && misc_path.is_none() && c.get("misc_path").is_none() {
            self.err_at(c, KEY, format!("{what} needs a misc_path"));
        }
        Some(CheckerPlan {
            kind,
            connect_timeout,
            connect_port,
            retry,
            delay_before_retry,
            path,
            status_code,
            digest: digest.map(|d| d.to_ascii_lowercase()),
            virtualhost,
            misc_path,
            misc_timeout,
            misc_dynamic,
        })
    }
}
