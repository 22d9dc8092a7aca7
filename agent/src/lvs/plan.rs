//! From the config model to what the LVS half runs: per `virtual_server`
//! the IPVS services it stands for (a group: one per member address and
//! firewall mark), its real servers as destinations with their configured
//! weights, the sorry server, the quorum settings and every checker with
//! its timing, keepalived's defaults filled in (keepalived.conf(5)).
//!
//! Pure: no socket, no clock. The pool ([`super::pool`]) decides which of
//! these destinations are in the table at any moment.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::{
    Config, Family, GroupMember, HealthCheck, HttpUrl, LbKind, ScriptUser, VirtualServer, VsTarget,
};
use crate::ipvs::{Destination, Forward, SVC_F_ONEPACKET, SVC_F_PERSISTENT, Service, ServiceKey};

/// keepalived's `delay_loop` default.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's `delay_before_retry` default.
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// keepalived's `retry` default (MISC_CHECK: 0).
pub const DEFAULT_RETRY: u32 = 1;

/// One `virtual_server` ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct VsPlan {
    /// As the config names it (`10.0.0.50 80`, `fwmark 7`, `group web`),
    /// with the protocol for an address: the name in logs and status.
    pub name: String,
    pub services: Vec<Service>,
    pub real_servers: Vec<RsPlan>,
    pub sorry: Option<Destination>,
    pub sorry_inhibit: bool,
    /// The quorum in force: keepalived lowers a `quorum` above the total
    /// weight of the real servers to that total.
    pub quorum: u32,
    /// As configured, when it was lowered.
    pub quorum_configured: Option<u32>,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub alpha: bool,
    pub omega: bool,
}

/// One `real_server`.
#[derive(Debug, Clone, PartialEq)]
pub struct RsPlan {
    /// With the configured weight; the pool changes it.
    pub destination: Destination,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    pub checkers: Vec<CheckerPlan>,
}

/// One checker with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerPlan {
    pub probe: Probe,
    pub delay_loop: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Option<Duration>,
}

/// What one check does.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// TCP_CHECK: a connection opens within `timeout`.
    Tcp {
        target: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
    },
    /// HTTP_GET / SSL_GET: every url answers with an accepted status (and
    /// body digest) within `timeout`.
    Http {
        target: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
        tls: bool,
        /// The Host header (virtualhost, else the address).
        host: String,
        urls: Vec<HttpUrl>,
    },
    /// MISC_CHECK: a program exits 0 within `timeout`.
    Misc {
        command: String,
        timeout: Duration,
        dynamic: bool,
        user: Option<ScriptUser>,
    },
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Tcp { .. } => "TCP_CHECK",
            Probe::Http { tls: false, .. } => "HTTP_GET",
            Probe::Http { tls: true, .. } => "SSL_GET",
            Probe::Misc { .. } => "MISC_CHECK",
        }
    }
}

pub fn forward(kind: LbKind) -> Forward {
    match kind {
        LbKind::Nat => Forward::Masq,
        LbKind::Dr => Forward::Route,
        LbKind::Tun => Forward::Tunnel,
    }
}

/// Destination `d` as service `key` gets it. Direct routing and tunnels
/// cannot change the port, so keepalived gives such a destination the
/// service's port (found by the oracle with groups: it logs "ports don't
/// match"), and a firewall-mark service's destinations port 0.
pub fn destination_for(key: &ServiceKey, d: &Destination) -> Destination {
    let mut d = d.clone();
    match key {
        ServiceKey::Fwmark { .. } => d.port = 0,
        ServiceKey::Inet { port, .. } if matches!(d.forward, Forward::Route | Forward::Tunnel) => {
            d.port = *port;
        }
        ServiceKey::Inet { .. } => {}
    }
    d
}

/// Every virtual server of `config`.
pub fn plan(config: &Config) -> Vec<VsPlan> {
    config
        .virtual_servers
        .iter()
        .map(|vs| plan_one(config, vs))
        .collect()
}

