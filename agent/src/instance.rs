//! One VRRP virtual router instance: the RFC 5798 (v3) / RFC 3768 (v2) state
//! machine, without sockets or a clock.
//!
//! The instance takes inputs ([`fsm::Event`]) stamped with a monotonic virtual
//! time and answers with a list of [`Action`]s for the caller to carry out:
//! send an advertisement, add or remove the virtual addresses, arm or stop a
//! timer, run a notify script. Timers are owned by the caller (the daemon's
//! task layer or [`crate::sim`]); when one expires the caller feeds back
//! [`fsm::Event::TimerFired`]. The same inputs always give the same actions, so
//! conformance tests replay text scripts against golden outputs.
//!
//! Decisions beyond the RFC text, all following keepalived's documented
//! behaviour so that our agent and keepalived can be peers:
//! - Startup: only the address owner (priority 255) whose configured state is
//!   MASTER becomes Master at once (RFC 5798 6.4.1 and keepalived's `state`).
//!   Every other instance, including an owner configured as BACKUP, starts in
//!   Backup and waits Master_Down_Interval.
//! - Fault (keepalived's FAULT state): entered when a tracked object with weight
//!   0 is down, or when the sync group says so; leaving it runs the startup
//!   rules again (normally back to Backup). A Master entering Fault sends a
//!   priority 0 advertisement and removes its addresses, like a shutdown, so the
//!   backup takes over after Skew_Time instead of Master_Down_Interval.
//! - Effective priority is the base priority plus the weights of the tracked
//!   objects, clamped to 1..=254; the owner stays at 255.
//! - `preempt_delay`: on entering Backup (startup or fault cleared) the first
//!   Master_Down_Timer is Master_Down_Interval + preempt_delay, and a
//!   lower-priority master is accepted as if preemption were off until
//!   preempt_delay has passed since startup or since a lower-priority master was
//!   first seen (whichever is later).
//! - VRRPv2 adverts whose interval differs from ours are discarded
//!   (RFC 3768 7.1); VRRPv3 backups learn the master's interval (RFC 5798 6.4.2).
//! - A Master that receives a lower-priority advert discards it and, when
//!   [`InstanceParams::answer_lower_priority`] is set (keepalived's default,
//!   unless `vrrp_lower_prio_no_advert`), answers at once with an advert and a
//!   gratuitous ARP/NA burst, so a router that wrongly thinks it is master
//!   hears the real one and neighbours relearn the VIP owner.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

pub use fsm::{Event, State, Timer};

/// The RFC state machine vocabulary: states, inputs and the timers it asks for.
pub mod fsm {
    use std::fmt;

    use super::Advert;

    /// RFC 5798 6.4 states, plus keepalived's Fault.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum State {
        Initialize,
        Backup,
        Master,
        Fault,
    }

    /// The two timers of RFC 5798 6.2.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Timer {
        MasterDown,
        Adver,
    }

    /// An input to the state machine.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Event {
        /// The daemon starts the instance (RFC 5798 6.4.1 "Startup event").
        Startup,
        /// A validated advertisement for this virtual router arrived.
        AdvertReceived(Advert),
        /// A timer armed through [`super::Action::ArmTimer`] expired.
        TimerFired(Timer),
        /// A tracked object (script, interface) changed status.
        TrackChanged { name: String, up: bool },
        /// The daemon stops the instance (RFC 5798 6.4.2/6.4.3 "Shutdown event").
        Shutdown,
        /// An operator asks this node to become master now (a planned
        /// switchover): advertise `priority` and take over.
        Takeover { priority: u8 },
        /// An operator ends a takeover: back to the configured priority.
        Release,
    }

    impl fmt::Display for State {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                State::Initialize => "initialize",
                State::Backup => "backup",
                State::Master => "master",
                State::Fault => "fault",
            })
        }
    }

    impl fmt::Display for Timer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                Timer::MasterDown => "master-down",
                Timer::Adver => "adver",
            })
        }
    }

    impl fmt::Display for Event {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Event::Startup => f.write_str("startup"),
                Event::AdvertReceived(a) => write!(
                    f,
                    "advert from {} prio {} int {}",
                    a.source,
                    a.priority,
                    super::DisplayMs(a.max_advert_interval)
                ),
                Event::TimerFired(t) => write!(f, "timer {t} fired"),
                Event::TrackChanged { name, up } => {
                    write!(f, "track {name} {}", if *up { "up" } else { "down" })
                }
                Event::Shutdown => f.write_str("shutdown"),
                Event::Takeover { priority } => write!(f, "takeover prio {priority}"),
                Event::Release => f.write_str("release"),
            }
        }
    }
}

