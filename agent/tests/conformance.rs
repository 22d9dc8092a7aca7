//! Protocol conformance of the VRRP state machine, with no sockets and no
//! real clock.
//!
//! `tests/conformance/*.script` each exercise one rule of RFC 5798 / RFC 3768
//! (or a documented keepalived behaviour) on one simulated host; the script's
//! header names the section. The simulator's transcript must equal the
//! `.golden` beside it; `HACTL_UPDATE_GOLDEN=1` rewrites the goldens, which are
//! then reviewed by reading them against the RFC. Script grammar, one command
//! a line, `#` starts a comment, times and intervals in milliseconds:
//!
//! ```text
//! instance NAME [vrid N] [v2|v3] [prio P] [int MS] [addr IP] [state master|backup]
//!               [nopreempt] [preempt_delay MS] [no_lower_answer] [track NAME WEIGHT]...
//! group NAME MEMBER...
//! at MS startup|shutdown [INSTANCE]           (no instance: all, in order)
//! at MS advert [INSTANCE] from IP prio P int MS
//! at MS track [INSTANCE] NAME up|down
//! advance MS
//! ```
//!
//! The instance may be left out when the script defines only one. Timers due
//! at or before an `at` time fire before that command's input.
//!
//! The second half holds multi-host scenarios (adverts exchanged through the
//! simulator) and unit tests of the timing arithmetic.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hactl_agent::instance::{
    self, Action, Advert, Event, InitialState, Instance, InstanceParams, ParamsError, Reason,
    State, Timer, Track, Version,
};
use hactl_agent::router::{Router, RouterError, SyncGroup};
use hactl_agent::sim::Sim;

// ===== script runner =====

fn ms(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))?;
    if value.is_nan() || value < 0.0 {
        return Err(format!("{text:?} is negative"));
    }
    Ok(Duration::from_nanos((value * 1_000_000.0).round() as u64))
}

fn num<T: std::str::FromStr>(text: Option<&str>, what: &str) -> Result<T, String> {
    let text = text.ok_or_else(|| format!("missing {what}"))?;
    text.parse()
        .map_err(|_| format!("{text:?} is not a valid {what}"))
}

fn default_params(name: &str) -> InstanceParams {
    InstanceParams {
        name: name.to_owned(),
        vrid: 1,
        version: Version::V3,
        base_priority: 100,
        advert_interval: Duration::from_secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary_address: "10.0.0.1".parse().expect("literal address"),
        initial_state: InitialState::Backup,
        tracks: Vec::new(),
        answer_lower_priority: true,
    }
}

fn parse_instance(words: &[&str]) -> Result<InstanceParams, String> {
    let name = words.first().ok_or("instance needs a name")?;
    let mut params = default_params(name);
    let mut it = words[1..].iter().copied();
    while let Some(word) = it.next() {
        match word {
            "vrid" => params.vrid = num(it.next(), "vrid")?,
            "v2" => params.version = Version::V2,
            "v3" => params.version = Version::V3,
            "prio" => params.base_priority = num(it.next(), "priority")?,
            "int" => params.advert_interval = ms(it.next().ok_or("missing interval")?)?,
            "addr" => params.primary_address = num(it.next(), "address")?,
            "state" => {
                params.initial_state = match it.next() {
                    Some("master") => InitialState::Master,
                    Some("backup") => InitialState::Backup,
                    other => return Err(format!("bad state {other:?}")),
                }
            }
            "nopreempt" => params.preempt = false,
            "preempt_delay" => params.preempt_delay = ms(it.next().ok_or("missing delay")?)?,
            "no_lower_answer" => params.answer_lower_priority = false,
            "track" => {
                let name = it.next().ok_or("track needs a name")?.to_owned();
                let weight = num(it.next(), "weight")?;
                params.tracks.push(Track { name, weight });
            }
            other => return Err(format!("unknown instance option {other:?}")),
        }
    }
    Ok(params)
}

