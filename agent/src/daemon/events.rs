//! What the daemon does on each input: a received packet, a timer expiry, a
//! tracked object changing, a status request, shutdown.
//!
//! [`Daemon`] owns the [`Router`] (every instance's state machine), the
//! timers it armed, the sockets, the VIP driver and ledger, the counters and
//! the transition history. Each handler turns its input into an
//! [`Event`] for the router and carries out the [`Action`]s that come back,
//! in order. Only the main loop in [`super::tasks`] calls it, so there is no
//! locking.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::{Family, VirtualAddress};
use crate::glue::{NotifyScripts, Plan, WireSettings};
use crate::gratuitous::Announcer;
use crate::instance::{Action, Advert, Event, Instance, State, Timer};
use crate::network::{Dropped, Received, VrrpSocket, all_interface_addresses};
use crate::notify::{NotifyJob, NotifySender, split_command};
use crate::router::{InstanceId, Router, RouterAction};
use crate::status::{
    Counters, InstanceStatus, SocketStatus, Status, TransitionRecord, VipStatus, monotonic_ns,
    rfc3339,
};

use super::vips::{LedgerEntry, VipDriver, VipLedger};
use super::{DaemonError, log};

/// How many transitions the status keeps per instance.
const HISTORY: usize = 64;

/// VIP jobs done in one go between timers and packets (one ledger write).
const VIP_BATCH: usize = 32;

/// An advert may leave this fraction of its interval early, with the
/// adverts of a timer that woke the loop: hundreds of masters then share
/// a few wakeups per interval instead of one each. The grid stays where it
/// was (the next one is armed from the deadline, not from the wake-up), and
/// backups allow three intervals.
const ADVER_SLACK: u32 = 64;

/// How long a Master_Down timer that fired waits before it counts: the
/// time for a master's advert already on its way to be read. After this
/// host (or the whole machine, in a VM) was not running for longer than
/// Master_Down_Interval, the timer and the master's next advert fall due
/// at the same instant; the advert, queued in the socket or sent by a
/// master stalled with us, arrives within this and the backup stays one.
/// A dead master costs this much more takeover time, no more.
pub const MASTER_DOWN_CONFIRM: Duration = Duration::from_millis(2);

/// How long an overdue Master_Down timer waits before it counts, when the
/// loop ran it `late` after its deadline. A loop that ran late was not
/// running itself (in a VM, the host stopped the machine): a master
/// stopped with it is only now sending the advert it owed, after its own
/// wake-up. The wait grows by the time this host lost, at most one advert
/// interval; a loop on time waits [`MASTER_DOWN_CONFIRM`], so a dead
/// master's takeover on a running host costs no more than that.
pub fn master_down_wait(late: Duration, advert_interval: Duration) -> Duration {
    if late <= MASTER_DOWN_CONFIRM {
        MASTER_DOWN_CONFIRM
    } else {
        MASTER_DOWN_CONFIRM + late.min(advert_interval)
    }
}

/// Address work queued by a transition, done between protocol inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VipJob {
    Add(InstanceId),
    Remove(InstanceId),
}

/// The state behind the main loop.
pub struct Daemon {
    pub config_path: PathBuf,
    started: String,
    base: Instant,
    router: Router,
    plan: Plan,
    sockets: Vec<Arc<VrrpSocket>>,
    /// Instance -> index into `sockets`.
    socket_of: Vec<usize>,
    socket_drops: Vec<BTreeMap<String, u64>>,
    timers: HashMap<(InstanceId, Timer), Instant>,
    counters: Vec<Counters>,
    history: Vec<VecDeque<TransitionRecord>>,
    master_seen: Vec<Option<IpAddr>>,
    last_advert: Vec<Option<String>>,
    /// When each instance last accepted an advert: a Master_Down takeover
    /// says how long its master was silent.
    last_heard: Vec<Option<Instant>>,
    /// When an advert sent behind its schedule was last logged (one line
    /// a second for all instances).
    late_logged: Option<Instant>,
    send_failing: Vec<bool>,
    vips: VipDriver,
    ledger: VipLedger,
    notify: NotifySender,
    /// One AF_PACKET socket per interface, opened on first use.
    announcers: HashMap<String, Announcer>,
    /// The next gratuitous burst of each master: the delayed one after
    /// taking over, then the refreshes.
    garp_due: HashMap<InstanceId, Instant>,
    garp_delayed_sent: Vec<bool>,
    /// The timer being fired and its deadline: re-armed from there, the
    /// adverts keep to their grid instead of drifting by each wake-up's
    /// delay.
    firing: Option<((InstanceId, Timer), Instant)>,
    /// Instances whose Master_Down timer fired and waits for
    /// [`MASTER_DOWN_CONFIRM`]; any re-arm (an advert heard) clears it.
    confirming: Vec<bool>,
    /// (socket, VRID) -> the instances that may own an advert.
    by_vrid: HashMap<(usize, u8), Vec<InstanceId>>,
    /// The last master each instance knew, for `master_changes`.
    last_master: Vec<Option<IpAddr>>,
    /// Tracked objects (scripts, interfaces): passing now.
    checks: BTreeMap<String, bool>,
    /// Transition emails (smtp_alert), when configured.
    mail: Option<crate::email::MailSender>,
    /// VIPs to add or remove, in order: a takeover of 1000 instances must
    /// send its 1000 adverts before the first netlink round trip, and
    /// timers keep firing while the addresses go on.
    vip_jobs: VecDeque<VipJob>,
    /// Gratuitous bursts to send, after the queued address work: adverts
    /// come first, then addresses, then announcements.
    garp_queue: VecDeque<InstanceId>,
    /// Adverts of the input being handled, sent together at its end, one
    /// sendmmsg(2) per socket and source: the adverts of every timer that
    /// fired in one wakeup leave in one system call, none later than it
    /// would alone.
    outbox: Vec<Outgoing>,
}

