//! One virtual server's pool: which real servers are alive, with which
//! weight, whether the pool has quorum, and so which destinations belong
//! in the kernel's table now.
//!
//! keepalived's semantics (keepalived.conf(5), the keepalived LVS docs):
//! - a real server is alive while every one of its checkers is up; one
//!   without checkers is always alive; with `alpha` checkers start down;
//! - a dead server leaves the table, or stays with weight 0 when
//!   `inhibit_on_failure` is set;
//! - `quorum` is the least total weight of the live servers: it is lost
//!   below `quorum - hysteresis` and regained at `quorum + hysteresis`
//!   (`quorum_down` / `quorum_up` run then). Without quorum the sorry
//!   server, if any, takes the traffic: it is added and the live servers
//!   are taken out (weight 0 if inhibited); with quorum back it goes away
//!   (or stays at weight 0 with `sorry_server_inhibit`);
//! - MISC_CHECK with `misc_dynamic`: exit 0 passes with the weight
//!   unchanged, 1 fails, 2..255 pass with weight = code - 2.
//!
//! Pure: checker verdicts go in, events (for the log, scripts and the
//! status) and the wanted destinations come out.

use super::checker::{Outcome, Verdict};
use super::plan::{RsPlan, VsPlan};
use crate::ipvs::Destination;

/// What happened to the pool, one log line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEvent {
    Server { rs: usize, up: bool, reason: String },
    Weight { rs: usize, from: u32, to: u32 },
    Quorum { up: bool, alive_weight: u64 },
}

/// The last check of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    pub checker: &'static str,
    /// `ok` or why it failed.
    pub result: String,
    /// RFC 3339.
    pub time: String,
}

/// What the pool knows of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub checkers_up: Vec<bool>,
    /// The weight it has when alive (configured, or set by misc_dynamic).
    pub weight: u32,
    pub last: Option<LastCheck>,
    pub transitions: u64,
}

impl ServerState {
    pub fn alive(&self) -> bool {
        self.checkers_up.iter().all(|&u| u)
    }
}

#[derive(Debug, Clone)]
pub struct Pool {
    plan: VsPlan,
    servers: Vec<ServerState>,
    quorum_up: bool,
}

impl Pool {
    /// A pool starting now: checkers up unless `alpha`, or as `carried`
    /// (a reload keeps the state of a real server whose settings did not
    /// change).
    pub fn new(plan: VsPlan, carried: &dyn Fn(&RsPlan) -> Option<ServerState>) -> Pool {
        let servers: Vec<ServerState> = plan
            .real_servers
            .iter()
            .map(|rs| {
                carried(rs).unwrap_or_else(|| ServerState {
                    checkers_up: vec![!plan.alpha; rs.checkers.len()],
                    weight: rs.destination.weight,
                    last: None,
                    transitions: 0,
                })
            })
            .collect();
        let mut pool = Pool {
            plan,
            servers,
            quorum_up: true,
        };
        pool.quorum_up = pool.alive_weight() >= u64::from(pool.plan.quorum);
        pool
    }

    pub fn plan(&self) -> &VsPlan {
        &self.plan
    }

    pub fn servers(&self) -> &[ServerState] {
        &self.servers
    }

    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Total weight of the live servers.
    pub fn alive_weight(&self) -> u64 {
        self.servers
            .iter()
            .filter(|s| s.alive())
            .map(|s| u64::from(s.weight))
            .sum()
    }

    /// Whether the sorry server takes the traffic now.
    pub fn sorry_active(&self) -> bool {
        !self.quorum_up && self.plan.sorry.is_some()
    }

