//! `hactl failover-test`: drills that break a healthy pair on purpose and
//! measure how it recovers (DESIGN.md section 5, issue 7).
//!
//! ```text
//! for each selected pair, instance, scenario:
//!   view ── not exactly one VIP holder, or an agent down ──> skipped
//!    │
//!   prober on the VIP (controller, every 5 ms) ─────────────────────┐
//!   undo recorded on the host (drill-undo.json: a killed run's
//!   next run, or --restore, finds it) and in memory (signals run it)
//!   fault (scenario.rs)                                             │
//!   wait: the VIP on the backup (partition: on both + audit judge)  │
//!   undo (tried 3 times; failing, it stops the run) ── record cleared│
//!   wait: one holder, as configured (preempt: the old master)       │
//!   agent transition stamps <── status --json of the new master     │
//!   report.rs: takeover, bound, probes lost, restored, verdict <────┘
//! ```
//!
//! A drill runs only on an inventory marked as a lab (see [`is_lab`])
//! unless `--yes` is given. Drills run one after another: each changes a
//! pair, and the next one checks the pair is healthy again.
//!
//! Times: the fault instant is taken on the controller right before the
//! fault's command is sent, so the SSH round trip counts against the pair
//! (part of [`report::MARGIN`]). The agents' transition stamps are wall
//! clock: comparable with the controller's in the lab (one kernel), off by
//! the hosts' clock offset elsewhere.

pub mod prober;
pub mod report;
pub mod scenario;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::agent_control::{self, AgentControl, Supervisor};
use crate::observe::{self, HostView, InstanceView, Observation, Wants};
use crate::output::Progress;
use crate::plan::{Backend, ClusterPlan, InstancePlan, PairPlan};
use crate::remote_layout as layout;
use crate::ssh::{HostSession, Pool, RemoteCommand, Target};

use prober::{PROBE_INTERVAL, ProbeLog, Prober};
use report::{DrillReport, MARGIN, Measured};
use scenario::{Scenario, Step};

/// How often a drill looks at the hosts while it waits.
const POLL: Duration = Duration::from_millis(100);
/// Slack on every wait beyond the RFC timers: SSH, scripts, restarts.
const WAIT_SLACK: Duration = Duration::from_secs(10);
/// How long the VIP must answer the prober before a fault.
const BASELINE: Duration = Duration::from_millis(300);

/// What to drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillOptions {
    pub pair: Option<String>,
    pub instance: Option<String>,
    pub scenarios: Vec<Scenario>,
}

/// The variable that marks an inventory as a lab when no lab is built.
pub const LAB_VAR: &str = "hactl_lab";

/// Whether drills may run without `--yes`: a lab built for this inventory
/// exists (`hactl lab up`), or every host of the selected pairs has
/// `hactl_lab: true` (a lab made by other means).
pub fn is_lab(plan: &ClusterPlan, lab_built: bool) -> bool {
    if lab_built {
        return true;
    }
    let mut hosts = plan.pairs.iter().flat_map(|p| &p.hosts).peekable();
    hosts.peek().is_some() && hosts.all(|h| h.lab)
}

/// The (pair, instance) couples `options` selects; `Err` names the
/// filter that matched nothing.
pub fn select<'a>(
    plan: &'a ClusterPlan,
    options: &DrillOptions,
) -> Result<Vec<(&'a PairPlan, &'a InstancePlan)>, String> {
    let mut out = Vec::new();
    for pair in &plan.pairs {
        if options.pair.as_ref().is_some_and(|p| p != &pair.name) {
            continue;
        }
        for inst in &pair.instances {
            if options.instance.as_ref().is_some_and(|i| i != &inst.name) {
                continue;
            }
            out.push((pair, inst));
        }
    }
    if out.is_empty() {
        return Err(match (&options.pair, &options.instance) {
            (Some(p), Some(i)) => format!("no instance {i} in pair {p}"),
            (Some(p), None) => format!("no pair {p}"),
            (None, Some(i)) => format!("no instance {i}"),
            (None, None) => "the inventory has no pair".to_string(),
        });
    }
    Ok(out)
}

/// An undo not yet run: what a signal must still do.
#[derive(Debug, Clone)]
struct Undo {
    host: String,
    step: Step,
    control: AgentControl,
}

