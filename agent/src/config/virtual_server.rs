//! The `virtual_server` and `virtual_server_group` blocks: IPVS services,
//! their real servers and health checkers (TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK), read into the model with keepalived.conf(5)'s keywords.
//! [`crate::lvs`] turns the model into the kernel's table.

use std::collections::HashSet;
use std::net::IpAddr;

use super::parse::{
    CHECK_COMMON, Ctx, HTTP_GET, MAX_DECIMAL_US, MISC_CHECK, Node, REAL_SERVER, URL, VIRTUAL_SERVER,
};
use super::*;

/// keepalived's lb_algo names: the schedulers of the kernel's IPVS.
const ALGOS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

pub(super) fn virtual_server(ctx: &mut Ctx, node: &Node) -> Option<VirtualServer> {
    let children = ctx.block(node, node.args.len().clamp(1, 2))?;
    if node.args.len() != 2 {
        ctx.err(
            &node.origin,
            "virtual_server takes IP PORT, fwmark N or group NAME",
        );
        return None;
    }
    let target = match node.args[0].as_str() {
        "fwmark" => ctx
            .int(&node.origin, "fwmark", &node.args[1], 1, u32::MAX.into())
            .and_then(|m| u32::try_from(m).ok())
            .map(|mark| VsTarget::Fwmark { mark }),
        "group" => Some(VsTarget::Group {
            name: node.args[1].clone(),
        }),
        text => {
            let address = ctx.ip(&node.origin, "virtual_server address", text);
            let port = ctx.port(&node.origin, &node.args[1]);
            address
                .zip(port)
                .map(|(address, port)| VsTarget::Inet { address, port })
        }
    };
    let mut vs = VirtualServer {
        target: VsTarget::Fwmark { mark: 0 },
        origin: node.origin.clone(),
        delay_loop: None,
        lb_algo: String::new(),
        lb_kind: LbKind::Nat,
        persistence_timeout: None,
        persistence_granularity: None,
        protocol: Protocol::Tcp,
        ip_family: None,
        ops: false,
        sorry_server: None,
        sorry_server_inhibit: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        alpha: false,
        omega: false,
        virtualhost: None,
        real_servers: Vec::new(),
    };
    let vs_port = match &target {
        Some(VsTarget::Inet { port, .. }) => Some(*port),
        _ => None,
    };
    let vs_family = match &target {
        Some(VsTarget::Inet { address, .. }) => Some(Family::of(address)),
        _ => None,
    };
    let mut lb_algo = None;
    let mut lb_kind = None;
    let mut protocol = None;
    for child in children {
        match child.keyword.as_str() {
            "delay_loop" => vs.delay_loop = ctx.one_decimal(child, 1, MAX_DECIMAL_US),
            "lb_algo" | "lvs_sched" => {
                if let Some(a) = ctx.one(child) {
                    if ALGOS.contains(&a) {
                        lb_algo = Some(a.to_string());
                    } else {
                        ctx.err(
                            &child.origin,
                            format!("lb_algo '{a}' is not one of {}", ALGOS.join(", ")),
                        );
                    }
                }
            }
            "lb_kind" | "lvs_method" => lb_kind = lb_kind_of(ctx, child).or(lb_kind),
            "persistence_timeout" => {
                if ctx.arity(child, 0, 1) {
                    vs.persistence_timeout = match child.args.first() {
                        // keepalived's default when the value is left out.
                        None => Some(360),
                        Some(t) => ctx
                            .int(&child.origin, "persistence_timeout", t, 1, 2_678_400)
                            .and_then(|v| u32::try_from(v).ok()),
                    };
                }
            }
            "persistence_granularity" => {
                if let Some(g) = ctx.one(child) {
                    vs.persistence_granularity = granularity(g);
                    if vs.persistence_granularity.is_none() {
                        ctx.err(
                            &child.origin,
                            format!(
                                "persistence_granularity '{g}' is not a netmask or a prefix length"
                            ),
                        );
                    }
                }
            }
            "protocol" => match ctx.one(child) {
                Some("TCP") => protocol = Some(Protocol::Tcp),
                Some("UDP") => protocol = Some(Protocol::Udp),
                Some("SCTP") => protocol = Some(Protocol::Sctp),
                Some(other) => ctx.err(
                    &child.origin,
                    format!("protocol '{other}' is not one of TCP, UDP, SCTP"),
                ),
                None => {}
            },
            "ip_family" => match ctx.one(child) {
                Some("inet") => vs.ip_family = Some(Family::Ipv4),
                Some("inet6") => vs.ip_family = Some(Family::Ipv6),
                Some(other) => ctx.err(
                    &child.origin,
                    format!("ip_family '{other}' is not one of inet, inet6"),
                ),
                None => {}
            },
            "ops" => vs.ops = ctx.flag(child),
            "sorry_server" => {
                if ctx.arity(child, 1, 2)
                    && let Some(address) = ctx.ip(&child.origin, "sorry_server", &child.args[0])
                {
                    let port = match child.args.get(1) {
                        Some(p) => ctx.port(&child.origin, p),
                        None => None,
                    };
                    vs.sorry_server = Some(Endpoint { address, port });
                }
            }
            "sorry_server_inhibit" => vs.sorry_server_inhibit = ctx.flag(child),
            "quorum" => {
                if let Some(q) = ctx.one_u32(child, 1, u32::MAX) {
                    vs.quorum = q;
                }
            }
            "hysteresis" => {
                if let Some(h) = ctx.one_u32(child, 0, u32::MAX) {
                    vs.hysteresis = h;
                }
            }
            "quorum_up" => vs.quorum_up = ctx.command(child),
            "quorum_down" => vs.quorum_down = ctx.command(child),
            "alpha" => vs.alpha = ctx.flag(child),
            "omega" => vs.omega = ctx.flag(child),
            "virtualhost" => vs.virtualhost = ctx.one(child).map(str::to_string),
            "real_server" => {
                let fwmark = matches!(target, Some(VsTarget::Fwmark { .. }));
                if let Some(rs) = real_server(ctx, child, vs_port, fwmark) {
                    add_real_server(ctx, child, vs_family, &mut vs.real_servers, rs);
                }
            }
            _ => ctx.unknown(child, "virtual_server", VIRTUAL_SERVER),
        }
    }
    let given: HashSet<&str> = children.iter().map(|c| c.keyword.as_str()).collect();
    let mut missing = |what: &[&str]| {
        if what.iter().any(|w| given.contains(w)) {
            // Present but invalid: already reported on its own line.
            return;
        }
        ctx.err(
            &node.origin,
            format!(
                "virtual_server {} {} has no {}",
                node.args[0], node.args[1], what[0]
            ),
        );
    };
    if lb_algo.is_none() {
        missing(&["lb_algo", "lvs_sched"]);
    }
    if lb_kind.is_none() {
        missing(&["lb_kind", "lvs_method"]);
    }
    // A firewall mark is protocol-free; an address and port are not.
    if protocol.is_none() && vs_port.is_some() {
        missing(&["protocol"]);
    }
    if vs.real_servers.is_empty() {
        missing(&["real_server"]);
    }
    vs.target = target?;
    vs.lb_algo = lb_algo?;
    vs.lb_kind = lb_kind?;
    vs.protocol = protocol.unwrap_or(Protocol::Tcp);
    Some(vs)
}

