//! All terminal output goes through here: results on stdout (tables, JSON,
//! rendered files), diagnostics on stderr, so `--json` output stays alone on
//! stdout and nothing interleaves.

use std::io::{IsTerminal, Write};

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};

use crate::error::Error;
use crate::lab::LabStatus;
use crate::plan::{ClusterPlan, State};

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub color: bool,
}

impl Output {
    /// Colour only when asked for and stderr is a terminal.
    pub fn new(color: bool) -> Self {
        Self {
            color: color && std::io::stderr().is_terminal(),
        }
    }

    /// Should stdout get colours?
    pub fn stdout_color(&self) -> bool {
        self.color && std::io::stdout().is_terminal()
    }

    /// Text on stdout, as is.
    pub fn text(&self, text: &str) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).map_err(Error::Stdout)?;
        out.flush().map_err(Error::Stdout)
    }

    /// JSON on stdout, 4-space indented like `ansible-inventory`, one
    /// trailing newline.
    pub fn json(&self, value: &serde_json::Value) -> Result<(), Error> {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(value, &mut ser).map_err(|e| Error::Stdout(e.into()))?;
        buf.push(b'\n');
        self.text(&String::from_utf8_lossy(&buf))
    }

    /// One diagnostic line on stderr, prefixed `error: ` (red on a colour
    /// terminal).
    pub fn error(&self, message: &str) {
        let prefix = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let _ = writeln!(std::io::stderr().lock(), "{prefix}: {message}");
    }
}

/// The plan as a table: one row per instance and host.
pub fn plan_table(plan: &ClusterPlan, hosts: Option<&[String]>, color: bool) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Disabled);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(vec![
        "pair",
        "instance",
        "host",
        "role",
        "priority",
        "VRID",
        "multicast group",
        "VIPs",
    ]);
    for pair in &plan.pairs {
        for inst in &pair.instances {
            for role in &inst.roles {
                if hosts.is_some_and(|h| !h.contains(&role.host)) {
                    continue;
                }
                let state = Cell::new(role.state.to_string());
                let state = match (color, role.state) {
                    (true, State::Master) => state.fg(Color::Green),
                    _ => state,
                };
                let vips: Vec<String> = inst.vips.iter().map(|v| v.to_string()).collect();
                table.add_row(vec![
                    Cell::new(&pair.name),
                    Cell::new(&inst.name),
                    Cell::new(&role.host),
                    state,
                    Cell::new(role.priority),
                    Cell::new(inst.vrid),
                    Cell::new(pair.mcast_group),
                    Cell::new(vips.join(" ")),
                ]);
            }
        }
    }
    format!("{table}\n")
}

/// `hactl lab status`: one row per host.
pub fn lab_status_table(status: &LabStatus) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Disabled);
    table.force_no_tty();
    table.set_header(vec!["host", "address", "namespace", "sshd", "answers SSH"]);
    for host in &status.hosts {
        table.add_row(vec![
            host.name.clone(),
            format!("{}:{}", host.address, host.ssh_port),
            if host.namespace_exists {
                host.namespace.clone()
            } else {
                format!("{} (missing)", host.namespace)
            },
            host.sshd_pid
                .map_or_else(|| "down".to_string(), |pid| format!("pid {pid}")),
            if host.answers_ssh { "yes" } else { "no" }.to_string(),
        ]);
    }
    format!("lab {}\n{table}\n", status.lab)
}

// ===== progress =====

/// A progress bar on stderr, drawn only on a terminal and never with
/// `--json`; otherwise every call does nothing.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar of `len` steps, when `visible` and stderr is a terminal.
    pub fn new(len: usize, visible: bool) -> Progress {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(len as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg}")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// A bar that never draws.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Removes the bar before results are printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

// ===== preflight, deploy, status =====

fn plain_table(header: Vec<&str>) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Disabled);
    table.force_no_tty();
    table.set_header(header);
    table
}

/// `hactl preflight`: one row per host and check.
pub fn preflight_table(report: &crate::preflight::PreflightReport) -> String {
    let mut table = plain_table(vec!["host", "check", "result", "detail", "fix"]);
    for c in &report.checks {
        table.add_row(vec![
            c.host.clone(),
            c.check.clone(),
            c.outcome.to_string(),
            c.detail.clone(),
            c.fix.clone().unwrap_or_default(),
        ]);
    }
    let failed = report.failed_hosts();
    let verdict = if failed.is_empty() {
        "preflight: every host passes\n".to_string()
    } else {
        format!("preflight: failures on {}\n", failed.join(", "))
    };
    format!("{table}\n{verdict}")
}

/// `hactl deploy`: the plan per host, the diffs, then the summary.
pub fn deploy_text(report: &crate::deploy::DeployReport) -> String {
    let mut text = String::new();
    for h in &report.hosts {
        text.push_str(&format!("{} ({}):\n", h.host, h.pair));
        for line in &h.plan {
            text.push_str(&format!("  {line}\n"));
        }
        if let Some(e) = &h.error {
            text.push_str(&format!("  FAILED: {e}\n"));
        }
        if let Some(diff) = &h.diff {
            text.push_str(diff);
        }
    }
    let mut table = plain_table(vec!["host", "changed", "ok", "failed", "time"]);
    for h in &report.hosts {
        table.add_row(vec![
            h.host.clone(),
            if h.changed { "yes" } else { "no" }.to_string(),
            if h.ok { "yes" } else { "no" }.to_string(),
            if h.ok { "" } else { "FAILED" }.to_string(),
            format!("{:.1}s", h.seconds),
        ]);
    }
    let title = if report.check {
        "deploy --check (nothing changed)"
    } else {
        "deploy"
    };
    format!("{text}\n{title}\n{table}\n")
}

