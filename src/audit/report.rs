//! The audit report in its four shapes, as pure functions of a
//! [`Report`]: a table for people, JSON, a Nagios plugin answer (one status
//! line with perfdata, then one line per finding) and a Prometheus
//! node_exporter textfile. None of them can hold a secret: findings carry
//! only host names, addresses and counts.

use std::fmt::Write as _;

use comfy_table::{ContentArrangement, Table, presets};

use super::judge::{Finding, Kind, Report, Severity};

/// When the run ended and how long it took (for the textfile).
#[derive(Debug, Clone, Copy)]
pub struct RunInfo {
    /// Unix time, seconds.
    pub finished: f64,
    pub duration_secs: f64,
}

fn instance_label(f: &Finding) -> String {
    match &f.instance {
        Some(i) => format!("{}/{i}", f.pair),
        None => f.pair.clone(),
    }
}

/// The short summary after the status word: counts of findings by kind,
/// worst first, or what was checked when all is well.
pub fn summary(report: &Report) -> String {
    if report.findings.is_empty() {
        let hosts: std::collections::BTreeSet<&String> =
            report.instances.iter().flat_map(|i| &i.hosts).collect();
        return format!(
            "{} instances on {} hosts: one VIP holder and one master each",
            report.instances.len(),
            hosts.len()
        );
    }
    let mut kinds: Vec<(Severity, Kind, usize)> = Vec::new();
    for f in &report.findings {
        match kinds.iter_mut().find(|(_, k, _)| *k == f.kind) {
            Some(entry) => {
                entry.0 = entry.0.max(f.severity);
                entry.2 += 1;
            }
            None => kinds.push((f.severity, f.kind, 1)),
        }
    }
    kinds.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    kinds
        .iter()
        .map(|(_, kind, n)| format!("{n} {}", kind.as_str().replace('_', "-")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One finding as a line of text.
pub fn finding_line(f: &Finding) -> String {
    format!(
        "{} {} {} [{}]: {}",
        f.severity,
        f.kind,
        instance_label(f),
        f.hosts.join(","),
        f.detail
    )
}

/// The Nagios plugin answer: `HACTL AUDIT STATE - summary | perfdata`, then
/// one line per finding.
pub fn nagios(report: &Report) -> String {
    let masters: usize = report
        .instances
        .iter()
        .map(|i| i.masters.len())
        .max()
        .unwrap_or(0);
    let holders: usize = report
        .instances
        .iter()
        .map(|i| i.holders.len())
        .max()
        .unwrap_or(0);
    let mut perf = vec![
        format!("instances={};;;0", report.instances.len()),
        format!("masters={masters};;;0"),
        format!("holders={holders};;;0"),
    ];
    for severity in [Severity::Critical, Severity::Warning, Severity::Unknown] {
        let n = report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count();
        perf.push(format!("{}={n};;;0", severity.to_string().to_lowercase()));
    }
    for i in &report.instances {
        let label = format!("{}/{}", i.pair, i.instance);
        perf.push(format!("'{label} holders'={};;;0", i.holders.len()));
        perf.push(format!("'{label} masters'={};;;0", i.masters.len()));
    }
    let mut text = format!(
        "HACTL AUDIT {} - {} | {}\n",
        report.status,
        summary(report),
        perf.join(" ")
    );
    for f in &report.findings {
        text.push_str(&finding_line(f));
        text.push('\n');
    }
    text
}

/// A Nagios UNKNOWN answer for a run that could not judge anything.
pub fn nagios_unknown(why: &str) -> String {
    format!("HACTL AUDIT UNKNOWN - {}\n", why.replace('|', "/"))
}

/// The report as JSON: status, exit code, instances, findings.
pub fn json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "status": report.status,
        "exit_code": report.status.exit_code(),
        "instances": report.instances,
        "findings": report.findings,
    })
}