fn lb_kind_of(ctx: &mut Ctx, node: &Node) -> Option<LbKind> {
    match ctx.one(node) {
        Some("NAT") => Some(LbKind::Nat),
        Some("DR") => Some(LbKind::Dr),
        Some("TUN") => Some(LbKind::Tun),
        Some(other) => {
            ctx.err(
                &node.origin,
                format!("{} '{other}' is not one of NAT, DR, TUN", node.keyword),
            );
            None
        }
        None => None,
    }
}

/// A netmask (`255.255.255.0`) or a prefix length (`24`, `64`) as a
/// prefix length; `None` for a mask with holes.
fn granularity(text: &str) -> Option<u8> {
    if let Ok(IpAddr::V4(mask)) = text.parse::<IpAddr>() {
        let bits = u32::from(mask);
        let ones = bits.leading_ones();
        return (bits.checked_shl(ones).unwrap_or(0) == 0)
            .then(|| u8::try_from(ones).ok())
            .flatten();
    }
    text.parse::<u8>().ok().filter(|p| (1..=128).contains(p))
}

fn add_real_server(
    ctx: &mut Ctx,
    node: &Node,
    vs_family: Option<Family>,
    real_servers: &mut Vec<RealServer>,
    rs: RealServer,
) {
    let family = vs_family.or_else(|| real_servers.first().map(|r| Family::of(&r.address)));
    if let Some(family) = family
        && family != Family::of(&rs.address)
    {
        ctx.err(
            &node.origin,
            format!(
                "real_server {} is {} but the virtual_server is {family}",
                rs.address,
                Family::of(&rs.address),
            ),
        );
    } else if real_servers
        .iter()
        .any(|r| (r.address, r.port) == (rs.address, rs.port))
    {
        ctx.err(
            &node.origin,
            format!(
                "real_server {} {} is already defined in this virtual_server",
                rs.address, rs.port
            ),
        );
    } else {
        real_servers.push(rs);
    }
}