/// The undo of a fault as recorded on the faulted host
/// ([`layout::DRILL_UNDO`]) before the fault is made, removed once undone:
/// a run killed in between leaves it for the next run (or `--restore`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UndoRecord {
    pub pair: String,
    pub instance: String,
    pub scenario: String,
    pub undo: Step,
}

/// How often an undo is tried before the run stops.
const UNDO_TRIES: u32 = 3;
/// The pause between two tries of an undo.
const UNDO_RETRY: Duration = Duration::from_secs(1);

/// Runs drills and remembers the undo of the fault in progress.
#[derive(Debug, Clone, Default)]
pub struct Drills {
    pending: Arc<Mutex<Vec<Undo>>>,
    /// Set when an undo failed: the run stops there.
    stopped: Arc<Mutex<Option<String>>>,
}

impl Drills {
    pub fn new() -> Drills {
        Drills::default()
    }

    /// Runs every selected drill, one after another.
    pub async fn run(
        &self,
        pool: &Arc<Pool>,
        targets: &[Target],
        selected: &[(&PairPlan, &InstancePlan)],
        scenarios: &[Scenario],
        progress: &Progress,
    ) -> Vec<DrillReport> {
        let mut reports = Vec::new();
        // What an earlier, killed run left is undone first.
        let mut pairs: Vec<&PairPlan> = selected.iter().map(|(p, _)| *p).collect();
        pairs.dedup_by(|a, b| a.name == b.name);
        let left = restore_recorded(pool, targets, &pairs).await;
        if let Some(e) = left.errors.first() {
            self.stop(format!(
                "{e}; run `hactl failover-test --restore` once it is fixed"
            ));
        }
        // A pair just put back settles before it is judged (a healed
        // partition has two masters for an advert or two).
        for pair in &pairs {
            if !left
                .undone
                .iter()
                .any(|u| u.contains(&format!(": {} ", pair.name)))
            {
                continue;
            }
            if let Ok(sessions) = connect_pair(pool, targets, pair).await {
                for inst in &pair.instances {
                    let _ = wait_view(&sessions, pair, inst, WAIT_SLACK, |v| {
                        v.unhealthy().is_none()
                    })
                    .await;
                }
            }
        }
        for (pair, inst) in selected {
            for &scenario in scenarios {
                progress.message(&format!("{} {} {scenario}", pair.name, inst.name));
                let report = match self.stopped_by() {
                    Some(why) => DrillReport::skipped(
                        &pair.name,
                        &inst.name,
                        scenario,
                        format!("not run: {why}"),
                    ),
                    None => self.drill(pool, targets, pair, inst, scenario).await,
                };
                progress.advance();
                reports.push(report);
            }
        }
        reports
    }

    fn stop(&self, why: String) {
        if let Ok(mut s) = self.stopped.lock() {
            s.get_or_insert(why);
        }
    }

    /// Why the run stopped (an undo failed), if it did.
    pub fn stopped_by(&self) -> Option<String> {
        self.stopped.lock().ok().and_then(|s| s.clone())
    }

