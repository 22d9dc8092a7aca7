//! The `virtual_server` block: an IPVS service, its real servers and their
//! health checkers (TCP_CHECK, HTTP_GET, MISC_CHECK).
//!
//! Parsed and validated into the model now; programming IPVS over generic
//! netlink comes later and reads only the model.

use std::collections::HashSet;
use std::net::IpAddr;

use super::parse::{
    CHECK_COMMON, Ctx, HTTP_GET, MAX_DECIMAL_US, MISC_CHECK, Node, REAL_SERVER, URL, VIRTUAL_SERVER,
};
use super::*;

pub(super) fn virtual_server(ctx: &mut Ctx, node: &Node) -> Option<VirtualServer> {
    if let Some(kind @ ("fwmark" | "group")) = node.args.first().map(String::as_str) {
        ctx.err(
            &node.origin,
            format!("virtual_server {kind} is not supported; use virtual_server IP PORT"),
        );
        return None;
    }
    let children = ctx.block(node, 2)?;
    let address = ctx.ip(&node.origin, "virtual_server address", &node.args[0]);
    let port = ctx.port(&node.origin, &node.args[1]);
    let mut delay_loop = None;
    let mut lb_algo = None;
    let mut lb_kind = None;
    let mut persistence_timeout = None;
    let mut protocol = None;
    let mut sorry_server = None;
    let mut real_servers = Vec::new();
    for child in children {
        match child.keyword.as_str() {
            "delay_loop" => delay_loop = ctx.one_decimal(child, 1, MAX_DECIMAL_US),
            "lb_algo" => {
                const ALGOS: &[&str] = &[
                    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo",
                    "ovf", "mh",
                ];
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
            "lb_kind" => match ctx.one(child) {
                Some("NAT") => lb_kind = Some(LbKind::Nat),
                Some("DR") => lb_kind = Some(LbKind::Dr),
                Some("TUN") => lb_kind = Some(LbKind::Tun),
                Some(other) => ctx.err(
                    &child.origin,
                    format!("lb_kind '{other}' is not one of NAT, DR, TUN"),
                ),
                None => {}
            },
            "persistence_timeout" => {
                if ctx.arity(child, 0, 1) {
                    persistence_timeout = match child.args.first() {
                        // keepalived's default when the value is left out.
                        None => Some(360),
                        Some(t) => ctx
                            .int(&child.origin, "persistence_timeout", t, 1, 2_678_400)
                            .and_then(|v| u32::try_from(v).ok()),
                    };
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
            "sorry_server" => {
                if ctx.arity(child, 1, 2)
                    && let Some(address) = ctx.ip(&child.origin, "sorry_server", &child.args[0])
                {
                    let port = match child.args.get(1) {
                        Some(p) => ctx.port(&child.origin, p),
                        None => None,
                    };
                    sorry_server = Some(Endpoint { address, port });
                }
            }
            "real_server" => {
                if let Some(rs) = real_server(ctx, child, port) {
                    if let Some(vip) = address
                        && Family::of(&vip) != Family::of(&rs.address)
                    {
                        ctx.err(
                            &child.origin,
                            format!(
                                "real_server {} is {} but the virtual_server is {}",
                                rs.address,
                                Family::of(&rs.address),
                                Family::of(&vip)
                            ),
                        );
                    } else if real_servers
                        .iter()
                        .any(|r: &RealServer| (r.address, r.port) == (rs.address, rs.port))
                    {
                        ctx.err(
                            &child.origin,
                            format!(
                                "real_server {} {} is already defined in this virtual_server",
                                rs.address, rs.port
                            ),
                        );
                    } else {
                        real_servers.push(rs);
                    }
                }
            }
            _ => ctx.unknown(child, "virtual_server", VIRTUAL_SERVER),
        }
    }
    let given: HashSet<&str> = children.iter().map(|c| c.keyword.as_str()).collect();
    let mut missing = |what: &str| {
        if given.contains(what) {
            // Present but invalid: already reported on its own line.
            return;
        }
        ctx.err(
            &node.origin,
            format!(
                "virtual_server {} {} has no {what}",
                node.args[0], node.args[1]
            ),
        );
    };
    if lb_algo.is_none() {
        missing("lb_algo");
    }
    if lb_kind.is_none() {
        missing("lb_kind");
    }
    if protocol.is_none() {
        missing("protocol");
    }
    if real_servers.is_empty() {
        missing("real_server");
    }
    Some(VirtualServer {
        address: address?,
        port: port?,
        origin: node.origin.clone(),
        delay_loop,
        lb_algo: lb_algo?,
        lb_kind: lb_kind?,
        persistence_timeout,
        protocol: protocol?,
        sorry_server,
        real_servers,
    })
}

/// `real_server IP [PORT]`: without a port, the virtual server's.
fn real_server(ctx: &mut Ctx, node: &Node, vs_port: Option<u16>) -> Option<RealServer> {
    let children = match node.args.len() {
        1 => ctx.block(node, 1)?,
        _ => ctx.block(node, 2)?,
    };
    let address = ctx.ip(&node.origin, "real_server address", &node.args[0]);
    let port = match node.args.get(1) {
        Some(p) => ctx.port(&node.origin, p),
        None => vs_port,
    };
    let mut rs = RealServer {
        address: address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        port: port.unwrap_or(0),
        weight: None,
        inhibit_on_failure: false,
        checks: Vec::new(),
    };
    for child in children {
        match child.keyword.as_str() {
            "weight" => rs.weight = ctx.one_u32(child, 0, i32::MAX.unsigned_abs()),
            "inhibit_on_failure" => rs.inhibit_on_failure = ctx.flag(child),
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
            "HTTP_GET" => {
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
        "connect_port" => {
            if let Some(p) = ctx.one(item) {
                c.connect_port = ctx.port(&item.origin, p);
            }
        }
        // nb_get_retry is the keepalived 1.x name of retry.
        "retry" | "nb_get_retry" => c.retry = ctx.one_u32(item, 0, u32::MAX),
        "delay_before_retry" => {
            c.delay_before_retry = ctx.one_decimal(item, 0, 3_600_000_000);
        }
        _ => return false,
    }
    true
}

fn http_get(ctx: &mut Ctx, node: &Node) -> Option<HealthCheck> {
    let items = ctx.block(node, 0)?;
    let mut common = CheckCommon::default();
    let mut urls = Vec::new();
    for item in items {
        if item.keyword == "url" {
            if let Some(url) = http_url(ctx, item) {
                urls.push(url);
            }
        } else if !check_common(ctx, item, &mut common) {
            ctx.unknown(item, "HTTP_GET", HTTP_GET);
        }
    }
    if urls.is_empty() {
        ctx.err(&node.origin, "HTTP_GET has no url { }");
        return None;
    }
    Some(HealthCheck::Http { common, urls })
}

fn http_url(ctx: &mut Ctx, node: &Node) -> Option<HttpUrl> {
    let items = ctx.block(node, 0)?;
    let mut path = None;
    let mut status_code = Vec::new();
    let mut digest = None;
    for item in items {
        match item.keyword.as_str() {
            "path" => path = ctx.one(item).map(str::to_string),
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
    for item in items {
        match item.keyword.as_str() {
            "misc_path" => misc_path = ctx.command(item),
            "misc_timeout" => misc_timeout = ctx.one_secs(item, 1, 3600),
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
}