/// `virtual_server_group NAME { ... }`: one member per line, `IP PORT`,
/// `IP-LAST PORT` (a range of the address's last part) or `fwmark N`.
pub(super) fn virtual_server_group(ctx: &mut Ctx, node: &Node) -> Option<VirtualServerGroup> {
    let children = ctx.block(node, 1)?;
    let mut members = Vec::new();
    for line in children {
        if line.children.is_some() {
            ctx.err(
                &line.origin,
                "a virtual_server_group member takes no { } block",
            );
            continue;
        }
        if line.keyword == "fwmark" {
            if let Some(mark) = ctx.one_u32(line, 1, u32::MAX) {
                members.push(GroupMember::Fwmark { mark });
            }
            continue;
        }
        if line.args.len() != 1 {
            ctx.err(
                &line.origin,
                format!(
                    "virtual_server_group member '{}' takes IP[-LAST] PORT or fwmark N",
                    line.keyword
                ),
            );
            continue;
        }
        let Some((first, last)) = address_range(&line.keyword) else {
            ctx.err(
                &line.origin,
                format!(
                    "'{}' is not an IP address or range (10.0.0.1-10)",
                    line.keyword
                ),
            );
            continue;
        };
        if let Some(port) = ctx.port(&line.origin, &line.args[0]) {
            members.push(GroupMember::Inet { first, last, port });
        }
    }
    if members.is_empty() {
        ctx.err(
            &node.origin,
            format!("virtual_server_group '{}' has no member", node.args[0]),
        );
    }
    Some(VirtualServerGroup {
        name: node.args[0].clone(),
        origin: node.origin.clone(),
        members,
    })
}

/// `10.0.0.1` or `10.0.0.1-10` (keepalived: the range replaces the last
/// byte of an IPv4 address, the last group of an IPv6 one, in hex).
pub fn address_range(text: &str) -> Option<(IpAddr, IpAddr)> {
    let (base, end) = match text.rsplit_once('-') {
        Some((b, e)) => (b, Some(e)),
        None => (text, None),
    };
    let first: IpAddr = base.parse().ok()?;
    let Some(end) = end else {
        return Some((first, first));
    };
    let last = match first {
        IpAddr::V4(a) => {
            let n: u8 = end.parse().ok()?;
            let mut o = a.octets();
            (n >= o[3]).then_some(())?;
            o[3] = n;
            IpAddr::from(o)
        }
        IpAddr::V6(a) => {
            let n = u16::from_str_radix(end, 16).ok()?;
            let mut s = a.segments();
            (n >= s[7]).then_some(())?;
            s[7] = n;
            IpAddr::from(s)
        }
    };
    Some((first, last))
}

