//! From tokens to the model: a keyword tree, then one function per block.
//!
//! [`build_tree`] groups tokens into statements (`keyword args...` on one
//! line, plus a `{ }` block that may open on the same or the next line) and
//! reports unbalanced braces at the line that opened or closed them.
//! [`build_config`] walks the tree with one keyword table per block: a keyword
//! outside its block's table is an error with a did-you-mean, never ignored.
//! This file holds the tree, the tables, the value readers ([`Ctx`]) and the
//! small blocks; `vrrp.rs` reads `vrrp_instance` and `virtual_server.rs`
//! reads `virtual_server`. Range checks of single values happen while
//! reading, where the line is at hand; checks across blocks live in
//! `validate.rs`.

use std::collections::HashSet;
use std::net::IpAddr;
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
    "virtual_server_group",
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
    "smtp_alert",
    "smtp_alert_vrrp",
    "metrics_listen",
    "vrrp_priority",
    "vrrp_rt_priority",
    "vrrp_no_swap",
    "vrrp_rlimit_rttime",
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
    "lvs_sched",
    "lb_kind",
    "lvs_method",
    "persistence_timeout",
    "persistence_granularity",
    "protocol",
    "ip_family",
    "ops",
    "sorry_server",
    "sorry_server_inhibit",
    "quorum",
    "hysteresis",
    "quorum_up",
    "quorum_down",
    "alpha",
    "omega",
    "virtualhost",
    "real_server",
];

pub const REAL_SERVER: &[&str] = &[
    "weight",
    "inhibit_on_failure",
    "lvs_method",
    "uthreshold",
    "lthreshold",
    "notify_up",
    "notify_down",
    "delay_loop",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
];

pub const CHECK_COMMON: &[&str] = &[
    "connect_timeout",
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
    "delay_loop",
    "warmup",
];

pub const HTTP_GET: &[&str] = &[
    "url",
    "virtualhost",
    "connect_timeout",
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
    "delay_loop",
    "warmup",
];

pub const URL: &[&str] = &["path", "status_code", "digest", "virtualhost"];

pub const MISC_CHECK: &[&str] = &[
    "misc_path",
    "misc_timeout",
    "misc_dynamic",
    "user",
    "connect_timeout",
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "retry",
    "nb_get_retry",
    "delay_before_retry",
    "delay_loop",
    "warmup",
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

/// Diagnostics after which an unknown keyword gets no did-you-mean.
const GUESSES_UP_TO: usize = 50;

/// The closest keyword of `table`, if it is close enough to be a typo.
pub fn did_you_mean<'t>(word: &str, table: &[&'t str]) -> Option<&'t str> {
    let limit = (word.len() / 3).clamp(1, 3);
    let chars = word.chars().count();
    table
        .iter()
        // The edit distance is at least the difference in length: a
        // candidate that far off is never computed (a mistyped file has
        // many unknown words, each looked up in the whole table).
        .filter(|cand| cand.len().abs_diff(chars) <= limit)
        .map(|cand| (strsim::levenshtein(word, cand), *cand))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, cand)| cand)
}

/// The largest decimal number of seconds we accept where keepalived sets
/// no bound of its own (about 136 years, in microseconds).
pub(super) const MAX_DECIMAL_US: u64 = u32::MAX as u64 * 1_000_000;

/// Highest VRRP priority; only the owner of the VIPs may use it.
pub const OWNER_PRIORITY: u8 = 255;

// ===== helpers =====