fn plan_one(config: &Config, vs: &VirtualServer) -> VsPlan {
    let family = match &vs.target {
        VsTarget::Inet { address, .. } => Family::of(address),
        _ => vs
            .ip_family
            .or_else(|| vs.real_servers.first().map(|r| Family::of(&r.address)))
            .unwrap_or(Family::Ipv4),
    };
    let keys: Vec<ServiceKey> = match &vs.target {
        VsTarget::Inet { address, port } => vec![ServiceKey::Inet {
            protocol: vs.protocol,
            address: *address,
            port: *port,
        }],
        VsTarget::Fwmark { mark } => vec![ServiceKey::Fwmark {
            family,
            mark: *mark,
        }],
        VsTarget::Group { name } => config
            .virtual_server_groups
            .iter()
            .filter(|g| &g.name == name)
            .flat_map(|g| g.members.iter())
            .flat_map(|m| group_keys(m, vs, family))
            .collect(),
    };
    let full = match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    let mut flags = 0;
    if vs.persistence_timeout.is_some() {
        flags |= SVC_F_PERSISTENT;
    }
    if vs.ops {
        flags |= SVC_F_ONEPACKET;
    }
    let services = keys
        .into_iter()
        .map(|key| Service {
            key,
            scheduler: vs.lb_algo.clone(),
            flags,
            timeout: vs.persistence_timeout.unwrap_or(0),
            netmask: vs.persistence_granularity.unwrap_or(full),
            pe_name: None,
        })
        .collect();
    let vs_port = match &vs.target {
        VsTarget::Inet { port, .. } => *port,
        _ => 0,
    };
    let delay_loop = vs.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
    let real_servers = vs
        .real_servers
        .iter()
        .map(|rs| {
            let destination = Destination {
                address: rs.address,
                port: rs.port,
                forward: forward(rs.lb_kind.unwrap_or(vs.lb_kind)),
                weight: rs.weight.unwrap_or(1),
                upper_threshold: rs.uthreshold.unwrap_or(0),
                lower_threshold: rs.lthreshold.unwrap_or(0),
            };
            let rs_delay = rs.delay_loop.unwrap_or(delay_loop);
            let checkers = rs
                .checks
                .iter()
                .map(|c| checker(c, rs.address, rs.port, vs_port, rs_delay, vs))
                .collect();
            RsPlan {
                destination,
                inhibit_on_failure: rs.inhibit_on_failure,
                notify_up: rs.notify_up.clone(),
                notify_down: rs.notify_down.clone(),
                checkers,
            }
        })
        .collect();
    let sorry = vs.sorry_server.map(|s| Destination {
        address: s.address,
        port: s.port.unwrap_or(vs_port),
        forward: forward(vs.lb_kind),
        weight: 1,
        upper_threshold: 0,
        lower_threshold: 0,
    });
    let name = match &vs.target {
        VsTarget::Inet { .. } => format!("{} {}", vs.target, vs.protocol),
        other => other.to_string(),
    };
    let total: u64 = vs
        .real_servers
        .iter()
        .map(|r| u64::from(r.weight.unwrap_or(1)))
        .sum();
    let quorum = u32::try_from(u64::from(vs.quorum).min(total)).unwrap_or(vs.quorum);
    VsPlan {
        name,
        services,
        real_servers,
        sorry,
        sorry_inhibit: vs.sorry_server_inhibit,
        quorum,
        quorum_configured: (quorum != vs.quorum).then_some(vs.quorum),
        hysteresis: vs.hysteresis,
        quorum_up: vs.quorum_up.clone(),
        quorum_down: vs.quorum_down.clone(),
        alpha: vs.alpha,
        omega: vs.omega,
    }
}

/// The services of one group member: each address of a range, or a mark.
fn group_keys(member: &GroupMember, vs: &VirtualServer, family: Family) -> Vec<ServiceKey> {
    match *member {
        GroupMember::Fwmark { mark } => vec![ServiceKey::Fwmark { family, mark }],
        GroupMember::Inet { first, last, port } => address_span(first, last)
            .into_iter()
            .map(|address| ServiceKey::Inet {
                protocol: vs.protocol,
                address,
                port,
            })
            .collect(),
    }
}

/// `first..=last`, which differ only in their last part (the parser made
/// sure).
fn address_span(first: IpAddr, last: IpAddr) -> Vec<IpAddr> {
    match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a)..=u32::from(b))
            .map(|n| IpAddr::from(std::net::Ipv4Addr::from(n)))
            .collect(),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a)..=u128::from(b))
            .take(65_536)
            .map(|n| IpAddr::from(std::net::Ipv6Addr::from(n)))
            .collect(),
        _ => vec![first],
    }
}