// ===== inputs =====

/// The VRRP version an instance speaks: the wire format's own.
pub use crate::packet::Version;

/// keepalived's `state` keyword. Only the owner acts on `Master` (see the module doc).
pub use crate::config::InitialState;

/// A tracked object (track_script, track_interface) and its weight.
///
/// Weight 0: the instance goes to Fault while the object is down. Positive:
/// added to the priority while up. Negative: added while down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub name: String,
    pub weight: i32,
}

/// What the state machine needs to know about one configured instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceParams {
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    /// Configured priority, 1..=255; 255 makes the instance the address owner.
    pub base_priority: u8,
    /// Advertisement_Interval: whole seconds in v2, a multiple of 10 ms in v3.
    pub advert_interval: Duration,
    /// Preempt_Mode; false is keepalived's `nopreempt`.
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// The address adverts are sent from; breaks ties between equal priorities.
    pub primary_address: IpAddr,
    pub initial_state: InitialState,
    pub tracks: Vec<Track>,
    /// Answer a lower-priority advert with an advert and gratuitous ARP/NA
    /// while Master (keepalived's default; false is `vrrp_lower_prio_no_advert`).
    pub answer_lower_priority: bool,
}

/// A received advertisement, already checked by the packet layer (TTL,
/// checksum, VRID, authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub source: IpAddr,
    pub priority: u8,
    /// The advert's interval field: seconds in v2, centiseconds in v3.
    pub max_advert_interval: Duration,
}

/// Why [`InstanceParams`] cannot run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("instance {name}: virtual router id must be 1..=255")]
    Vrid { name: String },
    #[error("instance {name}: priority must be 1..=255")]
    Priority { name: String },
    #[error("instance {name}: advert interval {interval:?} is not {rule}")]
    AdvertInterval {
        name: String,
        interval: Duration,
        rule: &'static str,
    },
    #[error("instance {name}: VRRPv2 cannot carry IPv6")]
    V2Ipv6 { name: String },
    #[error("instance {name}: preempt delay {delay:?} is over 1000 s")]
    PreemptDelay { name: String, delay: Duration },
    #[error("instance {name}: track {track} weight {weight} is outside -254..=254")]
    TrackWeight {
        name: String,
        track: String,
        weight: i32,
    },
    #[error("instance {name}: track {track} listed twice")]
    DuplicateTrack { name: String, track: String },
}

