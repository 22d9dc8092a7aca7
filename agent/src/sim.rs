//! A virtual clock and a virtual L2 segment for driving [`Router`]s in tests.
//!
//! The simulator owns every timer the state machines arm and every advert they
//! send. It delivers timer expiries and adverts strictly in time order (ties in
//! the order they were scheduled), so a run is deterministic and takes no real
//! time. Adverts go to every instance with the same VRID, version and address
//! family on the other hosts, after a fixed link delay, unless the link between
//! the two hosts is cut or the receiver crashed.
//!
//! ```text
//!   inject(host, instance, event) ──> Router::handle ──> actions ──┐
//!        ^                                                        │
//!        │   ArmTimer/StopTimer ──> timers ──(expiry)──> TimerFired│
//!        └── SendAdvert ──> in flight ──(link delay)──> AdvertReceived
//! ```
//!
//! Every input and action is recorded with its virtual time; [`Sim::transcript`]
//! renders the record for golden files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use crate::instance::{Action, Advert, DisplayMs, Event, State, Timer};
use crate::router::{InstanceId, Router};

/// Index of a host in the simulation, in the order they were added.
pub type HostId = usize;

/// One line of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Input(Event),
    Output(Action),
    /// Something the test did to the world (crash, link cut).
    Note(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub at: Duration,
    pub host: HostId,
    /// `None` for notes about the whole host.
    pub instance: Option<InstanceId>,
    pub entry: Entry,
}

#[derive(Clone, Debug)]
struct Host {
    name: String,
    router: Router,
    crashed: bool,
}

type TimerKey = (HostId, InstanceId, Timer);

#[derive(Clone, Debug)]
enum Due {
    Timer(TimerKey),
    Advert {
        host: HostId,
        instance: InstanceId,
        advert: Advert,
    },
}

/// The simulated segment and clock.
#[derive(Clone, Debug)]
pub struct Sim {
    now: Duration,
    seq: u64,
    link_delay: Duration,
    hosts: Vec<Host>,
    queue: BTreeMap<(Duration, u64), Due>,
    armed: HashMap<TimerKey, (Duration, u64)>,
    cut: BTreeSet<(HostId, HostId)>,
    log: Vec<Record>,
}