/// The report as tables: instances, then findings, then the status line.
pub fn table(report: &Report) -> String {
    let new_table = || {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED);
        t.set_content_arrangement(ContentArrangement::Disabled);
        t.force_no_tty();
        t
    };
    let mut instances = new_table();
    instances.set_header(vec![
        "pair",
        "instance",
        "status",
        "VIPs",
        "holders",
        "masters",
        "agents up",
    ]);
    for i in &report.instances {
        let none = |v: &Vec<String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(" ")
            }
        };
        instances.add_row(vec![
            i.pair.clone(),
            i.instance.clone(),
            i.status.to_string(),
            i.vips.join(" "),
            none(&i.holders),
            none(&i.masters),
            format!("{}/{}", i.agents_up.len(), i.hosts.len()),
        ]);
    }
    let mut text = format!("{instances}\n");
    if !report.findings.is_empty() {
        let mut findings = new_table();
        findings.set_header(vec![
            "severity", "kind", "pair", "instance", "hosts", "detail",
        ]);
        for f in &report.findings {
            findings.add_row(vec![
                f.severity.to_string(),
                f.kind.to_string(),
                f.pair.clone(),
                f.instance.clone().unwrap_or_else(|| "-".into()),
                f.hosts.join(" "),
                f.detail.clone(),
            ]);
        }
        text.push_str(&format!("{findings}\n"));
    }
    text.push_str(&format!("{}: {}\n", report.status, summary(report)));
    text
}

/// A label value with `\`, `"` and newlines escaped (exposition format).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The node_exporter textfile: gauges per instance and per finding kind.
pub fn prometheus(report: &Report, run: RunInfo) -> String {
    let mut t = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(t, "# HELP {name} {help}");
        let _ = writeln!(t, "# TYPE {name} gauge");
        for (labels, value) in rows {
            if labels.is_empty() {
                let _ = writeln!(t, "{name} {value}");
            } else {
                let _ = writeln!(t, "{name}{{{labels}}} {value}");
            }
        }
    };
    let per_instance = |value: &dyn Fn(&super::judge::InstanceReport) -> String| {
        report
            .instances
            .iter()
            .map(|i| {
                (
                    format!(
                        "pair=\"{}\",instance=\"{}\"",
                        label(&i.pair),
                        label(&i.instance)
                    ),
                    value(i),
                )
            })
            .collect::<Vec<_>>()
    };
    gauge(
        "hactl_audit_instance_holders",
        "Hosts with a VIP of the instance on an interface.",
        per_instance(&|i| i.holders.len().to_string()),
    );
    gauge(
        "hactl_audit_instance_masters",
        "Agents that report the instance as MASTER.",
        per_instance(&|i| i.masters.len().to_string()),
    );
    gauge(
        "hactl_audit_instance_agents_up",
        "Agents of the instance's pair that answered.",
        per_instance(&|i| i.agents_up.len().to_string()),
    );
    gauge(
        "hactl_audit_instance_hosts",
        "Hosts of the instance's pair.",
        per_instance(&|i| i.hosts.len().to_string()),
    );
    gauge(
        "hactl_audit_instance_status",
        "The instance's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        per_instance(&|i| i.status.exit_code().to_string()),
    );
    gauge(
        "hactl_audit_findings",
        "Findings of the last audit by kind.",
        Kind::ALL
            .iter()
            .map(|k| (format!("kind=\"{k}\""), report.count(*k).to_string()))
            .collect(),
    );
    gauge(
        "hactl_audit_status",
        "The audit's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        vec![(String::new(), report.status.exit_code().to_string())],
    );
    gauge(
        "hactl_audit_last_run_timestamp_seconds",
        "When the last audit ended (Unix time).",
        vec![(String::new(), format!("{:.3}", run.finished))],
    );
    gauge(
        "hactl_audit_duration_seconds",
        "How long the last audit took.",
        vec![(String::new(), format!("{:.3}", run.duration_secs))],
    );
    t
}

/// The report in the format asked for.
pub fn render(report: &Report, format: super::Format, run: RunInfo) -> String {
    match format {
        super::Format::Table => table(report),
        super::Format::Nagios => nagios(report),
        super::Format::Prometheus => prometheus(report, run),
        super::Format::Json => {
            let mut text = serde_json::to_string_pretty(&json(report)).unwrap_or_default();
            text.push('\n');
            text
        }
    }
}