    /// Runs the undo a drill left pending (after Ctrl-C dropped it).
    pub async fn undo_pending(&self, pool: &Pool, targets: &[Target]) -> Vec<String> {
        let pending: Vec<Undo> = match self.pending.lock() {
            Ok(mut p) => p.drain(..).collect(),
            Err(_) => return vec!["the pending undo list is poisoned".to_string()],
        };
        let mut errors = Vec::new();
        for undo in pending {
            let Some(target) = targets.iter().find(|t| t.host == undo.host) else {
                continue;
            };
            let result = match pool.connect(target).await {
                Ok(session) => match undo_with_retries(&session, &undo.control, &undo.step).await {
                    Ok(()) => clear_record(&session).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = result {
                errors.push(format!(
                    "{}: undo failed: {e} (recorded in {}: `hactl failover-test --restore` retries it)",
                    undo.host,
                    layout::DRILL_UNDO
                ));
            }
        }
        errors
    }

    fn set_pending(&self, undo: Option<Undo>) {
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
            p.extend(undo);
        }
    }

    async fn drill(
        &self,
        pool: &Arc<Pool>,
        targets: &[Target],
        pair: &PairPlan,
        inst: &InstancePlan,
        scenario: Scenario,
    ) -> DrillReport {
        let skip = |why: String| DrillReport::skipped(&pair.name, &inst.name, scenario, why);
        // Whether the scenario applies does not depend on the hosts.
        if let Err(why) = scenario::plan(scenario, pair, inst, "") {
            return DrillReport::not_applicable(&pair.name, &inst.name, scenario, why);
        }
        let sessions = match connect_pair(pool, targets, pair).await {
            Ok(s) => s,
            Err(e) => return skip(e),
        };
        let before = match view_within(&sessions, pair, inst, CHECK_TIMEOUT).await {
            Ok(v) => v,
            Err(e) => return skip(e),
        };
        if let Some(why) = before.unhealthy() {
            return skip(why);
        }
        let master = before.holders[0].clone();
        let Some(backup) = inst
            .roles
            .iter()
            .filter(|r| r.host != master)
            .max_by_key(|r| r.priority)
        else {
            return skip("the pair has a single host".to_string());
        };
        let backup = backup.host.clone();
        let on_host = if scenario.on_backup() {
            backup.clone()
        } else {
            master.clone()
        };
        let Some((_, session, control)) = sessions.iter().find(|s| s.0 == on_host) else {
            return skip(format!("{on_host} is not a host of the pair"));
        };
        let control = *control;
        let interface = pair
            .hosts
            .iter()
            .find(|h| h.name == on_host)
            .map_or("eth0", |h| h.interface.as_str());
        let steps = match scenario::plan(scenario, pair, inst, interface) {
            Ok(s) => s,
            Err(why) => {
                return DrillReport::not_applicable(&pair.name, &inst.name, scenario, why);
            }
        };
        let backup_priority = inst
            .roles
            .iter()
            .find(|r| r.host == backup)
            .map_or(100, |r| r.priority);
        let bound = scenario::bound(scenario, pair, inst, backup_priority);
        let mut report = DrillReport::skipped(&pair.name, &inst.name, scenario, String::new());
        report.reason = None;
        report.master_before = Some(master.clone());
        report.bound_ms = millis(bound);
        report.margin_ms = millis(MARGIN);

        let Some(vip) = inst.vips.first().map(|v| v.address) else {
            return DrillReport::not_applicable(
                &pair.name,
                &inst.name,
                scenario,
                "the instance has no VIP".to_string(),
            );
        };
        let record = UndoRecord {
            pair: pair.name.clone(),
            instance: inst.name.clone(),
            scenario: scenario.name().to_string(),
            undo: steps.undo.clone(),
        };
        if let Err(e) = write_record(session, &record).await {
            return skip(format!("cannot record the undo on {on_host}: {e}"));
        }
        let prober = Prober::start(vip, PROBE_INTERVAL);
        let mut problems = Vec::new();
        if prober.is_ok() {
            // Baseline: the VIP answers before the fault (or the drill
            // measures from the agents only).
            tokio::time::sleep(BASELINE).await;
        }

        // ===== fault =====
        self.set_pending(Some(Undo {
            host: on_host.clone(),
            step: steps.undo.clone(),
            control,
        }));
        let sent_wall = SystemTime::now();
        let stdin = (scenario == Scenario::Partition).then(scenario::partition_ruleset);
        let fault = if scenario == Scenario::Link {
            link_down_detached(session, interface, bound + Duration::from_secs(2)).await
        } else {
            run_fault(session, &control, &steps.fault, stdin).await
        };
        // The host's stamp of the fault; the controller's send time when
        // the host printed none.
        let fault_wall = match &fault {
            Ok(Some(at)) => *at,
            _ => sent_wall,
        };
        let fault_at = instant_of(fault_wall);
        let mut during = None;
        let mut split_brain = None;
        match fault {
            Err(e) => problems.push(format!("fault failed on {on_host}: {e}")),
            Ok(_) => {
                let deadline = bound + WAIT_SLACK;
                if scenario == Scenario::Partition {
                    let seen =
                        wait_view(&sessions, pair, inst, deadline, |v| v.holders.len() >= 2).await;
                    split_brain = Some(seen.is_some());
                    if let Some(v) = &seen {
                        // The audit must see what the interfaces show.
                        let named = audit_split_brain(pool, targets, pair, inst).await;
                        if !v.holders.iter().all(|h| named.contains(h)) {
                            problems.push(format!(
                                "the audit named [{}] in a split_brain finding, the interfaces show [{}]",
                                named.join(", "),
                                v.holders.join(", ")
                            ));
                        }
                        report.audit_split_brain = Some(named);
                    }
                    during = seen.map(|v| v.holders.join("+"));
                } else {
                    let seen = wait_view(&sessions, pair, inst, deadline, |v| {
                        v.holders.contains(&backup)
                    })
                    .await;
                    match seen {
                        Some(_) => during = Some(backup.clone()),
                        None => problems.push(format!(
                            "the VIP did not reach {backup} within {} ms",
                            millis(deadline)
                        )),
                    }
                }
            }
        }
        let took_effect = Instant::now();

        // ===== undo =====
        if scenario == Scenario::Link {
            // The host brings its link back itself; wait until it answers,
            // then make sure.
            wait_reachable(session, bound + WAIT_SLACK).await;
        }
        let undo = match undo_with_retries(session, &control, &steps.undo).await {
            Ok(()) => clear_record(session).await,
            Err(e) => Err(e),
        };
        match undo {
            Ok(()) => self.set_pending(None),
            Err(e) => {
                // The record stays on the host; the run stops here.
                let why = format!(
                    "the undo of {scenario} failed on {on_host} after {UNDO_TRIES} tries: {e}"
                );
                problems.push(why.clone());
                self.stop(format!(
                    "{why}; run `hactl failover-test --restore` once it is fixed"
                ));
            }
        }

        // ===== settle =====
        let new_master = if scenario.moves_vip() {
            during.clone()
        } else {
            Some(backup.clone())
        };
        let expected = if inst.preempt || !scenario.moves_vip() {
            master.clone()
        } else {
            new_master.clone().unwrap_or_else(|| master.clone())
        };
        // Not undone: the pair cannot settle as configured; one look.
        let settle = if self.stopped_by().is_some() {
            Duration::ZERO
        } else {
            bound * 3 + WAIT_SLACK
        };
        let settled = wait_view(&sessions, pair, inst, settle, |v| {
            v.holders == [expected.clone()] && v.agents_down.is_empty()
        })
        .await;
        let after = match settled {
            Some(v) => v,
            None => match view_within(&sessions, pair, inst, CHECK_TIMEOUT).await {
                Ok(v) => v,
                Err(e) => {
                    problems.push(e);
                    View::default()
                }
            },
        };
        report.master_after = (after.holders.len() == 1).then(|| after.holders[0].clone());
        report.restored = after.holders == [expected.clone()] && after.agents_down.is_empty();
        if !report.restored {
            problems.push(format!(
                "expected {expected} alone to hold the VIP, found [{}]{}",
                after.holders.join(", "),
                if after.agents_down.is_empty() {
                    String::new()
                } else {
                    format!(", agents down on {}", after.agents_down.join(", "))
                }
            ));
        }
        report.master_during = during;
        report.split_brain_seen = split_brain;

        // ===== measure =====
        let log = match prober.and_then(Prober::finish) {
            Ok(log) => log,
            Err(e) => {
                problems.push(e.to_string());
                ProbeLog::default()
            }
        };
        let end = Instant::now();
        report.probes_sent = log.probes.iter().filter(|p| p.sent >= fault_at).count();
        report.probes_lost = log.lost_between(fault_at, end);
        if let Some(new) = &new_master
            && scenario.moves_vip()
            && pair.backend == crate::plan::Backend::Agent
            && let Some((_, s, _)) = sessions.iter().find(|s| &s.0 == new)
        {
            report.agent_takeover_ms = agent_takeover(s, &inst.name, fault_wall).await;
        }
        if scenario.moves_vip() {
            let outage = log.outage_after(fault_at, took_effect);
            let answered = log.answered_between(fault_at - BASELINE, fault_at) > 0;
            (report.takeover_ms, report.measured_by) = match (outage, answered) {
                (Some(d), true) => (Some(millis(d)), Some(Measured::Prober)),
                _ => (report.agent_takeover_ms, Some(Measured::Agent)),
            };
        }
        report.judge(problems);
        report
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where the instance's VIPs are and which agents run (`crate::observe`).
type View = InstanceView;

type Sessions = Vec<(String, Arc<HostSession>, AgentControl)>;

async fn connect_pair(
    pool: &Pool,
    targets: &[Target],
    pair: &PairPlan,
) -> Result<Sessions, String> {
    let mut out = Vec::new();
    for host in &pair.hosts {
        let target = targets
            .iter()
            .find(|t| t.host == host.name)
            .ok_or_else(|| format!("{}: no SSH target", host.name))?;
        let session = pool.connect(target).await.map_err(|e| e.to_string())?;
        let control = AgentControl::detect(&session, pair.backend)
            .await
            .map_err(|e| e.to_string())?;
        out.push((host.name.clone(), session, control));
    }
    Ok(out)
}

/// The hosts `hactl audit`'s judgement names in a split_brain finding for
/// `inst`, judging this pair alone.
async fn audit_split_brain(
    pool: &Arc<Pool>,
    targets: &[Target],
    pair: &PairPlan,
    inst: &InstancePlan,
) -> Vec<String> {
    let plan = ClusterPlan {
        pairs: vec![pair.clone()],
    };
    let hosts: Vec<Target> = targets
        .iter()
        .filter(|t| pair.hosts.iter().any(|h| h.name == t.host))
        .cloned()
        .collect();
    let deadline = tokio::time::Instant::now() + CHECK_TIMEOUT;
    let observations =
        crate::audit::gather::gather_all(Arc::clone(pool), &plan, &hosts, deadline).await;
    let report = crate::audit::judge(&plan, &observations);
    let mut named: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.kind == crate::audit::Kind::SplitBrain)
        .filter(|f| f.instance.as_deref().is_none_or(|i| i == inst.name))
        .flat_map(|f| f.hosts.iter().cloned())
        .collect();
    named.sort();
    named.dedup();
    named
}

/// How long one host may take to answer a look while a drill waits: a host
/// whose link is down would otherwise hold the wait for TCP's
/// retransmissions (the next look tries again).
const LOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one host may take to answer the look that decides whether a
/// pair is healthy (before) or restored (after): a loaded host is slow,
/// not unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

async fn view(sessions: &Sessions, pair: &PairPlan, inst: &InstancePlan) -> Result<View, String> {
    view_within(sessions, pair, inst, LOOK_TIMEOUT).await
}

/// One look at every host of the pair (one round trip each, side by side);
/// a host that does not answer within `limit` is unreachable.
async fn view_within(
    sessions: &Sessions,
    pair: &PairPlan,
    inst: &InstancePlan,
    limit: Duration,
) -> Result<View, String> {
    let mut looks = tokio::task::JoinSet::new();
    for (host, session, _) in sessions {
        let (host, session, backend) = (host.clone(), Arc::clone(session), pair.backend);
        looks.spawn(async move {
            let wants = Wants::placement();
            let look = observe::observe_host(&session, backend, &wants);
            let seen = match tokio::time::timeout(limit, look).await {
                Ok(Ok(facts)) => HostView::Reached(Box::new(facts)),
                Ok(Err(e)) => HostView::Unreachable(e.to_string()),
                Err(_) => HostView::Unreachable("no answer in time".into()),
            };
            (host, seen)
        });
    }
    let mut seen = Observation::default();
    while let Some(joined) = looks.join_next().await {
        let (host, view) = joined.map_err(|e| e.to_string())?;
        seen.hosts.insert(host, view);
    }
    Ok(seen.instance(pair, inst))
}

/// Polls the pair until `wanted` holds (the view then) or `limit` passes.
/// A host that does not answer (its link down) counts as holding nothing.
async fn wait_view(
    sessions: &Sessions,
    pair: &PairPlan,
    inst: &InstancePlan,
    limit: Duration,
    wanted: impl Fn(&View) -> bool,
) -> Option<View> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(v) = view(sessions, pair, inst).await
            && wanted(&v)
        {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_reachable(session: &HostSession, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let probe = RemoteCommand::new(&["true"]).timeout(Duration::from_secs(2));
        if session.output(&probe).await.is_ok_and(|o| o.success()) {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    false
}

/// Prints the host's wall clock (`date +%s.%N`), then runs the rest.
const STAMPED: &str = r#"date +%s.%N
exec "$@""#;

/// Sends a signal to the process of a pid file, stamped: argv SIGNAL
/// PIDFILE.
const STAMPED_SIGNAL: &str = r#"p=$(cat -- "$2")
date +%s.%N
kill -s "$1" "$p""#;

/// Runs a fault step; returns when it happened on the host's clock (the
/// first line the stamped command prints).
async fn run_fault(
    session: &HostSession,
    control: &AgentControl,
    step: &Step,
    stdin: Option<String>,
) -> Result<Option<SystemTime>, String> {
    let argv: Vec<String> = match step {
        Step::Signal(signal) => match control.supervisor {
            Supervisor::Hactl => crate::ssh::script_argv(
                STAMPED_SIGNAL,
                &[signal.as_str(), layout::pid_file(control.backend)],
            ),
            Supervisor::Systemd => {
                let unit = match control.backend {
                    Backend::Agent => layout::AGENT_UNIT,
                    Backend::Keepalived => layout::KEEPALIVED_UNIT,
                };
                crate::ssh::script_argv(
                    STAMPED,
                    &["systemctl", "kill", "-s", signal.as_str(), unit],
                )
            }
        },
        Step::Command(argv) => crate::ssh::script_argv(STAMPED, argv),
        Step::RestartAgent => return restart(session, control).await.map(|()| None),
    };
    let mut command = RemoteCommand::new(&argv).become_(true);
    if let Some(text) = stdin {
        command = command.stdin(text.into_bytes());
    }
    let out = session.run(&command).await.map_err(|e| e.to_string())?;
    Ok(out.stdout_text().lines().next().and_then(parse_epoch_stamp))
}

/// Runs an undo, up to [`UNDO_TRIES`] times.
async fn undo_with_retries(
    session: &HostSession,
    control: &AgentControl,
    step: &Step,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=UNDO_TRIES {
        match run_step(session, control, step, None).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if attempt < UNDO_TRIES {
            tokio::time::sleep(UNDO_RETRY).await;
        }
    }
    Err(last)
}

async fn write_record(session: &HostSession, record: &UndoRecord) -> Result<(), String> {
    let json = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    session
        .run(&RemoteCommand::new(&["mkdir", "-p", "-m", "0755", layout::RUN_DIR]).become_(true))
        .await
        .map_err(|e| e.to_string())?;
    session
        .upload(json, layout::DRILL_UNDO, 0o600)
        .await
        .map_err(|e| e.to_string())
}

async fn clear_record(session: &HostSession) -> Result<(), String> {
    session
        .run(&RemoteCommand::new(&["rm", "-f", "--", layout::DRILL_UNDO]).become_(true))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What [`restore_recorded`] found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Restored {
    /// `HOST: PAIR INSTANCE SCENARIO undone`, one per record undone.
    pub undone: Vec<String>,
    pub errors: Vec<String>,
}

/// Undoes the faults recorded on the hosts of `pairs` (an earlier run was
/// killed before its undo): each record's undo, then the record removed;
/// a record that cannot be read is reported and left.
pub async fn restore_recorded(pool: &Pool, targets: &[Target], pairs: &[&PairPlan]) -> Restored {
    let mut out = Restored::default();
    for pair in pairs {
        for host in &pair.hosts {
            let Some(target) = targets.iter().find(|t| t.host == host.name) else {
                continue;
            };
            let session = match pool.connect(target).await {
                Ok(s) => s,
                Err(e) => {
                    out.errors.push(format!(
                        "{}: cannot look for a drill left undone: {e}",
                        host.name
                    ));
                    continue;
                }
            };
            let read = RemoteCommand::new(&["cat", "--", layout::DRILL_UNDO]).become_(true);
            let text = match session.output(&read).await {
                Ok(o) if o.success() => o.stdout_text(),
                Ok(_) => continue,
                Err(e) => {
                    out.errors.push(format!(
                        "{}: cannot look for a drill left undone: {e}",
                        host.name
                    ));
                    continue;
                }
            };
            let record: UndoRecord = match serde_json::from_str(&text) {
                Ok(r) => r,
                Err(e) => {
                    out.errors.push(format!(
                        "{}: {} is unreadable ({e}): check the host by hand",
                        host.name,
                        layout::DRILL_UNDO
                    ));
                    continue;
                }
            };
            let control = match AgentControl::detect(&session, pair.backend).await {
                Ok(c) => c,
                Err(e) => {
                    out.errors.push(e.to_string());
                    continue;
                }
            };
            let what = format!(
                "{}: {} {} {}",
                host.name, record.pair, record.instance, record.scenario
            );
            match undo_with_retries(&session, &control, &record.undo).await {
                Ok(()) => match clear_record(&session).await {
                    Ok(()) => out.undone.push(format!("{what} undone")),
                    Err(e) => out.errors.push(format!("{what}: undone, but {e}")),
                },
                Err(e) => out.errors.push(format!("{what}: undo failed: {e}")),
            }
        }
    }
    out
}

/// `1795368546.123456789` (`date +%s.%N`) to a wall-clock time.
pub fn parse_epoch_stamp(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = text.trim().split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let digits: String = nanos.chars().chain("000000000".chars()).take(9).collect();
    let nanos: u64 = digits.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// The controller instant of a wall-clock time in the recent past.
fn instant_of(wall: SystemTime) -> Instant {
    let ago = SystemTime::now()
        .duration_since(wall)
        .unwrap_or(Duration::ZERO);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

/// `stop` waits for a stopping agent to be gone (a no-op when none
/// runs), then a fresh start: starting one that runs would start a second.
async fn restart(session: &HostSession, control: &AgentControl) -> Result<(), String> {
    control.stop(session).await.map_err(|e| e.to_string())?;
    control.start(session).await.map_err(|e| e.to_string())
}

async fn run_step(
    session: &HostSession,
    control: &AgentControl,
    step: &Step,
    stdin: Option<String>,
) -> Result<(), String> {
    match step {
        Step::Signal(_) => run_fault(session, control, step, stdin).await.map(|_| ()),
        Step::RestartAgent => restart(session, control).await,
        Step::Command(argv) => {
            let mut command = RemoteCommand::new(argv).become_(true);
            if let Some(text) = stdin {
                command = command.stdin(text.into_bytes());
            }
            session
                .run(&command)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// Takes `interface` down for `hold` and up again, detached on the host:
/// SSH may travel over that very interface, so the host must bring it
/// back by itself.
async fn link_down_detached(
    session: &HostSession,
    interface: &str,
    hold: Duration,
) -> Result<Option<SystemTime>, String> {
    let script = format!(
        "date +%s.%N; setsid sh -c 'ip link set \"$0\" down; sleep {}; ip link set \"$0\" up' \"$1\" </dev/null >/dev/null 2>&1 &",
        hold.as_secs_f64()
    );
    let argv = crate::ssh::script_argv(&script, &[interface]);
    let out = session
        .run(&RemoteCommand::new(&argv).become_(true))
        .await
        .map_err(|e| e.to_string())?;
    Ok(out.stdout_text().lines().next().and_then(parse_epoch_stamp))
}

/// The new master's MASTER transition after `fault`, in ms after it.
async fn agent_takeover(session: &HostSession, instance: &str, fault: SystemTime) -> Option<u64> {
    let status = agent_control::agent_status(session).await.ok()??;
    let inst = status.instances.iter().find(|i| i.name == instance)?;
    // Stamps have ms resolution: allow one ms before the fault.
    let from = fault.checked_sub(Duration::from_millis(1))?;
    inst.transitions
        .iter()
        .filter(|t| t.to == "MASTER")
        .filter_map(|t| parse_rfc3339(&t.time))
        .find(|t| *t >= from)
        .map(|t| millis(t.duration_since(fault).unwrap_or(Duration::ZERO)))
}

/// `2026-11-22T17:29:06.123Z` (the agent's stamps) to a wall-clock time.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = match text.get(19..text.len() - 1)? {
        "" => 0,
        frac => {
            let digits = frac.strip_prefix('.')?;
            let padded: String = digits.chars().chain("000".chars()).take(3).collect();
            padded.parse::<i64>().ok()?
        }
    };
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let total = u64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(u64::try_from(ms).ok()?)?;
    Some(UNIX_EPOCH + Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-host pair; `lab` is the `hactl_lab` line of each host.
    fn inventory(
        dir: &std::path::Path,
        lab: [&str; 2],
    ) -> (crate::inventory::Inventory, ClusterPlan) {
        let text = format!(
            "all:\n  vars:\n    hactl_interface: eth0\n  children:\n    hactl_pairs:\n      children:\n        web:\n          vars:\n            hactl_instances:\n              - name: www\n                vips: [10.0.0.100/24]\n                master: a\n          hosts:\n            a:\n              ansible_host: 10.0.0.1\n{}            b:\n              ansible_host: 10.0.0.2\n{}",
            lab[0], lab[1]
        );
        let path = dir.join(format!("inv{}.yaml", lab.concat().len()));
        std::fs::write(&path, text).expect("write the inventory");
        let inv = crate::inventory::Inventory::load(&path).expect("inventory");
        let plan = crate::plan::resolve(&inv, &|_| None).expect("plan");
        (inv, plan)
    }

    #[test]
    fn a_lab_is_a_built_lab_or_hactl_lab_on_every_pair_host() {
        let dir = std::env::temp_dir().join(format!("drill-is-lab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let yes = "              hactl_lab: true\n";
        let (_, plan) = inventory(&dir, [yes, yes]);
        assert!(is_lab(&plan, false));
        let (_, plan) = inventory(&dir, [yes, ""]);
        assert!(!is_lab(&plan, false), "one host not marked");
        assert!(is_lab(&plan, true), "a built lab is enough");
        let no = "              hactl_lab: false\n";
        let (_, plan) = inventory(&dir, [no, no]);
        assert!(!is_lab(&plan, false));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn select_names_the_filter_that_matched_nothing() {
        let dir = std::env::temp_dir().join(format!("drill-select-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (_, plan) = inventory(&dir, ["", ""]);
        let options = |pair: Option<&str>, instance: Option<&str>| DrillOptions {
            pair: pair.map(str::to_string),
            instance: instance.map(str::to_string),
            scenarios: Scenario::ALL.to_vec(),
        };
        assert_eq!(select(&plan, &options(None, None)).map(|s| s.len()), Ok(1));
        assert_eq!(
            select(&plan, &options(Some("api"), None)).map(|s| s.len()),
            Err("no pair api".to_string())
        );
        assert_eq!(
            select(&plan, &options(Some("web"), Some("blog"))).map(|s| s.len()),
            Err("no instance blog in pair web".to_string())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_undo_record_reads_back_as_written() {
        for undo in [
            Step::RestartAgent,
            Step::Command(vec!["rm".into(), "-f".into(), "/run/hactl/fail-x".into()]),
        ] {
            let record = UndoRecord {
                pair: "api_lb".into(),
                instance: "api".into(),
                scenario: "kill".into(),
                undo,
            };
            let text = serde_json::to_string(&record).unwrap();
            assert_eq!(serde_json::from_str::<UndoRecord>(&text).unwrap(), record);
        }
        assert!(serde_json::from_str::<UndoRecord>("{\"pair\": 1}").is_err());
    }

    #[test]
    fn the_partition_undo_does_not_hide_its_failure() {
        let dir = std::env::temp_dir().join(format!("drill-undo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (_, plan) = inventory(&dir, ["", ""]);
        let pair = &plan.pairs[0];
        let steps = scenario::plan(Scenario::Partition, pair, &pair.instances[0], "eth0").unwrap();
        let Step::Command(argv) = steps.undo else {
            panic!("{:?}", steps.undo)
        };
        let script = argv.join(" ");
        assert!(!script.contains("; true"), "{script}");
        assert!(
            script.contains("|| exit 0; nft delete table inet hactl_drill"),
            "{script}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn epoch_stamps_of_date() {
        let t = parse_epoch_stamp("1795368546.123456789\n");
        assert_eq!(
            t,
            Some(UNIX_EPOCH + Duration::from_nanos(1_795_368_546_123_456_789))
        );
        assert_eq!(
            parse_epoch_stamp("1795368546.5"),
            Some(UNIX_EPOCH + Duration::from_millis(1_795_368_546_500))
        );
        assert_eq!(parse_epoch_stamp("%s.%N"), None);
    }

    #[test]
    fn rfc3339_round_trips_the_agent_format() {
        for ms in [0u64, 951_782_400_000, 1_795_368_546_123] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            let text = hactl_agent::status::rfc3339(t);
            assert_eq!(parse_rfc3339(&text), Some(t), "{text}");
        }
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-11-22T17:29:06.12xZ"), None);
    }
}