/// One encoded advert waiting for the end of the input.
#[derive(Debug)]
struct Outgoing {
    id: InstanceId,
    socket: usize,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

/// An instance kept running across a reload, with everything the daemon
/// knows about it.
#[derive(Debug, Clone)]
pub struct Carried {
    instance: Instance,
    timers: Vec<(Timer, Instant)>,
    counters: Counters,
    history: VecDeque<TransitionRecord>,
    master_seen: Option<IpAddr>,
    last_advert: Option<String>,
    garp_due: Option<Instant>,
    garp_delayed_sent: bool,
}

/// The clock and history a new [`Daemon`] continues from.
#[derive(Debug, Clone)]
pub struct Origins {
    pub base: Instant,
    pub started: String,
    /// Per instance of the new plan: what it keeps from the old daemon.
    pub carried: Vec<Option<Carried>>,
}

impl Origins {
    pub fn fresh() -> Origins {
        Origins {
            base: Instant::now(),
            started: rfc3339(SystemTime::now()),
            carried: Vec::new(),
        }
    }
}

impl Daemon {
    pub fn new(
        config_path: PathBuf,
        plan: Plan,
        sockets: Vec<Arc<VrrpSocket>>,
        ledger: VipLedger,
        vips: VipDriver,
        notify: NotifySender,
        origins: Origins,
    ) -> Result<Daemon, DaemonError> {
        let n = plan.wire.len();
        let mut carried = origins.carried;
        carried.resize(n, None);
        let mut instances = Vec::new();
        for (p, c) in plan.params.iter().zip(&carried) {
            instances.push(match c {
                Some(c) => c.instance.clone(),
                None => Instance::new(p.clone()).map_err(DaemonError::Params)?,
            });
        }
        let router =
            Router::new(instances, plan.sync_groups.clone()).map_err(DaemonError::Router)?;
        let socket_of = plan
            .wire
            .iter()
            .map(|w| {
                sockets
                    .iter()
                    .position(|s| s.interface() == w.interface && s.family() == w.family)
                    .unwrap_or(0)
            })
            .collect();
        let mut daemon = Daemon {
            config_path,
            started: origins.started,
            base: origins.base,
            router,
            socket_drops: vec![BTreeMap::new(); sockets.len()],
            sockets,
            socket_of,
            timers: HashMap::new(),
            counters: vec![Counters::default(); n],
            history: vec![VecDeque::new(); n],
            master_seen: vec![None; n],
            last_advert: vec![None; n],
            last_heard: vec![None; n],
            late_logged: None,
            send_failing: vec![false; n],
            plan,
            vips,
            ledger,
            notify,
            announcers: HashMap::new(),
            garp_due: HashMap::new(),
            garp_delayed_sent: vec![false; n],
            firing: None,
            confirming: vec![false; n],
            by_vrid: HashMap::new(),
            last_master: vec![None; n],
            checks: BTreeMap::new(),
            mail: None,
            vip_jobs: VecDeque::new(),
            garp_queue: VecDeque::new(),
            outbox: Vec::new(),
        };
        for id in 0..n {
            daemon
                .by_vrid
                .entry((daemon.socket_of[id], daemon.plan.wire[id].vrid))
                .or_default()
                .push(id);
        }
        for (id, c) in carried.into_iter().enumerate() {
            let Some(c) = c else { continue };
            for (timer, at) in c.timers {
                daemon.timers.insert((id, timer), at);
            }
            daemon.counters[id] = c.counters;
            daemon.history[id] = c.history;
            daemon.master_seen[id] = c.master_seen;
            daemon.last_master[id] = c.master_seen;
            daemon.last_advert[id] = c.last_advert;
            if let Some(at) = c.garp_due {
                daemon.garp_due.insert(id, at);
            }
            daemon.garp_delayed_sent[id] = c.garp_delayed_sent;
        }
        Ok(daemon)
    }

