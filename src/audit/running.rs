//! A host's running configuration as the audit compares it: the
//! keepalived.conf read from the host, reduced to what peers must agree on
//! (VRID, version, advert interval, multicast group, authentication, VIPs)
//! and what pairs on one segment must not share (VRID, group).
//!
//! The file is parsed on the controller with the agent's own parser
//! (`hactl_agent::config`), but without the checks that only make sense on
//! the host itself (does the check script exist, does the script user
//! exist): the controller is not the host. `include` lines are not followed
//! (the included files live on the host); a rendered config has none.
//!
//! The password never leaves this module: authentication is kept as a
//! salted SHA-256 digest that is only ever compared, never printed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use hactl_agent::config::{AuthType, Config, Diagnostic, lexer, parse};
use sha2::{Digest, Sha256};

/// The group VRRP uses when `vrrp_mcast_group4` is not set (RFC 3768 5.2.2).
pub const DEFAULT_MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// Where parsing pretends the file lives: a directory that does not exist
/// on the controller, so an `include` can never read a controller file.
const PARSE_ROOT: &str = "/nonexistent/hactl-audit";

/// One host's keepalived.conf, reduced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunningConfig {
    pub instances: Vec<RunningInstance>,
}

impl RunningConfig {
    pub fn instance(&self, name: &str) -> Option<&RunningInstance> {
        self.instances.iter().find(|i| i.name == name)
    }
}

/// One `vrrp_instance` of a running config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub advert_int: Duration,
    /// The multicast group adverts go to; `None` with unicast peers.
    pub mcast_group: Option<IpAddr>,
    pub auth: AuthDigest,
    /// `ADDR/LEN`, sorted.
    pub vips: Vec<String>,
}

/// Authentication reduced to something comparable: `None` without
/// authentication, else a salted digest of type and password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthDigest(Option<[u8; 32]>);

impl AuthDigest {
    pub fn none() -> AuthDigest {
        AuthDigest(None)
    }

    pub fn of(kind: &str, password: &str) -> AuthDigest {
        let mut hash = Sha256::new();
        hash.update(b"hactl-audit-auth\0");
        hash.update(kind.as_bytes());
        hash.update(b"\0");
        hash.update(password.as_bytes());
        AuthDigest(Some(hash.finalize().into()))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for AuthDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() { "<auth>" } else { "<none>" })
    }
}

/// Why a running config cannot be compared. Only counts and line numbers:
/// a diagnostic's text could quote a value from the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{count} error(s) in the file, the first at line {line}")]
pub struct RunningConfigError {
    pub count: usize,
    pub line: u32,
}

/// Parses the text of a host's config file (`path` as the host names it).
pub fn parse_running(text: &str, path: &str) -> Result<RunningConfig, RunningConfigError> {
    let fake = Path::new(PARSE_ROOT).join(path.trim_start_matches('/'));
    let mut diagnostics = Vec::new();
    let tokens = lexer::lex_main(text, &fake, &mut diagnostics);
    let tree = parse::build_tree(tokens, &mut diagnostics);
    let config = parse::build_config(&tree, &mut diagnostics);
    let errors: Vec<&Diagnostic> = diagnostics
        .iter()
        .filter(|d| d.is_error() && !host_dependent(d))
        .collect();
    if let Some(first) = errors.iter().map(|d| d.origin.line).min() {
        return Err(RunningConfigError {
            count: errors.len(),
            line: first,
        });
    }
    Ok(reduce(&config))
}

/// Errors about the host's own files and accounts, which the controller
/// cannot judge.
fn host_dependent(d: &Diagnostic) -> bool {
    d.message.contains("does not exist")
}

