//! A drill's result and its verdict, the table of `hactl failover-test`
//! and the exit code. The JSON field names (`pair`, `instance`,
//! `scenario`, `master_before`, `master_after`, `takeover_ms`, `bound_ms`,
//! `probes_lost`, `restored`, `ok`) are a contract for scripts.

use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use super::scenario::Scenario;

/// Slack allowed over the RFC bound: SSH round trips between the fault and
/// its stamp, scheduling on a loaded host, the gratuitous ARP's way to the
/// controller.
pub const MARGIN: Duration = Duration::from_millis(400);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Failed,
    /// The pair was not healthy before the drill: nothing was touched.
    Skipped,
    /// The scenario does not apply to the instance (`check` without a
    /// tracked check, `drain` on keepalived): not run, not held against
    /// the exit code.
    #[serde(rename = "n/a")]
    NotApplicable,
}

/// Where `takeover_ms` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measured {
    /// The controller's prober: fault to the first reply after the outage.
    Prober,
    /// The VIP never stopped answering (a killed master keeps its address
    /// until restarted): the new master's own transition stamp.
    Agent,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub pair: String,
    pub instance: String,
    pub scenario: Scenario,
    pub verdict: Verdict,
    pub ok: bool,
    /// Why the drill failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub master_before: Option<String>,
    /// Who held the VIP while the fault lasted.
    pub master_during: Option<String>,
    pub master_after: Option<String>,
    pub takeover_ms: Option<u64>,
    pub measured_by: Option<Measured>,
    /// The new master's MASTER transition (its wall clock) after the fault.
    pub agent_takeover_ms: Option<u64>,
    pub bound_ms: u64,
    pub margin_ms: u64,
    pub probes_sent: usize,
    pub probes_lost: usize,
    /// Partition only: two hosts held the VIP while VRRP was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_brain_seen: Option<bool>,
    /// Partition only: the hosts `hactl audit`'s judgement named in its
    /// split_brain finding while the partition lasted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_split_brain: Option<Vec<String>>,
    /// The pair ended as configured: one holder, the original master again
    /// when it preempts, the VIP left where it went when it does not.
    pub restored: bool,
}

impl DrillReport {
    pub fn not_applicable(pair: &str, instance: &str, scenario: Scenario, reason: String) -> Self {
        DrillReport {
            verdict: Verdict::NotApplicable,
            ..DrillReport::skipped(pair, instance, scenario, reason)
        }
    }

    pub fn skipped(pair: &str, instance: &str, scenario: Scenario, reason: String) -> Self {
        DrillReport {
            pair: pair.to_string(),
            instance: instance.to_string(),
            scenario,
            verdict: Verdict::Skipped,
            ok: false,
            reason: Some(reason),
            master_before: None,
            master_during: None,
            master_after: None,
            takeover_ms: None,
            measured_by: None,
            agent_takeover_ms: None,
            bound_ms: 0,
            margin_ms: 0,
            probes_sent: 0,
            probes_lost: 0,
            split_brain_seen: None,
            audit_split_brain: None,
            restored: false,
        }
    }

    /// Sets `verdict`, `ok` and `reason` from the measurements: the VIP
    /// ended on exactly one host as configured, the takeover within the
    /// bound plus the margin (partition: the split-brain was seen).
    pub fn judge(&mut self, problems: Vec<String>) {
        let mut problems = problems;
        if !self.restored {
            problems.push("the pair was not restored as configured".to_string());
        }
        match self.scenario {
            Scenario::Partition => {
                if self.split_brain_seen != Some(true) {
                    problems.push("no split-brain seen while VRRP was dropped".to_string());
                }
            }
            _ => match self.takeover_ms {
                None => problems.push("no takeover measured".to_string()),
                Some(ms) if ms > self.bound_ms + self.margin_ms => problems.push(format!(
                    "takeover {ms} ms over the bound {} ms + {} ms",
                    self.bound_ms, self.margin_ms
                )),
                Some(_) => {}
            },
        }
        self.ok = problems.is_empty();
        self.verdict = if self.ok {
            Verdict::Ok
        } else {
            Verdict::Failed
        };
        if !problems.is_empty() {
            self.reason = Some(problems.join("; "));
        }
    }
}