    /// What a reload keeps of instance `id`.
    pub fn carry(&self, id: InstanceId) -> Carried {
        Carried {
            instance: self.router.instances()[id].clone(),
            timers: self
                .timers
                .iter()
                .filter(|((i, _), _)| *i == id)
                .map(|((_, t), at)| (*t, *at))
                .collect(),
            counters: self.counters[id].clone(),
            history: self.history[id].clone(),
            master_seen: self.master_seen[id],
            last_advert: self.last_advert[id].clone(),
            garp_due: self.garp_due.get(&id).copied(),
            garp_delayed_sent: self.garp_delayed_sent[id],
        }
    }

    /// The clock and start time a successor continues from.
    pub fn origins(&self) -> Origins {
        Origins {
            base: self.base,
            started: self.started.clone(),
            carried: Vec::new(),
        }
    }

    pub fn sockets(&self) -> &[Arc<VrrpSocket>] {
        &self.sockets
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.base)
    }

    // ===== inputs =====

    /// Removes what a killed predecessor left, then starts every instance.
    pub async fn start(&mut self, link_states: &[(String, bool)]) {
        self.clean_leftovers().await;
        for (name, up) in link_states {
            self.track(name, *up).await;
        }
        self.startup((0..self.plan.wire.len()).collect()).await;
    }

    /// After a reload: the kept instances run on, the others start. The
    /// ledger is current (the old daemon kept it), so nothing is cleaned.
    pub async fn resume(&mut self, link_states: &[(String, bool)], fresh: Vec<InstanceId>) {
        for (name, up) in link_states {
            self.track(name, *up).await;
        }
        self.startup(fresh).await;
    }

    /// Starts `ids` again (a reload that could not complete).
    pub async fn restart(&mut self, ids: &[InstanceId]) {
        self.startup(ids.to_vec()).await;
    }

    async fn startup(&mut self, ids: Vec<InstanceId>) {
        for id in ids {
            let now = self.now();
            let actions = self.router.handle(id, now, Event::Startup);
            self.apply(actions).await;
        }
        self.flush_outbox();
    }

    async fn clean_leftovers(&mut self) {
        match self.ledger.clean(&self.vips).await {
            Ok(removed) => {
                for e in removed {
                    log(&format!(
                        "removed leftover {} from {} (recorded by a previous run)",
                        e.address, e.interface
                    ));
                }
            }
            Err(e) => log(&format!("cannot remove leftover addresses: {}", chain(&e))),
        }
    }

    pub async fn packet(&mut self, socket: usize, received: Received) {
        let advert = match received.check() {
            Ok(a) => a,
            Err(d) => {
                self.count_drop(socket, d);
                return;
            }
        };
        let candidates: &[InstanceId] = self
            .by_vrid
            .get(&(socket, advert.vrid))
            .map_or(&[], Vec::as_slice);
        if candidates.is_empty() {
            self.count_drop(socket, Dropped::new(None, "other_vrid"));
            return;
        }
        // Two pairs may share a VRID on one segment with different groups:
        // a multicast advert belongs to the instance using its group.
        let dst = received.dst;
        let mine: Vec<InstanceId> = candidates
            .iter()
            .copied()
            .filter(|&i| !dst.is_multicast() || self.plan.wire[i].destinations.contains(&dst))
            .collect();
        let Some(&id) = mine.first() else {
            self.count_drop(socket, Dropped::new(None, "other_group"));
            return;
        };
        let wire = &self.plan.wire[id];
        if wire.version != advert.version {
            self.counters[id].drop("version_mismatch");
            return;
        }
        if let Err(e) = advert.check_auth(&wire.auth) {
            self.counters[id].drop(e.reason());
            return;
        }
        self.counters[id].adverts_received += 1;
        let event = Event::AdvertReceived(Advert {
            source: received.src,
            priority: advert.priority,
            max_advert_interval: advert.advert_interval(),
        });
        let now = self.now();
        let actions = self.router.handle(id, now, event);
        let discarded = actions
            .iter()
            .any(|a| a.instance == id && matches!(a.action, Action::Discard(_)));
        self.apply(actions).await;
        self.flush_outbox();
        // After the actions: a transition resets what we saw.
        if !discarded && advert.priority > 0 {
            self.last_advert[id] = Some(rfc3339(SystemTime::now()));
            self.last_heard[id] = Some(Instant::now());
            if self.router.instances()[id].state() == State::Backup {
                self.master_seen[id] = Some(received.src);
                self.note_master(id);
            }
        }
    }

    /// An operator's takeover or release (`hactl-agent takeover|release`):
    /// for the instance named, else every instance. Returns the names of
    /// the instances that heard it; `None` when no instance has that name.
    pub async fn operator(&mut self, instance: Option<&str>, event: &Event) -> Option<Vec<String>> {
        let ids: Vec<InstanceId> = match instance {
            Some(name) => vec![self.router.find(name)?],
            None => (0..self.plan.wire.len()).collect(),
        };
        let mut names = Vec::new();
        for id in ids {
            let now = self.now();
            let actions = self.router.handle(id, now, event.clone());
            self.apply(actions).await;
            names.push(self.plan.wire[id].name.clone());
        }
        self.flush_outbox();
        Some(names)
    }

