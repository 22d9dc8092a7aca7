//! From tokens to the model: a keyword tree, then one function per block.
//!
//! [`build_tree`] groups tokens into statements (`keyword args...` on one
//! line, plus a `{ }` block that may open on the same or the next line) and
//! reports unbalanced braces at the line that opened or closed them.
//! [`build_config`] walks the tree with one keyword table per block: a keyword
//! outside its block's table is an error with a did-you-mean, never ignored.
//! Range checks of single values happen here, where the line is at hand;
//! checks across blocks live in `validate.rs`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{Diagnostic, Origin};
use super::lexer::{Token, TokenKind};
use super::*;

/// One statement: `keyword args...` and maybe a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: String,
    pub args: Vec<String>,
    pub origin: Origin,
    pub children: Option<Vec<Node>>,
}

// ===== tree =====

struct Frame {
    node: Option<Node>,
    open: Origin,
    children: Vec<Node>,
}

/// Group tokens into statements and blocks.
pub fn build_tree(tokens: Vec<Token>, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut top: Vec<Node> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(token) = iter.next() {
        match token.kind {
            TokenKind::Word(keyword) => {
                let mut args = Vec::new();
                while let Some(next) = iter.peek() {
                    match &next.kind {
                        TokenKind::Word(w) if next.origin == token.origin => {
                            args.push(w.clone());
                            iter.next();
                        }
                        _ => break,
                    }
                }
                let node = Node {
                    keyword,
                    args,
                    origin: token.origin,
                    children: None,
                };
                if let Some(open) = iter.next_if(|t| t.kind == TokenKind::Open) {
                    stack.push(Frame {
                        node: Some(node),
                        open: open.origin,
                        children: Vec::new(),
                    });
                } else {
                    push_node(&mut stack, &mut top, node);
                }
            }
            TokenKind::Open => {
                diags.push(Diagnostic::error(&token.origin, "'{' without a keyword"));
                stack.push(Frame {
                    node: None,
                    open: token.origin,
                    children: Vec::new(),
                });
            }
            TokenKind::Close => match stack.pop() {
                Some(frame) => close(frame, &mut stack, &mut top),
                None => diags.push(Diagnostic::error(
                    &token.origin,
                    "'}' without a matching '{'",
                )),
            },
        }
    }
    while let Some(frame) = stack.pop() {
        let what = match &frame.node {
            Some(node) => format!("block '{}'", node.keyword),
            None => "block".to_string(),
        };
        diags.push(Diagnostic::error(
            &frame.open,
            format!("{what} opened here is never closed (missing '}}')"),
        ));
        close(frame, &mut stack, &mut top);
    }
    top
}

fn push_node(stack: &mut [Frame], top: &mut Vec<Node>, node: Node) {
    match stack.last_mut() {
        Some(frame) => frame.children.push(node),
        None => top.push(node),
    }
}

fn close(frame: Frame, stack: &mut [Frame], top: &mut Vec<Node>) {
    if let Some(mut node) = frame.node {
        node.children = Some(frame.children);
        push_node(stack, top, node);
    }
}

// ===== keyword tables =====

pub const TOP_LEVEL: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_instance",
    "virtual_server",
];

pub const GLOBAL_DEFS: &[&str] = &[
    "router_id",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_version",
    "script_user",
    "enable_script_security",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_skip_check_adv_addr",
    "vrrp_strict",
    "vrrp_iptables",
];

pub const VRRP_SCRIPT: &[&str] = &[
    "script", "interval", "timeout", "weight", "rise", "fall", "user",
];

pub const SYNC_GROUP: &[&str] = &[
    "group",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify",
];

pub const VRRP_INSTANCE: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt_delay",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "track_script",
    "track_interface",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "smtp_alert",
    "mcast_src_ip",
    "unicast_src_ip",
    "unicast_peer",
    "use_vmac",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "accept",
    "dont_track_primary",
];

pub const AUTHENTICATION: &[&str] = &["auth_type", "auth_pass"];

pub const VIRTUAL_SERVER: &[&str] = &[
    "delay_loop",
    "lb_algo",
    "lb_kind",
    "persistence_timeout",
    "protocol",
    "sorry_server",
    "real_server",
];

