//! The LVS loop: checker tasks feed it reports, it updates the pools, logs
//! one line per real server or quorum change, queues the notify scripts
//! and brings the kernel's table to what the pools want.
//!
//! It owns the IPVS socket, the pools and the ownership ledger; the VRRP
//! main loop talks to it through [`LvsHandle`] only. Each configuration
//! running has a generation: a report from a checker of a replaced
//! configuration is ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::checker::{CheckerState, Outcome, Verdict};
use super::ledger::{LedgerError, ServiceLedger};
use super::plan::{self, VsPlan};
use super::pool::{Pool, PoolEvent, ServerState};
use super::probe;
use super::reconcile::{self, Step, Table};
use crate::config::Config;
use crate::daemon::events::chain;
use crate::ipvs::{Ipvs, IpvsError, ServiceKey};
use crate::notify::{NotifyJob, NotifySender, RunAs, split_command};
use crate::status::{RealServerStatus, VirtualServerStatus, rfc3339};

/// How long shutdown waits for the table to be released.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// How stale the published last-check results may get: a change of the
/// pool is published at once, a check that changed nothing with this
/// delay at most (100 servers checked every second would otherwise copy
/// the whole status 100 times a second).
const STATUS_LAG: Duration = Duration::from_millis(250);

#[derive(Debug, Error)]
pub enum LvsError {
    #[error("cannot program IPVS")]
    Ipvs(#[from] IpvsError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot start the LVS thread")]
    Thread(#[source] std::io::Error),
}

enum Control {
    Reload(Box<Config>),
    Shutdown(oneshot::Sender<()>),
}

/// The VRRP side's handle on the LVS thread.
#[derive(Debug)]
pub struct LvsHandle {
    control: mpsc::UnboundedSender<Control>,
    status: watch::Receiver<Vec<VirtualServerStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LvsHandle {
    /// The virtual servers now.
    pub fn status(&self) -> Vec<VirtualServerStatus> {
        self.status.borrow().clone()
    }

    /// SIGHUP: run `config` from now on; only what changed is touched.
    pub fn reload(&self, config: &Config) {
        let _ = self.control.send(Control::Reload(Box::new(config.clone())));
    }

    /// SIGTERM: stop the checkers and delete the services this agent
    /// created; waits until done (bounded).
    pub async fn shutdown(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, rx).await;
        }
        if let Some(thread) = self.thread.take() {
            // The loop has ended (or will at the channel's close).
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Starts the LVS half for `config`, or nothing when it has no
/// virtual_server. The IPVS socket is opened (and the table reconciled)
/// before this returns, so a kernel without IPVS is an error here.
pub fn spawn(
    config: &Config,
    state_dir: &Path,
    run_as: Option<RunAs>,
    notify: NotifySender,
    log: fn(&str),
) -> Result<Option<LvsHandle>, LvsError> {
    if config.virtual_servers.is_empty() {
        return Ok(None);
    }
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(Vec::new());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), LvsError>>();
    let config = config.clone();
    let state_dir = state_dir.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("lvs".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(LvsError::Thread(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let world = match Lvs::open(&state_dir, run_as, notify, status_tx, log) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                world.run(config, control_rx, ready_tx).await;
            });
        })
        .map_err(LvsError::Thread)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Some(LvsHandle {
            control: control_tx,
            status: status_rx,
            thread: Some(thread),
        })),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(LvsError::Thread(std::io::Error::other(
                "the LVS thread ended before it was ready",
            )))
        }
    }
}

/// Which checker: generation, virtual server, real server, checker.
#[derive(Debug, Clone, Copy)]
struct CheckerId {
    generation: u64,
    vs: usize,
    rs: usize,
    checker: usize,
}

/// One check's result, from a checker task.
struct Report {
    id: CheckerId,
    outcome: Outcome,
    verdict: Option<Verdict>,
}