/// Exit code of a run: 0 when every drill that applies ran and is ok
/// (and at least one did), else 1.
pub fn exit_code(reports: &[DrillReport]) -> i32 {
    let mut ran = reports
        .iter()
        .filter(|r| r.verdict != Verdict::NotApplicable)
        .peekable();
    if ran.peek().is_some() && ran.all(|r| r.ok) {
        0
    } else {
        1
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// The table of a run.
pub fn table(reports: &[DrillReport]) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(vec![
        "PAIR", "INSTANCE", "SCENARIO", "BEFORE", "DURING", "AFTER", "TAKEOVER", "AGENT", "BOUND",
        "LOST", "RESTORED", "VERDICT",
    ]);
    for r in reports {
        let takeover = match (r.takeover_ms, r.measured_by) {
            (Some(ms), Some(Measured::Agent)) => format!("{ms} ms (agent)"),
            (Some(ms), _) => format!("{ms} ms"),
            (None, _) => "-".to_string(),
        };
        let verdict = match (&r.verdict, &r.reason) {
            (Verdict::Ok, _) => "ok".to_string(),
            (Verdict::Failed, Some(why)) => format!("FAILED: {why}"),
            (Verdict::Skipped, Some(why)) => format!("skipped: {why}"),
            (Verdict::NotApplicable, Some(why)) => format!("n/a: {why}"),
            (v, None) => format!("{v:?}").to_lowercase(),
        };
        table.add_row(vec![
            r.pair.clone(),
            r.instance.clone(),
            r.scenario.to_string(),
            opt(&r.master_before),
            opt(&r.master_during),
            opt(&r.master_after),
            takeover,
            r.agent_takeover_ms
                .map_or_else(|| "-".to_string(), |ms| format!("{ms} ms")),
            if r.bound_ms == 0 {
                "-".to_string()
            } else {
                format!("{} ms", r.bound_ms)
            },
            format!("{}/{}", r.probes_lost, r.probes_sent),
            if matches!(r.verdict, Verdict::Skipped | Verdict::NotApplicable) {
                "-".to_string()
            } else {
                r.restored.to_string()
            },
            verdict,
        ]);
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(scenario: Scenario, takeover: Option<u64>, restored: bool) -> DrillReport {
        let mut r = DrillReport::skipped("web", "www", scenario, String::new());
        r.reason = None;
        r.takeover_ms = takeover;
        r.bound_ms = 1000;
        r.margin_ms = 400;
        r.restored = restored;
        r
    }

    #[test]
    fn verdict_needs_a_restored_pair_and_a_takeover_within_bound_and_margin() {
        let mut r = measured(Scenario::Kill, Some(1400), true);
        r.judge(Vec::new());
        assert_eq!((r.verdict, r.ok), (Verdict::Ok, true));

        let mut r = measured(Scenario::Kill, Some(1401), true);
        r.judge(Vec::new());
        assert_eq!(r.verdict, Verdict::Failed);
        assert!(r.reason.unwrap().contains("over the bound"));

        let mut r = measured(Scenario::Graceful, Some(10), false);
        r.judge(Vec::new());
        assert!(r.reason.unwrap().contains("not restored"));

        let mut r = measured(Scenario::Partition, None, true);
        r.split_brain_seen = Some(true);
        r.judge(Vec::new());
        assert!(r.ok);
        r.split_brain_seen = Some(false);
        r.judge(Vec::new());
        assert!(!r.ok);
    }

    #[test]
    fn exit_code_is_zero_only_when_every_drill_is_ok() {
        let mut ok = measured(Scenario::Drain, Some(5), true);
        ok.judge(Vec::new());
        let skipped = DrillReport::skipped("p", "i", Scenario::Link, "agent down".into());
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        let na = DrillReport::not_applicable("p", "i", Scenario::Check, "no check".into());
        assert_eq!(exit_code(&[ok.clone(), na.clone()]), 0);
        assert_eq!(exit_code(&[na]), 1);
        assert_eq!(exit_code(&[ok, skipped]), 1);
        assert_eq!(exit_code(&[]), 1);
    }
}