    /// Checker `checker` of real server `rs` found `outcome`, which made
    /// `verdict` (if its verdict changed); `time` is now in RFC 3339.
    pub fn report(
        &mut self,
        rs: usize,
        checker: usize,
        outcome: &Outcome,
        verdict: Option<Verdict>,
        time: String,
    ) -> Vec<PoolEvent> {
        let mut events = Vec::new();
        let Some(server) = self.servers.get_mut(rs) else {
            return events;
        };
        let kind = self.plan.real_servers[rs]
            .checkers
            .get(checker)
            .map_or("", |c| c.probe.kind());
        server.last = Some(LastCheck {
            checker: kind,
            result: match outcome {
                Outcome::Fail(why) => why.clone(),
                _ => "ok".to_owned(),
            },
            time,
        });
        let was_alive = server.alive();
        if let Outcome::PassWeight(w) = outcome
            && *w != server.weight
        {
            events.push(PoolEvent::Weight {
                rs,
                from: server.weight,
                to: *w,
            });
            server.weight = *w;
        }
        if let Some(v) = verdict
            && let Some(slot) = server.checkers_up.get_mut(checker)
        {
            *slot = v == Verdict::Up;
        }
        let alive = server.alive();
        if alive != was_alive {
            server.transitions += 1;
            let reason = match outcome {
                Outcome::Fail(why) => format!("{kind} failed: {why}"),
                _ => format!("{kind} passed"),
            };
            events.push(PoolEvent::Server {
                rs,
                up: alive,
                reason,
            });
        }
        if !events.is_empty() {
            self.update_quorum(&mut events);
        }
        events
    }

    fn update_quorum(&mut self, events: &mut Vec<PoolEvent>) {
        let alive_weight = self.alive_weight();
        let quorum = u64::from(self.plan.quorum);
        let hysteresis = u64::from(self.plan.hysteresis);
        let changed = if self.quorum_up {
            alive_weight < quorum.saturating_sub(hysteresis)
        } else {
            alive_weight >= quorum + hysteresis
        };
        if changed {
            self.quorum_up = !self.quorum_up;
            events.push(PoolEvent::Quorum {
                up: self.quorum_up,
                alive_weight,
            });
        }
    }

    /// The weight real server `rs` has in the table now, `None` when it is
    /// not in the table.
    pub fn table_weight(&self, rs: usize) -> Option<u32> {
        let server = self.servers.get(rs)?;
        let plan = &self.plan.real_servers[rs];
        if server.alive() && !self.sorry_active() {
            Some(server.weight)
        } else if plan.inhibit_on_failure {
            Some(0)
        } else {
            None
        }
    }