struct Lvs {
    ipvs: Ipvs,
    ledger: ServiceLedger,
    run_as: Option<RunAs>,
    /// enable_script_security: MISC_CHECK programs must be safe.
    secure: bool,
    notify: NotifySender,
    status: watch::Sender<Vec<VirtualServerStatus>>,
    log: fn(&str),
    generation: u64,
    pools: Vec<Pool>,
    /// Real server transitions per virtual server, kept across reloads.
    transitions: BTreeMap<String, u64>,
    checkers: Vec<JoinHandle<()>>,
    reports_tx: mpsc::Sender<Report>,
    reports_rx: mpsc::Receiver<Report>,
    /// Checks happened since the status was last published.
    stale: bool,
}

impl Lvs {
    fn open(
        state_dir: &Path,
        run_as: Option<RunAs>,
        notify: NotifySender,
        status: watch::Sender<Vec<VirtualServerStatus>>,
        log: fn(&str),
    ) -> Result<Lvs, LvsError> {
        let mut ipvs = match Ipvs::open() {
            // keepalived loads the module itself when the family is absent.
            Err(IpvsError::NoFamily) => {
                let loaded = std::process::Command::new("modprobe")
                    .arg("ip_vs")
                    .stdin(std::process::Stdio::null())
                    .status();
                if !loaded.is_ok_and(|s| s.success()) {
                    log("ipvs: modprobe ip_vs failed");
                }
                Ipvs::open()?
            }
            other => other?,
        };
        let info = ipvs.info()?;
        log(&format!("ipvs: kernel IPVS {info}"));
        let ledger = ServiceLedger::open(state_dir)?;
        let (reports_tx, reports_rx) = mpsc::channel(1024);
        Ok(Lvs {
            ipvs,
            ledger,
            run_as,
            secure: false,
            notify,
            status,
            log,
            generation: 0,
            pools: Vec::new(),
            transitions: BTreeMap::new(),
            checkers: Vec::new(),
            reports_tx,
            reports_rx,
            stale: false,
        })
    }