impl InstanceParams {
    /// Checks the ranges the RFCs and keepalived impose.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let name = || self.name.clone();
        if self.vrid == 0 {
            return Err(ParamsError::Vrid { name: name() });
        }
        if self.base_priority == 0 {
            return Err(ParamsError::Priority { name: name() });
        }
        let interval = self.advert_interval;
        let bad = |rule| ParamsError::AdvertInterval {
            name: name(),
            interval,
            rule,
        };
        match self.version {
            // RFC 3768 5.3.7: Adver Int is an 8-bit count of seconds.
            Version::V2 => {
                if interval.subsec_nanos() != 0 || !(1..=255).contains(&interval.as_secs()) {
                    return Err(bad("whole seconds in 1..=255"));
                }
                if self.primary_address.is_ipv6() {
                    return Err(ParamsError::V2Ipv6 { name: name() });
                }
            }
            // RFC 5798 5.2.7: Max Adver Int is a 12-bit count of centiseconds.
            Version::V3 => {
                let cs = centiseconds(interval);
                if interval.as_nanos() % 10_000_000 != 0 || !(1..=4095).contains(&cs) {
                    return Err(bad("a multiple of 10 ms in 10 ms..=40.95 s"));
                }
            }
        }
        if self.preempt_delay > Duration::from_secs(1000) {
            return Err(ParamsError::PreemptDelay {
                name: name(),
                delay: self.preempt_delay,
            });
        }
        for (i, track) in self.tracks.iter().enumerate() {
            if !(-254..=254).contains(&track.weight) {
                return Err(ParamsError::TrackWeight {
                    name: name(),
                    track: track.name.clone(),
                    weight: track.weight,
                });
            }
            if self.tracks[..i].iter().any(|t| t.name == track.name) {
                return Err(ParamsError::DuplicateTrack {
                    name: name(),
                    track: track.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The address owner (RFC 5798 6.1: priority 255).
    pub fn is_owner(&self) -> bool {
        self.base_priority == 255
    }
}

// ===== outputs =====

/// Why a state changed, for logs, status history and golden files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Startup,
    MasterDownTimer,
    HigherPriority {
        source: IpAddr,
        priority: u8,
    },
    TrackDown {
        track: String,
    },
    FaultCleared,
    SyncGroup {
        group: String,
        member: String,
    },
    Shutdown,
    /// An operator's takeover request.
    Takeover,
}

/// Why an advertisement changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscardReason {
    /// RFC 3768 7.1: a v2 advert must carry our interval.
    IntervalMismatch { received: Duration },
    /// Preemption: the sender's priority is below ours.
    LowerPriority,
    /// Initialize and Fault do not take part in the protocol.
    NotListening,
    /// The source is our own primary address (multicast loopback).
    OwnAdvert,
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Comes first in the list of the input that changed the state.
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Multicast (or unicast to peers) one advertisement with this priority.
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// Gratuitous ARP (IPv4) / unsolicited NA (IPv6) burst for the VIPs.
    SendGratuitous,
    /// (Re)start a timer; one already armed is replaced.
    ArmTimer {
        timer: Timer,
        after: Duration,
    },
    StopTimer(Timer),
    PriorityChanged {
        from: u8,
        to: u8,
    },
    Discard(DiscardReason),
    /// Run the notify scripts for the new state (Initialize means stop).
    Notify(State),
}

/// Formats a duration as milliseconds with no trailing zeros, e.g. `3609.375ms`.
pub struct DisplayMs(pub Duration);

impl fmt::Display for DisplayMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        let (ms, frac) = (nanos / 1_000_000, nanos % 1_000_000);
        if frac == 0 {
            write!(f, "{ms}ms")
        } else {
            let digits = format!("{frac:06}");
            write!(f, "{ms}.{}ms", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::MasterDownTimer => f.write_str("master down timer expired"),
            Reason::HigherPriority { source, priority } => {
                write!(f, "advert from {source} prio {priority}")
            }
            Reason::TrackDown { track } => write!(f, "track {track} down"),
            Reason::FaultCleared => f.write_str("fault cleared"),
            Reason::SyncGroup { group, member } => write!(f, "sync group {group} follows {member}"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::Takeover => f.write_str("takeover requested"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Transition { from, to, reason } => {
                write!(f, "transition {from} -> {to} ({reason})")
            }
            Action::SendAdvert { priority } => write!(f, "send advert prio {priority}"),
            Action::AddVips => f.write_str("add vips"),
            Action::RemoveVips => f.write_str("remove vips"),
            Action::SendGratuitous => f.write_str("send gratuitous"),
            Action::ArmTimer { timer, after } => write!(f, "arm {timer} {}", DisplayMs(*after)),
            Action::StopTimer(timer) => write!(f, "stop {timer}"),
            Action::PriorityChanged { from, to } => write!(f, "priority {from} -> {to}"),
            Action::Discard(DiscardReason::IntervalMismatch { received }) => {
                write!(f, "discard (interval {} is not ours)", DisplayMs(*received))
            }
            Action::Discard(DiscardReason::LowerPriority) => {
                f.write_str("discard (lower priority)")
            }
            Action::Discard(DiscardReason::NotListening) => f.write_str("discard (not listening)"),
            Action::Discard(DiscardReason::OwnAdvert) => f.write_str("discard (our own advert)"),
            Action::Notify(state) => write!(f, "notify {state}"),
        }
    }
}

// ===== timing =====

fn centiseconds(d: Duration) -> u64 {
    (d.as_nanos() / 10_000_000) as u64
}

/// Skew_Time for a local priority.
///
/// RFC 5798 6.1: `((256 - Priority) * Master_Adver_Interval) / 256`, in whole
/// centiseconds. RFC 3768 6.1: `(256 - Priority) / 256` seconds.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    let weight = 256 - u64::from(priority);
    match version {
        Version::V3 => {
            let cs = weight * centiseconds(master_adver_interval) / 256;
            Duration::from_millis(cs * 10)
        }
        // 1 s / 256 is exactly 3_906_250 ns.
        Version::V2 => Duration::from_nanos(weight * 3_906_250),
    }
}

/// Master_Down_Interval: `3 * interval + Skew_Time` (RFC 5798 6.1, RFC 3768 6.1).
///
/// For v2 pass the local Advertisement_Interval, for v3 the learned
/// Master_Adver_Interval.
pub fn master_down_interval(version: Version, priority: u8, interval: Duration) -> Duration {
    let interval = match version {
        // Keep the centisecond grid of the v3 formula.
        Version::V3 => Duration::from_millis(centiseconds(interval) * 10),
        Version::V2 => interval,
    };
    interval * 3 + skew_time(version, priority, interval)
}

/// Base priority plus track weights, clamped to 1..=254; the owner keeps 255.
pub fn effective_priority(base: u8, weights: i32) -> u8 {
    if base == 255 {
        return 255;
    }
    let sum = i32::from(base).saturating_add(weights);
    sum.clamp(1, 254) as u8
}

// ===== impl Instance =====

/// One virtual router's protocol state.
#[derive(Clone, Debug)]
pub struct Instance {
    params: InstanceParams,
    state: State,
    master_adver_interval: Duration,
    track_up: Vec<bool>,
    priority: u8,
    held_in_fault: bool,
    preempt_deadline: Option<Duration>,
    master_down_armed: bool,
    adver_armed: bool,
    /// The priority a takeover advertises instead of the computed one.
    takeover: Option<u8>,
}

impl Instance {
    /// A stopped instance (Initialize); tracked objects start up.
    pub fn new(params: InstanceParams) -> Result<Instance, ParamsError> {
        params.validate()?;
        let mut instance = Instance {
            state: State::Initialize,
            master_adver_interval: params.advert_interval,
            track_up: vec![true; params.tracks.len()],
            priority: params.base_priority,
            held_in_fault: false,
            preempt_deadline: None,
            master_down_armed: false,
            adver_armed: false,
            takeover: None,
            params,
        };
        instance.priority = instance.compute_priority();
        Ok(instance)
    }

    pub fn params(&self) -> &InstanceParams {
        &self.params
    }

    pub fn name(&self) -> &str {
        &self.params.name
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority sent in adverts and used for Skew_Time.
    pub fn effective_priority(&self) -> u8 {
        self.priority
    }

    /// The interval of the current master as this instance knows it.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    pub fn skew_time(&self) -> Duration {
        skew_time(
            self.params.version,
            self.priority,
            self.down_interval_base(),
        )
    }

    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.params.version,
            self.priority,
            self.down_interval_base(),
        )
    }