fn checker(
    check: &HealthCheck,
    address: IpAddr,
    rs_port: u16,
    vs_port: u16,
    rs_delay: Duration,
    vs: &VirtualServer,
) -> CheckerPlan {
    let c = check.common();
    let port = c
        .connect_port
        .unwrap_or(if rs_port == 0 { vs_port } else { rs_port });
    let target = SocketAddr::new(c.connect_ip.unwrap_or(address), port);
    let bind = c
        .bindto
        .map(|ip| SocketAddr::new(ip, c.bind_port.unwrap_or(0)));
    let timeout = c.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let delay_loop = c.delay_loop.unwrap_or(rs_delay);
    let (probe, default_retry) = match check {
        HealthCheck::Tcp(_) => (
            Probe::Tcp {
                target,
                bind,
                timeout,
            },
            DEFAULT_RETRY,
        ),
        HealthCheck::Http {
            urls,
            tls,
            virtualhost,
            ..
        } => {
            let host = virtualhost
                .clone()
                .or_else(|| vs.virtualhost.clone())
                .unwrap_or_else(|| match target.ip() {
                    IpAddr::V6(a) => format!("[{a}]:{}", target.port()),
                    a => format!("{a}:{}", target.port()),
                });
            (
                Probe::Http {
                    target,
                    bind,
                    timeout,
                    tls: *tls,
                    host,
                    urls: urls.clone(),
                },
                DEFAULT_RETRY,
            )
        }
        HealthCheck::Misc {
            misc_path,
            misc_timeout,
            misc_dynamic,
            user,
            ..
        } => (
            Probe::Misc {
                command: misc_path.clone(),
                timeout: misc_timeout.unwrap_or(delay_loop),
                dynamic: *misc_dynamic,
                user: user.clone(),
            },
            0,
        ),
    };
    CheckerPlan {
        probe,
        delay_loop,
        retry: c.retry.unwrap_or(default_retry),
        delay_before_retry: c.delay_before_retry.unwrap_or(DEFAULT_DELAY_BEFORE_RETRY),
        warmup: c.warmup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Config {
        crate::config::parse_str(text, Path::new("/t/keepalived.conf"))
            .expect("valid")
            .config
    }

    #[test]
    fn a_group_makes_one_service_per_address_and_mark() {
        let c = load(
            "virtual_server_group g {\n 10.0.0.1-3 80\n fwmark 9\n}\n\
             virtual_server group g {\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
             persistence_timeout 30\n real_server 10.0.1.1 80 {\n weight 4\n }\n}\n",
        );
        let p = plan(&c);
        let keys: Vec<String> = p[0].services.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "TCP 10.0.0.1:80",
                "TCP 10.0.0.2:80",
                "TCP 10.0.0.3:80",
                "FWM 9"
            ]
        );
        assert!(
            p[0].services
                .iter()
                .all(|s| s.flags == SVC_F_PERSISTENT && s.timeout == 30 && s.netmask == 32)
        );
        assert_eq!(p[0].real_servers[0].destination.weight, 4);
        assert_eq!(p[0].real_servers[0].destination.forward, Forward::Route);
    }

    #[test]
    fn routed_destinations_take_the_service_port() {
        let c = load(
            "virtual_server_group g {\n 10.0.0.1 8080\n fwmark 9\n}\n\
             virtual_server group g {\n lb_algo rr\n lb_kind DR\n protocol TCP\n\
             quorum 50\n real_server 10.0.1.1 80 {\n weight 4\n }\n\
             real_server 10.0.1.2 9000 {\n lvs_method NAT\n }\n}\n",
        );
        let p = &plan(&c)[0];
        let ports = |s: usize| -> Vec<u16> {
            p.real_servers
                .iter()
                .map(|r| destination_for(&p.services[s].key, &r.destination).port)
                .collect()
        };
        assert_eq!(
            ports(0),
            [8080, 9000],
            "DR takes the port, NAT keeps its own"
        );
        assert_eq!(ports(1), [0, 0], "a firewall mark has no port");
        assert_eq!((p.quorum, p.quorum_configured), (5, Some(50)));
    }

    #[test]
    fn checkers_get_keepalived_defaults_and_overrides() {
        let c = load(
            "virtual_server 10.0.0.50 80 {\n delay_loop 2\n lb_algo wlc\n lb_kind NAT\n\
             protocol TCP\n real_server 10.0.1.1 8080 {\n TCP_CHECK {\n }\n\
             MISC_CHECK {\n misc_path /bin/true\n }\n\
             HTTP_GET {\n url {\n path /\n }\n connect_port 81\n retry 3\n\
             delay_before_retry 0.5\n connect_timeout 1\n }\n }\n\
             sorry_server 10.0.1.9 80\n}\n",
        );
        let p = &plan(&c)[0];
        let checkers = &p.real_servers[0].checkers;
        assert_eq!(checkers[0].delay_loop, Duration::from_secs(2));
        assert_eq!(checkers[0].retry, DEFAULT_RETRY);
        assert_eq!(
            checkers[0].probe,
            Probe::Tcp {
                target: "10.0.1.1:8080".parse().expect("addr"),
                bind: None,
                timeout: DEFAULT_CONNECT_TIMEOUT,
            }
        );
        assert_eq!(checkers[1].retry, 0, "MISC_CHECK retries 0 by default");
        let Probe::Misc { timeout, .. } = &checkers[1].probe else {
            panic!("misc");
        };
        assert_eq!(
            *timeout,
            Duration::from_secs(2),
            "misc_timeout is delay_loop"
        );
        assert_eq!(checkers[2].retry, 3);
        assert_eq!(checkers[2].delay_before_retry, Duration::from_millis(500));
        let Probe::Http { target, host, .. } = &checkers[2].probe else {
            panic!("http");
        };
        assert_eq!(target.port(), 81);
        assert_eq!(host, "10.0.1.1:81");
        let sorry = p.sorry.as_ref().expect("sorry");
        assert_eq!((sorry.forward, sorry.weight), (Forward::Masq, 1));
    }
}