/// `real_server IP [PORT]`: without a port, the virtual server's. A
/// firewall-mark service forwards every port: keepalived clears a real
/// server's port there (with a warning), and so do we.
fn real_server(
    ctx: &mut Ctx,
    node: &Node,
    vs_port: Option<u16>,
    fwmark: bool,
) -> Option<RealServer> {
    let children = match node.args.len() {
        1 => ctx.block(node, 1)?,
        _ => ctx.block(node, 2)?,
    };
    let address = ctx.ip(&node.origin, "real_server address", &node.args[0]);
    let port = match node.args.get(1) {
        Some(p) if fwmark => {
            ctx.port(&node.origin, p);
            ctx.warn(
                &node.origin,
                format!(
                    "a fwmark virtual_server forwards every port: real_server port {p} is ignored"
                ),
            );
            Some(0)
        }
        None if fwmark => Some(0),
        Some(p) => ctx.port(&node.origin, p),
        None if vs_port.is_none() => {
            ctx.err(
                &node.origin,
                "real_server needs a port when the virtual_server has none",
            );
            None
        }
        None => vs_port,
    };
    let mut rs = RealServer {
        address: address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        port: port.unwrap_or(0),
        weight: None,
        inhibit_on_failure: false,
        lb_kind: None,
        uthreshold: None,
        lthreshold: None,
        notify_up: None,
        notify_down: None,
        delay_loop: None,
        checks: Vec::new(),
    };
    for child in children {
        match child.keyword.as_str() {
            "weight" => rs.weight = ctx.one_u32(child, 0, i32::MAX.unsigned_abs()),
            "inhibit_on_failure" => rs.inhibit_on_failure = ctx.flag(child),
            "lvs_method" => rs.lb_kind = lb_kind_of(ctx, child),
            "uthreshold" => rs.uthreshold = ctx.one_u32(child, 0, u32::MAX),
            "lthreshold" => rs.lthreshold = ctx.one_u32(child, 0, u32::MAX),
            "notify_up" => rs.notify_up = ctx.command(child),
            "notify_down" => rs.notify_down = ctx.command(child),
            "delay_loop" => rs.delay_loop = ctx.one_decimal(child, 1, MAX_DECIMAL_US),
            "TCP_CHECK" => {
                if let Some(items) = ctx.block(child, 0) {
                    let mut common = CheckCommon::default();
                    for item in items {
                        if !check_common(ctx, item, &mut common) {
                            ctx.unknown(item, "TCP_CHECK", CHECK_COMMON);
                        }
                    }
                    rs.checks.push(HealthCheck::Tcp(common));
                }
            }
            "HTTP_GET" | "SSL_GET" => {
                if let Some(check) = http_get(ctx, child) {
                    rs.checks.push(check);
                }
            }
            "MISC_CHECK" => {
                if let Some(check) = misc_check(ctx, child) {
                    rs.checks.push(check);
                }
            }
            _ => ctx.unknown(child, "real_server", REAL_SERVER),
        }
    }
    (address.is_some() && port.is_some()).then_some(rs)
}

/// The keywords all checkers share; false when `item` is not one of them.
fn check_common(ctx: &mut Ctx, item: &Node, c: &mut CheckCommon) -> bool {
    match item.keyword.as_str() {
        "connect_timeout" => c.connect_timeout = ctx.one_decimal(item, 1, 3_600_000_000),
        "connect_ip" => c.connect_ip = ctx.one_ip(item),
        "connect_port" => {
            if let Some(p) = ctx.one(item) {
                c.connect_port = ctx.port(&item.origin, p);
            }
        }
        "bindto" => c.bindto = ctx.one_ip(item),
        "bind_port" => {
            if let Some(p) = ctx.one(item) {
                c.bind_port = ctx.port(&item.origin, p);
            }
        }
        // nb_get_retry is the keepalived 1.x name of retry.
        "retry" | "nb_get_retry" => c.retry = ctx.one_u32(item, 0, u32::MAX),
        "delay_before_retry" => {
            c.delay_before_retry = ctx.one_decimal(item, 0, 3_600_000_000);
        }
        "delay_loop" => c.delay_loop = ctx.one_decimal(item, 1, MAX_DECIMAL_US),
        "warmup" => c.warmup = ctx.one_decimal(item, 0, MAX_DECIMAL_US),
        _ => return false,
    }
    true
}

/// HTTP_GET and SSL_GET: the same keywords; SSL_GET speaks TLS.
fn http_get(ctx: &mut Ctx, node: &Node) -> Option<HealthCheck> {
    let items = ctx.block(node, 0)?;
    let mut common = CheckCommon::default();
    let mut urls = Vec::new();
    let mut virtualhost = None;
    for item in items {
        if item.keyword == "url" {
            if let Some(url) = http_url(ctx, item) {
                urls.push(url);
            }
        } else if item.keyword == "virtualhost" {
            virtualhost = ctx.one(item).map(str::to_string);
        } else if !check_common(ctx, item, &mut common) {
            ctx.unknown(item, &node.keyword, HTTP_GET);
        }
    }
    if urls.is_empty() {
        ctx.err(&node.origin, format!("{} has no url {{ }}", node.keyword));
        return None;
    }
    Some(HealthCheck::Http {
        common,
        urls,
        tls: node.keyword == "SSL_GET",
        virtualhost,
    })
}

