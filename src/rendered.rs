//! The last gate before a rendered keepalived.conf leaves the controller
//! (issue 14): the file is parsed with the agent's own parser
//! (`hactl_agent::config`) and must mean exactly what the plan says for
//! its host: the same `vrrp_instance`s (interface, VRID, priority, VIPs,
//! tracked scripts, authentication), the same `vrrp_script`s with the same
//! commands, the same router id and script user, as many virtual servers.
//! A value that smuggled syntax past the plan's name rules (or a user's
//! template that adds an instance or a script) is refused here, before
//! upload, rather than by the host's `--config-test`, which would accept
//! a well-formed injected block.
//!
//! Checks that only the host can judge (does the script's program exist,
//! does the user exist) are left to the host, as the audit does
//! (`crate::audit::running`). The password never shows in a finding: the
//! diagnostics are scrubbed of it.

use std::collections::BTreeSet;
use std::path::Path;

use hactl_agent::config::{Config, Diagnostic, lexer, parse, validate};

use crate::plan::secret::REDACTED;
use crate::plan::{HostPlan, PairPlan};

/// Where parsing pretends the file lives, so an `include` can never read a
/// controller file.
const PARSE_ROOT: &str = "/nonexistent/hactl-render/keepalived.conf";

/// How the rendered file differs from the plan, one finding per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rendered keepalived.conf does not match the plan: {}", .0.join("; "))]
pub struct Mismatch(pub Vec<String>);

/// Checks `text`, the keepalived.conf rendered for `host` of `pair`;
/// `secret` is the password as rendered (the real one, `<redacted>`, or
/// none), so that authentication is compared too.
pub fn check(
    pair: &PairPlan,
    host: &HostPlan,
    text: &str,
    secret: Option<&str>,
) -> Result<(), Mismatch> {
    let scrub = |s: String| match secret {
        Some(p) if !p.is_empty() && p != REDACTED => s.replace(p, REDACTED),
        _ => s,
    };
    let mut diagnostics = Vec::new();
    let tokens = lexer::lex_main(text, Path::new(PARSE_ROOT), &mut diagnostics);
    let tree = parse::build_tree(tokens, &mut diagnostics);
    let config = parse::build_config(&tree, &mut diagnostics);
    validate::check(&config, &mut diagnostics);
    let mut found: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error() && !host_dependent(d))
        .map(|d| scrub(format!("line {}: {}", d.origin.line, d.message)))
        .collect();
    if found.is_empty() {
        // A user the controller does not have is left out of the model
        // (the host judges it): that is no mismatch.
        let unknown_user = format!("user '{}' does not exist", host.script_user);
        let user_unknown_here = diagnostics
            .iter()
            .any(|d| d.message.contains(&unknown_user));
        found = compare(pair, host, &config, secret, user_unknown_here);
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(Mismatch(found))
    }
}

/// Errors about the host's own files and accounts.
fn host_dependent(d: &Diagnostic) -> bool {
    d.message.contains("does not exist")
}