/// `hactl status`: one row per instance and host.
pub fn status_table(report: &crate::cluster_status::StatusReport) -> String {
    let mut table = plain_table(vec![
        "pair",
        "instance",
        "host",
        "role",
        "agent",
        "state",
        "priority",
        "holds VIPs",
    ]);
    for inst in &report.instances {
        for h in &inst.hosts {
            table.add_row(vec![
                inst.pair.clone(),
                inst.instance.clone(),
                h.host.clone(),
                h.role.to_string(),
                match (h.agent_up, &h.error) {
                    (_, Some(e)) => format!("unreachable: {e}"),
                    (Some(true), _) => "up".into(),
                    _ => "down".into(),
                },
                h.state.clone().unwrap_or_else(|| "-".into()),
                match (h.priority, h.effective_priority) {
                    (Some(p), Some(e)) if p != e => format!("{p} (effective {e})"),
                    (Some(p), _) => p.to_string(),
                    _ => format!("{} (planned)", h.planned_priority),
                },
                h.holds.join(" "),
            ]);
        }
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    //! The preflight, deploy and status tables against golden files
    //! (`src/testdata/`; `HACTL_UPDATE_GOLDEN=1` regenerates them).

    use super::*;
    use crate::cluster_status::{HostInstance, InstanceReport, StatusReport};
    use crate::deploy::{DeployReport, HostReport};
    use crate::preflight::{CheckResult, Outcome, PreflightReport};

    #[track_caller]
    fn golden(name: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/testdata")
            .join(name);
        if std::env::var_os("HACTL_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} ({e}); run with HACTL_UPDATE_GOLDEN=1", path.display()));
        assert_eq!(got, want, "{name}");
    }

    fn preflight() -> PreflightReport {
        let row = |host: &str, check: &str, outcome, detail: &str, fix: Option<&str>| CheckResult {
            host: host.into(),
            check: check.into(),
            outcome,
            detail: detail.into(),
            fix: fix.map(str::to_string),
        };
        PreflightReport {
            checks: vec![
                row("lb01", "hostname", Outcome::Pass, "lb01", None),
                row(
                    "lb02",
                    "hostname",
                    Outcome::Fail,
                    "uname -n says \"other\", the inventory says \"lb02\"",
                    Some("hostnamectl set-hostname lb02 (or rename the host in the inventory)"),
                ),
                row(
                    "lb02",
                    "time sync",
                    Outcome::Warn,
                    "no time sync service answers",
                    None,
                ),
            ],
        }
    }

    #[test]
    fn preflight_table_names_failures_and_fixes() {
        golden("preflight_table.txt", &preflight_table(&preflight()));
    }

    #[test]
    fn deploy_summary() {
        let host = |name: &str, changed, error: Option<&str>, plan: &[&str]| HostReport {
            host: name.into(),
            pair: "web_lb".into(),
            changed,
            ok: error.is_none(),
            error: error.map(str::to_string),
            plan: plan.iter().map(|s| s.to_string()).collect(),
            diff: None,
            config_diff: None,
            rolled_back: false,
            seconds: 1.25,
        };
        let report = DeployReport {
            check: false,
            hosts: vec![
                host(
                    "lb02",
                    true,
                    None,
                    &[
                        "upload /etc/hactl/keepalived.conf (mode 600)",
                        "reload hactl-agent (SIGHUP)",
                    ],
                ),
                host(
                    "lb01",
                    false,
                    Some("not deployed: lb02 of this pair failed first"),
                    &[],
                ),
            ],
            preflight: PreflightReport::default(),
        };
        golden("deploy_summary.txt", &deploy_text(&report));
    }

    #[test]
    fn status_table_shows_holders_and_agents() {
        let line = |host: &str, role, state: Option<&str>, holds: &[&str]| HostInstance {
            host: host.into(),
            role,
            planned_priority: if role == State::Master { 150 } else { 100 },
            agent_up: Some(state.is_some()),
            state: state.map(str::to_string),
            priority: state.map(|_| if role == State::Master { 150 } else { 100 }),
            effective_priority: state.map(|_| if role == State::Master { 90 } else { 100 }),
            holds: holds.iter().map(|s| s.to_string()).collect(),
            error: None,
        };
        let report = StatusReport {
            instances: vec![InstanceReport {
                pair: "web_lb".into(),
                instance: "www".into(),
                vrid: 1,
                planned_master: "lb01".into(),
                masters: vec!["lb01".into()],
                vip_holders: [("10.213.0.100/24".to_string(), vec!["lb01".to_string()])].into(),
                hosts: vec![
                    line("lb01", State::Master, Some("MASTER"), &["10.213.0.100/24"]),
                    line("lb02", State::Backup, None, &[]),
                ],
            }],
        };
        golden("status_table.txt", &status_table(&report));
    }
}