pub const REAL_SERVER: &[&str] = &[
    "weight",
    "inhibit_on_failure",
    "TCP_CHECK",
    "HTTP_GET",
    "MISC_CHECK",
];

pub const CHECK_COMMON: &[&str] = &[
    "connect_timeout",
    "connect_port",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
];

pub const HTTP_GET: &[&str] = &[
    "url",
    "connect_timeout",
    "connect_port",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
];

pub const URL: &[&str] = &["path", "status_code", "digest"];

pub const MISC_CHECK: &[&str] = &[
    "misc_path",
    "misc_timeout",
    "connect_timeout",
    "connect_port",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
];

/// Every block's table, to tell where a misplaced keyword belongs.
const TABLES: &[(&str, &[&str])] = &[
    ("the top level", TOP_LEVEL),
    ("global_defs", GLOBAL_DEFS),
    ("vrrp_script", VRRP_SCRIPT),
    ("vrrp_sync_group", SYNC_GROUP),
    ("vrrp_instance", VRRP_INSTANCE),
    ("authentication", AUTHENTICATION),
    ("virtual_server", VIRTUAL_SERVER),
    ("real_server", REAL_SERVER),
    ("HTTP_GET", HTTP_GET),
    ("url", URL),
    ("MISC_CHECK", MISC_CHECK),
];

/// The closest keyword of `table`, if it is close enough to be a typo.
pub fn did_you_mean<'t>(word: &str, table: &[&'t str]) -> Option<&'t str> {
    let limit = (word.len() / 3).clamp(1, 3);
    table
        .iter()
        .map(|cand| (strsim::levenshtein(word, cand), *cand))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, cand)| cand)
}

/// The largest decimal number of seconds we accept where keepalived sets
/// no bound of its own (about 136 years, in microseconds).
const MAX_DECIMAL_US: u64 = u32::MAX as u64 * 1_000_000;

/// Highest VRRP priority; only the owner of the VIPs may use it.
pub const OWNER_PRIORITY: u8 = 255;

// ===== helpers =====

struct Ctx<'d> {
    diags: &'d mut Vec<Diagnostic>,
    /// vrrp_script names defined so far, and in the whole file: keepalived
    /// resolves a track_script against the scripts defined before it.
    scripts_seen: HashSet<String>,
    scripts_all: Vec<String>,
}