    /// Tracked object `name` changed; every instance tracking it hears.
    pub async fn track(&mut self, name: &str, up: bool) {
        self.checks.insert(name.to_owned(), up);
        for id in 0..self.plan.wire.len() {
            let tracks = &self.plan.params[id].tracks;
            if tracks.iter().any(|t| t.name == name) {
                let now = self.now();
                let event = Event::TrackChanged {
                    name: name.to_owned(),
                    up,
                };
                let actions = self.router.handle(id, now, event);
                self.apply(actions).await;
            }
        }
        self.flush_outbox();
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers
            .values()
            .chain(self.garp_due.values())
            .min()
            .copied()
    }

    /// Whether a Master_Down timer that waited [`MASTER_DOWN_CONFIRM`] is
    /// due: it counts only after the adverts already queued are read.
    pub fn confirmed_master_down_due(&self) -> bool {
        let now = Instant::now();
        self.timers.iter().any(|((id, timer), at)| {
            *timer == Timer::MasterDown && self.confirming[*id] && *at <= now
        })
    }

    /// Fires every timer that is due, and the adverts due within their
    /// slack.
    pub async fn fire_due(&mut self) {
        let now = Instant::now();
        let instances = self.router.instances();
        let mut due: Vec<((InstanceId, Timer), Instant)> = self
            .timers
            .iter()
            .filter(|((id, timer), at)| {
                **at <= now
                    || (*timer == Timer::Adver
                        && **at <= now + instances[*id].params().advert_interval / ADVER_SLACK)
            })
            .map(|(k, at)| (*k, *at))
            .collect();
        due.sort_by_key(|(k, at)| (*at, *k));
        for ((id, timer), at) in due {
            self.timers.remove(&(id, timer));
            if timer == Timer::MasterDown && !std::mem::take(&mut self.confirming[id]) {
                // Adverts already received, or owed by a master stalled
                // with this host, are read before it counts.
                let late = now.saturating_duration_since(at);
                let instance = &self.router.instances()[id];
                let wait = master_down_wait(late, instance.params().advert_interval);
                if wait > MASTER_DOWN_CONFIRM {
                    log(&format!(
                        "{}: Master_Down timer ran {:.1} ms late (this host was not running): waiting {:.1} ms for the master's advert",
                        instance.name(),
                        late.as_secs_f64() * 1e3,
                        wait.as_secs_f64() * 1e3
                    ));
                }
                self.confirming[id] = true;
                self.timers.insert((id, timer), Instant::now() + wait);
                continue;
            }
            if timer == Timer::Adver {
                self.log_late_advert(id, now.saturating_duration_since(at));
            }
            let now = self.now();
            let actions = self.router.handle(id, now, Event::TimerFired(timer));
            self.firing = Some(((id, timer), at));
            self.apply(actions).await;
            self.firing = None;
        }
        self.flush_outbox();
        let garp: Vec<InstanceId> = self
            .garp_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in garp {
            self.garp_due.remove(&id);
            self.garp_delayed_sent[id] = true;
            // The burst waits behind adverts like every other (see
            // `garp_queue`); its refresh is timed from now.
            self.garp_queue.push_back(id);
            if let Some(refresh) = self.plan.wire[id].garp.refresh {
                self.garp_due.insert(id, Instant::now() + refresh);
            }
        }
    }

    /// Stops every instance (RFC 5798 6.4.2/6.4.3 Shutdown: a master sends
    /// priority 0 and releases its addresses).
    pub async fn shutdown(&mut self) {
        self.shutdown_some(&(0..self.plan.wire.len()).collect::<Vec<_>>())
            .await;
        self.timers.clear();
    }

    /// Stops the instances `ids` only (a reload that changed them).
    pub async fn shutdown_some(&mut self, ids: &[InstanceId]) {
        for &id in ids {
            let now = self.now();
            let actions = self.router.handle(id, now, Event::Shutdown);
            self.apply(actions).await;
            self.timers.retain(|(i, _), _| *i != id);
            self.garp_due.remove(&id);
        }
        // The priority 0 adverts first, then the addresses go.
        self.flush_outbox();
        self.garp_queue.retain(|id| !ids.contains(id));
        self.flush_vip_work().await;
    }

    // ===== actions =====