    async fn run(
        mut self,
        config: Config,
        mut control: mpsc::UnboundedReceiver<Control>,
        ready: std::sync::mpsc::Sender<Result<(), LvsError>>,
    ) {
        self.load(&config, true);
        let _ = ready.send(Ok(()));
        let mut tick = tokio::time::interval(STATUS_LAG);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(report) = self.reports_rx.recv() => self.report(report),
                _ = tick.tick(), if self.stale => self.publish(),
                message = control.recv() => match message {
                    Some(Control::Reload(config)) => self.load(&config, false),
                    Some(Control::Shutdown(done)) => {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.shutdown();
                        return;
                    }
                },
            }
        }
    }

    fn log(&self, line: &str) {
        (self.log)(line);
    }

    /// Runs `config`: new pools (keeping the state of unchanged real
    /// servers), new checkers, then the table brought in line.
    fn load(&mut self, config: &Config, first: bool) {
        self.secure = config.global_defs.enable_script_security;
        let plans = plan::plan(config);
        let old: Vec<&VsPlan> = self.pools.iter().map(Pool::plan).collect();
        if !first && plans.iter().collect::<Vec<_>>() == old {
            self.log("ipvs: SIGHUP: virtual servers unchanged");
            return;
        }
        let previous = std::mem::take(&mut self.pools);
        for c in self.checkers.drain(..) {
            c.abort();
        }
        self.generation += 1;
        self.pools = plans
            .into_iter()
            .map(|p| {
                let before = previous.iter().find(|o| o.plan().name == p.name);
                Pool::new(p, &|rs| {
                    let old = before?;
                    let i = old.plan().real_servers.iter().position(|o| o == rs)?;
                    Some(old.servers()[i].clone())
                })
            })
            .collect();
        for vs in 0..self.pools.len() {
            self.start_checkers(vs);
            let plan = self.pools[vs].plan();
            if let Some(configured) = plan.quorum_configured {
                let line = format!(
                    "ipvs: {}: quorum {configured} exceeds the total weight of the real servers, using {}",
                    plan.name, plan.quorum
                );
                self.log(&line);
            }
        }
        let services: usize = self.pools.iter().map(|p| p.plan().services.len()).sum();
        self.log(&format!(
            "ipvs: {} {} virtual server(s), {services} service(s)",
            if first { "running" } else { "SIGHUP: now" },
            self.pools.len()
        ));
        let applied = self.sync(None, !first);
        if first {
            self.log(&format!("ipvs: {applied} table operation(s) at start"));
        }
        self.publish();
    }

    /// Who a MISC_CHECK runs as (its `user`, else `script_user`), or why
    /// it may not run at all: an unknown user, or a program that
    /// enable_script_security refuses (keepalived disables such a
    /// checker; here it fails, so its server is out, and says why).
    fn misc_identity(&self, probe: &plan::Probe) -> Result<Option<RunAs>, String> {
        let plan::Probe::Misc { command, user, .. } = probe else {
            return Ok(self.run_as);
        };
        if self.secure
            && let Some(program) = split_command(command).first()
            && let Some(why) = crate::track::insecure_reason(program)
        {
            return Err(format!("refused by enable_script_security: {why}"));
        }
        match user {
            None => Ok(self.run_as),
            Some(u) => RunAs::of(u)
                .map(Some)
                .ok_or_else(|| format!("user {} does not exist", u.user)),
        }
    }

    fn start_checkers(&mut self, vs: usize) {
        let pool = &self.pools[vs];
        for (rs, plan) in pool.plan().real_servers.iter().enumerate() {
            let state = &pool.servers()[rs];
            for (checker, c) in plan.checkers.iter().enumerate() {
                let up = state.checkers_up.get(checker).copied().unwrap_or(true);
                let identity = self.misc_identity(&c.probe);
                if let Err(why) = &identity {
                    let d = &plan.destination;
                    (self.log)(&format!(
                        "ipvs: {}: real server {}: MISC_CHECK {why}",
                        pool.plan().name,
                        endpoint(d.address, d.port)
                    ));
                }
                let task = checker_task(
                    c.clone(),
                    CheckerState::new(c, up),
                    identity,
                    CheckerId {
                        generation: self.generation,
                        vs,
                        rs,
                        checker,
                    },
                    self.reports_tx.clone(),
                );
                self.checkers.push(tokio::spawn(task));
            }
        }
    }

    fn report(&mut self, r: Report) {
        let id = r.id;
        if id.generation != self.generation {
            return;
        }
        let Some(pool) = self.pools.get_mut(id.vs) else {
            return;
        };
        let now = rfc3339(SystemTime::now());
        let events = pool.report(id.rs, id.checker, &r.outcome, r.verdict, now);
        if events.is_empty() {
            self.stale = true;
        } else {
            self.events(id.vs, &events);
            self.sync(Some(id.vs), false);
            self.publish();
        }
    }

    /// One log line per event, and its scripts.
    fn events(&mut self, vs: usize, events: &[PoolEvent]) {
        let pool = &self.pools[vs];
        let plan = pool.plan();
        let mut jobs = Vec::new();
        let mut lines = Vec::new();
        for e in events {
            match e {
                PoolEvent::Server { rs, up, reason } => {
                    let r = &plan.real_servers[*rs];
                    let d = &r.destination;
                    lines.push(format!(
                        "ipvs: {}: real server {} {} ({reason})",
                        plan.name,
                        endpoint(d.address, d.port),
                        if *up { "UP" } else { "DOWN" }
                    ));
                    *self.transitions.entry(plan.name.clone()).or_default() += 1;
                    jobs.extend(if *up { &r.notify_up } else { &r.notify_down }.clone());
                }
                PoolEvent::Weight { rs, from, to } => {
                    let d = &plan.real_servers[*rs].destination;
                    lines.push(format!(
                        "ipvs: {}: real server {} weight {from} -> {to} (misc_dynamic)",
                        plan.name,
                        endpoint(d.address, d.port)
                    ));
                }
                PoolEvent::Quorum { up, alive_weight } => {
                    lines.push(format!(
                        "ipvs: {}: quorum {} (live weight {alive_weight}, quorum {}, hysteresis {}){}",
                        plan.name,
                        if *up { "gained" } else { "lost" },
                        plan.quorum,
                        plan.hysteresis,
                        match (&plan.sorry, up) {
                            (Some(s), false) =>
                                format!(", sorry server {} in", endpoint(s.address, s.port)),
                            (Some(s), true) =>
                                format!(", sorry server {} out", endpoint(s.address, s.port)),
                            (None, _) => String::new(),
                        }
                    ));
                    jobs.extend(
                        if *up {
                            &plan.quorum_up
                        } else {
                            &plan.quorum_down
                        }
                        .clone(),
                    );
                }
            }
        }
        for l in lines {
            self.log(&l);
        }
        for line in jobs {
            let _ = self.notify.send(NotifyJob {
                argv: split_command(&line),
            });
        }
    }

    /// The table of what the pools want: of virtual server `only`, or all.
    fn wanted(&self, only: Option<usize>) -> Table {
        let mut table = Table::new();
        for (i, pool) in self.pools.iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let dests = pool.wanted();
            for s in &pool.plan().services {
                let own = dests
                    .iter()
                    .map(|d| plan::destination_for(&s.key, d))
                    .collect();
                table.insert(s.key, (s.clone(), own));
            }
        }
        table
    }

    /// The kernel's table (of the services in `keys`, or all).
    fn kernel(&mut self, keys: Option<&[ServiceKey]>) -> Result<Table, IpvsError> {
        let mut table = Table::new();
        for s in self.ipvs.services()? {
            if keys.is_some_and(|k| !k.contains(&s.key)) {
                continue;
            }
            let dests = self
                .ipvs
                .destinations(&s.key)?
                .into_iter()
                .map(|e| e.destination)
                .collect();
            table.insert(s.key, (s, dests));
        }
        Ok(table)
    }

    /// Brings the kernel's table to what the pools want: for one virtual
    /// server after a change of its pool, or everything (start, reload),
    /// which also deletes owned services no longer configured. Returns how
    /// many operations it applied, each logged when `verbose` (a reload
    /// says exactly what it touched).
    fn sync(&mut self, only: Option<usize>, verbose: bool) -> usize {
        let wanted = self.wanted(only);
        let keys: Vec<ServiceKey> = wanted.keys().copied().collect();
        let kernel = match self.kernel(only.map(|_| keys.as_slice())) {
            Ok(k) => k,
            Err(e) => {
                self.log(&format!("ipvs: cannot read the table: {}", chain(&e)));
                return 0;
            }
        };
        let steps = reconcile::diff(&wanted, &kernel, &self.ledger.owned().clone());
        let applied = steps.len();
        if verbose {
            for step in &steps {
                self.log(&format!("ipvs: SIGHUP: {step}"));
            }
        }
        self.apply(steps);
        // Owned services that are gone (deleted by hand) are forgotten.
        if only.is_none() {
            let stale: Vec<ServiceKey> = self
                .ledger
                .owned()
                .iter()
                .filter(|k| !wanted.contains_key(k) && !kernel.contains_key(k))
                .copied()
                .collect();
            for k in stale {
                if let Err(e) = self.ledger.forget(&k) {
                    self.log(&format!("ipvs: {}", chain(&e)));
                }
            }
        }
        applied
    }

    fn apply(&mut self, steps: Vec<Step>) {
        for step in steps {
            let done = match &step {
                Step::NewService(s) => {
                    if let Err(e) = self.ledger.record(s.key) {
                        self.log(&format!("ipvs: {}", chain(&e)));
                    }
                    self.ipvs.new_service(s)
                }
                Step::SetService(s) => self.ipvs.set_service(s),
                Step::DelService(k) => {
                    let r = self.ipvs.del_service(k);
                    if r.is_ok()
                        && let Err(e) = self.ledger.forget(k)
                    {
                        self.log(&format!("ipvs: {}", chain(&e)));
                    }
                    r
                }
                Step::NewDest(k, d) => self.ipvs.new_destination(k, d),
                Step::SetDest(k, d) => self.ipvs.set_destination(k, d),
                Step::DelDest(k, d) => self.ipvs.del_destination(k, d),
            };
            if let Err(e) = done {
                self.log(&format!("ipvs: {}", chain(&e)));
            }
        }
    }

    fn publish(&mut self) {
        self.stale = false;
        let status = self
            .pools
            .iter()
            .map(|p| vs_status(p, self.transitions.get(&p.plan().name).copied()))
            .collect();
        self.status.send_replace(status);
    }

    fn shutdown(&mut self) {
        for c in self.checkers.drain(..) {
            c.abort();
        }
        // omega: the down notifiers run at shutdown too.
        let mut jobs = Vec::new();
        for pool in &self.pools {
            let plan = pool.plan();
            if !plan.omega {
                continue;
            }
            for (rs, state) in pool.servers().iter().enumerate() {
                if state.alive()
                    && let Some(line) = &plan.real_servers[rs].notify_down
                {
                    jobs.push(line.clone());
                }
            }
            if pool.quorum_up()
                && let Some(line) = &plan.quorum_down
            {
                jobs.push(line.clone());
            }
        }
        for line in jobs {
            let _ = self.notify.send(NotifyJob {
                argv: split_command(&line),
            });
        }
        let kernel = match self.kernel(None) {
            Ok(k) => k,
            Err(e) => {
                self.log(&format!("ipvs: cannot read the table: {}", chain(&e)));
                return;
            }
        };
        let steps = reconcile::release(&kernel, &self.ledger.owned().clone());
        let n = steps.len();
        self.apply(steps);
        self.log(&format!("ipvs: removed {n} service(s) this agent created"));
    }
}