fn http_url(ctx: &mut Ctx, node: &Node) -> Option<HttpUrl> {
    let items = ctx.block(node, 0)?;
    let mut path = None;
    let mut status_code = Vec::new();
    let mut digest = None;
    let mut virtualhost = None;
    for item in items {
        match item.keyword.as_str() {
            "path" => path = ctx.one(item).map(str::to_string),
            "virtualhost" => virtualhost = ctx.one(item).map(str::to_string),
            "status_code" => {
                if ctx.arity(item, 1, usize::MAX) {
                    for code in &item.args {
                        match status_range(code) {
                            Some(range) => status_code.push(range),
                            None => ctx.err(
                                &item.origin,
                                format!(
                                    "status_code '{code}' is not an HTTP status (100..599) or range"
                                ),
                            ),
                        }
                    }
                }
            }
            "digest" => {
                if let Some(d) = ctx.one(item) {
                    // An MD5 digest as genhash prints it.
                    if d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        digest = Some(d.to_ascii_lowercase());
                    } else {
                        ctx.err(
                            &item.origin,
                            "digest must be 32 hexadecimal digits (an MD5)",
                        );
                    }
                }
            }
            _ => ctx.unknown(item, "url", URL),
        }
    }
    let Some(path) = path else {
        ctx.err(&node.origin, "url has no path");
        return None;
    };
    Some(HttpUrl {
        path,
        status_code,
        digest,
        virtualhost,
    })
}

fn status_range(text: &str) -> Option<(u16, u16)> {
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (code(a)?, code(b)?);
            (a <= b).then_some((a, b))
        }
        None => code(text).map(|c| (c, c)),
    }
}

fn misc_check(ctx: &mut Ctx, node: &Node) -> Option<HealthCheck> {
    let items = ctx.block(node, 0)?;
    let mut common = CheckCommon::default();
    let mut misc_path = None;
    let mut misc_timeout = None;
    let mut misc_dynamic = false;
    let mut user = None;
    for item in items {
        match item.keyword.as_str() {
            "misc_path" => misc_path = ctx.command(item),
            "misc_timeout" => misc_timeout = ctx.one_secs(item, 1, 3600),
            "misc_dynamic" => misc_dynamic = ctx.flag(item),
            "user" => user = ctx.user(item),
            _ => {
                if !check_common(ctx, item, &mut common) {
                    ctx.unknown(item, "MISC_CHECK", MISC_CHECK);
                }
            }
        }
    }
    let Some(misc_path) = misc_path else {
        ctx.err(&node.origin, "MISC_CHECK has no misc_path");
        return None;
    };
    Some(HealthCheck::Misc {
        common,
        misc_path,
        misc_timeout,
        misc_dynamic,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(status_range("200"), Some((200, 200)));
        assert_eq!(status_range("200-299"), Some((200, 299)));
        assert_eq!(status_range("299-200"), None);
        assert_eq!(status_range("700"), None);
    }

    #[test]
    fn granularity_takes_masks_and_prefix_lengths() {
        assert_eq!(granularity("255.255.255.0"), Some(24));
        assert_eq!(granularity("255.255.255.255"), Some(32));
        assert_eq!(granularity("255.0.255.0"), None);
        assert_eq!(granularity("64"), Some(64));
        assert_eq!(granularity("0"), None);
    }

    #[test]
    fn address_ranges_replace_the_last_part() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            address_range("10.0.0.1-10"),
            Some((ip("10.0.0.1"), ip("10.0.0.10")))
        );
        assert_eq!(
            address_range("10.0.0.5"),
            Some((ip("10.0.0.5"), ip("10.0.0.5")))
        );
        assert_eq!(address_range("10.0.0.5-3"), None);
        assert_eq!(
            address_range("fd00::a-1f"),
            Some((ip("fd00::a"), ip("fd00::1f")))
        );
    }
}