struct Script {
    params: Vec<InstanceParams>,
    groups: Vec<SyncGroup>,
    sim: Option<Sim>,
}

impl Script {
    fn sim(&mut self) -> Result<&mut Sim, String> {
        if self.sim.is_none() {
            let instances = self
                .params
                .iter()
                .map(|p| Instance::new(p.clone()).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let router = Router::new(instances, self.groups.clone()).map_err(|e| e.to_string())?;
            let mut sim = Sim::new(Duration::ZERO);
            sim.add_host("r1", router);
            self.sim = Some(sim);
        }
        self.sim.as_mut().ok_or_else(|| "no simulator".to_owned())
    }

    /// Picks the optional instance name at the front of `words`.
    fn target<'a>(&self, words: &'a [&'a str]) -> Result<(Option<usize>, &'a [&'a str]), String> {
        if let Some(i) = words
            .first()
            .and_then(|w| self.params.iter().position(|p| p.name == *w))
        {
            return Ok((Some(i), &words[1..]));
        }
        Ok((None, words))
    }

    fn one(&self, target: Option<usize>) -> Result<usize, String> {
        match (target, self.params.len()) {
            (Some(i), _) => Ok(i),
            (None, 1) => Ok(0),
            _ => Err("name the instance: the script has several".to_owned()),
        }
    }

    fn command(&mut self, words: &[&str]) -> Result<(), String> {
        match words {
            ["instance", rest @ ..] => {
                self.params.push(parse_instance(rest)?);
                Ok(())
            }
            ["group", name, members @ ..] => {
                self.groups.push(SyncGroup {
                    name: (*name).to_owned(),
                    members: members.iter().map(|m| (*m).to_owned()).collect(),
                });
                Ok(())
            }
            ["advance", by] => {
                let by = ms(by)?;
                self.sim()?.advance(by);
                Ok(())
            }
            ["at", at, verb, rest @ ..] => {
                let at = ms(at)?;
                let sim = self.sim()?;
                if at < sim.now() {
                    return Err("time goes backwards".to_owned());
                }
                sim.run_until(at);
                let (target, rest) = self.target(rest)?;
                let event = match (*verb, rest) {
                    ("startup", []) => Event::Startup,
                    ("shutdown", []) => Event::Shutdown,
                    ("advert", ["from", source, "prio", prio, "int", int]) => {
                        Event::AdvertReceived(Advert {
                            source: num(Some(source), "address")?,
                            priority: num(Some(prio), "priority")?,
                            max_advert_interval: ms(int)?,
                        })
                    }
                    ("track", [name, state @ ("up" | "down")]) => Event::TrackChanged {
                        name: (*name).to_owned(),
                        up: *state == "up",
                    },
                    _ => return Err(format!("cannot read {verb} {rest:?}")),
                };
                let all = matches!(event, Event::Startup | Event::Shutdown) && target.is_none();
                let one = if all { 0 } else { self.one(target)? };
                let sim = self.sim()?;
                if all {
                    sim.inject_all(0, &event);
                } else {
                    sim.inject(0, one, event);
                }
                Ok(())
            }
            _ => Err("unknown command".to_owned()),
        }
    }
}

fn run_script(path: &Path) -> Result<String, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut script = Script {
        params: Vec::new(),
        groups: Vec::new(),
        sim: None,
    };
    for (n, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("").trim();
        if code.is_empty() {
            continue;
        }
        let words: Vec<&str> = code.split_whitespace().collect();
        script
            .command(&words)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
    }
    let sim = script.sim()?;
    Ok(sim.transcript())
}

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "script"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn scripts_match_golden_transcripts() {
    let update = std::env::var_os("HACTL_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let paths = scripts();
    assert!(paths.len() >= 20, "conformance scripts went missing");
    let mut failures = Vec::new();
    for path in &paths {
        let first = fs::read_to_string(path).unwrap_or_default();
        assert!(
            first.starts_with("# RFC") || first.starts_with("# keepalived"),
            "{}: the first line must cite the RFC section or keepalived behaviour",
            path.display()
        );
        let got = match run_script(path) {
            Ok(got) => got,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let golden = path.with_extension("golden");
        if update {
            fs::write(&golden, &got).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
            continue;
        }
        let want = fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{} differs from {} (HACTL_UPDATE_GOLDEN=1 rewrites it)\n--- got\n{got}--- want\n{want}",
                path.display(),
                golden.display()
            ));
        }
    }
    for golden in fs::read_dir(paths[0].parent().expect("scripts live in a directory"))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "golden"))
    {
        if !golden.with_extension("script").exists() {
            failures.push(format!("{} has no script", golden.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ===== timing arithmetic =====

#[test]
fn v2_skew_and_master_down_interval() {
    let second = Duration::from_secs(1);
    // RFC 3768 6.1: Skew = (256 - 100) / 256 s = 0.609375 s.
    assert_eq!(
        instance::skew_time(Version::V2, 100, second),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        instance::master_down_interval(Version::V2, 100, second),
        Duration::from_micros(3_609_375)
    );
    // The owner: 1/256 s; priority 1: 255/256 s.
    assert_eq!(
        instance::skew_time(Version::V2, 255, second),
        Duration::from_nanos(3_906_250)
    );
    assert_eq!(
        instance::master_down_interval(Version::V2, 1, Duration::from_secs(3)),
        Duration::from_secs(9) + Duration::from_nanos(255 * 3_906_250)
    );
}

#[test]
fn v3_skew_and_master_down_interval_in_centiseconds() {
    let cs = |n: u64| Duration::from_millis(n * 10);
    // RFC 5798 6.1: Skew = 156 * 100 / 256 = 60 cs, MDI = 3 * 100 + 60 = 360 cs.
    assert_eq!(instance::skew_time(Version::V3, 100, cs(100)), cs(60));
    assert_eq!(
        instance::master_down_interval(Version::V3, 100, cs(100)),
        cs(360)
    );
    // 56 * 100 / 256 = 21.875 -> 21 cs.
    assert_eq!(
        instance::master_down_interval(Version::V3, 200, cs(100)),
        cs(321)
    );
    // Short intervals: 156 * 5 / 256 = 3.05 -> 3 cs; the owner's skew rounds to 0.
    assert_eq!(
        instance::master_down_interval(Version::V3, 100, cs(5)),
        cs(18)
    );
    assert_eq!(
        instance::skew_time(Version::V3, 255, cs(100)),
        Duration::ZERO
    );
    // 40.95 s, the largest v3 interval: 156 * 4095 / 256 = 2495 cs.
    assert_eq!(
        instance::master_down_interval(Version::V3, 100, cs(4095)),
        cs(3 * 4095 + 2495)
    );
}

#[test]
fn effective_priority_is_clamped_and_owner_fixed() {
    assert_eq!(instance::effective_priority(100, -30), 70);
    assert_eq!(instance::effective_priority(100, 0), 100);
    assert_eq!(instance::effective_priority(20, -100), 1);
    assert_eq!(instance::effective_priority(1, -254), 1);
    assert_eq!(instance::effective_priority(240, 50), 254);
    assert_eq!(instance::effective_priority(254, 1), 254);
    assert_eq!(instance::effective_priority(255, -100), 255);
    assert_eq!(instance::effective_priority(255, 100), 255);
    assert_eq!(instance::effective_priority(100, i32::MIN), 1);
}

#[test]
fn instance_reports_its_intervals_from_the_learned_master_interval() {
    let mut params = default_params("vi1");
    params.advert_interval = Duration::from_secs(1);
    let mut vi1 = Instance::new(params).expect("valid params");
    assert_eq!(vi1.master_down_interval(), Duration::from_millis(3600));
    vi1.handle(Duration::ZERO, Event::Startup);
    vi1.handle(
        Duration::from_millis(100),
        Event::AdvertReceived(Advert {
            source: "10.0.0.2".parse().expect("literal address"),
            priority: 200,
            max_advert_interval: Duration::from_millis(2000),
        }),
    );
    assert_eq!(vi1.master_adver_interval(), Duration::from_millis(2000));
    assert_eq!(vi1.skew_time(), Duration::from_millis(1210));
    assert_eq!(vi1.master_down_interval(), Duration::from_millis(7210));
}

// ===== parameter checks =====

#[test]
fn invalid_params_are_refused_with_typed_errors() {
    let base = default_params("vi1");
    let with = |edit: &dyn Fn(&mut InstanceParams)| {
        let mut p = base.clone();
        edit(&mut p);
        Instance::new(p).err()
    };
    assert!(matches!(
        with(&|p| p.vrid = 0),
        Some(ParamsError::Vrid { .. })
    ));
    assert!(matches!(
        with(&|p| p.base_priority = 0),
        Some(ParamsError::Priority { .. })
    ));
    assert!(matches!(
        with(&|p| p.advert_interval = Duration::from_millis(15)),
        Some(ParamsError::AdvertInterval { .. })
    ));
    assert!(matches!(
        with(&|p| p.advert_interval = Duration::from_secs(41)),
        Some(ParamsError::AdvertInterval { .. })
    ));
    assert!(matches!(
        with(&|p| {
            p.version = Version::V2;
            p.advert_interval = Duration::from_millis(500);
        }),
        Some(ParamsError::AdvertInterval { .. })
    ));
    assert!(matches!(
        with(&|p| {
            p.version = Version::V2;
            p.primary_address = "fe80::1".parse().expect("literal address");
        }),
        Some(ParamsError::V2Ipv6 { .. })
    ));
    assert!(matches!(
        with(&|p| p.preempt_delay = Duration::from_secs(1001)),
        Some(ParamsError::PreemptDelay { .. })
    ));
    let track = |name: &str, weight| Track {
        name: name.to_owned(),
        weight,
    };
    assert!(matches!(
        with(&|p| p.tracks = vec![track("chk", 255)]),
        Some(ParamsError::TrackWeight { .. })
    ));
    assert!(matches!(
        with(&|p| p.tracks = vec![track("chk", 1), track("chk", 2)]),
        Some(ParamsError::DuplicateTrack { .. })
    ));
    let err = with(&|p| p.base_priority = 0).map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("instance vi1: priority must be 1..=255")
    );
    assert!(with(&|_| {}).is_none());
}

#[test]
fn sync_groups_must_name_known_instances_once() {
    let instance = |name: &str| Instance::new(default_params(name)).expect("valid params");
    let group = |name: &str, members: &[&str]| SyncGroup {
        name: name.to_owned(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    };
    let err = |instances: Vec<Instance>, groups| Router::new(instances, groups).err();
    assert_eq!(
        err(vec![instance("a"), instance("a")], vec![]),
        Some(RouterError::DuplicateInstance { name: "a".into() })
    );
    assert_eq!(
        err(vec![instance("a")], vec![group("g", &["b"])]),
        Some(RouterError::UnknownMember {
            group: "g".into(),
            name: "b".into()
        })
    );
    assert_eq!(
        err(
            vec![instance("a"), instance("b")],
            vec![group("g", &["a", "b"]), group("h", &["b"])]
        ),
        Some(RouterError::TwoGroups {
            name: "b".into(),
            first: "g".into(),
            second: "h".into()
        })
    );
    assert_eq!(
        err(vec![instance("a")], vec![group("g", &["a", "a"])]),
        Some(RouterError::TwoGroups {
            name: "a".into(),
            first: "g".into(),
            second: "g".into()
        })
    );
    assert_eq!(
        err(vec![instance("a")], vec![group("g", &[])]),
        Some(RouterError::EmptyGroup { group: "g".into() })
    );
}

// ===== several routers on one simulated segment =====

const LINK_DELAY: Duration = Duration::from_millis(1);

fn host(sim: &mut Sim, name: &str, priority: u8, address: &str) -> usize {
    let mut params = default_params("vi1");
    params.vrid = 51;
    params.base_priority = priority;
    params.primary_address = address.parse().expect("literal address");
    let instance = Instance::new(params).expect("valid params");
    let router = Router::new(vec![instance], vec![]).expect("one instance");
    sim.add_host(name, router)
}

fn transitions(sim: &Sim) -> Vec<(Duration, usize, State, State)> {
    sim.records()
        .iter()
        .filter_map(|r| match &r.entry {
            hactl_agent::sim::Entry::Output(Action::Transition { from, to, .. }) => {
                Some((r.at, r.host, *from, *to))
            }
            _ => None,
        })
        .collect()
}

#[track_caller]
fn assert_single_master(sim: &Sim, host: usize) {
    assert_eq!(sim.masters(51), vec![(host, 0)], "at {:?}", sim.now());
}

#[test]
fn two_routers_converge_on_the_higher_priority() {
    let mut sim = Sim::new(LINK_DELAY);
    let low = host(&mut sim, "lb01", 100, "10.0.0.1");
    let high = host(&mut sim, "lb02", 200, "10.0.0.2");
    sim.inject_all(low, &Event::Startup);
    sim.inject_all(high, &Event::Startup);
    sim.run_until(Duration::from_secs(20));
    assert_single_master(&sim, high);
    // The higher priority's Master_Down_Interval (321 cs) runs out first;
    // the lower one never leaves Backup.
    assert_eq!(
        transitions(&sim),
        vec![
            (Duration::ZERO, low, State::Initialize, State::Backup),
            (Duration::ZERO, high, State::Initialize, State::Backup),
            (
                Duration::from_millis(3210),
                high,
                State::Backup,
                State::Master
            ),
        ]
    );

    // The master stops: its priority 0 advert lets the backup take over after
    // Skew_Time (60 cs), not Master_Down_Interval.
    let stop = sim.now();
    sim.inject_all(high, &Event::Shutdown);
    sim.run_until(stop + Duration::from_secs(5));
    assert_single_master(&sim, low);
    let takeover = transitions(&sim)
        .into_iter()
        .find(|&(_, h, _, to)| h == low && to == State::Master)
        .map(|(at, ..)| at);
    assert_eq!(
        takeover,
        Some(stop + LINK_DELAY + Duration::from_millis(600))
    );

    // It comes back and preempts after its Master_Down_Interval.
    let back = sim.now();
    sim.inject_all(high, &Event::Startup);
    sim.run_until(back + Duration::from_secs(10));
    assert_single_master(&sim, high);
    assert_eq!(sim.router(low).instances()[0].state(), State::Backup);
}

#[test]
fn three_equal_routers_converge_on_the_highest_address() {
    let mut sim = Sim::new(LINK_DELAY);
    let a = host(&mut sim, "lb01", 100, "10.0.0.3");
    let b = host(&mut sim, "lb02", 100, "10.0.0.9");
    let c = host(&mut sim, "lb03", 100, "10.0.0.5");
    for h in [a, b, c] {
        sim.inject_all(h, &Event::Startup);
    }
    // All three time out together and become Master; RFC 5798 6.4.3 tie-break
    // on the primary address leaves the highest one.
    sim.run_until(Duration::from_millis(3600));
    assert_eq!(sim.masters(51).len(), 3);
    sim.run_until(Duration::from_secs(30));
    assert_single_master(&sim, b);

    // Crash the master (no priority 0): the next highest address wins after
    // Master_Down_Interval, again through a tie-break.
    sim.crash(b);
    sim.run_until(Duration::from_secs(60));
    assert_single_master(&sim, c);
}

#[test]
fn a_partition_makes_two_masters_and_healing_leaves_one() {
    let mut sim = Sim::new(LINK_DELAY);
    let low = host(&mut sim, "lb01", 100, "10.0.0.1");
    let high = host(&mut sim, "lb02", 150, "10.0.0.2");
    sim.inject_all(low, &Event::Startup);
    sim.inject_all(high, &Event::Startup);
    sim.run_until(Duration::from_secs(10));
    assert_single_master(&sim, high);
    sim.cut_link(low, high);
    sim.run_until(Duration::from_secs(20));
    assert_eq!(sim.masters(51).len(), 2);
    sim.heal_link(low, high);
    sim.run_until(Duration::from_secs(25));
    assert_single_master(&sim, high);
}

#[test]
fn simulation_is_deterministic() {
    let run = || {
        let mut sim = Sim::new(LINK_DELAY);
        let hosts = [
            host(&mut sim, "lb01", 100, "10.0.0.1"),
            host(&mut sim, "lb02", 100, "10.0.0.2"),
            host(&mut sim, "lb03", 90, "10.0.0.3"),
        ];
        for h in hosts {
            sim.inject_all(h, &Event::Startup);
        }
        sim.run_until(Duration::from_secs(15));
        sim.transcript()
    };
    let first = run();
    assert!(first.contains("lb02/vi1 > transition backup -> master"));
    assert_eq!(first, run());
}

#[test]
fn stale_timer_expiry_changes_nothing() {
    let mut vi1 = Instance::new(default_params("vi1")).expect("valid params");
    assert!(
        vi1.handle(Duration::ZERO, Event::TimerFired(Timer::MasterDown))
            .is_empty()
    );
    vi1.handle(Duration::ZERO, Event::Startup);
    assert!(
        vi1.handle(Duration::ZERO, Event::TimerFired(Timer::Adver))
            .is_empty()
    );
    assert_eq!(vi1.state(), State::Backup);
    let unknown = Event::TrackChanged {
        name: "nope".into(),
        up: false,
    };
    assert!(vi1.handle(Duration::ZERO, unknown).is_empty());
    let actions = vi1.handle(Duration::ZERO, Event::Shutdown);
    assert_eq!(
        actions.first(),
        Some(&Action::Transition {
            from: State::Backup,
            to: State::Initialize,
            reason: Reason::Shutdown
        })
    );
}

#[test]
fn a_zero_interval_advert_cannot_make_the_backup_flap() {
    let mut vi1 = Instance::new(default_params("vi1")).expect("valid params");
    vi1.handle(Duration::ZERO, Event::Startup);
    let actions = vi1.handle(
        Duration::from_millis(100),
        Event::AdvertReceived(Advert {
            source: "10.0.0.2".parse().expect("literal address"),
            priority: 200,
            max_advert_interval: Duration::ZERO,
        }),
    );
    // 1 cs floor: MDI = 3 cs + 156 * 1 / 256 = 0 cs.
    assert_eq!(
        actions,
        vec![Action::ArmTimer {
            timer: Timer::MasterDown,
            after: Duration::from_millis(30)
        }]
    );
}

#[test]
fn sync_groups_fail_over_together_between_two_hosts() {
    let grouped = |priority: u8, last_octet: u8| {
        let instances = [("www", 1u8), ("db", 2u8)]
            .into_iter()
            .map(|(name, vrid)| {
                let mut params = default_params(name);
                params.vrid = vrid;
                params.base_priority = priority;
                params.primary_address = IpAddr::from([10, 0, vrid, last_octet]);
                params.tracks = vec![Track {
                    name: format!("{name}-check"),
                    weight: 0,
                }];
                Instance::new(params).expect("valid params")
            })
            .collect();
        let group = SyncGroup {
            name: "g".into(),
            members: vec!["www".into(), "db".into()],
        };
        Router::new(instances, vec![group]).expect("valid group")
    };
    let mut sim = Sim::new(LINK_DELAY);
    let x = sim.add_host("lb01", grouped(150, 1));
    let y = sim.add_host("lb02", grouped(100, 2));
    sim.inject_all(x, &Event::Startup);
    sim.inject_all(y, &Event::Startup);
    sim.run_until(Duration::from_secs(10));
    assert_eq!(sim.masters(1), vec![(x, 0)]);
    assert_eq!(sim.masters(2), vec![(x, 1)]);

    // Only db's check fails on lb01: both of its instances go to Fault and
    // lb02 takes both VIPs after Skew_Time (priority 0 adverts).
    let db = Event::TrackChanged {
        name: "db-check".into(),
        up: false,
    };
    sim.inject(x, 1, db);
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.masters(1), vec![(y, 0)]);
    assert_eq!(sim.masters(2), vec![(y, 1)]);
    let states: Vec<State> = sim
        .router(x)
        .instances()
        .iter()
        .map(|i| i.state())
        .collect();
    assert_eq!(states, vec![State::Fault, State::Fault]);

    // The check recovers: lb01 returns as Backup and preempts both again.
    let up = Event::TrackChanged {
        name: "db-check".into(),
        up: true,
    };
    sim.inject(x, 1, up);
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.masters(1), vec![(x, 0)]);
    assert_eq!(sim.masters(2), vec![(x, 1)]);
}

/// Issue 7 (drain): a takeover makes a backup master at once, VIPs and
/// gratuitous ARPs before the advert at the takeover priority; a master
/// hearing that advert steps down (RFC 5798 6.4.3); release advertises the
/// configured priority again and keeps the role until a peer wins.
#[test]
fn takeover_is_immediate_and_release_returns_to_the_configured_priority() {
    let mut backup = Instance::new(default_params("vi1")).expect("valid params");
    backup.handle(Duration::ZERO, Event::Startup);
    let actions = backup.handle(Duration::ZERO, Event::Takeover { priority: 254 });
    assert_eq!(backup.state(), State::Master);
    assert_eq!(backup.effective_priority(), 254);
    let order: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::AddVips | Action::SendGratuitous | Action::SendAdvert { .. }
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            &Action::AddVips,
            &Action::SendGratuitous,
            &Action::SendAdvert { priority: 254 }
        ]
    );
    assert!(actions.contains(&Action::Transition {
        from: State::Backup,
        to: State::Master,
        reason: Reason::Takeover
    }));

    // The old master (150) hears 254 and goes to Backup.
    let mut master = Instance::new(InstanceParams {
        base_priority: 150,
        primary_address: "10.0.0.2".parse().expect("literal address"),
        initial_state: InitialState::Master,
        ..default_params("vi1")
    })
    .expect("valid params");
    master.handle(Duration::ZERO, Event::Startup);
    master.handle(Duration::from_secs(4), Event::TimerFired(Timer::MasterDown));
    assert_eq!(master.state(), State::Master);
    let actions = master.handle(
        Duration::from_secs(5),
        Event::AdvertReceived(Advert {
            source: "10.0.0.1".parse().expect("literal address"),
            priority: 254,
            max_advert_interval: Duration::from_secs(1),
        }),
    );
    assert_eq!(master.state(), State::Backup);
    assert!(actions.contains(&Action::RemoveVips));

    // Release: configured priority, still master, advertised at once.
    let actions = backup.handle(Duration::from_secs(6), Event::Release);
    assert_eq!(backup.state(), State::Master);
    assert_eq!(backup.effective_priority(), 100);
    assert!(actions.contains(&Action::SendAdvert { priority: 100 }));
    // A second release changes nothing.
    assert!(
        backup
            .handle(Duration::from_secs(7), Event::Release)
            .is_empty()
    );
}