/// `hactl-agent cleanup`: deletes the services of the ledger in
/// `state_dir` that the kernel still has; returns how many. Without a
/// ledger entry nothing is opened (a host without IPVS is fine).
pub fn clean(state_dir: &Path, log: fn(&str)) -> Result<usize, LvsError> {
    let mut ledger = ServiceLedger::open(state_dir)?;
    if ledger.owned().is_empty() {
        return Ok(0);
    }
    let mut ipvs = Ipvs::open()?;
    let present: Vec<ServiceKey> = ipvs.services()?.into_iter().map(|s| s.key).collect();
    let mut removed = 0;
    for key in ledger.owned().clone() {
        if present.contains(&key) {
            ipvs.del_service(&key)?;
            log(&format!("removed IPVS service {key}"));
            removed += 1;
        }
        ledger.forget(&key)?;
    }
    Ok(removed)
}

fn endpoint(address: std::net::IpAddr, port: u16) -> String {
    match address {
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
        a => format!("{a}:{port}"),
    }
}

fn vs_status(pool: &Pool, transitions: Option<u64>) -> VirtualServerStatus {
    let plan = pool.plan();
    let real_servers = plan
        .real_servers
        .iter()
        .zip(pool.servers())
        .enumerate()
        .map(|(i, (r, s)): (usize, (_, &ServerState))| RealServerStatus {
            address: r.destination.address,
            port: r.destination.port,
            up: s.alive(),
            weight: pool.table_weight(i),
            last_check: s
                .last
                .as_ref()
                .map(|l| format!("{}: {}", l.checker, l.result)),
            last_check_time: s.last.as_ref().map(|l| l.time.clone()),
            transitions: s.transitions,
        })
        .collect();
    VirtualServerStatus {
        name: plan.name.clone(),
        services: plan.services.iter().map(|s| s.key.to_string()).collect(),
        quorum: plan.quorum,
        quorum_up: pool.quorum_up(),
        alive_weight: pool.alive_weight(),
        sorry_server_active: pool.sorry_active(),
        real_servers,
        transitions: transitions.unwrap_or(0),
    }
}

/// One checker forever: check, count, report, wait as the count says.
async fn checker_task(
    plan: plan::CheckerPlan,
    mut state: CheckerState,
    identity: Result<Option<RunAs>, String>,
    id: CheckerId,
    reports: mpsc::Sender<Report>,
) {
    if let Some(warmup) = plan.warmup {
        // keepalived: a random delay of up to warmup before the first
        // check, so that checkers do not all fire together.
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let max = u32::try_from(warmup.as_millis()).unwrap_or(u32::MAX).max(1);
        let jitter = (seed ^ u32::try_from(id.rs * 31 + id.checker).unwrap_or(0)) % max;
        tokio::time::sleep(Duration::from_millis(jitter.into())).await;
    }
    loop {
        let outcome = match &identity {
            Ok(run_as) => probe::run(&plan.probe, *run_as).await,
            Err(why) => Outcome::Fail(why.clone()),
        };
        let (verdict, next) = state.record(&outcome);
        let report = Report {
            id,
            outcome,
            verdict,
        };
        if reports.send(report).await.is_err() {
            return;
        }
        tokio::time::sleep(next).await;
    }
}