impl Sim {
    /// An empty segment at time zero; adverts take `link_delay` to arrive.
    pub fn new(link_delay: Duration) -> Sim {
        Sim {
            now: Duration::ZERO,
            seq: 0,
            link_delay,
            hosts: Vec::new(),
            queue: BTreeMap::new(),
            armed: HashMap::new(),
            cut: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    pub fn add_host(&mut self, name: &str, router: Router) -> HostId {
        self.hosts.push(Host {
            name: name.to_owned(),
            router,
            crashed: false,
        });
        self.hosts.len() - 1
    }

    pub fn now(&self) -> Duration {
        self.now
    }

    pub fn router(&self, host: HostId) -> &Router {
        &self.hosts[host].router
    }

    pub fn records(&self) -> &[Record] {
        &self.log
    }

    /// Instances in Master for `vrid` on hosts that have not crashed.
    pub fn masters(&self, vrid: u8) -> Vec<(HostId, InstanceId)> {
        let mut out = Vec::new();
        for (h, host) in self.hosts.iter().enumerate().filter(|(_, h)| !h.crashed) {
            for (i, instance) in host.router.instances().iter().enumerate() {
                if instance.params().vrid == vrid && instance.state() == State::Master {
                    out.push((h, i));
                }
            }
        }
        out
    }

    /// Feeds `event` to one instance now.
    pub fn inject(&mut self, host: HostId, instance: InstanceId, event: Event) {
        if self.hosts[host].crashed {
            return;
        }
        self.record(host, Some(instance), Entry::Input(event.clone()));
        let now = self.now;
        let actions = self.hosts[host].router.handle(instance, now, event);
        for routed in actions {
            self.record(
                host,
                Some(routed.instance),
                Entry::Output(routed.action.clone()),
            );
            self.carry_out(host, routed.instance, routed.action);
        }
    }

    /// Feeds `event` to every instance of `host`, in configuration order.
    pub fn inject_all(&mut self, host: HostId, event: &Event) {
        for instance in 0..self.hosts[host].router.instances().len() {
            self.inject(host, instance, event.clone());
        }
    }

    /// Delivers everything due up to and including `until`, then sets the clock there.
    pub fn run_until(&mut self, until: Duration) {
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at > until {
                break;
            }
            let Some(due) = self.queue.remove(&(at, seq)) else {
                break;
            };
            self.now = at;
            match due {
                Due::Timer(key) => {
                    self.armed.remove(&key);
                    let (host, instance, timer) = key;
                    self.inject(host, instance, Event::TimerFired(timer));
                }
                Due::Advert {
                    host,
                    instance,
                    advert,
                } => self.inject(host, instance, Event::AdvertReceived(advert)),
            }
        }
        self.now = self.now.max(until);
    }

    pub fn advance(&mut self, by: Duration) {
        self.run_until(self.now + by);
    }

    /// The host stops dead: no shutdown adverts, its timers and inbound adverts vanish.
    pub fn crash(&mut self, host: HostId) {
        self.record(host, None, Entry::Note("crash".to_owned()));
        self.hosts[host].crashed = true;
        self.armed.retain(|key, _| key.0 != host);
        self.queue.retain(|_, due| match due {
            Due::Timer(key) => key.0 != host,
            Due::Advert { host: to, .. } => *to != host,
        });
    }

    /// Adverts between `a` and `b` are lost (both directions) until healed.
    pub fn cut_link(&mut self, a: HostId, b: HostId) {
        self.record(
            a,
            None,
            Entry::Note(format!("link to {} cut", self.hosts[b].name)),
        );
        self.cut.insert((a.min(b), a.max(b)));
    }

    pub fn heal_link(&mut self, a: HostId, b: HostId) {
        self.record(
            a,
            None,
            Entry::Note(format!("link to {} healed", self.hosts[b].name)),
        );
        self.cut.remove(&(a.min(b), a.max(b)));
    }

    /// One line per record: time, `host/instance` (only the instance when
    /// there is a single host), `<` for inputs, `>` for actions, `#` for notes.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        for record in &self.log {
            let host = &self.hosts[record.host];
            let who = match record.instance {
                Some(i) => {
                    let name = host.router.instances()[i].name();
                    if self.hosts.len() == 1 {
                        name.to_owned()
                    } else {
                        format!("{}/{name}", host.name)
                    }
                }
                None => host.name.clone(),
            };
            let (mark, text) = match &record.entry {
                Entry::Input(event) => ('<', event.to_string()),
                Entry::Output(action) => ('>', action.to_string()),
                Entry::Note(note) => ('#', note.clone()),
            };
            let at = DisplayMs(record.at).to_string();
            let _ = writeln!(out, "{at:>12} {who} {mark} {text}");
        }
        out
    }

    fn record(&mut self, host: HostId, instance: Option<InstanceId>, entry: Entry) {
        self.log.push(Record {
            at: self.now,
            host,
            instance,
            entry,
        });
    }

    fn schedule(&mut self, at: Duration, due: Due) -> (Duration, u64) {
        self.seq += 1;
        let key = (at, self.seq);
        self.queue.insert(key, due);
        key
    }

    fn carry_out(&mut self, host: HostId, instance: InstanceId, action: Action) {
        match action {
            Action::ArmTimer { timer, after } => {
                let key = (host, instance, timer);
                if let Some(old) = self.armed.remove(&key) {
                    self.queue.remove(&old);
                }
                let slot = self.schedule(self.now + after, Due::Timer(key));
                self.armed.insert(key, slot);
            }
            Action::StopTimer(timer) => {
                if let Some(old) = self.armed.remove(&(host, instance, timer)) {
                    self.queue.remove(&old);
                }
            }
            Action::SendAdvert { priority } => self.send(host, instance, priority),
            _ => {}
        }
    }

    fn send(&mut self, from: HostId, instance: InstanceId, priority: u8) {
        let sender = self.hosts[from].router.instances()[instance]
            .params()
            .clone();
        let advert = Advert {
            source: sender.primary_address,
            priority,
            max_advert_interval: sender.advert_interval,
        };
        let at = self.now + self.link_delay;
        let mut targets = Vec::new();
        for (h, host) in self.hosts.iter().enumerate() {
            if h == from || host.crashed || self.cut.contains(&(from.min(h), from.max(h))) {
                continue;
            }
            for (i, peer) in host.router.instances().iter().enumerate() {
                let p = peer.params();
                if p.vrid == sender.vrid
                    && p.version == sender.version
                    && p.primary_address.is_ipv4() == sender.primary_address.is_ipv4()
                {
                    targets.push((h, i));
                }
            }
        }
        for (host, instance) in targets {
            let advert = advert.clone();
            self.schedule(
                at,
                Due::Advert {
                    host,
                    instance,
                    advert,
                },
            );
        }
    }
}
