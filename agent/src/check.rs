//! `hactl-agent check`: parse a keepalived.conf and say what it means.
//!
//! The output is what an operator (or hactl's deploy, which runs it on the
//! host before it renames a new config into place) needs to trust a file: a
//! summary of every instance, script, sync group and virtual server, or with
//! `--json` the parsed model itself. The password never appears: the model
//! redacts it. This module only builds text; `main.rs` prints it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::config::{self, Config, ConfigError, Diagnostic, HealthCheck};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// What a successful check prints: the report for stdout and the warnings
/// for stderr.
#[derive(Debug, Clone)]
pub struct Report {
    pub stdout: String,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot encode the model as json")]
    Json(#[source] serde_json::Error),
}

impl CheckError {
    /// Every failure of `check` exits 1: the file is not usable.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

pub fn run(path: &Path, format: Format) -> Result<Report, CheckError> {
    let loaded = config::load(path)?;
    // Issue 14: the check judges scripts exactly as the run time will.
    let refused = crate::script_security::refusals(&loaded.config);
    if !refused.is_empty() {
        let mut diagnostics = loaded.warnings;
        diagnostics.extend(refused);
        diagnostics.sort_by_key(|d| d.origin.line);
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        }
        .into());
    }
    let stdout = match format {
        Format::Json => {
            let mut text =
                serde_json::to_string_pretty(&loaded.config).map_err(CheckError::Json)?;
            text.push('\n');
            text
        }
        Format::Human => summary(path, &loaded.config),
    };
    Ok(Report {
        stdout,
        warnings: loaded.warnings,
    })
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A human summary, one block per instance, script, group and service.
pub fn summary(path: &Path, c: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok ({}, {}, {}, {})",
        path.display(),
        count(c.vrrp_instances.len(), "vrrp_instance"),
        count(c.vrrp_scripts.len(), "vrrp_script"),
        count(c.vrrp_sync_groups.len(), "vrrp_sync_group"),
        count(c.virtual_servers.len(), "virtual_server"),
    );
    for i in &c.vrrp_instances {
        let owner = if i.priority == config::parse::OWNER_PRIORITY {
            " (address owner)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "vrrp_instance {}: VRID {} on {}, VRRPv{} {}, advert {}, state {}, priority {}{owner}{}",
            i.name,
            i.virtual_router_id,
            i.interface,
            i.version,
            i.family,
            secs(i.advert_int),
            i.state,
            i.priority,
            if i.nopreempt { ", nopreempt" } else { "" },
        );
        let vips: Vec<String> = i
            .virtual_ipaddress
            .iter()
            .map(|v| match &v.dev {
                Some(dev) => format!("{} dev {dev}", v.address),
                None => v.address.to_string(),
            })
            .collect();
        let _ = writeln!(out, "  vips: {}", vips.join(", "));
        if !i.unicast_peer.is_empty() {
            let peers: Vec<String> = i.unicast_peer.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "  unicast peers: {}", peers.join(", "));
        }
        if !i.track_script.is_empty() {
            let names: Vec<String> = i
                .track_script
                .iter()
                .map(|t| match t.weight {
                    Some(w) => format!("{} (weight {w})", t.name),
                    None => t.name.clone(),
                })
                .collect();
            let _ = writeln!(out, "  track_script: {}", names.join(", "));
        }
        if i.authentication.is_some() {
            let _ = writeln!(out, "  authentication: PASS (password redacted)");
        }
    }
    for s in &c.vrrp_scripts {
        let _ = writeln!(
            out,
            "vrrp_script {}: \"{}\" every {}, weight {}, rise {}, fall {}",
            s.name,
            s.script,
            secs(s.interval),
            s.weight,
            s.rise,
            s.fall
        );
    }
    for g in &c.vrrp_sync_groups {
        let names: Vec<&str> = g.group.iter().map(|m| m.name.as_str()).collect();
        let _ = writeln!(out, "vrrp_sync_group {}: {}", g.name, names.join(", "));
    }
    for v in &c.virtual_servers {
        let _ = writeln!(
            out,
            "virtual_server {}: {} {} {}, {}",
            v.target,
            v.protocol,
            v.lb_algo,
            v.lb_kind,
            count(v.real_servers.len(), "real_server")
        );
        for r in &v.real_servers {
            let checks: Vec<&str> = r.checks.iter().map(HealthCheck::kind).collect();
            let checks = if checks.is_empty() {
                "no checker".to_string()
            } else {
                checks.join(", ")
            };
            let _ = writeln!(out, "  real_server {} {}: {checks}", r.address, r.port);
        }
    }
    out
}