fn reduce(config: &Config) -> RunningConfig {
    let group = config
        .global_defs
        .vrrp_mcast_group4
        .unwrap_or(DEFAULT_MCAST_GROUP);
    let instances = config
        .vrrp_instances
        .iter()
        .map(|i| {
            let mut vips: Vec<String> = i
                .virtual_ipaddress
                .iter()
                .map(|v| format!("{}/{}", v.address.addr, v.address.len))
                .collect();
            vips.sort();
            let group = match (i.unicast_peer.is_empty(), i.family) {
                (false, _) => None,
                (true, hactl_agent::config::Family::Ipv4) => Some(IpAddr::V4(group)),
                (true, hactl_agent::config::Family::Ipv6) => config
                    .global_defs
                    .vrrp_mcast_group6
                    .map(IpAddr::V6)
                    .or(Some(IpAddr::V6(std::net::Ipv6Addr::new(
                        0xff02, 0, 0, 0, 0, 0, 0, 0x12,
                    )))),
            };
            let auth = match &i.authentication {
                None => AuthDigest::none(),
                Some(a) => AuthDigest::of(
                    match a.auth_type {
                        AuthType::Pass => "PASS",
                        AuthType::Ah => "AH",
                    },
                    a.auth_pass.expose(),
                ),
            };
            RunningInstance {
                name: i.name.clone(),
                interface: i.interface.clone(),
                vrid: i.virtual_router_id,
                version: i.version,
                advert_int: i.advert_int,
                mcast_group: group,
                auth,
                vips,
            }
        })
        .collect();
    RunningConfig { instances }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "global_defs {\n    vrrp_mcast_group4 224.0.0.160\n    script_user nobody-here\n}\nvrrp_script chk {\n    script \"/no/such/check.sh\"\n    interval 1\n}\nvrrp_instance www {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    advert_int 2\n    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }\n    virtual_ipaddress {\n        10.0.0.100/24 dev eth0\n    }\n    track_script {\n        chk\n    }\n}\n";

    #[test]
    fn a_rendered_config_reduces_to_what_peers_compare() {
        let running = parse_running(CONFIG, "/etc/hactl/keepalived.conf").expect("parses");
        let www = running.instance("www").expect("www");
        assert_eq!(www.vrid, 51);
        assert_eq!(www.version, 2);
        assert_eq!(www.advert_int, Duration::from_secs(2));
        assert_eq!(www.mcast_group, Some("224.0.0.160".parse().unwrap()));
        assert_eq!(www.vips, ["10.0.0.100/24"]);
        assert_eq!(www.auth, AuthDigest::of("PASS", "s3cret"));
        assert_ne!(www.auth, AuthDigest::of("PASS", "other"));
        let debug = format!("{running:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn defaults_and_unicast() {
        let text = "vrrp_instance a {\n    interface eth0\n    virtual_router_id 7\n    priority 100\n    unicast_peer {\n        10.0.0.2\n    }\n    virtual_ipaddress {\n        10.0.0.9/24\n    }\n}\nvrrp_instance b {\n    interface eth0\n    virtual_router_id 8\n    priority 100\n    virtual_ipaddress {\n        10.0.0.10/24\n    }\n}\n";
        let running = parse_running(text, "/etc/keepalived/keepalived.conf").expect("parses");
        assert_eq!(running.instance("a").unwrap().mcast_group, None);
        assert_eq!(
            running.instance("b").unwrap().mcast_group,
            Some(IpAddr::V4(DEFAULT_MCAST_GROUP))
        );
        assert!(!running.instance("b").unwrap().auth.is_set());
    }

    #[test]
    fn a_broken_file_reports_count_and_line_only() {
        let text = "vrrp_instance www {\n    interface eth0\n    virtual_router_id 300\n    priority 100\n    authentication {\n        auth_type PASS\n        auth_pass topsecret extra\n    }\n    virtual_ipaddress {\n        10.0.0.1/24\n    }\n}\n";
        let err = parse_running(text, "/etc/hactl/keepalived.conf").expect_err("invalid");
        assert_eq!(err.line, 3);
        assert!(err.count >= 1);
        assert!(!err.to_string().contains("topsecret"));
    }
}