pub(super) struct Ctx<'d> {
    pub(super) diags: &'d mut Vec<Diagnostic>,
    /// vrrp_script names defined so far, and in the whole file: keepalived
    /// resolves a track_script against the scripts defined before it.
    pub(super) scripts_seen: HashSet<String>,
    pub(super) scripts_all: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, origin: &Origin, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(origin, message));
    }

    pub(super) fn warn(&mut self, origin: &Origin, message: impl Into<String>) {
        self.diags.push(Diagnostic::warning(origin, message));
    }

    pub(super) fn unknown(&mut self, node: &Node, block: &str, table: &[&str]) {
        let mut message = format!("unknown keyword '{}' in {block}", node.keyword);
        // A file with more diagnostics than anyone reads gets no more
        // guesses (each is a search of the table): the count stays cheap.
        let guess = (self.diags.len() < GUESSES_UP_TO)
            .then(|| did_you_mean(&node.keyword, table))
            .flatten();
        if let Some(guess) = guess {
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
    pub(super) fn arity(&mut self, node: &Node, min: usize, max: usize) -> bool {
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

    pub(super) fn flag(&mut self, node: &Node) -> bool {
        self.arity(node, 0, 0)
    }

    /// `keyword [<BOOL>]` (keepalived.conf(5): on|off|true|false|yes|no);
    /// the bare keyword means on.
    pub(super) fn bool_flag(&mut self, node: &Node) -> Option<bool> {
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

    pub(super) fn one<'n>(&mut self, node: &'n Node) -> Option<&'n str> {
        self.arity(node, 1, 1).then(|| node.args[0].as_str())
    }

    /// A string that may be given quoted or as several words (keepalived
    /// joins them), as for `script` and `notify_*`.
    pub(super) fn command(&mut self, node: &Node) -> Option<String> {
        self.arity(node, 1, usize::MAX).then(|| node.args.join(" "))
    }

    pub(super) fn block<'n>(&mut self, node: &'n Node, args: usize) -> Option<&'n [Node]> {
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

    pub(super) fn int(
        &mut self,
        origin: &Origin,
        what: &str,
        text: &str,
        lo: i64,
        hi: i64,
    ) -> Option<i64> {
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

    pub(super) fn one_int(&mut self, node: &Node, lo: i64, hi: i64) -> Option<i64> {
        let text = self.one(node)?;
        self.int(&node.origin, &node.keyword, text, lo, hi)
    }

    pub(super) fn one_u32(&mut self, node: &Node, lo: u32, hi: u32) -> Option<u32> {
        self.one_int(node, lo.into(), hi.into())
            .and_then(|v| u32::try_from(v).ok())
    }

    pub(super) fn one_secs(&mut self, node: &Node, lo: u32, hi: u32) -> Option<Duration> {
        self.one_u32(node, lo, hi)
            .map(|s| Duration::from_secs(s.into()))
    }

    /// A decimal number of seconds with at most microsecond precision.
    pub(super) fn one_decimal(&mut self, node: &Node, lo_us: u64, hi_us: u64) -> Option<Duration> {
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

    pub(super) fn ip(&mut self, origin: &Origin, what: &str, text: &str) -> Option<IpAddr> {
        match text.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(origin, format!("{what} '{text}' is not an IP address"));
                None
            }
        }
    }

    pub(super) fn port(&mut self, origin: &Origin, text: &str) -> Option<u16> {
        self.int(origin, "port", text, 1, 65535)
            .and_then(|p| u16::try_from(p).ok())
    }

    pub(super) fn one_ip(&mut self, node: &Node) -> Option<IpAddr> {
        let text = self.one(node)?;
        self.ip(&node.origin, &node.keyword, text)
    }

    /// `weight W [reverse]` style: an integer in -253..=253.
    pub(super) fn weight(&mut self, origin: &Origin, text: &str) -> Option<i32> {
        self.int(origin, "weight", text, -253, 253)
            .and_then(|w| i32::try_from(w).ok())
    }

    /// `USER [GROUP]` of script_user and vrrp_script's user: keepalived
    /// refuses names this host does not know, since it cannot switch to them.
    pub(super) fn user(&mut self, node: &Node) -> Option<ScriptUser> {
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

pub(super) fn fmt_micros(us: u64) -> String {
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
    crate::notify::split_command(command)
        .first()
        .and_then(|program| crate::script_security::resolve_program(program))
        .is_some()
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
                        vrrp::vrrp_instance(&mut ctx, node, children, &config.global_defs)
                {
                    config.vrrp_instances.push(instance);
                }
            }
            "virtual_server_group" => {
                if let Some(g) = virtual_server::virtual_server_group(&mut ctx, node) {
                    config.virtual_server_groups.push(g);
                }
            }
            "virtual_server" => {
                if let Some(vs) = virtual_server::virtual_server(&mut ctx, node) {
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
            "smtp_alert" => g.smtp_alert = ctx.bool_flag(node),
            "smtp_alert_vrrp" => g.smtp_alert_vrrp = ctx.bool_flag(node),
            "metrics_listen" => {
                if let Some(text) = ctx.one(node) {
                    match text.parse() {
                        Ok(a) => g.metrics_listen = Some(a),
                        Err(_) => ctx.err(
                            &node.origin,
                            format!(
                                "metrics_listen '{text}' is not ADDRESS:PORT \
                                 (127.0.0.1:9650, [::1]:9650)"
                            ),
                        ),
                    }
                }
            }
            "vrrp_priority" => {
                g.vrrp_priority = ctx
                    .one_int(node, -20, 19)
                    .and_then(|v| i32::try_from(v).ok());
            }
            "vrrp_rt_priority" => {
                // 0 is ours: SCHED_OTHER, keepalived's default, on purpose.
                g.vrrp_rt_priority = ctx.one_int(node, 0, 99).and_then(|v| u8::try_from(v).ok());
            }
            "vrrp_no_swap" => g.vrrp_no_swap = ctx.flag(node),
            "vrrp_rlimit_rttime" => {
                g.vrrp_rlimit_rttime = ctx
                    .one_int(node, 2, i64::from(u32::MAX))
                    .and_then(|v| u64::try_from(v).ok());
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
}