fn compare(
    pair: &PairPlan,
    host: &HostPlan,
    config: &Config,
    secret: Option<&str>,
    user_unknown_here: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let g = &config.global_defs;
    if g.router_id.as_deref() != Some(host.name.as_str()) {
        out.push("router_id is not the host's name".to_string());
    }
    let user = g.script_user.as_ref().map(|u| u.user.as_str());
    if user != Some(host.script_user.as_str()) && !(user.is_none() && user_unknown_here) {
        out.push("script_user is not the host's hactl_script_user".to_string());
    }
    let want_scripts: BTreeSet<(&str, &str)> = pair
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.script.as_str()))
        .collect();
    let got_scripts: BTreeSet<(&str, &str)> = config
        .vrrp_scripts
        .iter()
        .map(|s| (s.name.as_str(), s.script.as_str()))
        .collect();
    if want_scripts != got_scripts {
        let extra: Vec<&str> = got_scripts.difference(&want_scripts).map(|s| s.0).collect();
        let missing: Vec<&str> = want_scripts.difference(&got_scripts).map(|s| s.0).collect();
        out.push(format!(
            "vrrp_scripts differ from hactl_checks (not planned: {extra:?}; planned but not found as planned: {missing:?})"
        ));
    }
    let planned: Vec<_> = pair
        .instances
        .iter()
        .filter_map(|i| i.role(&host.name).map(|r| (i, r)))
        .collect();
    let got_names: Vec<&str> = config
        .vrrp_instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let want_names: Vec<&str> = planned.iter().map(|(i, _)| i.name.as_str()).collect();
    if got_names != want_names {
        out.push(format!(
            "vrrp_instances are {got_names:?}, the plan has {want_names:?}"
        ));
        return out;
    }
    for ((plan, role), got) in planned.iter().zip(&config.vrrp_instances) {
        let name = &plan.name;
        if got.interface != host.interface {
            out.push(format!("instance {name}: interface is not the host's"));
        }
        if got.virtual_router_id != plan.vrid {
            out.push(format!(
                "instance {name}: VRID {} is not the plan's {}",
                got.virtual_router_id, plan.vrid
            ));
        }
        if got.priority != role.priority {
            out.push(format!(
                "instance {name}: priority {} is not the plan's {}",
                got.priority, role.priority
            ));
        }
        if got.version != pair.vrrp_version {
            out.push(format!(
                "instance {name}: VRRP version {} is not the plan's {}",
                got.version, pair.vrrp_version
            ));
        }
        let vips: BTreeSet<String> = got
            .virtual_ipaddress
            .iter()
            .map(|v| format!("{}/{}", v.address.addr, v.address.len))
            .collect();
        let want: BTreeSet<String> = plan.vips.iter().map(ToString::to_string).collect();
        if vips != want || !got.virtual_ipaddress_excluded.is_empty() {
            out.push(format!(
                "instance {name}: VIPs {vips:?} are not the plan's {want:?}"
            ));
        }
        if got
            .virtual_ipaddress
            .iter()
            .any(|v| v.dev.as_deref().is_some_and(|d| d != host.interface))
        {
            out.push(format!(
                "instance {name}: a VIP is on another device than the host's interface"
            ));
        }
        let track: Vec<&str> = got.track_script.iter().map(|t| t.name.as_str()).collect();
        let want_track: Vec<&str> = plan.track.iter().map(String::as_str).collect();
        if track != want_track {
            out.push(format!(
                "instance {name}: tracks {track:?}, the plan {want_track:?}"
            ));
        }
        let auth = got.authentication.as_ref().map(|a| a.auth_pass.expose());
        match (auth, secret) {
            (None, None) => {}
            (Some(a), Some(s)) if a == s || s.starts_with(a) && s == REDACTED => {}
            _ => out.push(format!("instance {name}: authentication is not the plan's")),
        }
    }
    if config.virtual_servers.len() != pair.virtual_servers.len() {
        out.push(format!(
            "{} virtual_server(s), the plan has {}",
            config.virtual_servers.len(),
            pair.virtual_servers.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::inventory::Inventory;
    use crate::render::{RenderError, Secrets, render_config};

    fn lab() -> crate::plan::ClusterPlan {
        let inv = Inventory::load(Path::new("inventories/lab.yaml")).unwrap();
        crate::plan::resolve(&inv, &|_| None).unwrap()
    }

    /// Issue 14: even when a name gets past the plan's rules (here set on
    /// the plan directly), the file that would carry an injected
    /// `vrrp_script evil { ... user root }` is refused before anyone sees
    /// or uploads it, and the finding never shows the password.
    #[test]
    fn an_injected_block_is_refused_before_upload() {
        let evil = "x)\nvrrp_script evil {\n    script \"/bin/sh -c id\"\n    user root\n}\n#";
        type Edit = fn(&mut crate::plan::ClusterPlan, &str);
        let edits: &[(&str, Edit)] = &[
            ("pair name", |p, e| p.pairs[0].name = e.to_string()),
            ("host interface", |p, e| {
                p.pairs[0].hosts[0].interface = format!("eth0\n}}\n{e}")
            }),
            ("instance name", |p, e| {
                p.pairs[0].instances[0].name = format!("www {{\n}}\n{e}")
            }),
            ("check script", |p, e| {
                p.pairs[0].checks[0].script = format!("/bin/true\"\n}}\n{e}")
            }),
            ("content script path", |p, _| {
                p.pairs[0].checks[0].script = "/usr/bin/sudo".to_string()
            }),
        ];
        for (what, edit) in edits {
            let mut plan = lab();
            edit(&mut plan, evil);
            let host = plan.pairs[0].hosts[0].name.clone();
            for secrets in [Secrets::Reveal, Secrets::Redact] {
                let err = render_config(&plan, &host, None, secrets).unwrap_err();
                let text = crate::error_chain(&err);
                assert!(
                    matches!(err, RenderError::Mismatch { .. }),
                    "{what}: {text}"
                );
                assert!(!text.contains("labpass"), "{what}: {text}");
            }
        }
        // The untouched plan renders and checks clean.
        let plan = lab();
        for h in ["lb01", "lb02", "lb03", "lb04"] {
            render_config(&plan, h, None, Secrets::Reveal).unwrap();
        }
    }
}

#[cfg(test)]
mod debug_tests {
    use std::path::Path;

    use crate::inventory::Inventory;
    use crate::render::{Secrets, render_host};

    /// Issue 14: no `Debug` of what holds a revealed config shows the
    /// password (the plan, the rendered files, the files deploy puts).
    #[test]
    fn debug_output_never_holds_the_password() {
        let inv = Inventory::load(Path::new("inventories/lab.yaml")).unwrap();
        let plan = crate::plan::resolve(&inv, &|_| None).unwrap();
        let files = render_host(&plan, "lb01", None, Secrets::Reveal).unwrap();
        assert!(
            files
                .iter()
                .any(|f| f.content.contains("auth_pass labpass"))
        );
        let put: Vec<_> = files
            .iter()
            .map(|f| crate::operations::PutFile::new(f.path.clone(), f.content.as_bytes(), f.mode))
            .collect();
        for text in [
            format!("{plan:?}"),
            format!("{plan:#?}"),
            format!("{files:?}"),
            format!("{put:?}"),
        ] {
            assert!(!text.contains("labpass"), "{text}");
        }
    }
}