    async fn apply(&mut self, actions: Vec<RouterAction>) {
        for RouterAction {
            instance: id,
            action,
        } in actions
        {
            match action {
                Action::Transition { from, to, reason } => {
                    let name = &self.plan.wire[id].name;
                    // A backup taking over says how long its master was
                    // silent: the Master_Down_Interval, or more when this
                    // loop ran late.
                    let silent = match (from, to, self.last_heard[id]) {
                        (State::Backup, State::Master, Some(at)) => format!(
                            ", last advert heard {:.1} ms before",
                            at.elapsed().as_secs_f64() * 1e3
                        ),
                        _ => String::new(),
                    };
                    log(&format!(
                        "{name}: {} -> {} ({reason}{silent})",
                        state_name(from),
                        state_name(to)
                    ));
                    self.last_heard[id] = None;
                    let record = TransitionRecord {
                        from: state_name(from).to_owned(),
                        to: state_name(to).to_owned(),
                        reason: reason.to_string(),
                        time: rfc3339(SystemTime::now()),
                        monotonic_ns: monotonic_ns(),
                    };
                    let h = &mut self.history[id];
                    if h.len() == HISTORY {
                        h.pop_front();
                    }
                    h.push_back(record);
                    self.master_seen[id] = match to {
                        State::Master => Some(self.plan.wire[id].source),
                        _ => None,
                    };
                    self.counters[id].transitions += 1;
                    self.note_master(id);
                    self.mail_transition(id, to);
                    self.garp_due.remove(&id);
                    self.garp_delayed_sent[id] = false;
                }
                Action::SendAdvert { priority } => self.send_advert(id, priority),
                Action::AddVips => self.vip_jobs.push_back(VipJob::Add(id)),
                Action::RemoveVips => self.vip_jobs.push_back(VipJob::Remove(id)),
                Action::SendGratuitous => self.garp_queue.push_back(id),
                Action::ArmTimer { timer, after } => {
                    if timer == Timer::MasterDown {
                        self.confirming[id] = false;
                    }
                    let now = Instant::now();
                    // From the deadline that just fired, unless that is a
                    // whole period behind (a stall: no catch-up burst).
                    let base = match self.firing {
                        Some((key, at)) if key == (id, timer) && now - at < after => at,
                        _ => now,
                    };
                    self.timers.insert((id, timer), base + after);
                }
                Action::StopTimer(timer) => {
                    if timer == Timer::MasterDown {
                        self.confirming[id] = false;
                    }
                    self.timers.remove(&(id, timer));
                }
                Action::PriorityChanged { from, to } => {
                    let name = &self.plan.wire[id].name;
                    log(&format!("{name}: effective priority {from} -> {to}"));
                }
                Action::Discard(_) => {}
                Action::Notify(state) => self.queue_notify(id, state),
            }
        }
    }

    fn send_advert(&mut self, id: InstanceId, priority: u8) {
        let wire = &self.plan.wire[id];
        let advert = wire.advertisement(priority);
        let (src, socket) = (wire.source, self.socket_of[id]);
        let encoded: Vec<_> = wire
            .destinations
            .iter()
            .map(|&dst| (dst, advert.encode(src, dst)))
            .collect();
        for (dst, bytes) in encoded {
            match bytes {
                Ok(bytes) => self.outbox.push(Outgoing {
                    id,
                    socket,
                    src,
                    dst,
                    bytes,
                }),
                Err(e) => self.send_result(id, Err(e.to_string())),
            }
        }
    }

