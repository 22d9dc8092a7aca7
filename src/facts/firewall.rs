//! Firewall rules that would drop VRRP (IP protocol 112, RFC 5798 5.1.1.4)
//! on its way in or out: read from `nft -j list ruleset`, and from
//! `iptables-save` where iptables (legacy) rules exist. The result names
//! each rule so preflight can say which one to remove; the active probe
//! (`probes.rs`) is what proves VRRP passes.
//!
//! Per chain, in order: a rule that accepts VRRP unconditionally ends the
//! search (later drops do not see VRRP); a drop or reject matching VRRP is
//! reported (`conditional` when it has other matches, such as a source
//! address); a rule that drops everything is reported; a base chain whose
//! policy is drop is reported unless it accepted VRRP. Jumps between chains
//! are not followed.

use serde::Serialize;
use serde_json::Value;

use super::{Fact, ParseError};
use crate::ssh::{CommandOutput, RemoteCommand};

const SCRIPT: &str = r##"found=0
if command -v nft >/dev/null 2>&1; then
  found=1; echo '#nft'; nft -j list ruleset || exit 3; echo
fi
if command -v iptables-save >/dev/null 2>&1; then
  found=1; echo '#iptables'; iptables-save || exit 4
fi
[ "$found" = 1 ] || echo '#none'"##;

/// IP protocol 112 as nft and iptables print it.
const VRRP_NAMES: [&str; 2] = ["vrrp", "112"];

/// Where the rules came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    Nftables,
    Iptables,
}

/// A rule (or chain policy) that would drop VRRP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockingRule {
    pub backend: FirewallBackend,
    /// `inet filter input handle 3` (nft), `filter INPUT` (iptables).
    pub location: String,
    /// The rule, rendered: `ip protocol vrrp drop`, `-p vrrp -j DROP`,
    /// `policy drop`.
    pub rule: String,
    /// The rule has matches besides the protocol (so it may not hit
    /// every VRRP packet).
    pub conditional: bool,
}

/// The firewalls found and their VRRP-blocking rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRules {
    pub backends: Vec<FirewallBackend>,
    pub blocking: Vec<BlockingRule>,
}

/// The fact; needs root to read the rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct VrrpFirewall;

impl Fact for VrrpFirewall {
    type Output = FirewallRules;

