//! The `vrrp_instance` block: one VRRP virtual router, its VIPs, tracking
//! and the RFC rules that depend on its version and family.
//!
//! Single values are range-checked as they are read; the rules that need the
//! whole block (the family of the first VIP, the effective version, what
//! keepalived clears in combination) run once the block is read, so a
//! keyword's position in the block does not matter.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use super::error::{Diagnostic, Origin};
use super::parse::{
    AUTHENTICATION, Ctx, Node, OWNER_PRIORITY, VRRP_INSTANCE, did_you_mean, fmt_micros,
    parse_decimal_micros,
};
use super::*;

pub(super) fn vrrp_instance(
    ctx: &mut Ctx,
    node: &Node,
    children: &[Node],
    global: &GlobalDefs,
) -> Option<VrrpInstance> {
    let name = node.args[0].clone();
    let mut interface = None;
    let mut vrid: Option<(u8, Origin)> = None;
    let mut version: Option<u8> = None;
    let mut advert: Option<(u64, Origin)> = None;
    let mut auth_origin = None;
    let mut accept_origin = None;
    let mut preempt_delay_origin = None;
    // Set when the keyword was there, valid or not: a bad value is reported
    // once, not again as "missing".
    let given: HashSet<&str> = children.iter().map(|c| c.keyword.as_str()).collect();
    let mut i = VrrpInstance {
        name: name.clone(),
        origin: node.origin.clone(),
        state: InitialState::Backup,
        interface: String::new(),
        virtual_router_id: 0,
        vrid_origin: node.origin.clone(),
        priority: 100,
        version: 2,
        family: Family::Ipv4,
        advert_int: Duration::from_secs(1),
        nopreempt: false,
        preempt_delay: None,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        track_script: Vec::new(),
        track_interface: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        smtp_alert: None,
        mcast_src_ip: None,
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        use_vmac: None,
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        accept: false,
        dont_track_primary: false,
    };
    // Addresses that must share the instance's family, with their lines.
    let mut family_members: Vec<(IpAddr, Origin)> = Vec::new();
    for child in children {
        match child.keyword.as_str() {
            "state" => match ctx.one(child) {
                Some("MASTER") => i.state = InitialState::Master,
                Some("BACKUP") => i.state = InitialState::Backup,
                Some(other) => ctx.err(
                    &child.origin,
                    format!("state '{other}' is neither MASTER nor BACKUP"),
                ),
                None => {}
            },
            "interface" => interface = ctx.one(child).map(str::to_string),
            // RFC 5798 5.2.3: VRID 1..255.
            "virtual_router_id" => {
                if let Some(v) = ctx.one_int(child, 1, 255) {
                    vrid = u8::try_from(v).ok().map(|v| (v, child.origin.clone()));
                }
            }
            // RFC 5798 5.2.4: 255 is the address owner, 0 is only sent on
            // release, so a configured priority is 1..255.
            "priority" => {
                if let Some(v) = ctx.one_int(child, 1, 255) {
                    i.priority = u8::try_from(v).unwrap_or(100);
                    if i.priority == OWNER_PRIORITY {
                        ctx.warn(
                            &child.origin,
                            "priority 255 is for the owner of the virtual addresses; \
                             check cannot tell whether a VIP is an address of this host",
                        );
                    }
                }
            }
            "advert_int" => {
                if let Some(text) = ctx.one(child) {
                    match parse_decimal_micros(text) {
                        Some(us) => advert = Some((us, child.origin.clone())),
                        None => ctx.err(
                            &child.origin,
                            format!("advert_int '{text}' is not a number of seconds"),
                        ),
                    }
                }
            }
            "version" => {
                if let Some(v) = ctx.one_int(child, 2, 3) {
                    version = u8::try_from(v).ok();
                }
            }
            "nopreempt" => i.nopreempt = ctx.flag(child),
            "preempt_delay" => {
                i.preempt_delay = ctx.one_decimal(child, 0, 1_000_000_000);
                preempt_delay_origin = Some(child.origin.clone());
            }
            "authentication" => {
                if let Some(items) = ctx.block(child, 0) {
                    auth_origin = Some(child.origin.clone());
                    i.authentication = authentication(ctx, child, items);
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                if let Some(items) = ctx.block(child, 0) {
                    for item in items {
                        if let Some(vip) = virtual_address(ctx, item) {
                            // Excluded addresses are not in the advert, so
                            // they may be of either family.
                            if child.keyword == "virtual_ipaddress" {
                                family_members.push((vip.address.addr, item.origin.clone()));
                                i.virtual_ipaddress.push(vip);
                            } else {
                                i.virtual_ipaddress_excluded.push(vip);
                            }
                        }
                    }
                }
            }
            "track_script" => {
                if let Some(items) = ctx.block(child, 0) {
                    for item in items {
                        if let Some(t) = track_script(ctx, item) {
                            i.track_script.push(t);
                        }
                    }
                }
            }
            "track_interface" => {
                if let Some(items) = ctx.block(child, 0) {
                    for item in items {
                        if let Some(weight) = tracked_weight(ctx, item) {
                            i.track_interface.push(TrackInterface {
                                name: item.keyword.clone(),
                                weight,
                            });
                        }
                    }
                }
            }
            "notify_master" => i.notify_master = ctx.command(child),
            "notify_backup" => i.notify_backup = ctx.command(child),
            "notify_fault" => i.notify_fault = ctx.command(child),
            "notify_stop" => i.notify_stop = ctx.command(child),
            "notify" => i.notify = ctx.command(child),
            "smtp_alert" => {
                if let Some(on) = ctx.bool_flag(child) {
                    i.smtp_alert = Some(on);
                }
            }
            "mcast_src_ip" => {
                i.mcast_src_ip = ctx.one_ip(child);
                if let Some(ip) = i.mcast_src_ip {
                    family_members.push((ip, child.origin.clone()));
                }
            }
            "unicast_src_ip" => {
                i.unicast_src_ip = ctx.one_ip(child);
                if let Some(ip) = i.unicast_src_ip {
                    family_members.push((ip, child.origin.clone()));
                }
            }
            "unicast_peer" => {
                if let Some(items) = ctx.block(child, 0) {
                    for item in items {
                        if ctx.flag(item)
                            && let Some(ip) = ctx.ip(&item.origin, "unicast_peer", &item.keyword)
                        {
                            family_members.push((ip, item.origin.clone()));
                            i.unicast_peer.push(ip);
                        }
                    }
                }
            }
            "use_vmac" => {
                if ctx.arity(child, 0, 1) {
                    i.use_vmac = Some(child.args.first().cloned());
                }
            }
            "garp_master_delay" => i.garp_master_delay = ctx.one_secs(child, 0, 255),
            "garp_master_repeat" => i.garp_master_repeat = ctx.one_u32(child, 1, 255),
            "garp_master_refresh" => {
                i.garp_master_refresh = ctx.one_secs(child, 0, u32::MAX);
            }
            "accept" => {
                i.accept = ctx.flag(child);
                accept_origin = Some(child.origin.clone());
            }
            "dont_track_primary" => i.dont_track_primary = ctx.flag(child),
            _ => ctx.unknown(child, "vrrp_instance", VRRP_INSTANCE),
        }
    }

    let mut complete = true;
    match interface {
        Some(ifname) => i.interface = ifname,
        None => {
            if !given.contains("interface") {
                ctx.err(
                    &node.origin,
                    format!("vrrp_instance '{name}' has no interface"),
                );
            }
            complete = false;
        }
    }
    match vrid {
        Some((v, origin)) => {
            i.virtual_router_id = v;
            i.vrid_origin = origin;
        }
        None => {
            if !given.contains("virtual_router_id") {
                ctx.err(
                    &node.origin,
                    format!("vrrp_instance '{name}' has no virtual_router_id"),
                );
            }
            complete = false;
        }
    }
    if i.virtual_ipaddress.is_empty() {
        if !given.contains("virtual_ipaddress") {
            ctx.err(
                &node.origin,
                format!("vrrp_instance '{name}' has no virtual_ipaddress"),
            );
        }
        complete = false;
    }

    // The family is the first VIP's; every other address must match it.
    if let Some(first) = i.virtual_ipaddress.first() {
        i.family = Family::of(&first.address.addr);
    }
    for (ip, origin) in &family_members {
        if Family::of(ip) != i.family {
            ctx.err(
                origin,
                format!(
                    "{ip} is {} but vrrp_instance '{name}' is {} (its first VIP)",
                    Family::of(ip),
                    i.family
                ),
            );
        }
    }

    i.version = version.or(global.vrrp_version).unwrap_or(2);
    if i.family == Family::Ipv6 && i.version == 2 {
        // RFC 3768 is IPv4 only; keepalived runs IPv6 instances as VRRPv3.
        i.version = 3;
        if version == Some(2) {
            ctx.warn(
                &node.origin,
                format!(
                    "vrrp_instance '{name}' is IPv6, which VRRPv2 cannot carry; using version 3"
                ),
            );
        }
    }

    if let Some((us, origin)) = advert {
        if let Some(d) = check_advert_int(ctx, &origin, us, i.version) {
            i.advert_int = d;
        }
    }

    if let Some(origin) = &auth_origin
        && i.version == 3
    {
        // RFC 5798 removed authentication.
        ctx.err(origin, "authentication is not part of VRRPv3 (RFC 5798)");
    }

    if global.vrrp_strict {
        strict_mode(
            ctx,
            &mut i,
            auth_origin.as_ref(),
            preempt_delay_origin.as_ref(),
        );
    }
    if i.nopreempt && i.priority == OWNER_PRIORITY {
        // RFC 5798 6.4.1: the owner always takes over.
        ctx.warn(
            &node.origin,
            "nopreempt has no effect for the address owner (priority 255); cleared as keepalived does",
        );
        i.nopreempt = false;
    }
    if i.nopreempt && i.state == InitialState::Master {
        ctx.warn(
            &node.origin,
            "nopreempt has no effect with state MASTER; cleared as keepalived does",
        );
        i.nopreempt = false;
    }
    if i.nopreempt
        && let Some(origin) = &preempt_delay_origin
    {
        ctx.warn(
            origin,
            "preempt_delay has no effect with nopreempt; cleared as keepalived does",
        );
        i.preempt_delay = None;
    }
    if i.accept
        && i.version == 2
        && let Some(origin) = &accept_origin
    {
        ctx.warn(
            origin,
            "accept mode is not part of VRRPv2 (RFC 3768); cleared as keepalived does",
        );
        i.accept = false;
    }
    let own = i.interface.clone();
    i.track_interface.retain(|t| {
        if t.name == own {
            ctx.diags.push(Diagnostic::warning(
                &node.origin,
                format!("track_interface {own} is the instance's own interface; ignored as keepalived does"),
            ));
            false
        } else {
            true
        }
    });

    complete.then_some(i)
}

/// `vrrp_strict` enforces the RFCs; keepalived drops what they forbid.
fn strict_mode(
    ctx: &mut Ctx,
    i: &mut VrrpInstance,
    auth: Option<&Origin>,
    preempt_delay: Option<&Origin>,
) {
    if let Some(origin) = auth {
        ctx.warn(
            origin,
            "vrrp_strict ignores authentication; cleared as keepalived does",
        );
        i.authentication = None;
    }
    if let Some(origin) = preempt_delay
        && i.preempt_delay.is_some()
    {
        ctx.warn(
            origin,
            "vrrp_strict does not allow preempt_delay; cleared as keepalived does",
        );
        i.preempt_delay = None;
    }
    if i.state == InitialState::Master && i.priority != OWNER_PRIORITY {
        ctx.warn(
            &i.origin,
            "vrrp_strict: only the address owner (priority 255) starts as MASTER; \
             starting as BACKUP as keepalived does",
        );
        i.state = InitialState::Backup;
    }
}

/// RFC 3768 5.3.7: v2 adverts are whole seconds (8 bits); RFC 5798 5.2.7:
/// v3 adverts are centiseconds in 12 bits, so 0.01..40.95 s.
fn check_advert_int(ctx: &mut Ctx, origin: &Origin, us: u64, version: u8) -> Option<Duration> {
    let text = fmt_micros(us);
    if version == 2 {
        if us % 1_000_000 != 0 {
            ctx.err(
                origin,
                format!("advert_int {text} must be whole seconds with VRRPv2"),
            );
            return None;
        }
        if !(1..=255).contains(&(us / 1_000_000)) {
            ctx.err(
                origin,
                format!("advert_int {text} is out of range 1..255 seconds for VRRPv2"),
            );
            return None;
        }
    } else {
        if us % 10_000 != 0 {
            ctx.err(
                origin,
                format!("advert_int {text} must be a multiple of 0.01 seconds with VRRPv3"),
            );
            return None;
        }
        if !(10_000..=40_950_000).contains(&us) {
            ctx.err(
                origin,
                format!("advert_int {text} is out of range 0.01..40.95 seconds for VRRPv3"),
            );
            return None;
        }
    }
    Some(Duration::from_micros(us))
}

fn authentication(ctx: &mut Ctx, node: &Node, items: &[Node]) -> Option<Authentication> {
    let mut auth_type = None;
    let mut pass: Option<String> = None;
    for item in items {
        match item.keyword.as_str() {
            "auth_type" => match ctx.one(item) {
                Some("PASS") => auth_type = Some(AuthType::Pass),
                Some("AH") => auth_type = Some(AuthType::Ah),
                Some(other) => ctx.err(
                    &item.origin,
                    format!("auth_type '{other}' is neither PASS nor AH"),
                ),
                None => {}
            },
            "auth_pass" => {
                // The value is a secret: never quote it in a message.
                if item.children.is_some() || item.args.len() != 1 {
                    ctx.err(&item.origin, "'auth_pass' takes 1 argument");
                    continue;
                }
                let mut value = item.args[0].clone();
                // RFC 3768 5.3.11: the password field is 8 octets.
                if value.len() > 8 {
                    let mut end = 8;
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    value.truncate(end);
                    ctx.warn(
                        &item.origin,
                        "auth_pass is longer than 8 bytes; truncated to 8 as keepalived does",
                    );
                }
                pass = Some(value);
            }
            _ => ctx.unknown(item, "authentication", AUTHENTICATION),
        }
    }
    match (auth_type, pass) {
        (Some(auth_type), Some(pass)) => Some(Authentication {
            auth_type,
            auth_pass: Secret::new(pass),
        }),
        (None, _) => {
            ctx.err(&node.origin, "authentication has no auth_type");
            None
        }
        (_, None) => {
            ctx.err(&node.origin, "authentication has no auth_pass");
            None
        }
    }
}

fn virtual_address(ctx: &mut Ctx, item: &Node) -> Option<VirtualAddress> {
    if item.children.is_some() {
        ctx.err(&item.origin, "a virtual address does not take a { } block");
        return None;
    }
    let address: IpPrefix = match item.keyword.parse() {
        Ok(p) => p,
        Err(e) => {
            ctx.err(&item.origin, format!("virtual address: {e}"));
            return None;
        }
    };
    let mut vip = VirtualAddress {
        address,
        brd: None,
        dev: None,
        scope: None,
        label: None,
    };
    let mut ok = true;
    let mut args = item.args.iter();
    while let Some(option) = args.next() {
        let Some(value) = args.next() else {
            ctx.err(&item.origin, format!("'{option}' needs a value"));
            ok = false;
            break;
        };
        match option.as_str() {
            "brd" => vip.brd = ctx.ip(&item.origin, "brd", value),
            "dev" => vip.dev = Some(value.clone()),
            "scope" => {
                const SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
                if SCOPES.contains(&value.as_str()) || value.parse::<u8>().is_ok() {
                    vip.scope = Some(value.clone());
                } else {
                    ctx.err(
                        &item.origin,
                        format!("scope '{value}' is not one of {}", SCOPES.join(", ")),
                    );
                    ok = false;
                }
            }
            "label" => vip.label = Some(value.clone()),
            other => {
                ctx.err(
                    &item.origin,
                    format!("unknown virtual address option '{other}' (brd, dev, scope, label)"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(vip)
}

/// `NAME [weight W [reverse]]` of track_script and track_interface: the
/// outer `Option` is "parsed", the inner one "weight given".
fn tracked_weight(ctx: &mut Ctx, item: &Node) -> Option<Option<i32>> {
    if item.children.is_some() {
        ctx.err(
            &item.origin,
            format!("'{}' does not take a {{ }} block", item.keyword),
        );
        return None;
    }
    match item.args.as_slice() {
        [] => Some(None),
        [kw, w] | [kw, w, _] if kw == "weight" => {
            if let Some(extra) = item.args.get(2)
                && extra != "reverse"
            {
                ctx.err(
                    &item.origin,
                    format!("expected 'reverse' after the weight, got '{extra}'"),
                );
                return None;
            }
            ctx.weight(&item.origin, w).map(Some)
        }
        _ => {
            ctx.err(
                &item.origin,
                format!("expected '{} [weight W]'", item.keyword),
            );
            None
        }
    }
}

fn track_script(ctx: &mut Ctx, item: &Node) -> Option<TrackScript> {
    let weight = tracked_weight(ctx, item)?;
    let name = &item.keyword;
    if !ctx.scripts_seen.contains(name) {
        if ctx.scripts_all.contains(name) {
            ctx.err(
                &item.origin,
                format!(
                    "vrrp_script '{name}' is defined after this instance; \
                     keepalived only sees scripts defined before it"
                ),
            );
        } else {
            let known: Vec<&str> = ctx.scripts_all.iter().map(String::as_str).collect();
            let mut message = format!("track_script '{name}' names no vrrp_script");
            if let Some(guess) = did_you_mean(name, &known) {
                message.push_str(&format!("; did you mean '{guess}'?"));
            }
            ctx.err(&item.origin, message);
        }
        return None;
    }
    Some(TrackScript {
        name: name.clone(),
        origin: item.origin.clone(),
        weight,
    })
}