    /// Sends the adverts of the input just handled: runs of one socket and
    /// source in one sendmmsg(2), whatever it did not take one by one.
    fn flush_outbox(&mut self) {
        let outbox = std::mem::take(&mut self.outbox);
        let mut rest = outbox.as_slice();
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|o| o.socket == first.socket && o.src == first.src)
                .count();
            let (batch, tail) = rest.split_at(run);
            rest = tail;
            let socket = Arc::clone(&self.sockets[first.socket]);
            let taken = if batch.len() > 1 {
                let messages: Vec<(IpAddr, Vec<u8>)> =
                    batch.iter().map(|o| (o.dst, o.bytes.clone())).collect();
                socket.send_batch(first.src, &messages)
            } else {
                0
            };
            for (n, o) in batch.iter().enumerate() {
                let result = if n < taken {
                    Ok(())
                } else {
                    socket.send(o.src, o.dst, &o.bytes).map_err(|e| chain(&e))
                };
                self.send_result(o.id, result);
            }
        }
    }

    /// Logs an advert that goes out a whole interval or more behind its
    /// schedule (the loop or the host did not run): under fast adverts, the
    /// first thing to look at when a backup took over from a live master.
    /// One line a second at most, whatever the number of instances.
    fn log_late_advert(&mut self, id: InstanceId, late: Duration) {
        let interval = self.router.instances()[id].params().advert_interval;
        if late < interval
            || self
                .late_logged
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.late_logged = Some(Instant::now());
        log(&format!(
            "{}: advert sent {:.1} ms behind its schedule (interval {:.1} ms)",
            self.plan.wire[id].name,
            late.as_secs_f64() * 1e3,
            interval.as_secs_f64() * 1e3
        ));
    }

    fn send_result(&mut self, id: InstanceId, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.counters[id].adverts_sent += 1;
                self.send_failing[id] = false;
            }
            Err(e) => {
                self.counters[id].send_errors += 1;
                // Log the first failure of a run of failures, not every advert.
                if !self.send_failing[id] {
                    log(&format!(
                        "{}: cannot send advert: {e}",
                        self.plan.wire[id].name
                    ));
                    self.send_failing[id] = true;
                }
            }
        }
    }

    /// RFC 5798 6.4.1/6.4.2: announce the VIPs now; keepalived repeats
    /// the burst after garp_master_delay and every garp_master_refresh.
    fn gratuitous(&mut self, id: InstanceId) {
        self.announce(id);
        if self.garp_due.contains_key(&id) {
            return;
        }
        let garp = self.plan.wire[id].garp;
        let next = if !self.garp_delayed_sent[id] && !garp.delay.is_zero() {
            Some(garp.delay)
        } else {
            garp.refresh
        };
        if let Some(after) = next {
            self.garp_due.insert(id, Instant::now() + after);
        }
    }

    /// One burst: `repeat` announcements of every VIP.
    fn announce(&mut self, id: InstanceId) {
        let wire = &self.plan.wire[id];
        for vip in &wire.vips {
            let interface = wire.vip_interface(vip);
            if !self.announcers.contains_key(interface) {
                match Announcer::open(interface) {
                    Ok(a) => {
                        let a = a.with_router_flag(true);
                        self.announcers.insert(interface.to_owned(), a);
                    }
                    Err(e) => {
                        log(&format!("{}: {}", wire.name, chain(&e)));
                        continue;
                    }
                }
            }
            let Some(announcer) = self.announcers.get(interface) else {
                continue;
            };
            for _ in 0..wire.garp.repeat {
                if let Err(e) = announcer.announce(vip.address.addr) {
                    log(&format!("{}: {}", wire.name, chain(&e)));
                    break;
                }
            }
        }
    }

    /// Whether address or announcement work waits.
    pub fn has_vip_work(&self) -> bool {
        !self.vip_jobs.is_empty() || !self.garp_queue.is_empty()
    }

    /// Does the next run of queued address jobs of one kind, at most
    /// [`VIP_BATCH`]; with none left, that many gratuitous bursts.
    pub async fn vip_work(&mut self) {
        let Some(&first) = self.vip_jobs.front() else {
            for _ in 0..VIP_BATCH {
                let Some(id) = self.garp_queue.pop_front() else {
                    break;
                };
                // A master that stepped down meanwhile stays quiet.
                if self.router.instances()[id].state() == State::Master {
                    self.gratuitous(id);
                }
            }
            return;
        };
        let mut batch = Vec::new();
        while batch.len() < VIP_BATCH
            && let Some(&job) = self.vip_jobs.front()
            && std::mem::discriminant(&job) == std::mem::discriminant(&first)
        {
            self.vip_jobs.pop_front();
            batch.push(job);
        }
        match first {
            VipJob::Add(_) => {
                let ids: Vec<InstanceId> = batch
                    .iter()
                    .filter_map(|j| match j {
                        VipJob::Add(id) => Some(*id),
                        VipJob::Remove(_) => None,
                    })
                    .collect();
                // Record first: a crash between the two leaves a ledger
                // naming an address that may not be there, never the
                // reverse.
                let entries: Vec<LedgerEntry> = ids
                    .iter()
                    .flat_map(|&id| {
                        let wire = &self.plan.wire[id];
                        wire.vips.iter().map(|vip| ledger_entry(wire, vip))
                    })
                    .collect();
                if let Err(e) = self.ledger.record_many(&entries) {
                    log(&chain(&e));
                }
                for id in ids {
                    self.add_vips(id).await;
                }
            }
            VipJob::Remove(_) => {
                for job in batch {
                    if let VipJob::Remove(id) = job {
                        self.remove_vips(id).await;
                    }
                }
            }
        }
    }

    /// Does every queued address job (before shutdown or a reload).
    pub async fn flush_vip_work(&mut self) {
        while !self.vip_jobs.is_empty() {
            self.vip_work().await;
        }
    }

    /// After a reload that changed only the virtual addresses of some
    /// instances (`(id, old addresses)`; they kept their state, as
    /// keepalived's reload does): their masters release the addresses gone,
    /// then add the new ones and announce them; a backup holds none. Every
    /// release goes first, so an address moved between two masters ends up
    /// on its new instance.
    pub async fn change_vips(&mut self, changed: &[(InstanceId, Vec<VirtualAddress>)]) {
        let mut additions = Vec::new();
        for (id, old) in changed {
            let id = *id;
            let wire = &self.plan.wire[id];
            let gone: Vec<VirtualAddress> = old
                .iter()
                .filter(|v| !wire.vips.contains(v))
                .cloned()
                .collect();
            let added: Vec<VirtualAddress> = wire
                .vips
                .iter()
                .filter(|v| !old.contains(v))
                .cloned()
                .collect();
            let master = self.router.instances()[id].state() == State::Master;
            log(&format!(
                "{}: virtual addresses changed ({} added, {} removed){}",
                wire.name,
                added.len(),
                gone.len(),
                if master { "" } else { ", none held as BACKUP" }
            ));
            if master {
                self.remove_addresses(id, &gone).await;
                additions.push((id, added));
            }
        }
        for (id, added) in additions {
            let wire = &self.plan.wire[id];
            let entries: Vec<LedgerEntry> =
                added.iter().map(|vip| ledger_entry(wire, vip)).collect();
            // Recorded first, as for a takeover's addresses.
            if let Err(e) = self.ledger.record_many(&entries) {
                log(&chain(&e));
            }
            self.add_addresses(id, &added).await;
            if !added.is_empty() {
                self.garp_queue.push_back(id);
            }
        }
    }

    async fn add_vips(&mut self, id: InstanceId) {
        let vips = self.plan.wire[id].vips.clone();
        self.add_addresses(id, &vips).await;
    }

    async fn add_addresses(&mut self, id: InstanceId, vips: &[VirtualAddress]) {
        let wire = self.plan.wire[id].clone();
        for vip in vips {
            let entry = ledger_entry(&wire, vip);
            if let Err(e) = self.vips.add(&entry.interface, vip).await {
                log(&format!(
                    "{}: cannot add {} to {}: {}",
                    wire.name,
                    entry.address,
                    entry.interface,
                    chain(&e)
                ));
            }
        }
    }

    async fn remove_vips(&mut self, id: InstanceId) {
        let vips = self.plan.wire[id].vips.clone();
        self.remove_addresses(id, &vips).await;
    }

    async fn remove_addresses(&mut self, id: InstanceId, vips: &[VirtualAddress]) {
        let wire = self.plan.wire[id].clone();
        for vip in vips {
            let entry = ledger_entry(&wire, vip);
            match self.vips.remove(&entry.interface, &entry.address).await {
                Ok(()) => {
                    if let Err(e) = self.ledger.forget(&entry) {
                        log(&format!("{}: {}", wire.name, chain(&e)));
                    }
                }
                Err(e) => log(&format!(
                    "{}: cannot remove {} from {}: {}",
                    wire.name,
                    entry.address,
                    entry.interface,
                    chain(&e)
                )),
            }
        }
    }

    fn queue_notify(&mut self, id: InstanceId, state: State) {
        let wire = &self.plan.wire[id];
        let priority = self.router.instances()[id].effective_priority();
        let mut jobs = scripts_for(&wire.notify, state, "INSTANCE", &wire.name, priority);
        // A sync group's scripts run once per group transition: on the
        // notification of its first member.
        for group in &self.plan.sync_groups {
            if group.members.first() == Some(&wire.name)
                && let Some((_, scripts)) = self
                    .plan
                    .group_notify
                    .iter()
                    .find(|(n, _)| *n == group.name)
            {
                jobs.extend(scripts_for(scripts, state, "GROUP", &group.name, priority));
            }
        }
        for job in jobs {
            let _ = self.notify.send(job);
        }
    }

    /// Counts a master change when the master now known differs from the
    /// last one known (an unknown master in between is no change).
    fn note_master(&mut self, id: InstanceId) {
        if let Some(now) = self.master_seen[id]
            && self.last_master[id] != Some(now)
        {
            self.last_master[id] = Some(now);
            self.counters[id].master_changes += 1;
        }
    }

    /// Sends transitions to `smtp_alert` instances' recipients.
    pub fn set_mail(&mut self, mail: Option<crate::email::MailSender>) {
        self.mail = mail;
    }

    fn mail_transition(&self, id: InstanceId, to: State) {
        let Some(mail) = &self.mail else { return };
        if !self.plan.wire[id].smtp_alert || to == State::Initialize {
            return;
        }
        mail.transition(&self.plan.wire[id].name, state_name(to));
    }

    fn count_drop(&mut self, socket: usize, dropped: Dropped) {
        let owner = dropped.vrid.and_then(|vrid| {
            self.by_vrid
                .get(&(socket, vrid))
                .and_then(|ids| ids.first().copied())
        });
        match owner {
            Some(id) => self.counters[id].drop(dropped.reason),
            None => {
                *self.socket_drops[socket]
                    .entry(dropped.reason.to_owned())
                    .or_default() += 1;
            }
        }
    }

    // ===== status =====

    pub fn snapshot(&self) -> Status {
        let addresses = all_interface_addresses();
        let instances = self
            .plan
            .wire
            .iter()
            .enumerate()
            .map(|(id, wire)| self.instance_status(id, wire, &addresses))
            .collect();
        let sockets = self
            .sockets
            .iter()
            .zip(&self.socket_drops)
            .map(|(s, drops)| SocketStatus {
                interface: s.interface().to_owned(),
                family: family_name(s.family()).to_owned(),
                drops: drops.clone(),
            })
            .collect();
        Status {
            pid: std::process::id(),
            config: self.config_path.clone(),
            started: self.started.clone(),
            instances,
            sockets,
            virtual_servers: Vec::new(),
            checks: self.checks.clone(),
        }
    }

    fn instance_status(
        &self,
        id: InstanceId,
        wire: &WireSettings,
        addresses: &HashMap<String, Vec<IpAddr>>,
    ) -> InstanceStatus {
        let instance = &self.router.instances()[id];
        let vips = wire
            .vips
            .iter()
            .map(|v| {
                let interface = wire.vip_interface(v).to_owned();
                let present = addresses
                    .get(&interface)
                    .is_some_and(|a| a.contains(&v.address.addr));
                VipStatus {
                    address: v.address.to_string(),
                    interface,
                    present,
                }
            })
            .collect();
        InstanceStatus {
            name: wire.name.clone(),
            vrid: wire.vrid,
            interface: wire.interface.clone(),
            version: wire.version.number(),
            family: family_name(wire.family).to_owned(),
            state: state_name(instance.state()).to_owned(),
            priority: instance.params().base_priority,
            effective_priority: instance.effective_priority(),
            vips,
            master: self.master_seen[id],
            address: wire.source,
            advert_int_ms: u64::try_from(instance.master_adver_interval().as_millis())
                .unwrap_or(u64::MAX),
            last_advert: self.last_advert[id].clone(),
            counters: self.counters[id].clone(),
            transitions: self.history[id].iter().cloned().collect(),
        }
    }
}