impl Ctx<'_> {
    fn err(&mut self, origin: &Origin, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(origin, message));
    }

    fn warn(&mut self, origin: &Origin, message: impl Into<String>) {
        self.diags.push(Diagnostic::warning(origin, message));
    }

    fn unknown(&mut self, node: &Node, block: &str, table: &[&str]) {
        let mut message = format!("unknown keyword '{}' in {block}", node.keyword);
        if let Some(guess) = did_you_mean(&node.keyword, table) {
            message.push_str(&format!("; did you mean '{guess}'?"));
        } else if let Some((home, _)) = TABLES
            .iter()
            .find(|(name, t)| *name != block && t.contains(&node.keyword.as_str()))
        {
            message.push_str(&format!(" ('{}' belongs in {home}", node.keyword));
            if *home == "the top level" {
                // A top-level block nested somewhere: a '}' is missing.
                message.push_str("; is a '}' missing above?");
            }
            message.push(')');
        }
        self.err(&node.origin, message);
    }

    /// Check the argument count and that no block follows.
    fn arity(&mut self, node: &Node, min: usize, max: usize) -> bool {
        let mut ok = true;
        if node.children.is_some() {
            self.err(
                &node.origin,
                format!("'{}' does not take a {{ }} block", node.keyword),
            );
            ok = false;
        }
        let n = node.args.len();
        if n < min || n > max {
            let want = match (min, max) {
                (a, b) if a == b && a == 1 => "1 argument".to_string(),
                (a, b) if a == b => format!("{a} arguments"),
                (a, usize::MAX) => format!("at least {a} argument(s)"),
                (a, b) => format!("{a} to {b} arguments"),
            };
            self.err(
                &node.origin,
                format!("'{}' takes {want}, got {n}", node.keyword),
            );
            ok = false;
        }
        ok
    }

    fn flag(&mut self, node: &Node) -> bool {
        self.arity(node, 0, 0)
    }

    /// `keyword [<BOOL>]` (keepalived.conf(5): on|off|true|false|yes|no);
    /// the bare keyword means on.
    fn bool_flag(&mut self, node: &Node) -> Option<bool> {
        if !self.arity(node, 0, 1) {
            return None;
        }
        match node.args.first().map(String::as_str) {
            None | Some("on" | "true" | "yes") => Some(true),
            Some("off" | "false" | "no") => Some(false),
            Some(other) => {
                self.err(
                    &node.origin,
                    format!(
                        "{} '{other}' is not one of on, off, true, false, yes, no",
                        node.keyword
                    ),
                );
                None
            }
        }
    }

    fn one<'n>(&mut self, node: &'n Node) -> Option<&'n str> {
        self.arity(node, 1, 1).then(|| node.args[0].as_str())
    }

    /// A string that may be given quoted or as several words (keepalived
    /// joins them), as for `script` and `notify_*`.
    fn command(&mut self, node: &Node) -> Option<String> {
        self.arity(node, 1, usize::MAX).then(|| node.args.join(" "))
    }

    fn block<'n>(&mut self, node: &'n Node, args: usize) -> Option<&'n [Node]> {
        let Some(children) = &node.children else {
            self.err(
                &node.origin,
                format!("'{}' needs a {{ }} block", node.keyword),
            );
            return None;
        };
        if node.args.len() != args {
            let want = match args {
                0 => "no arguments".to_string(),
                1 => "a name".to_string(),
                n => format!("{n} arguments"),
            };
            self.err(
                &node.origin,
                format!(
                    "'{}' takes {want} before its block, got {}",
                    node.keyword,
                    node.args.len()
                ),
            );
            return None;
        }
        Some(children)
    }

    fn int(&mut self, origin: &Origin, what: &str, text: &str, lo: i64, hi: i64) -> Option<i64> {
        match text.parse::<i64>() {
            Ok(v) if (lo..=hi).contains(&v) => Some(v),
            Ok(v) => {
                self.err(origin, format!("{what} {v} is out of range {lo}..{hi}"));
                None
            }
            Err(_) => {
                self.err(origin, format!("{what} '{text}' is not an integer"));
                None
            }
        }
    }

    fn one_int(&mut self, node: &Node, lo: i64, hi: i64) -> Option<i64> {
        let text = self.one(node)?;
        self.int(&node.origin, &node.keyword, text, lo, hi)
    }

    fn one_u32(&mut self, node: &Node, lo: u32, hi: u32) -> Option<u32> {
        self.one_int(node, lo.into(), hi.into())
            .and_then(|v| u32::try_from(v).ok())
    }

    fn one_secs(&mut self, node: &Node, lo: u32, hi: u32) -> Option<Duration> {
        self.one_u32(node, lo, hi)
            .map(|s| Duration::from_secs(s.into()))
    }

    /// A decimal number of seconds with at most microsecond precision.
    fn one_decimal(&mut self, node: &Node, lo_us: u64, hi_us: u64) -> Option<Duration> {
        let text = self.one(node)?;
        match parse_decimal_micros(text) {
            Some(us) if (lo_us..=hi_us).contains(&us) => Some(Duration::from_micros(us)),
            Some(_) => {
                self.err(
                    &node.origin,
                    format!(
                        "{} {text} is out of range {}..{} seconds",
                        node.keyword,
                        fmt_micros(lo_us),
                        fmt_micros(hi_us)
                    ),
                );
                None
            }
            None => {
                self.err(
                    &node.origin,
                    format!("{} '{text}' is not a number of seconds", node.keyword),
                );
                None
            }
        }
    }

    fn ip(&mut self, origin: &Origin, what: &str, text: &str) -> Option<IpAddr> {
        match text.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(origin, format!("{what} '{text}' is not an IP address"));
                None
            }
        }
    }

    fn port(&mut self, origin: &Origin, text: &str) -> Option<u16> {
        self.int(origin, "port", text, 1, 65535)
            .and_then(|p| u16::try_from(p).ok())
    }

    fn one_ip(&mut self, node: &Node) -> Option<IpAddr> {
        let text = self.one(node)?;
        self.ip(&node.origin, &node.keyword, text)
    }

    /// `weight W [reverse]` style: an integer in -253..=253.
    fn weight(&mut self, origin: &Origin, text: &str) -> Option<i32> {
        self.int(origin, "weight", text, -253, 253)
            .and_then(|w| i32::try_from(w).ok())
    }

    /// `USER [GROUP]` of script_user and vrrp_script's user: keepalived
    /// refuses names this host does not know, since it cannot switch to them.
    fn user(&mut self, node: &Node) -> Option<ScriptUser> {
        if !self.arity(node, 1, 2) {
            return None;
        }
        let user = node.args[0].clone();
        let group = node.args.get(1).cloned();
        if !account_exists("/etc/passwd", &user) {
            self.err(
                &node.origin,
                format!("user '{user}' does not exist on this host"),
            );
            return None;
        }
        if let Some(g) = &group
            && !account_exists("/etc/group", g)
        {
            self.err(
                &node.origin,
                format!("group '{g}' does not exist on this host"),
            );
            return None;
        }
        Some(ScriptUser { user, group })
    }
}