    fn name(&self) -> &'static str {
        "firewall"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["sh", "-c", SCRIPT]).become_(true)
    }

    fn parse(&self, output: &CommandOutput) -> Result<FirewallRules, ParseError> {
        if !output.success() {
            return Err(ParseError::unexpected(output));
        }
        let text = output.stdout_text();
        let mut rules = FirewallRules {
            backends: Vec::new(),
            blocking: Vec::new(),
        };
        let mut sections: Vec<(&str, String)> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('#')
                && matches!(name, "nft" | "iptables" | "none")
            {
                sections.push((name, String::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        for (name, body) in sections {
            match name {
                "nft" => {
                    rules.backends.push(FirewallBackend::Nftables);
                    rules.blocking.extend(read_nft(&body)?);
                }
                "iptables" => {
                    rules.backends.push(FirewallBackend::Iptables);
                    rules.blocking.extend(read_iptables_save(&body));
                }
                _ => {}
            }
        }
        Ok(rules)
    }
}

// ===== nftables =====

/// A chain as nft lists it, with its rules in order.
struct NftChain {
    family: String,
    table: String,
    name: String,
    policy: Option<String>,
    rules: Vec<Value>,
}

fn read_nft(json: &str) -> Result<Vec<BlockingRule>, ParseError> {
    let value: Value = serde_json::from_str(json.trim())
        .map_err(|e| ParseError::new(format!("nft -j output: {e}")))?;
    let objects = value["nftables"]
        .as_array()
        .ok_or_else(|| ParseError::new("nft -j output has no nftables array"))?;
    let mut chains: Vec<NftChain> = Vec::new();
    for object in objects {
        if let Some(chain) = object.get("chain") {
            chains.push(NftChain {
                family: text(&chain["family"]),
                table: text(&chain["table"]),
                name: text(&chain["name"]),
                policy: chain["policy"].as_str().map(str::to_string),
                rules: Vec::new(),
            });
        } else if let Some(rule) = object.get("rule") {
            let owner = chains.iter_mut().find(|c| {
                c.family == text(&rule["family"])
                    && c.table == text(&rule["table"])
                    && c.name == text(&rule["chain"])
            });
            if let Some(chain) = owner {
                chain.rules.push(rule.clone());
            }
        }
    }
    let mut blocking = Vec::new();
    for chain in &chains {
        // IPv4 and dual-stack tables see VRRP; ip6 tables see VRRP for IPv6.
        if !matches!(chain.family.as_str(), "ip" | "inet" | "ip6" | "netdev") {
            continue;
        }
        let location = |rule: &Value| {
            format!(
                "{} {} {} handle {}",
                chain.family, chain.table, chain.name, rule["handle"]
            )
        };
        let mut accepted = false;
        for rule in &chain.rules {
            let Some(exprs) = rule["expr"].as_array() else {
                continue;
            };
            let matches: Vec<&Value> = exprs.iter().filter_map(|e| e.get("match")).collect();
            let verdict = exprs.iter().find_map(verdict_of);
            let vrrp = matches.iter().any(|m| matches_vrrp(m));
            let others = matches.iter().filter(|m| !matches_vrrp(m)).count();
            match verdict {
                Some("accept") if vrrp && others == 0 => {
                    accepted = true;
                    break;
                }
                Some(drop @ ("drop" | "reject")) if vrrp || matches.is_empty() => {
                    blocking.push(BlockingRule {
                        backend: FirewallBackend::Nftables,
                        location: location(rule),
                        rule: render_nft_rule(&matches, drop),
                        conditional: others > 0,
                    });
                }
                _ => {}
            }
        }
        if !accepted && chain.policy.as_deref() == Some("drop") {
            blocking.push(BlockingRule {
                backend: FirewallBackend::Nftables,
                location: format!("{} {} {}", chain.family, chain.table, chain.name),
                rule: "policy drop".to_string(),
                conditional: false,
            });
        }
    }
    Ok(blocking)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn verdict_of(expr: &Value) -> Option<&'static str> {
    ["accept", "drop", "reject"]
        .into_iter()
        .find(|v| expr.get(*v).is_some())
}

/// `ip protocol vrrp`, `ip6 nexthdr 112`, `meta l4proto vrrp`, or a set
/// holding VRRP, compared with `==` or `in`.
fn matches_vrrp(m: &Value) -> bool {
    let left = &m["left"];
    let protocol_field = match (left.get("payload"), left.get("meta")) {
        (Some(payload), _) => matches!(
            (payload["protocol"].as_str(), payload["field"].as_str()),
            (Some("ip"), Some("protocol")) | (Some("ip6"), Some("nexthdr"))
        ),
        (None, Some(meta)) => matches!(meta["key"].as_str(), Some("l4proto" | "protocol")),
        _ => false,
    };
    let positive = matches!(m["op"].as_str(), Some("==" | "in"));
    let is_vrrp = |v: &Value| match v {
        Value::String(s) => VRRP_NAMES.contains(&s.as_str()),
        Value::Number(n) => n.as_u64() == Some(112),
        _ => false,
    };
    let right = &m["right"];
    let names_vrrp = match right.get("set").and_then(Value::as_array) {
        Some(members) => members.iter().any(is_vrrp),
        None => is_vrrp(right),
    };
    protocol_field && positive && names_vrrp
}

fn render_nft_rule(matches: &[&Value], verdict: &str) -> String {
    let mut words: Vec<String> = matches.iter().map(|m| render_match(m)).collect();
    words.push(verdict.to_string());
    words.join(" ")
}

fn render_match(m: &Value) -> String {
    let left = &m["left"];
    let left = if let Some(p) = left.get("payload") {
        format!("{} {}", text(&p["protocol"]), text(&p["field"]))
    } else if let Some(meta) = left.get("meta") {
        format!("meta {}", text(&meta["key"]))
    } else {
        left.to_string()
    };
    let op = match m["op"].as_str() {
        Some("==") | Some("in") | None => String::new(),
        Some(op) => format!("{op} "),
    };
    let value = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let right = match m["right"].get("set").and_then(Value::as_array) {
        Some(members) => format!(
            "{{ {} }}",
            members.iter().map(value).collect::<Vec<_>>().join(", ")
        ),
        None => value(&m["right"]),
    };
    format!("{left} {op}{right}")
}

// ===== iptables =====

fn read_iptables_save(text: &str) -> Vec<BlockingRule> {
    let mut table = String::new();
    let mut policies: Vec<(String, String, String)> = Vec::new();
    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut blocking = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            table = name.to_string();
        } else if let Some(rest) = line.strip_prefix(':') {
            let mut words = rest.split_whitespace();
            if let (Some(chain), Some(policy)) = (words.next(), words.next()) {
                policies.push((table.clone(), chain.to_string(), policy.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let Some((&chain, args)) = words.split_first() else {
                continue;
            };
            let key = (table.clone(), chain.to_string());
            if accepted.contains(&key) {
                continue;
            }
            let protocol = args
                .windows(2)
                .position(|w| w[0] == "-p" && VRRP_NAMES.contains(&w[1].to_lowercase().as_str()));
            let negated = protocol.is_some_and(|i| i > 0 && args[i - 1] == "!");
            let vrrp = protocol.is_some() && !negated;
            let target = args.windows(2).find(|w| w[0] == "-j").map(|w| w[1]);
            // Options before "-j" are matches; after it, the target's own.
            let jump = args.iter().position(|w| *w == "-j").unwrap_or(args.len());
            let options = args[..jump].iter().filter(|w| w.starts_with('-')).count();
            let others = options - usize::from(vrrp);
            match target {
                Some("ACCEPT") if vrrp && others == 0 => accepted.push(key),
                Some("DROP" | "REJECT") if vrrp || options == 0 => blocking.push(BlockingRule {
                    backend: FirewallBackend::Iptables,
                    location: format!("{table} {chain}"),
                    rule: args.join(" "),
                    conditional: others > 0,
                }),
                _ => {}
            }
        }
    }
    for (table, chain, policy) in policies {
        if policy == "DROP" && !accepted.contains(&(table.clone(), chain.clone())) {
            blocking.push(BlockingRule {
                backend: FirewallBackend::Iptables,
                location: format!("{table} {chain}"),
                rule: "policy DROP".to_string(),
                conditional: false,
            });
        }
    }
    blocking
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    #[test]
    fn nft_rules_that_drop_vrrp_are_named() {
        let text = format!("#nft\n{}\n", include_str!("testdata/nft_vrrp_dropped.json"));
        let rules = VrrpFirewall.parse(&output(0, &text, "")).unwrap();
        assert_eq!(rules.backends, [FirewallBackend::Nftables]);
        let found: Vec<(&str, &str, bool)> = rules
            .blocking
            .iter()
            .map(|r| (r.location.as_str(), r.rule.as_str(), r.conditional))
            .collect();
        assert_eq!(
            found,
            [
                ("inet filter input handle 3", "ip protocol vrrp drop", false),
                ("ip raw pre handle 2", "meta l4proto vrrp reject", false),
                (
                    "ip raw pre handle 4",
                    "ip protocol { tcp, vrrp } ip saddr 10.0.0.9 drop",
                    true
                ),
                ("inet strict input", "policy drop", false),
            ]
        );
    }

    #[test]
    fn an_accept_before_the_drop_lets_vrrp_pass() {
        let text = r#"#nft
{"nftables": [{"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
{"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": 112}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 3, "expr": [{"drop": null}]}}]}
"#;
        let rules = VrrpFirewall.parse(&output(0, text, "")).unwrap();
        assert_eq!(rules.blocking, []);
        let without_accept = text.replace("{\"accept\": null}", "{\"counter\": null}");
        let rules = VrrpFirewall.parse(&output(0, &without_accept, "")).unwrap();
        let found: Vec<&str> = rules.blocking.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(found, ["drop", "policy drop"]);
    }

    #[test]
    fn iptables_save_rules_and_policies() {
        let text = format!("#iptables\n{}", include_str!("testdata/iptables_save.txt"));
        let rules = VrrpFirewall.parse(&output(0, &text, "")).unwrap();
        assert_eq!(rules.backends, [FirewallBackend::Iptables]);
        let found: Vec<(&str, &str, bool)> = rules
            .blocking
            .iter()
            .map(|r| (r.location.as_str(), r.rule.as_str(), r.conditional))
            .collect();
        assert_eq!(
            found,
            [
                ("filter INPUT", "-p vrrp -j DROP", false),
                (
                    "filter INPUT",
                    "-s 10.0.0.9/32 -p 112 -j REJECT --reject-with icmp-port-unreachable",
                    true
                ),
                ("filter OUTPUT", "policy DROP", false),
            ]
        );
    }

    #[test]
    fn no_firewall_tools_means_no_rules() {
        let rules = VrrpFirewall.parse(&output(0, "#none\n", "")).unwrap();
        assert_eq!(rules.backends, []);
        assert_eq!(rules.blocking, []);
        assert!(
            VrrpFirewall
                .parse(&output(3, "#nft\n", "nft: permission denied"))
                .is_err()
        );
        assert!(VrrpFirewall.parse(&output(0, "#nft\n{\n", "")).is_err());
    }
}