/// The names the status API and logs use (keepalived's).
/// What the ledger records of `vip`, an address of the instance `wire`.
fn ledger_entry(wire: &WireSettings, vip: &VirtualAddress) -> LedgerEntry {
    LedgerEntry {
        interface: wire.vip_interface(vip).to_owned(),
        address: vip.address.to_string(),
    }
}

pub fn state_name(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// The jobs for one notification: the state's own script, then the generic
/// one with `KIND NAME STATE PRIORITY` appended (keepalived.conf(5)).
pub fn scripts_for(
    scripts: &NotifyScripts,
    state: State,
    kind: &str,
    name: &str,
    priority: u8,
) -> Vec<NotifyJob> {
    let (specific, word) = match state {
        State::Master => (&scripts.master, "MASTER"),
        State::Backup => (&scripts.backup, "BACKUP"),
        State::Fault => (&scripts.fault, "FAULT"),
        State::Initialize => (&scripts.stop, "STOP"),
    };
    let mut jobs = Vec::new();
    if let Some(line) = specific {
        jobs.push(NotifyJob {
            argv: split_command(line),
        });
    }
    if let Some(line) = &scripts.generic {
        let mut argv = split_command(line);
        argv.extend([
            kind.to_owned(),
            name.to_owned(),
            word.to_owned(),
            priority.to_string(),
        ]);
        jobs.push(NotifyJob { argv });
    }
    jobs
}

/// An error with its sources, `a: b: c`, for one log line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overdue_master_down_waits_for_the_time_the_host_lost() {
        let ms = Duration::from_millis;
        // On time (timerfd wake-ups are well under the confirmation).
        assert_eq!(master_down_wait(ms(0), ms(10)), MASTER_DOWN_CONFIRM);
        assert_eq!(
            master_down_wait(MASTER_DOWN_CONFIRM, ms(10)),
            MASTER_DOWN_CONFIRM
        );
        // Stalled: the lost time, up to one advert interval.
        assert_eq!(master_down_wait(ms(7), ms(10)), MASTER_DOWN_CONFIRM + ms(7));
        assert_eq!(
            master_down_wait(ms(53), ms(10)),
            MASTER_DOWN_CONFIRM + ms(10)
        );
        assert_eq!(
            master_down_wait(ms(53), ms(1000)),
            MASTER_DOWN_CONFIRM + ms(53)
        );
    }

    #[test]
    fn notify_jobs_specific_then_generic_with_arguments() {
        let scripts = NotifyScripts {
            master: Some("/etc/m.sh \"a b\"".to_owned()),
            backup: None,
            fault: None,
            stop: Some("/etc/stop.sh".to_owned()),
            generic: Some("/etc/n.sh".to_owned()),
        };
        let argv = |state| -> Vec<Vec<String>> {
            scripts_for(&scripts, state, "INSTANCE", "VI_1", 120)
                .into_iter()
                .map(|j| j.argv)
                .collect()
        };
        assert_eq!(
            argv(State::Master),
            [
                vec!["/etc/m.sh", "a b"],
                vec!["/etc/n.sh", "INSTANCE", "VI_1", "MASTER", "120"]
            ]
        );
        assert_eq!(
            argv(State::Backup),
            [vec!["/etc/n.sh", "INSTANCE", "VI_1", "BACKUP", "120"]]
        );
        assert_eq!(
            argv(State::Initialize),
            [
                vec!["/etc/stop.sh"],
                vec!["/etc/n.sh", "INSTANCE", "VI_1", "STOP", "120"]
            ]
        );
    }
}