    /// The destinations every service of this virtual server has now.
    pub fn wanted(&self) -> Vec<Destination> {
        let mut wanted: Vec<Destination> = (0..self.servers.len())
            .filter_map(|rs| {
                let weight = self.table_weight(rs)?;
                let mut d = self.plan.real_servers[rs].destination.clone();
                d.weight = weight;
                Some(d)
            })
            .collect();
        if let Some(sorry) = &self.plan.sorry {
            let weight = if self.sorry_active() {
                Some(sorry.weight)
            } else if self.plan.sorry_inhibit {
                Some(0)
            } else {
                None
            };
            // A sorry server that is also a real server is that one.
            if let Some(w) = weight
                && !wanted.iter().any(|d| d.endpoint() == sorry.endpoint())
            {
                let mut d = sorry.clone();
                d.weight = w;
                wanted.push(d);
            }
        }
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::lvs::plan::plan;
    use std::path::Path;

    fn pool(body: &str) -> Pool {
        let text = format!(
            "virtual_server 10.0.0.50 80 {{\n lb_algo rr\n lb_kind NAT\n protocol TCP\n{body}\n}}\n"
        );
        let config = parse_str(&text, Path::new("/t/k.conf"))
            .expect("valid")
            .config;
        Pool::new(plan(&config).remove(0), &|_| None)
    }

    fn fail() -> Outcome {
        Outcome::Fail("connection refused".to_owned())
    }

    fn weights(p: &Pool) -> Vec<(String, u32)> {
        p.wanted()
            .iter()
            .map(|d| (d.address.to_string(), d.weight))
            .collect()
    }

    const TWO: &str = " real_server 10.0.1.1 80 {\n weight 2\n TCP_CHECK {\n }\n }\n\
                       real_server 10.0.1.2 80 {\n weight 3\n inhibit_on_failure\n TCP_CHECK {\n }\n }\n";

    #[test]
    fn a_dead_server_leaves_or_is_inhibited() {
        let mut p = pool(TWO);
        assert_eq!(
            weights(&p),
            [("10.0.1.1".into(), 2), ("10.0.1.2".into(), 3)]
        );
        let events = p.report(0, 0, &fail(), Some(Verdict::Down), String::new());
        assert_eq!(
            events,
            [PoolEvent::Server {
                rs: 0,
                up: false,
                reason: "TCP_CHECK failed: connection refused".into()
            }]
        );
        p.report(1, 0, &fail(), Some(Verdict::Down), String::new());
        assert_eq!(weights(&p), [("10.0.1.2".into(), 0)]);
        p.report(0, 0, &Outcome::Pass, Some(Verdict::Up), String::new());
        assert_eq!(
            weights(&p),
            [("10.0.1.1".into(), 2), ("10.0.1.2".into(), 0)]
        );
        assert_eq!(p.servers()[0].transitions, 2);
    }

    #[test]
    fn the_sorry_server_takes_over_when_quorum_is_lost() {
        let mut p = pool(&format!(" sorry_server 10.0.1.9 80\n quorum 2\n{TWO}"));
        assert!(p.quorum_up());
        p.report(1, 0, &fail(), Some(Verdict::Down), String::new());
        // 2 alive >= quorum 2: still serving.
        assert!(p.quorum_up());
        let events = p.report(0, 0, &fail(), Some(Verdict::Down), String::new());
        assert_eq!(
            events.last(),
            Some(&PoolEvent::Quorum {
                up: false,
                alive_weight: 0
            })
        );
        assert_eq!(
            weights(&p),
            [("10.0.1.2".into(), 0), ("10.0.1.9".into(), 1)]
        );
        p.report(1, 0, &Outcome::Pass, Some(Verdict::Up), String::new());
        assert!(p.quorum_up(), "3 >= 2");
        assert_eq!(weights(&p), [("10.0.1.2".into(), 3)]);
    }

    #[test]
    fn hysteresis_widens_the_band() {
        let mut p = pool(&format!(" quorum 4\n hysteresis 1\n{TWO}"));
        assert!(p.quorum_up(), "5 >= 4");
        // 3 alive: not below 4 - 1.
        p.report(0, 0, &fail(), Some(Verdict::Down), String::new());
        assert!(p.quorum_up());
        // 0 alive: lost.
        p.report(1, 0, &fail(), Some(Verdict::Down), String::new());
        assert!(!p.quorum_up());
        // 3 alive: not yet 4 + 1.
        p.report(1, 0, &Outcome::Pass, Some(Verdict::Up), String::new());
        assert!(!p.quorum_up());
        p.report(0, 0, &Outcome::Pass, Some(Verdict::Up), String::new());
        assert!(p.quorum_up(), "5 >= 5");
    }

    #[test]
    fn alpha_starts_down_with_the_sorry_server() {
        let p = pool(&format!(" alpha\n sorry_server 10.0.1.9 80\n{TWO}"));
        assert!(!p.quorum_up());
        assert_eq!(
            weights(&p),
            [("10.0.1.2".into(), 0), ("10.0.1.9".into(), 1)]
        );
    }

    #[test]
    fn misc_dynamic_sets_the_weight() {
        let mut p = pool(
            " real_server 10.0.1.1 80 {\n weight 5\n MISC_CHECK {\n misc_path /bin/true\n misc_dynamic\n }\n }\n",
        );
        let events = p.report(0, 0, &Outcome::PassWeight(8), None, String::new());
        assert_eq!(
            events,
            [PoolEvent::Weight {
                rs: 0,
                from: 5,
                to: 8
            }]
        );
        assert_eq!(weights(&p), [("10.0.1.1".into(), 8)]);
        // Exit 0: the weight stays what it is.
        assert!(
            p.report(0, 0, &Outcome::Pass, None, String::new())
                .is_empty()
        );
        assert_eq!(weights(&p), [("10.0.1.1".into(), 8)]);
    }

    #[test]
    fn a_server_is_alive_while_all_its_checkers_are_up() {
        let mut p = pool(
            " real_server 10.0.1.1 80 {\n TCP_CHECK {\n }\n MISC_CHECK {\n misc_path /bin/true\n }\n }\n",
        );
        p.report(0, 1, &fail(), Some(Verdict::Down), String::new());
        assert!(p.wanted().is_empty());
        p.report(0, 0, &Outcome::Pass, None, String::new());
        assert!(p.wanted().is_empty(), "the other checker is still down");
        p.report(0, 1, &Outcome::Pass, Some(Verdict::Up), String::new());
        assert_eq!(p.wanted().len(), 1);
    }
}