/// Parse `12`, `0.5`, `1.25` into microseconds; no sign, no exponent.
pub fn parse_decimal_micros(text: &str) -> Option<u64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut frac_us: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        frac_us += u64::from(b - b'0') * 10u64.pow(5 - u32::try_from(i).ok()?);
    }
    whole.checked_mul(1_000_000)?.checked_add(frac_us)
}

fn fmt_micros(us: u64) -> String {
    let d = Duration::from_micros(us);
    format!("{}", d.as_secs_f64())
}

/// Whether `name` is an account in a passwd(5) or group(5) style file.
pub fn account_exists(file: &str, name: &str) -> bool {
    std::fs::read_to_string(file)
        .map(|text| text.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

/// Whether `command`'s program exists and is executable (keepalived
/// disables a vrrp_script whose program it cannot find).
fn program_exists(command: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = command.split_whitespace().next() else {
        return false;
    };
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
        .unwrap_or(false)
}

// ===== model =====

/// Build the model from the tree. Errors go to `diags`; the returned model
/// holds what could be understood.
pub fn build_config(tree: &[Node], diags: &mut Vec<Diagnostic>) -> Config {
    let scripts_all = tree
        .iter()
        .filter(|n| n.keyword == "vrrp_script")
        .filter_map(|n| n.args.first().cloned())
        .collect();
    let mut ctx = Ctx {
        diags,
        scripts_seen: HashSet::new(),
        scripts_all,
    };
    let mut config = Config::default();
    // global_defs first: its vrrp_version is the default of every instance.
    for node in tree.iter().filter(|n| n.keyword == "global_defs") {
        if let Some(children) = ctx.block(node, 0) {
            global_defs(&mut ctx, children, &mut config.global_defs);
        }
    }
    for node in tree {
        match node.keyword.as_str() {
            "global_defs" => {}
            "vrrp_script" => {
                if let Some(children) = ctx.block(node, 1)
                    && let Some(script) = vrrp_script(&mut ctx, node, children)
                {
                    ctx.scripts_seen.insert(script.name.clone());
                    config.vrrp_scripts.push(script);
                }
            }
            "vrrp_sync_group" => {
                if let Some(children) = ctx.block(node, 1)
                    && let Some(group) = sync_group(&mut ctx, node, children)
                {
                    config.vrrp_sync_groups.push(group);
                }
            }
            "vrrp_instance" => {
                if let Some(children) = ctx.block(node, 1)
                    && let Some(instance) =
                        vrrp_instance(&mut ctx, node, children, &config.global_defs)
                {
                    config.vrrp_instances.push(instance);
                }
            }
            "virtual_server" => {
                if let Some(vs) = virtual_server(&mut ctx, node) {
                    config.virtual_servers.push(vs);
                }
            }
            _ => ctx.unknown(node, "the top level", TOP_LEVEL),
        }
    }
    config
}

fn global_defs(ctx: &mut Ctx, children: &[Node], g: &mut GlobalDefs) {
    for node in children {
        match node.keyword.as_str() {
            "router_id" => {
                if let Some(v) = ctx.one(node) {
                    g.router_id = Some(v.to_string());
                }
            }
            "vrrp_mcast_group4" => match ctx.one_ip(node) {
                Some(IpAddr::V4(a)) if a.is_multicast() => g.vrrp_mcast_group4 = Some(a),
                Some(a) => ctx.err(
                    &node.origin,
                    format!("vrrp_mcast_group4 {a} is not an IPv4 multicast address"),
                ),
                None => {}
            },
            "vrrp_mcast_group6" => match ctx.one_ip(node) {
                Some(IpAddr::V6(a)) if a.is_multicast() => g.vrrp_mcast_group6 = Some(a),
                Some(a) => ctx.err(
                    &node.origin,
                    format!("vrrp_mcast_group6 {a} is not an IPv6 multicast address"),
                ),
                None => {}
            },
            "vrrp_version" => {
                if let Some(v) = ctx.one_int(node, 2, 3) {
                    g.vrrp_version = u8::try_from(v).ok();
                }
            }
            "script_user" => g.script_user = ctx.user(node),
            "enable_script_security" => {
                g.enable_script_security = ctx.flag(node) || g.enable_script_security;
            }
            "notification_email" => {
                if let Some(children) = ctx.block(node, 0) {
                    for line in children {
                        // keepalived takes every word of the block as an
                        // address, several per line if need be.
                        if line.children.is_some() {
                            ctx.err(&line.origin, "an email address does not take a { } block");
                            continue;
                        }
                        g.notification_email.push(line.keyword.clone());
                        g.notification_email.extend(line.args.iter().cloned());
                    }
                }
            }
            "notification_email_from" => {
                if let Some(v) = ctx.one(node) {
                    g.notification_email_from = Some(v.to_string());
                }
            }
            "smtp_server" => {
                if ctx.arity(node, 1, 2) {
                    let port = match node.args.get(1) {
                        Some(p) => ctx.port(&node.origin, p),
                        None => None,
                    };
                    g.smtp_server = Some(SmtpServer {
                        host: node.args[0].clone(),
                        port,
                    });
                }
            }
            "smtp_connect_timeout" => g.smtp_connect_timeout = ctx.one_secs(node, 1, 3600),
            "vrrp_garp_master_delay" => g.vrrp_garp_master_delay = ctx.one_secs(node, 0, 3600),
            "vrrp_garp_master_repeat" => {
                g.vrrp_garp_master_repeat = ctx.one_u32(node, 1, 65535);
            }
            "vrrp_garp_master_refresh" => {
                g.vrrp_garp_master_refresh = ctx.one_secs(node, 0, u32::MAX);
            }
            "vrrp_garp_interval" => g.vrrp_garp_interval = ctx.one_decimal(node, 0, MAX_DECIMAL_US),
            "vrrp_gna_interval" => g.vrrp_gna_interval = ctx.one_decimal(node, 0, MAX_DECIMAL_US),
            "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr = ctx.flag(node),
            "vrrp_strict" => g.vrrp_strict = ctx.flag(node),
            "vrrp_iptables" => {
                if ctx.arity(node, 0, 2) {
                    g.vrrp_iptables = Some(node.args.clone());
                }
            }
            _ => ctx.unknown(node, "global_defs", GLOBAL_DEFS),
        }
    }
}

fn vrrp_script(ctx: &mut Ctx, node: &Node, children: &[Node]) -> Option<VrrpScript> {
    let mut s = VrrpScript {
        name: node.args[0].clone(),
        origin: node.origin.clone(),
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        weight_reverse: false,
        rise: 1,
        fall: 1,
        user: None,
    };
    let mut script_origin = None;
    for child in children {
        match child.keyword.as_str() {
            "script" => {
                if let Some(cmd) = ctx.command(child) {
                    s.script = cmd;
                    script_origin = Some(child.origin.clone());
                }
            }
            // keepalived reads both as whole seconds, 1..4294.
            "interval" => {
                if let Some(d) = ctx.one_secs(child, 1, 4294) {
                    s.interval = d;
                }
            }
            "timeout" => s.timeout = ctx.one_secs(child, 1, 4294),
            "weight" => {
                if ctx.arity(child, 1, 2) {
                    if let Some(w) = ctx.weight(&child.origin, &child.args[0]) {
                        s.weight = w;
                    }
                    match child.args.get(1).map(String::as_str) {
                        None => {}
                        Some("reverse") => s.weight_reverse = true,
                        Some(other) => ctx.err(
                            &child.origin,
                            format!("expected 'reverse' after the weight, got '{other}'"),
                        ),
                    }
                }
            }
            "rise" => {
                if let Some(v) = ctx.one_u32(child, 1, u32::MAX) {
                    s.rise = v;
                }
            }
            "fall" => {
                if let Some(v) = ctx.one_u32(child, 1, u32::MAX) {
                    s.fall = v;
                }
            }
            "user" => s.user = ctx.user(child),
            _ => ctx.unknown(child, "vrrp_script", VRRP_SCRIPT),
        }
    }
    match script_origin {
        None => {
            ctx.err(
                &node.origin,
                format!("vrrp_script '{}' has no script", s.name),
            );
            None
        }
        Some(origin) => {
            if !program_exists(&s.script) {
                let program = s.script.split_whitespace().next().unwrap_or_default();
                ctx.err(
                    &origin,
                    format!("script '{program}' does not exist or is not executable"),
                );
            }
            Some(s)
        }
    }
}

fn sync_group(ctx: &mut Ctx, node: &Node, children: &[Node]) -> Option<SyncGroup> {
    let mut g = SyncGroup {
        name: node.args[0].clone(),
        origin: node.origin.clone(),
        group: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify: None,
    };
    let mut has_group = false;
    for child in children {
        match child.keyword.as_str() {
            "group" => {
                if let Some(members) = ctx.block(child, 0) {
                    has_group = true;
                    for m in members {
                        if ctx.flag(m) {
                            g.group.push(Named {
                                name: m.keyword.clone(),
                                origin: m.origin.clone(),
                            });
                        }
                    }
                }
            }
            "notify_master" => g.notify_master = ctx.command(child),
            "notify_backup" => g.notify_backup = ctx.command(child),
            "notify_fault" => g.notify_fault = ctx.command(child),
            "notify" => g.notify = ctx.command(child),
            _ => ctx.unknown(child, "vrrp_sync_group", SYNC_GROUP),
        }
    }
    if !has_group {
        ctx.err(
            &node.origin,
            format!("vrrp_sync_group '{}' has no group {{ }}", g.name),
        );
    }
    Some(g)
}

fn vrrp_instance(
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
        smtp_alert: false,
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
                    i.smtp_alert = on;
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

fn virtual_server(ctx: &mut Ctx, node: &Node) -> Option<VirtualServer> {
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
    fn decimal_seconds() {
        let table: &[(&str, Option<u64>)] = &[
            ("1", Some(1_000_000)),
            ("0.1", Some(100_000)),
            ("40.95", Some(40_950_000)),
            (".5", Some(500_000)),
            ("0.000001", Some(1)),
            ("0.0000001", None),
            ("-1", None),
            ("1e3", None),
            ("", None),
            (".", None),
            ("abc", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_decimal_micros(text), *want, "{text:?}");
        }
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(did_you_mean("prioritty", VRRP_INSTANCE), Some("priority"));
        assert_eq!(
            did_you_mean("vrrp_instanse", TOP_LEVEL),
            Some("vrrp_instance")
        );
        assert_eq!(did_you_mean("zzz", VRRP_INSTANCE), None);
    }

    #[test]
    fn status_ranges() {
        assert_eq!(status_range("200"), Some((200, 200)));
        assert_eq!(status_range("200-299"), Some((200, 299)));
        assert_eq!(status_range("299-200"), None);
        assert_eq!(status_range("700"), None);
    }
}