    /// A weight-0 tracked object of this instance is down.
    pub fn own_fault(&self) -> bool {
        self.params
            .tracks
            .iter()
            .zip(&self.track_up)
            .any(|(t, up)| t.weight == 0 && !up)
    }

    /// Feeds one input at virtual time `now` and returns what to do.
    pub fn handle(&mut self, now: Duration, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Startup => {
                if self.state == State::Initialize {
                    self.start(now, Reason::Startup, &mut out);
                }
            }
            Event::Shutdown => self.shutdown(&mut out),
            Event::TimerFired(timer) => self.timer_fired(timer, &mut out),
            Event::AdvertReceived(advert) => self.advert_received(now, &advert, &mut out),
            Event::TrackChanged { name, up } => self.track_changed(now, &name, up, &mut out),
            Event::Takeover { priority } => self.takeover(priority, &mut out),
            Event::Release => self.release(&mut out),
        }
        out
    }

    /// The sync group holds this instance in Fault (or releases it).
    pub(crate) fn set_group_fault(
        &mut self,
        now: Duration,
        held: bool,
        reason: Reason,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.held_in_fault = held;
        match self.state {
            State::Initialize => {}
            State::Fault if !self.in_fault() => self.start(now, reason, &mut out),
            State::Backup | State::Master if held => self.enter_fault(reason, &mut out),
            _ => {}
        }
        out
    }

    /// The sync group moves this instance to Master or Backup with another member.
    pub(crate) fn follow(&mut self, to: State, reason: Reason) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, to) {
            (State::Backup, State::Master) => self.enter_master(reason, &mut out),
            (State::Master, State::Backup) => {
                self.master_adver_interval = self.params.advert_interval;
                self.enter_backup(reason, Duration::ZERO, &mut out);
            }
            _ => {}
        }
        out
    }

    fn down_interval_base(&self) -> Duration {
        match self.params.version {
            // RFC 3768 6.1: v2 uses the local Advertisement_Interval.
            Version::V2 => self.params.advert_interval,
            Version::V3 => self.master_adver_interval,
        }
    }

    fn in_fault(&self) -> bool {
        self.own_fault() || self.held_in_fault
    }

    fn compute_priority(&self) -> u8 {
        if let Some(priority) = self.takeover
            && self.params.base_priority != 255
        {
            return priority;
        }
        let weights = self
            .params
            .tracks
            .iter()
            .zip(&self.track_up)
            .map(|(t, &up)| match (t.weight, up) {
                (w, true) if w > 0 => w,
                (w, false) if w < 0 => w,
                _ => 0,
            })
            .sum();
        effective_priority(self.params.base_priority, weights)
    }

    /// Entry from Initialize or Fault.
    fn start(&mut self, now: Duration, reason: Reason, out: &mut Vec<Action>) {
        if self.in_fault() {
            let track = self
                .params
                .tracks
                .iter()
                .zip(&self.track_up)
                .find(|(t, up)| t.weight == 0 && !**up)
                .map(|(t, _)| t.name.clone());
            let reason = match track {
                Some(track) => Reason::TrackDown { track },
                None => reason,
            };
            if self.state != State::Fault {
                self.enter_fault(reason, out);
            }
            return;
        }
        // RFC 5798 6.4.1: the owner goes straight to Master; keepalived only
        // does so when its `state` is MASTER.
        if self.params.is_owner() && self.params.initial_state == InitialState::Master {
            self.enter_master(reason, out);
            return;
        }
        // RFC 5798 6.4.1: Master_Adver_Interval = Advertisement_Interval,
        // Master_Down_Timer = Master_Down_Interval. keepalived adds
        // preempt_delay to this first wait.
        self.master_adver_interval = self.params.advert_interval;
        let extra = if self.params.preempt && !self.params.preempt_delay.is_zero() {
            self.preempt_deadline = Some(now + self.params.preempt_delay);
            self.params.preempt_delay
        } else {
            Duration::ZERO
        };
        self.enter_backup(reason, extra, out);
    }

    fn transition(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        out.push(Action::Transition {
            from: self.state,
            to,
            reason,
        });
        self.state = to;
        self.stop_timers(out);
    }

    fn stop_timers(&mut self, out: &mut Vec<Action>) {
        if std::mem::take(&mut self.master_down_armed) {
            out.push(Action::StopTimer(Timer::MasterDown));
        }
        if std::mem::take(&mut self.adver_armed) {
            out.push(Action::StopTimer(Timer::Adver));
        }
    }

    fn arm(&mut self, timer: Timer, after: Duration, out: &mut Vec<Action>) {
        match timer {
            Timer::MasterDown => self.master_down_armed = true,
            Timer::Adver => self.adver_armed = true,
        }
        out.push(Action::ArmTimer { timer, after });
    }

    fn send_advert(&mut self, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        self.arm(Timer::Adver, self.params.advert_interval, out);
    }

    fn enter_master(&mut self, reason: Reason, out: &mut Vec<Action>) {
        let was_master = self.state == State::Master;
        self.transition(State::Master, reason, out);
        if was_master {
            return;
        }
        // RFC 5798 6.4.1 / 6.4.2: send an ADVERTISEMENT, broadcast gratuitous
        // ARP (v4) / unsolicited NA (v6), set Adver_Timer.
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        out.push(Action::AddVips);
        out.push(Action::SendGratuitous);
        self.arm(Timer::Adver, self.params.advert_interval, out);
        out.push(Action::Notify(State::Master));
    }

    /// Backup with Master_Down_Timer = Master_Down_Interval + `extra`.
    fn enter_backup(&mut self, reason: Reason, extra: Duration, out: &mut Vec<Action>) {
        let from = self.state;
        self.transition(State::Backup, reason, out);
        if from == State::Master {
            out.push(Action::RemoveVips);
        }
        self.arm(Timer::MasterDown, self.master_down_interval() + extra, out);
        out.push(Action::Notify(State::Backup));
    }

    fn enter_fault(&mut self, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.transition(State::Fault, reason, out);
        self.preempt_deadline = None;
        if from == State::Master {
            // Like a shutdown (RFC 5798 6.4.3): priority 0 lets the backup
            // take over after Skew_Time.
            out.push(Action::SendAdvert { priority: 0 });
            out.push(Action::RemoveVips);
        }
        out.push(Action::Notify(State::Fault));
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        let from = self.state;
        if from == State::Initialize {
            return;
        }
        // RFC 5798 6.4.2: Backup cancels Master_Down_Timer.
        // RFC 5798 6.4.3: Master cancels Adver_Timer, sends priority 0.
        self.transition(State::Initialize, Reason::Shutdown, out);
        self.preempt_deadline = None;
        if from == State::Master {
            out.push(Action::SendAdvert { priority: 0 });
            out.push(Action::RemoveVips);
        }
        out.push(Action::Notify(State::Initialize));
    }

    fn timer_fired(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match (timer, self.state) {
            // RFC 5798 6.4.2: Master_Down_Timer fires -> Master.
            (Timer::MasterDown, State::Backup) if self.master_down_armed => {
                self.master_down_armed = false;
                self.enter_master(Reason::MasterDownTimer, out);
            }
            // RFC 5798 6.4.3: Adver_Timer fires -> send an ADVERTISEMENT,
            // reset Adver_Timer.
            (Timer::Adver, State::Master) if self.adver_armed => self.send_advert(out),
            // A late expiry of a timer we already stopped.
            _ => {}
        }
    }

    fn advert_received(&mut self, now: Duration, advert: &Advert, out: &mut Vec<Action>) {
        if !matches!(self.state, State::Backup | State::Master) {
            out.push(Action::Discard(DiscardReason::NotListening));
            return;
        }
        // Our own advert looped back by multicast: answering it as a Master
        // would start an advert storm with ourselves.
        if advert.source == self.params.primary_address {
            out.push(Action::Discard(DiscardReason::OwnAdvert));
            return;
        }
        // RFC 3768 7.1: the Adver Interval must match the local one; if not,
        // discard (and log, which the caller does from this action).
        if self.params.version == Version::V2
            && advert.max_advert_interval != self.params.advert_interval
        {
            out.push(Action::Discard(DiscardReason::IntervalMismatch {
                received: advert.max_advert_interval,
            }));
            return;
        }
        match self.state {
            State::Backup => self.backup_advert(now, advert, out),
            State::Master => self.master_advert(advert, out),
            State::Initialize | State::Fault => {}
        }
    }

    fn backup_advert(&mut self, now: Duration, advert: &Advert, out: &mut Vec<Action>) {
        // RFC 5798 6.4.2: priority 0 -> Master_Down_Timer = Skew_Time.
        if advert.priority == 0 {
            self.arm(Timer::MasterDown, self.skew_time(), out);
            return;
        }
        let lower = advert.priority < self.priority;
        if lower && self.params.preempt {
            // keepalived preempt_delay: keep accepting a lower master until
            // the delay has run since startup or since it was first seen.
            let delay = self.params.preempt_delay;
            let deadline = *self.preempt_deadline.get_or_insert(now + delay);
            if delay.is_zero() || now >= deadline {
                // RFC 5798 6.4.2: preempt and lower priority -> discard, so
                // Master_Down_Timer runs out.
                out.push(Action::Discard(DiscardReason::LowerPriority));
                return;
            }
        } else if !lower {
            self.preempt_deadline = None;
        }
        // RFC 5798 6.4.2: Preempt_Mode false or priority >= local: learn
        // Master_Adver_Interval (v3 only; RFC 3768 has no such variable),
        // reset Master_Down_Timer to Master_Down_Interval.
        self.learn_interval(advert);
        self.arm(Timer::MasterDown, self.master_down_interval(), out);
    }

    /// RFC 5798 6.4.2/6.4.3: Master_Adver_Interval comes from the advert
    /// (v3 only). A zero interval would make Master_Down_Interval zero and the
    /// backup flap, so the floor is the smallest encodable one, 1 cs.
    fn learn_interval(&mut self, advert: &Advert) {
        if self.params.version == Version::V3 {
            self.master_adver_interval = advert.max_advert_interval.max(Duration::from_millis(10));
        }
    }

    fn master_advert(&mut self, advert: &Advert, out: &mut Vec<Action>) {
        // RFC 5798 6.4.3: priority 0 -> send an ADVERTISEMENT at once, reset
        // Adver_Timer.
        if advert.priority == 0 {
            self.send_advert(out);
            return;
        }
        // RFC 5798 6.4.3: a higher priority, or an equal one from a higher
        // primary address, wins: cancel Adver_Timer, learn
        // Master_Adver_Interval, Master_Down_Timer = Master_Down_Interval,
        // go to Backup.
        let higher = advert.priority > self.priority
            || (advert.priority == self.priority && advert.source > self.params.primary_address);
        if higher {
            self.learn_interval(advert);
            let reason = Reason::HigherPriority {
                source: advert.source,
                priority: advert.priority,
            };
            self.enter_backup(reason, Duration::ZERO, out);
            return;
        }
        // RFC 5798 6.4.3: otherwise discard. keepalived answers so the other
        // router hears that a master exists (see the module doc).
        out.push(Action::Discard(DiscardReason::LowerPriority));
        if self.params.answer_lower_priority {
            self.send_advert(out);
            out.push(Action::SendGratuitous);
        }
    }

    /// A planned switchover: this node advertises `priority` (clamped to
    /// 1..=254) and becomes master at once. RFC-compatible: the old master
    /// hears a higher priority and goes to Backup (RFC 5798 6.4.3). Fault
    /// and Initialize keep the override for when they start.
    fn takeover(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.takeover = Some(priority.clamp(1, 254));
        self.update_priority(out);
        match self.state {
            State::Backup => {
                // Make before break: the VIPs and their gratuitous ARPs
                // first, then the advert that makes the old master let go,
                // so neighbours never point at a host without the VIP.
                self.transition(State::Master, Reason::Takeover, out);
                out.push(Action::AddVips);
                out.push(Action::SendGratuitous);
                self.send_advert(out);
                out.push(Action::Notify(State::Master));
            }
            State::Master => self.send_advert(out),
            State::Initialize | State::Fault => {}
        }
    }

    /// Ends a takeover: the configured priority again. A master keeps the
    /// role and advertises the lower priority at once (make before break):
    /// a preempting peer of higher priority discards it and takes over
    /// after its Master_Down_Interval (RFC 5798 6.4.2), so no moment goes
    /// without a master; a non-preempting peer leaves the VIP here.
    fn release(&mut self, out: &mut Vec<Action>) {
        if self.takeover.take().is_none() {
            return;
        }
        self.update_priority(out);
        if self.state == State::Master {
            self.send_advert(out);
        }
    }

    fn update_priority(&mut self, out: &mut Vec<Action>) {
        let old = self.priority;
        self.priority = self.compute_priority();
        if old != self.priority {
            out.push(Action::PriorityChanged {
                from: old,
                to: self.priority,
            });
        }
    }

    fn track_changed(&mut self, now: Duration, name: &str, up: bool, out: &mut Vec<Action>) {
        // Names come from the same configuration as the instance; an unknown
        // one belongs to another instance and changes nothing here.
        let Some(index) = self.params.tracks.iter().position(|t| t.name == name) else {
            return;
        };
        let was_fault = self.own_fault();
        self.track_up[index] = up;
        let old = self.priority;
        self.priority = self.compute_priority();
        if old != self.priority {
            out.push(Action::PriorityChanged {
                from: old,
                to: self.priority,
            });
        }
        let fault = self.own_fault();
        match self.state {
            State::Initialize => {}
            State::Backup | State::Master if fault && !was_fault => {
                let reason = Reason::TrackDown {
                    track: name.to_owned(),
                };
                self.enter_fault(reason, out);
            }
            State::Fault if !self.in_fault() => self.start(now, Reason::FaultCleared, out),
            // A priority change while Master is advertised at once (keepalived).
            State::Master if old != self.priority => self.send_advert(out),
            _ => {}
        }
    }
}
