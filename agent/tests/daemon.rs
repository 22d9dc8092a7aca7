//! `hactl-agent run` on a real (namespaced) network: two agents on a bridge
//! elect a master, hand the VIP over on SIGTERM, on link loss and on a
//! crash, and refuse malformed packets; everything is observed the way an
//! operator would, through `hactl-agent status --json` and `ip addr`
//! (issue 4, "Tests").
//!
//! Takeover times are measured from the agents' own transition stamps
//! (CLOCK_MONOTONIC, shared by all namespaces of the host) against the
//! moment the test caused the fault, so polling overhead does not enter the
//! figures. Adverts are VRRPv3 at 200 ms: Skew_Time of priority 100 is
//! 120 ms and Master_Down_Interval 720 ms (RFC 5798 6.1). Runs as root.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hactl_agent::instance::{Version, master_down_interval, skew_time};
use hactl_agent::packet::{Advertisement, Auth, AuthPass};
use hactl_agent::status::{InstanceStatus, Status};
use support::netns::{Host, Segment, Spawned, wait_for, wait_until};

const AGENT: &str = env!("CARGO_BIN_EXE_hactl-agent");
const DEADLINE: Duration = Duration::from_secs(10);
const ADVERT: Duration = Duration::from_millis(200);
/// Scheduling slack on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(300);
const VRID: u8 = 51;

fn vip() -> IpAddr {
    IpAddr::V4(Segment::ipv4(100))
}

#[track_caller]
fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the daemon tests build network namespaces: run them as root"
    );
}

fn monotonic_ns() -> u64 {
    hactl_agent::status::monotonic_ns()
}

// ===== an agent under test =====

/// The instance's settings that vary between tests.
#[derive(Clone)]
struct InstanceConf {
    priority: u8,
    version: u8,
    advert: &'static str,
    /// Lines inside vrrp_instance.
    extra: String,
    /// Lines inside global_defs.
    global: String,
    /// Blocks before the instance (vrrp_script).
    blocks: String,
    vip: String,
}

impl InstanceConf {
    fn v3(priority: u8) -> InstanceConf {
        InstanceConf {
            priority,
            version: 3,
            advert: "0.2",
            extra: String::new(),
            global: String::new(),
            blocks: String::new(),
            vip: format!("{}/24", vip()),
        }
    }

    fn extra(mut self, lines: &str) -> InstanceConf {
        self.extra.push_str(lines);
        self
    }

    fn render(&self, host: usize) -> String {
        format!(
            "global_defs {{\n  router_id h{host}\n{}}}\n{}\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  \
             virtual_router_id {VRID}\n  priority {}\n  version {}\n  advert_int {}\n{}  \
             virtual_ipaddress {{\n    {}\n  }}\n}}\n",
            self.global,
            self.blocks,
            self.priority,
            self.version,
            self.advert,
            self.extra,
            self.vip,
        )
    }
}

/// One agent's files and, while it runs, its process.
struct Agent<'a> {
    host: &'a Host,
    dir: PathBuf,
    process: Option<Spawned>,
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl<'a> Agent<'a> {
    #[track_caller]
    fn new(host: &'a Host, index: usize, conf: &InstanceConf) -> Agent<'a> {
        let dir = std::env::temp_dir().join(format!(
            "hxd{}x{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("keepalived.conf"), conf.render(index)).expect("config");
        Agent {
            host,
            dir,
            process: None,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    #[track_caller]
    fn start(&mut self) {
        let conf = self.dir.join("keepalived.conf");
        let socket = self.socket();
        let state = self.dir.join("state");
        let argv = [
            AGENT,
            "run",
            "-f",
            path_str(&conf),
            "--socket",
            path_str(&socket),
            "--state-dir",
            path_str(&state),
        ];
        let _ = std::fs::remove_file(&socket);
        self.process = Some(self.host.spawn(&argv));
        wait_until(DEADLINE, "the agent's status socket", || {
            if let Some(p) = self.process.as_mut()
                && let Ok(Some(exit)) = p.child().try_wait()
            {
                panic!("the agent exited ({exit}):\n{}", p.stderr());
            }
            self.status().is_some()
        });
    }

    fn pid(&self) -> nix::unistd::Pid {
        let pid = self.process.as_ref().map_or(0, Spawned::pid);
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
    }

    /// Sends `signal` to the agent (ours, by PID) and waits for its exit.
    #[track_caller]
    fn stop(&mut self, signal: nix::sys::signal::Signal) -> std::process::ExitStatus {
        nix::sys::signal::kill(self.pid(), signal).expect("signal the agent");
        let mut process = self.process.take().expect("the agent runs");
        let status = wait_for(DEADLINE, "the agent to exit", || {
            process.child().try_wait().ok().flatten()
        });
        if signal == nix::sys::signal::Signal::SIGTERM {
            let log = process.stderr();
            assert!(
                log.contains("MASTER -> INIT") || log.contains("BACKUP -> INIT"),
                "the agent logs its last transition:\n{log}"
            );
        }
        status
    }

    /// `hactl-agent status --json`, if the agent answers.
    fn status(&self) -> Option<Status> {
        let output = Command::new(AGENT)
            .args(["status", "--json", "--socket", path_str(&self.socket())])
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    #[track_caller]
    fn instance(&self) -> InstanceStatus {
        let status = wait_for(DEADLINE, "a status answer", || self.status());
        status.instances.into_iter().next().expect("one instance")
    }

    #[track_caller]
    fn wait_state(&self, state: &str) -> InstanceStatus {
        wait_for(
            DEADLINE,
            &format!("{} to be {state}", self.host.namespace()),
            || {
                let i = self.status()?.instances.into_iter().next()?;
                (i.state == state).then_some(i)
            },
        )
    }

    fn has_vip(&self) -> bool {
        self.holds(vip())
    }

    fn holds(&self, address: IpAddr) -> bool {
        self.host
            .addresses("eth0")
            .iter()
            .any(|(a, _)| *a == address)
    }

    /// The CLOCK_MONOTONIC stamp of the last transition to `to`.
    #[track_caller]
    fn last_transition_to(&self, to: &str) -> u64 {
        let i = self.instance();
        i.transitions
            .iter()
            .rev()
            .find(|t| t.to == to)
            .unwrap_or_else(|| panic!("no transition to {to}: {:?}", i.transitions))
            .monotonic_ns
    }
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        // The Spawned guard kills the process by PID.
        self.process = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 scratch path")
}

/// Holds `condition` true for `span`, polling; panics at the first failure.
#[track_caller]
fn holds_for(span: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < span {
        assert!(
            condition(),
            "{what} stopped holding after {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[track_caller]
fn assert_master_and_backup(master: &Agent, backup: &Agent) {
    master.wait_state("MASTER");
    backup.wait_state("BACKUP");
    wait_until(DEADLINE, "the VIP on the master", || master.has_vip());
    assert!(!backup.has_vip(), "the backup must not hold the VIP");
    let m = master.instance();
    assert!(
        m.vips.iter().all(|v| v.present),
        "status: VIP present {m:?}"
    );
    let b = backup.instance();
    assert!(
        b.vips.iter().all(|v| !v.present),
        "status: VIP absent {b:?}"
    );
    // A backup just started knows its master from the first advert.
    let expected = Some(IpAddr::V4(master.host.ipv4()));
    wait_until(DEADLINE, "the backup seeing the master", || {
        backup.instance().master == expected
    });
}

/// The usual pair, started and settled: `a` master at priority 150, `b`
/// backup at 100.
fn started_pair(segment: &Segment) -> (Agent<'_>, Agent<'_>) {
    let mut a = Agent::new(segment.host(0), 0, &InstanceConf::v3(150));
    let mut b = Agent::new(segment.host(1), 1, &InstanceConf::v3(100));
    // The master first: a stall of its vCPU as both start could elect the
    // backup for a moment (RFC 5798 6.4.2), and tests count transitions.
    a.start();
    a.wait_state("MASTER");
    b.start();
    assert_master_and_backup(&a, &b);
    (a, b)
}

// ===== tests =====

/// Issue 4: the master holds the VIP, the backup does not; SIGTERM hands
/// over within Skew_Time; link loss within Master_Down_Interval; the master
/// returns and preempts back; status reports it all.
#[test]
fn failover_on_sigterm_and_link_down_then_preempt_back() {
    require_root();
    let segment = Segment::new(2);
    let (mut a, b) = started_pair(&segment);

    // Graceful: priority 0 advert, the backup waits Skew_Time only.
    let skew = skew_time(Version::V3, 100, ADVERT);
    let t0 = monotonic_ns();
    let exit = a.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
    b.wait_state("MASTER");
    let took = Duration::from_nanos(b.last_transition_to("MASTER").saturating_sub(t0));
    assert!(
        took <= skew + MARGIN,
        "graceful takeover took {took:?}, Skew_Time is {skew:?}"
    );
    assert!(!a.has_vip(), "SIGTERM removed the VIP");
    wait_until(DEADLINE, "the VIP on the new master", || b.has_vip());

    // The master returns and preempts back.
    a.start();
    assert_master_and_backup(&a, &b);

    // Link loss: the backup hears nothing and waits Master_Down_Interval.
    let mdi = master_down_interval(Version::V3, 100, ADVERT);
    let t0 = monotonic_ns();
    segment.port_set(0, false);
    b.wait_state("MASTER");
    let took = Duration::from_nanos(b.last_transition_to("MASTER").saturating_sub(t0));
    assert!(
        took <= mdi + MARGIN,
        "link-down takeover took {took:?}, Master_Down_Interval is {mdi:?}"
    );
    a.wait_state("FAULT");
    segment.port_set(0, true);
    assert_master_and_backup(&a, &b);

    // The status history tells the story, with both clocks.
    let history = b.instance().transitions;
    let pairs: Vec<(&str, &str)> = history
        .iter()
        .map(|t| (t.from.as_str(), t.to.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("INIT", "BACKUP"),
            ("BACKUP", "MASTER"),
            ("MASTER", "BACKUP"),
            ("BACKUP", "MASTER"),
            ("MASTER", "BACKUP"),
        ]
    );
    assert!(history[2].reason.contains("prio 150"), "{history:?}");
    for t in &history {
        // 2026-11-22T17:29:06.123Z
        assert_eq!(t.time.len(), 24, "RFC 3339 with ms: {}", t.time);
        assert!(t.time.ends_with('Z') && t.time.as_bytes()[19] == b'.');
    }
    assert!(
        history
            .windows(2)
            .all(|w| w[0].monotonic_ns <= w[1].monotonic_ns)
    );
    let a_status = a.instance();
    assert_eq!(
        (a_status.vrid, a_status.version, a_status.advert_int_ms),
        (VRID, 3, 200)
    );
    assert!(a_status.counters.adverts_sent > 0 && b.instance().counters.adverts_received > 0);
}

/// Issue 4: with nopreempt the returning higher-priority node leaves the
/// VIP where it is.
#[test]
fn nopreempt_keeps_the_vip_on_the_current_master() {
    require_root();
    let segment = Segment::new(2);
    let high_conf = InstanceConf::v3(150).extra("  nopreempt\n");
    let mut a = Agent::new(segment.host(0), 0, &high_conf);
    let mut b = Agent::new(segment.host(1), 1, &InstanceConf::v3(100));
    b.start();
    b.wait_state("MASTER");
    a.start();
    a.wait_state("BACKUP");
    let mdi = master_down_interval(Version::V3, 150, ADVERT);
    holds_for(mdi * 3, "the lower master keeping the VIP", || {
        b.has_vip() && !a.has_vip() && a.instance().state == "BACKUP"
    });
}

/// Issue 13: a backup that was not running for longer than
/// Master_Down_Interval (SIGSTOP here; a VM's host descheduling it, in
/// production) finds its master's adverts waiting in the socket when it
/// runs again, and stays backup: its overdue Master_Down timer waits
/// `MASTER_DOWN_CONFIRM` for them instead of taking over at once. The same
/// when master and backup were stopped together and the backup resumes
/// first: its timer ran late, so it waits the time it lost (up to an
/// advert interval) for the master to wake and send the advert it owes.
#[test]
fn a_backup_resumed_after_a_stall_reads_its_masters_adverts_first() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    require_root();
    let segment = Segment::new(2);
    let (a, b) = started_pair(&segment);
    let before = b.instance().counters.transitions;
    let pid = Pid::from_raw(b.process.as_ref().expect("b runs").pid() as i32);
    let mdi = master_down_interval(Version::V3, 100, ADVERT);
    let master = Pid::from_raw(a.process.as_ref().expect("a runs").pid() as i32);
    // The backup alone, then both (the whole machine stalled: the master's
    // advert and the backup's timer fall due together; the backup resumes
    // first).
    for round in 0..6 {
        let stopped: &[Pid] = if round % 2 == 0 {
            &[pid]
        } else {
            &[master, pid]
        };
        for &p in stopped {
            kill(p, Signal::SIGSTOP).expect("SIGSTOP");
        }
        // The fault itself lasts this long: no condition to poll.
        std::thread::sleep(mdi * 2);
        for &p in stopped.iter().rev() {
            kill(p, Signal::SIGCONT).expect("SIGCONT");
        }
        holds_for(ADVERT * 3, "the resumed backup staying backup", || {
            !b.has_vip() && a.has_vip()
        });
        let i = b.instance();
        assert_eq!(
            (i.state.as_str(), i.counters.transitions),
            ("BACKUP", before),
            "round {round}: the backup took over after the stall: {:?}",
            i.transitions
        );
    }
}

/// Issue 4: SIGKILL the master, the backup takes over, the old master
/// restarts: the VIP it left behind is removed before its first election.
/// `hactl-agent cleanup` does the same by hand.
#[test]
fn killed_master_leaves_no_stale_vip_after_restart() {
    require_root();
    let segment = Segment::new(2);
    let (mut a, b) = started_pair(&segment);

    a.stop(nix::sys::signal::Signal::SIGKILL);
    b.wait_state("MASTER");
    assert!(a.has_vip(), "a killed agent cannot remove its VIP");

    a.start();
    // Leftovers go before the first election: while it is BACKUP (for a
    // Master_Down_Interval) the old master holds nothing.
    let first = a.instance();
    assert_eq!(first.state, "BACKUP", "{first:?}");
    assert!(!a.has_vip(), "the restarted agent removed the stale VIP");
    assert_master_and_backup(&a, &b);

    // By hand: kill again, then cleanup.
    a.stop(nix::sys::signal::Signal::SIGKILL);
    assert!(a.has_vip());
    let state = a.dir.join("state");
    let out = a
        .host
        .run(&[AGENT, "cleanup", "--state-dir", path_str(&state)]);
    assert_eq!(out.trim(), "removed 1 address(es)");
    assert!(!a.has_vip(), "cleanup removed the stale VIP");

    // Issue 14: a corrupt ledger (here cut short and followed by junk) no
    // longer stops the agent from starting: what can be read is cleaned up.
    a.start();
    assert_master_and_backup(&a, &b);
    a.stop(nix::sys::signal::Signal::SIGKILL);
    assert!(a.has_vip());
    let ledger = state.join("vips.json");
    let text = std::fs::read_to_string(&ledger).expect("ledger");
    assert!(text.contains("eth0"), "{text}");
    let cut = text.rfind(']').unwrap_or(text.len());
    std::fs::write(&ledger, format!("{}\0\0{{\"interface\":\"et", &text[..cut])).expect("corrupt");
    a.start();
    let first = a.instance();
    assert_eq!(first.state, "BACKUP", "{first:?}");
    assert!(
        !a.has_vip(),
        "the VIP read from the corrupt ledger was removed"
    );
    let log = a.process.as_ref().map(Spawned::stderr).unwrap_or_default();
    assert!(
        log.contains("vips.json is corrupt") && log.contains("recovered 1 entry"),
        "{log}"
    );
    assert_master_and_backup(&a, &b);
}

// ===== malformed packets =====

/// Sends raw IPv4 `payload` (protocol 112) from `host`'s eth0 with `ttl`:
/// the IP header is built here (IP_HDRINCL), so any TTL goes out.
#[track_caller]
fn inject(host: &Host, dst: Ipv4Addr, ttl: u8, payload: &[u8]) {
    let src = host.ipv4();
    let total = u16::try_from(20 + payload.len()).expect("small packet");
    let mut packet = vec![0x45, 0xc0];
    packet.extend(total.to_be_bytes());
    packet.extend([0, 0, 0, 0, ttl, 112, 0, 0]);
    packet.extend(src.octets());
    packet.extend(dst.octets());
    packet.extend(payload);
    host.in_netns(|| {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        // IPPROTO_RAW implies IP_HDRINCL; the kernel fills in the header
        // checksum.
        let socket =
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))).expect("raw socket");
        socket.bind_device(Some(b"eth0")).expect("bind to eth0");
        let to = SockAddr::from(std::net::SocketAddrV4::new(dst, 0));
        socket.send_to(&packet, &to).expect("send");
    });
}

/// Issue 4: malformed packets from a third namespace (TTL 64, bad checksum,
/// bad version, wrong auth, truncated) are dropped, counted by reason, and
/// change nothing; the same advert well-formed does take over.
#[test]
fn malformed_packets_are_dropped_and_counted() {
    require_root();
    let segment = Segment::new(2);
    let conf = InstanceConf {
        version: 2,
        advert: "1",
        ..InstanceConf::v3(100)
    }
    .extra("  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n");
    let mut a = Agent::new(segment.host(0), 0, &conf);
    a.start();
    a.wait_state("MASTER");
    let before = a.instance();
    let attacker = segment.host(1);
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let src = IpAddr::V4(attacker.ipv4());
    let advert = |pass: &[u8]| Advertisement {
        version: Version::V2,
        vrid: VRID,
        priority: 254,
        advert_interval_cs: 100,
        auth: Auth::Pass(AuthPass::truncated(pass)),
        addresses: vec![vip()],
    };
    let good = advert(b"s3cret")
        .encode(src, IpAddr::V4(group))
        .expect("encode");
    let wrong_auth = advert(b"guess")
        .encode(src, IpAddr::V4(group))
        .expect("encode");
    let mut bad_checksum = good.clone();
    bad_checksum[6] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[0] = 0x11;

    inject(attacker, group, 64, &good);
    inject(attacker, group, 255, &bad_checksum);
    inject(attacker, group, 255, &bad_version);
    inject(attacker, group, 255, &wrong_auth);
    inject(attacker, group, 255, &good[..6]);

    let expected = [
        "bad_ttl",
        "bad_checksum",
        "bad_version",
        "auth_mismatch",
        "too_short",
    ];
    let after = wait_for(DEADLINE, "five drops counted", || {
        let i = a.status()?.instances.into_iter().next()?;
        expected
            .iter()
            .all(|r| i.counters.drops.get(*r) == Some(&1))
            .then_some(i)
    });
    assert_eq!(after.state, "MASTER");
    assert_eq!(after.transitions, before.transitions, "no state change");
    assert_eq!(after.counters.adverts_received, 0);
    assert!(a.has_vip());

    // The control: the same advert, well formed, wins (priority 254).
    inject(attacker, group, 255, &good);
    let i = a.wait_state("BACKUP");
    assert_eq!(i.master, Some(src));
    assert_eq!(i.counters.adverts_received, 1);
    wait_until(DEADLINE, "the VIP released", || !a.has_vip());
}

// ===== tracking, notify, announcements =====

/// Issue 4: a failing track_script with weight -30 moves the VIP to the
/// backup; its recovery moves it back.
#[test]
fn failing_track_script_moves_the_vip_and_recovery_moves_it_back() {
    require_root();
    let segment = Segment::new(2);
    let flag = std::env::temp_dir().join(format!("hxd{}-healthy", std::process::id()));
    std::fs::write(&flag, "").expect("flag file");
    let mut conf = InstanceConf::v3(150).extra("  track_script {\n    chk\n  }\n");
    conf.blocks = format!(
        "vrrp_script chk {{\n  script \"/usr/bin/test -e {}\"\n  interval 1\n  \
         weight -30\n  fall 1\n  rise 1\n}}\n",
        flag.display()
    );
    let mut a = Agent::new(segment.host(0), 0, &conf);
    let mut b = Agent::new(segment.host(1), 1, &InstanceConf::v3(130));
    a.start();
    b.start();
    assert_master_and_backup(&a, &b);

    std::fs::remove_file(&flag).expect("fail the check");
    b.wait_state("MASTER");
    let i = a.wait_state("BACKUP");
    assert_eq!((i.priority, i.effective_priority), (150, 120));
    wait_until(DEADLINE, "the VIP on the backup", || {
        b.has_vip() && !a.has_vip()
    });

    std::fs::write(&flag, "").expect("heal the check");
    assert_master_and_backup(&a, &b);
    assert_eq!(a.instance().effective_priority, 150);
    let _ = std::fs::remove_file(&flag);
}

/// Issue 4: notify scripts run with the right arguments, in order:
/// notify_backup, then notify_master with the generic notify after each,
/// and on SIGTERM the stop notification.
#[test]
fn notify_scripts_run_in_order_with_arguments() {
    require_root();
    let segment = Segment::new(1);
    let dir = std::env::temp_dir().join(format!("hxd{}-notify", std::process::id()));
    std::fs::create_dir_all(&dir).expect("notify dir");
    let log = dir.join("log");
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let s = script.display();
    let conf = InstanceConf::v3(100).extra(&format!(
        "  notify_master \"{s} specific master\"\n  notify_backup \"{s} specific backup\"\n  \
         notify_stop \"{s} specific stop\"\n  notify {s}\n"
    ));
    let mut a = Agent::new(segment.host(0), 0, &conf);
    a.start();
    a.wait_state("MASTER");
    let expected_running = [
        "specific backup",
        "INSTANCE VI_1 BACKUP 100",
        "specific master",
        "INSTANCE VI_1 MASTER 100",
    ];
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(DEADLINE, "four notify lines", || {
        read().lines().count() >= 4
    });
    assert_eq!(read().lines().collect::<Vec<_>>(), expected_running);
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    let lines = read();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(
        lines[4..],
        ["specific stop", "INSTANCE VI_1 STOP 100"],
        "the stop scripts run before exit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 4: a third namespace sees the gratuitous ARP: its neighbour entry
/// for the VIP points at the new master's MAC after each takeover.
#[test]
fn gratuitous_arp_moves_the_neighbour_entry_on_each_takeover() {
    require_root();
    let segment = Segment::new(3);
    let observer = segment.host(2);
    // Linux creates an entry from a gratuitous ARP only with arp_accept.
    observer.sysctl("net.ipv4.conf.all.arp_accept", "1");
    let mut a = Agent::new(segment.host(0), 0, &InstanceConf::v3(150));
    let mut b = Agent::new(segment.host(1), 1, &InstanceConf::v3(100));
    let (mac_a, mac_b) = (segment.host(0).mac("eth0"), segment.host(1).mac("eth0"));
    a.start();
    b.start();
    assert_master_and_backup(&a, &b);
    wait_until(DEADLINE, "the neighbour entry at the master", || {
        observer.neighbour(vip()) == Some(mac_a)
    });
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    wait_until(DEADLINE, "the neighbour entry at the new master", || {
        observer.neighbour(vip()) == Some(mac_b)
    });
    a.start();
    assert_master_and_backup(&a, &b);
    wait_until(
        DEADLINE,
        "the neighbour entry back at the first master",
        || observer.neighbour(vip()) == Some(mac_a),
    );
}

/// Issue 4: sync groups transition together. A weight-0 track_script
/// failing on one member faults the whole group, so both instances move to
/// the peer; the group's generic notify runs once per group transition with
/// `GROUP NAME STATE PRIORITY`.
#[test]
fn sync_group_members_fail_over_together() {
    require_root();
    let segment = Segment::new(2);
    let dir = std::env::temp_dir().join(format!("hxd{}-sync", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let flag = dir.join("healthy");
    std::fs::write(&flag, "").expect("flag");
    let log = dir.join("log");
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (vip1, vip2) = (Segment::ipv4(100), Segment::ipv4(101));
    let conf = |priority: u8, tracked: bool, notify: bool| {
        let script_block = format!(
            "vrrp_script chk {{\n  script \"/usr/bin/test -e {}\"\n  interval 1\n  \
             weight 0\n  fall 1\n  rise 1\n}}\n",
            flag.display()
        );
        let notify_line = if notify {
            format!("  notify {}\n", script.display())
        } else {
            String::new()
        };
        let instance = |name: &str, vrid: u8, vip: Ipv4Addr, track: bool| {
            format!(
                "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  \
                 virtual_router_id {vrid}\n  priority {priority}\n  version 3\n  \
                 advert_int 0.2\n{}  virtual_ipaddress {{\n    {vip}/24\n  }}\n}}\n",
                if track {
                    "  track_script {\n    chk\n  }\n"
                } else {
                    ""
                }
            )
        };
        format!(
            "{}vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n{notify_line}}}\n{}{}",
            if tracked { script_block } else { String::new() },
            instance("VI_1", 51, vip1, false),
            instance("VI_2", 52, vip2, tracked),
        )
    };
    let mut a = Agent::new(segment.host(0), 0, &InstanceConf::v3(1));
    std::fs::write(a.dir.join("keepalived.conf"), conf(150, true, true)).expect("conf a");
    let mut b = Agent::new(segment.host(1), 1, &InstanceConf::v3(1));
    std::fs::write(b.dir.join("keepalived.conf"), conf(100, false, false)).expect("conf b");
    a.start();
    b.start();
    let states = |agent: &Agent| -> Option<Vec<String>> {
        Some(
            agent
                .status()?
                .instances
                .into_iter()
                .map(|i| i.state)
                .collect(),
        )
    };
    let both = |state: &str| vec![state.to_owned(), state.to_owned()];
    wait_until(DEADLINE, "group a MASTER, group b BACKUP", || {
        states(&a) == Some(both("MASTER")) && states(&b) == Some(both("BACKUP"))
    });
    wait_until(DEADLINE, "both VIPs on a", || {
        a.holds(IpAddr::V4(vip1)) && a.holds(IpAddr::V4(vip2))
    });

    std::fs::remove_file(&flag).expect("fail the check");
    wait_until(DEADLINE, "group a FAULT, group b MASTER", || {
        states(&a) == Some(both("FAULT")) && states(&b) == Some(both("MASTER"))
    });
    wait_until(DEADLINE, "both VIPs moved to b", || {
        b.holds(IpAddr::V4(vip1))
            && b.holds(IpAddr::V4(vip2))
            && !a.holds(IpAddr::V4(vip1))
            && !a.holds(IpAddr::V4(vip2))
    });
    let vi1 = a.instance();
    assert!(
        vi1.transitions
            .iter()
            .any(|t| t.to == "FAULT" && t.reason.contains("sync group G")),
        "VI_1 follows its group: {:?}",
        vi1.transitions
    );

    std::fs::write(&flag, "").expect("heal the check");
    wait_until(DEADLINE, "group a MASTER again", || {
        states(&a) == Some(both("MASTER")) && states(&b) == Some(both("BACKUP"))
    });
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(DEADLINE, "the group notifications", || {
        read().lines().filter(|l| l.starts_with("GROUP")).count() >= 5
    });
    let group_lines: Vec<String> = read()
        .lines()
        .filter(|l| l.starts_with("GROUP"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        group_lines[..5],
        [
            "GROUP G BACKUP 150",
            "GROUP G MASTER 150",
            "GROUP G FAULT 150",
            "GROUP G BACKUP 150",
            "GROUP G MASTER 150",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's enable_script_security: a vrrp_script or notify script
/// writable by a non-root user is never run; the tracked script counts as
/// down (its weight applies) and the notify script is dropped.
#[test]
fn script_security_refuses_writable_scripts() {
    require_root();
    let segment = Segment::new(1);
    let dir = std::env::temp_dir().join(format!("hxd{}-insecure", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let check = dir.join("check.sh");
    let notify = dir.join("notify.sh");
    let ran = dir.join("ran");
    std::fs::write(&check, "#!/bin/sh\nexit 0\n").expect("check");
    std::fs::write(&notify, format!("#!/bin/sh\ntouch {}\n", ran.display())).expect("notify");
    use std::os::unix::fs::PermissionsExt;
    for script in [&check, &notify] {
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let mut conf = InstanceConf::v3(100).extra(&format!(
        "  track_script {{\n    chk\n  }}\n  notify {}\n",
        notify.display()
    ));
    conf.global = "  script_user root\n  enable_script_security\n".to_owned();
    conf.blocks = format!(
        "vrrp_script chk {{\n  script {}\n  interval 1\n  weight -30\n}}\n",
        check.display()
    );
    let mut a = Agent::new(segment.host(0), 0, &conf);
    a.start();
    let i = wait_for(DEADLINE, "the refused script to count as down", || {
        let i = a.status()?.instances.into_iter().next()?;
        (i.effective_priority == 70 && i.state == "MASTER").then_some(i)
    });
    assert_eq!(i.priority, 100);
    let log = a.process.as_ref().map(Spawned::stderr).unwrap_or_default();
    assert!(
        log.contains("vrrp_script chk: refused by enable_script_security"),
        "{log}"
    );
    assert!(
        log.contains("VI_1: notify script refused by enable_script_security"),
        "{log}"
    );
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    assert!(!ran.exists(), "the writable notify script never ran");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14: a script given without a path (`true`, as `pidof haproxy`
/// would be) is found in PATH at run time as `check` finds it, and runs:
/// its weight never applies while it succeeds. It used to be refused at
/// run time only, so it always counted as down.
#[test]
fn script_security_runs_a_program_found_in_path() {
    require_root();
    let segment = Segment::new(1);
    let mut conf = InstanceConf::v3(100).extra("  track_script {\n    chk\n  }\n");
    conf.global = "  script_user root\n  enable_script_security\n".to_owned();
    conf.blocks =
        "vrrp_script chk {\n  script true\n  interval 1\n  weight -30\n  rise 1\n  fall 1\n}\n"
            .to_owned();
    let mut a = Agent::new(segment.host(0), 0, &conf);
    a.start();
    a.wait_state("MASTER");
    holds_for(
        Duration::from_secs(3),
        "the PATH script counting as up",
        || {
            a.status()
                .and_then(|s| s.instances.into_iter().next())
                .is_some_and(|i| i.effective_priority == 100)
        },
    );
    let log = a.process.as_ref().map(Spawned::stderr).unwrap_or_default();
    assert!(!log.contains("refused"), "{log}");
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
}

/// Issue 4: `use_vmac` puts the VIP on a macvlan with the VRRP virtual MAC
/// (00:00:5e:00:01:VRID): neighbours see the same MAC whoever is master, and
/// the interface goes away with the agent.
#[test]
fn use_vmac_keeps_the_virtual_mac_across_takeovers() {
    require_root();
    let segment = Segment::new(3);
    let observer = segment.host(2);
    observer.sysctl("net.ipv4.conf.all.arp_accept", "1");
    let conf = |priority| InstanceConf::v3(priority).extra("  use_vmac\n");
    let mut a = Agent::new(segment.host(0), 0, &conf(150));
    let mut b = Agent::new(segment.host(1), 1, &conf(100));
    a.start();
    b.start();
    a.wait_state("MASTER");
    b.wait_state("BACKUP");
    let vmac_name = "vrrp.51";
    let virtual_mac = [0x00, 0x00, 0x5e, 0x00, 0x01, VRID];
    assert_eq!(segment.host(0).mac(vmac_name), virtual_mac);
    let on_vmac = |host: &Host| {
        host.addresses(vmac_name)
            .iter()
            .any(|(address, _)| *address == vip())
    };
    wait_until(DEADLINE, "the VIP on the master's vmac", || {
        on_vmac(segment.host(0))
    });
    assert!(!on_vmac(segment.host(1)) && !a.has_vip() && !b.has_vip());
    let i = a.instance();
    assert_eq!(i.vips[0].interface, vmac_name);
    assert!(i.vips[0].present);
    wait_until(DEADLINE, "the neighbour entry at the virtual MAC", || {
        observer.neighbour(vip()) == Some(virtual_mac)
    });

    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    wait_until(DEADLINE, "the VIP on the new master's vmac", || {
        on_vmac(segment.host(1))
    });
    assert_eq!(observer.neighbour(vip()), Some(virtual_mac));
    let links = segment.host(0).run(&["ip", "-o", "link", "show"]);
    assert!(
        !links.contains(vmac_name),
        "the vmac left with the agent: {links}"
    );
}

// ===== protocol variants =====

/// Issue 4: IPv6 VIPs with VRRPv3 (link-local sources, ff02::12).
#[test]
fn ipv6_vips_with_vrrpv3_fail_over() {
    require_root();
    let segment = Segment::new(2);
    let vip6 = IpAddr::V6(Segment::ipv6(100));
    let conf = |priority| InstanceConf {
        vip: format!("{vip6}/64"),
        ..InstanceConf::v3(priority)
    };
    let mut a = Agent::new(segment.host(0), 0, &conf(150));
    let mut b = Agent::new(segment.host(1), 1, &conf(100));
    a.start();
    b.start();
    a.wait_state("MASTER");
    let master = wait_for(DEADLINE, "the backup to hear the master", || {
        let i = b.instance();
        (i.state == "BACKUP").then_some(i.master).flatten()
    });
    assert!(
        matches!(master, IpAddr::V6(m) if m.is_unicast_link_local()),
        "the backup sees the master's link-local address: {master:?}"
    );
    assert_eq!(Some(master), Some(a.instance().address));
    wait_until(DEADLINE, "the IPv6 VIP on the master", || a.holds(vip6));
    assert!(!b.holds(vip6));
    assert_eq!(a.instance().family, "ipv6");
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    b.wait_state("MASTER");
    wait_until(DEADLINE, "the IPv6 VIP on the new master", || b.holds(vip6));
    assert!(!a.holds(vip6));
}

/// Issue 4: unicast peers (unicast_src_ip, unicast_peer) instead of
/// multicast.
#[test]
fn unicast_peers_elect_and_fail_over() {
    require_root();
    let segment = Segment::new(2);
    let (ip_a, ip_b) = (segment.host(0).ipv4(), segment.host(1).ipv4());
    let unicast = |priority, own: Ipv4Addr, peer: Ipv4Addr| {
        InstanceConf::v3(priority).extra(&format!(
            "  unicast_src_ip {own}\n  unicast_peer {{\n    {peer}\n  }}\n"
        ))
    };
    let mut a = Agent::new(segment.host(0), 0, &unicast(150, ip_a, ip_b));
    let mut b = Agent::new(segment.host(1), 1, &unicast(100, ip_b, ip_a));
    a.start();
    b.start();
    assert_master_and_backup(&a, &b);
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    b.wait_state("MASTER");
    wait_until(DEADLINE, "the VIP on the new master", || b.has_vip());
}

/// Issue 4: two pairs on one bridge with the same VRID and different
/// multicast groups do not disturb each other: each has its own master.
#[test]
fn two_pairs_with_one_vrid_and_different_groups_stay_apart() {
    require_root();
    let segment = Segment::new(4);
    let pair = |priority, group: &str, vip_n: u8| InstanceConf {
        global: format!("  vrrp_mcast_group4 {group}\n"),
        vip: format!("{}/24", Segment::ipv4(vip_n)),
        ..InstanceConf::v3(priority)
    };
    let mut a1 = Agent::new(segment.host(0), 0, &pair(150, "224.0.0.18", 100));
    let mut a2 = Agent::new(segment.host(1), 1, &pair(100, "224.0.0.18", 100));
    let mut b1 = Agent::new(segment.host(2), 2, &pair(120, "224.0.0.19", 101));
    let mut b2 = Agent::new(segment.host(3), 3, &pair(110, "224.0.0.19", 101));
    for agent in [&mut a1, &mut a2, &mut b1, &mut b2] {
        agent.start();
    }
    a1.wait_state("MASTER");
    b1.wait_state("MASTER");
    a2.wait_state("BACKUP");
    b2.wait_state("BACKUP");
    let mdi = master_down_interval(Version::V3, 110, ADVERT);
    holds_for(mdi * 3, "one master per pair", || {
        let states: Vec<String> = [&a1, &a2, &b1, &b2]
            .iter()
            .map(|a| a.instance().state)
            .collect();
        states == ["MASTER", "BACKUP", "MASTER", "BACKUP"]
    });
    assert_eq!(
        a2.instance().master,
        Some(IpAddr::V4(segment.host(0).ipv4()))
    );
    assert_eq!(
        b2.instance().master,
        Some(IpAddr::V4(segment.host(2).ipv4()))
    );
    assert!(a1.holds(IpAddr::V4(Segment::ipv4(100))) && b1.holds(IpAddr::V4(Segment::ipv4(101))));
}

/// Issue 4: preempt_delay holds a returning higher-priority node back for
/// the delay before it preempts.
#[test]
fn preempt_delay_is_honoured() {
    require_root();
    let segment = Segment::new(2);
    let delay = Duration::from_secs(2);
    let mut a = Agent::new(
        segment.host(0),
        0,
        &InstanceConf::v3(150).extra("  preempt_delay 2\n"),
    );
    let mut b = Agent::new(segment.host(1), 1, &InstanceConf::v3(100));
    b.start();
    b.wait_state("MASTER");
    a.start();
    a.wait_state("BACKUP");
    wait_until(DEADLINE, "the preempting master", || {
        a.instance().state == "MASTER"
    });
    // From the agent's own start (its INIT -> BACKUP) to its takeover.
    let started = a.instance().transitions[0].monotonic_ns;
    let took = Duration::from_nanos(a.last_transition_to("MASTER").saturating_sub(started));
    let mdi = master_down_interval(Version::V3, 150, ADVERT);
    assert!(
        took >= delay && took <= delay + mdi + MARGIN,
        "preempted after {took:?}, preempt_delay is {delay:?}"
    );
    assert_master_and_backup(&a, &b);
}

// ===== operations =====

/// SIGHUP: an unchanged config changes nothing; a changed one (a higher
/// priority) restarts the instance, which then takes over.
#[test]
fn sighup_reloads_a_changed_config() {
    require_root();
    let segment = Segment::new(2);
    let (a, b) = started_pair(&segment);
    let before = b.instance().transitions;
    let before_received = b.instance().counters.adverts_received;

    nix::sys::signal::kill(b.pid(), nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let log = || b.process.as_ref().map(Spawned::stderr).unwrap_or_default();
    wait_until(DEADLINE, "the reload to be logged", || {
        log().contains("config unchanged")
    });
    assert_eq!(
        b.instance().transitions,
        before,
        "no flap on an unchanged config"
    );

    // A second instance joins: the first runs on untouched.
    let second = format!(
        "vrrp_instance VI_2 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  \
         priority 100\n  version 3\n  advert_int 0.2\n  virtual_ipaddress {{\n    {}/24\n  }}\n}}\n",
        Segment::ipv4(102)
    );
    let two = InstanceConf::v3(100).render(1) + &second;
    std::fs::write(b.dir.join("keepalived.conf"), &two).expect("new config");
    nix::sys::signal::kill(b.pid(), nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let status = wait_for(DEADLINE, "VI_2 to become master", || {
        let status = b.status()?;
        let vi2 = status.instances.iter().find(|i| i.name == "VI_2")?;
        (vi2.state == "MASTER").then_some(status.clone())
    });
    let vi1 = &status.instances[0];
    assert_eq!(vi1.name, "VI_1");
    assert_eq!(vi1.transitions, before, "VI_1 kept its state");
    assert_eq!(vi1.state, "BACKUP");
    assert!(vi1.counters.adverts_received >= before_received);
    assert!(
        log().contains("1 instance(s) kept, 0 stopped, 1 started"),
        "{}",
        log()
    );

    std::fs::write(
        b.dir.join("keepalived.conf"),
        InstanceConf::v3(200).render(1),
    )
    .expect("new config");
    nix::sys::signal::kill(b.pid(), nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    assert_master_and_backup(&b, &a);
    assert_eq!(b.instance().priority, 200);
    assert!(
        !b.holds(IpAddr::V4(Segment::ipv4(102))),
        "the removed VI_2 released its VIP"
    );
}

/// SIGHUP with a changed virtual_ipaddress block only: the master keeps its
/// state (as keepalived's reload does), adds the new address, releases the
/// one gone, and the backup stays BACKUP throughout.
#[test]
fn sighup_changing_only_the_addresses_keeps_the_master() {
    require_root();
    let segment = Segment::new(2);
    let (mut a, b) = started_pair(&segment);
    let master_before = a.instance().transitions;
    let backup_before = b.instance().transitions;
    let extra = IpAddr::V4(Segment::ipv4(103));
    let log = |n: &Agent| n.process.as_ref().map(Spawned::stderr).unwrap_or_default();

    let mut conf = InstanceConf::v3(150);
    conf.vip = format!("{}/24\n    {extra}/24", vip());
    std::fs::write(a.dir.join("keepalived.conf"), conf.render(0)).expect("new config");
    nix::sys::signal::kill(a.pid(), nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    wait_until(DEADLINE, "the added address on the master", || {
        a.holds(extra)
    });
    assert!(a.has_vip(), "the address kept stays on the master");
    assert!(
        log(&a).contains("VI_1: virtual addresses changed (1 added, 0 removed)"),
        "{}",
        log(&a)
    );

    conf.vip = format!("{extra}/24");
    std::fs::write(a.dir.join("keepalived.conf"), conf.render(0)).expect("new config");
    nix::sys::signal::kill(a.pid(), nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    wait_until(DEADLINE, "the removed address gone from the master", || {
        !a.has_vip()
    });
    assert!(a.holds(extra), "the address kept stays on the master");
    let i = a.instance();
    assert_eq!(i.state, "MASTER");
    assert_eq!(i.transitions, master_before, "the master never left MASTER");
    assert_eq!(
        b.instance().transitions,
        backup_before,
        "the backup never took over"
    );
    assert!(!b.holds(extra) && !b.has_vip(), "the backup holds nothing");
    // The ledger followed the change: killed and started again, the agent
    // cleans up the address it held, and none it released.
    a.stop(nix::sys::signal::Signal::SIGKILL);
    a.start();
    a.wait_state("MASTER");
    let text = log(&a);
    let cleaned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("removed leftover"))
        .collect();
    assert!(
        !cleaned.is_empty() && cleaned.iter().all(|l| l.contains(&format!("{extra}/"))),
        "the ledger must name the held address only:\n{text}"
    );
}

/// The status socket is root-only (issue 14: mode 0600 and a peer-credential
/// check) and the table names every instance.
#[test]
fn status_socket_is_private_and_prints_a_table() {
    require_root();
    let segment = Segment::new(1);
    let mut a = Agent::new(segment.host(0), 0, &InstanceConf::v3(100));
    a.start();
    a.wait_state("MASTER");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(a.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let output = Command::new(AGENT)
        .args(["status", "--socket", path_str(&a.socket())])
        .output()
        .expect("status");
    let table = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("INSTANCE  VRID  IFACE  VER  STATE"),
        "{table}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[..5], ["VI_1", "51", "eth0", "v3", "MASTER"], "{table}");
    assert!(row[8].ends_with('*'), "the VIP is marked present: {table}");

    // Issue 14: only root may use the socket. A client run as `nobody`
    // (setpriv(1): uid, gid and groups dropped before exec) cannot connect
    // to the 0600 socket; with the file opened wide by mistake, the
    // peer-credential check (SO_PEERCRED) still refuses its status,
    // takeover and release.
    let socket = a.socket();
    let as_nobody = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", AGENT])
            .args(args)
            .args(["--socket", path_str(&socket)])
            .output()
            .expect("setpriv (util-linux)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = as_nobody(&["status", "--json"]);
    assert!(!ok && text.contains("ermission denied"), "{text}");
    std::fs::set_permissions(a.socket(), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    for args in [
        &["status", "--json"][..],
        &["takeover", "--priority", "200"],
        &["release"],
    ] {
        let (ok, text) = as_nobody(args);
        assert!(
            !ok && text.contains("permission denied: uid 65534 is not root"),
            "{args:?}: {text}"
        );
    }
    let i = a.instance();
    assert_eq!((i.state.as_str(), i.effective_priority), ("MASTER", 100));
    // Root's takeover goes through (the refusal above was not a dead path).
    let root = Command::new(AGENT)
        .args([
            "takeover",
            "--priority",
            "200",
            "--socket",
            path_str(&a.socket()),
        ])
        .output()
        .expect("takeover");
    assert!(
        root.status.success(),
        "{}",
        String::from_utf8_lossy(&root.stderr)
    );
    wait_until(DEADLINE, "root's takeover", || {
        a.status()
            .and_then(|s| s.instances.into_iter().next())
            .is_some_and(|i| i.effective_priority == 200)
    });
    let (ok, text) = as_nobody(&["release"]);
    assert!(!ok, "{text}");
    assert_eq!(
        a.instance().effective_priority,
        200,
        "nobody's release was refused"
    );
    let log = a.process.as_ref().map(Spawned::stderr).unwrap_or_default();
    assert!(
        log.contains("status socket: refused a client of uid 65534"),
        "{log}"
    );
    assert!(a.stop(nix::sys::signal::Signal::SIGTERM).success());
    assert!(!a.socket().exists(), "the socket is removed at exit");
}

// ===== keepalived interop =====

/// keepalived 2.2.7 (Debian) as the peer, in its own namespace, VRRP only,
/// in the foreground, with its pid files in a scratch directory.
struct Keepalived<'a> {
    host: &'a Host,
    dir: PathBuf,
    process: Option<Spawned>,
}

impl<'a> Keepalived<'a> {
    fn new(host: &'a Host, index: usize, conf: &InstanceConf) -> Keepalived<'a> {
        let dir = std::env::temp_dir().join(format!(
            "hxk{}x{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("keepalived.conf"), conf.render(index)).expect("config");
        Keepalived {
            host,
            dir,
            process: None,
        }
    }

    fn start(&mut self) {
        let file = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
        let (conf, pid, vrrp_pid) = (file("keepalived.conf"), file("k.pid"), file("v.pid"));
        // A SIGKILLed keepalived leaves its pid files, and a new one refuses
        // to start beside them ("daemon is already running").
        let _ = std::fs::remove_file(&pid);
        let _ = std::fs::remove_file(&vrrp_pid);
        self.process = Some(self.host.spawn(&[
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-P",
            "-f",
            &conf,
            "-p",
            &pid,
            "-r",
            &vrrp_pid,
        ]));
    }

    /// SIGTERM (keepalived releases with a priority 0 advert) and wait.
    #[track_caller]
    fn stop(&mut self) {
        let mut process = self.process.take().expect("keepalived runs");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(process.pid()).unwrap_or(0));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        wait_for(DEADLINE, "keepalived to exit", || {
            process.child().try_wait().ok().flatten()
        });
    }

    fn has_vip(&self) -> bool {
        self.host.addresses("eth0").iter().any(|(a, _)| *a == vip())
    }

    /// What keepalived logged on the console so far.
    fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.stdout() + &p.stderr())
            .unwrap_or_default()
    }
}

impl Drop for Keepalived<'_> {
    fn drop(&mut self) {
        // The segment kills keepalived's VRRP child with the namespace.
        self.process = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Exactly one of the two holds the VIP for `span`.
#[track_caller]
fn one_master(agent: &Agent, keepalived: &Keepalived, span: Duration) {
    holds_for(span, "exactly one VIP holder", || {
        agent.has_vip() != keepalived.has_vip()
    });
}

/// Issue 4: VRRPv3, our agent MASTER and keepalived BACKUP; keepalived
/// takes over on SIGTERM and the agent preempts back.
#[test]
fn keepalived_interop_v3_agent_master() {
    require_root();
    let segment = Segment::new(2);
    let mut agent = Agent::new(segment.host(0), 0, &InstanceConf::v3(150));
    let mut keepalived = Keepalived::new(segment.host(1), 1, &InstanceConf::v3(100));
    agent.start();
    agent.wait_state("MASTER");
    keepalived.start();
    wait_until(DEADLINE, "keepalived to enter BACKUP", || {
        keepalived.log().contains("Entering BACKUP STATE")
    });
    wait_until(DEADLINE, "the VIP on the agent alone", || {
        agent.has_vip() && !keepalived.has_vip()
    });
    let mdi = master_down_interval(Version::V3, 100, ADVERT);
    one_master(&agent, &keepalived, mdi * 2);
    assert_eq!(agent.instance().state, "MASTER");

    assert!(agent.stop(nix::sys::signal::Signal::SIGTERM).success());
    wait_until(DEADLINE, "keepalived to take over", || keepalived.has_vip());
    agent.start();
    agent.wait_state("MASTER");
    wait_until(DEADLINE, "the VIP back on the agent", || {
        agent.has_vip() && !keepalived.has_vip()
    });
    one_master(&agent, &keepalived, mdi * 2);
    let i = agent.instance();
    assert_eq!(
        i.counters.drops,
        Default::default(),
        "keepalived's adverts all pass"
    );
    keepalived.stop();
}

/// Issue 4: VRRPv2 with PASS authentication, keepalived MASTER and our agent
/// BACKUP; the agent takes over on keepalived's SIGTERM and keepalived
/// preempts back when it returns.
#[test]
fn keepalived_interop_v2_pass_keepalived_master() {
    require_root();
    let segment = Segment::new(2);
    let v2 = |priority| {
        InstanceConf {
            version: 2,
            advert: "1",
            ..InstanceConf::v3(priority)
        }
        .extra("  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n")
    };
    let mut keepalived = Keepalived::new(segment.host(0), 0, &v2(150));
    let mut agent = Agent::new(segment.host(1), 1, &v2(100));
    keepalived.start();
    wait_until(DEADLINE, "keepalived to become master", || {
        keepalived.has_vip()
    });
    agent.start();
    let seen = wait_for(DEADLINE, "the agent to hear keepalived", || {
        let i = agent.instance();
        (i.state == "BACKUP").then_some(i.master).flatten()
    });
    assert_eq!(seen, IpAddr::V4(segment.host(0).ipv4()));
    let mdi = master_down_interval(Version::V2, 100, Duration::from_secs(1));
    one_master(&agent, &keepalived, mdi);

    let t0 = monotonic_ns();
    keepalived.stop();
    agent.wait_state("MASTER");
    let took = Duration::from_nanos(agent.last_transition_to("MASTER").saturating_sub(t0));
    let skew = skew_time(Version::V2, 100, Duration::from_secs(1));
    assert!(
        took <= skew + MARGIN,
        "takeover from keepalived took {took:?}, Skew_Time is {skew:?}"
    );
    wait_until(DEADLINE, "the VIP on the agent", || agent.has_vip());

    keepalived.start();
    wait_until(DEADLINE, "keepalived to preempt back", || {
        keepalived.has_vip() && !agent.has_vip()
    });
    agent.wait_state("BACKUP");
    one_master(&agent, &keepalived, mdi);
    assert_eq!(agent.instance().counters.drops, Default::default());
}

// ===== takeover benchmark (BENCHMARKS.md) =====

/// A VRRP speaker the benchmark can start and fault.
enum Speaker<'a> {
    Agent(Agent<'a>),
    Keepalived(Keepalived<'a>),
}

impl Speaker<'_> {
    fn start(&mut self) {
        match self {
            Speaker::Agent(a) => a.start(),
            Speaker::Keepalived(k) => k.start(),
        }
    }

    /// Graceful: SIGTERM. Hard: SIGKILL (for keepalived, its VRRP child too).
    fn fault(&mut self, hard: bool) {
        use nix::sys::signal::{Signal, kill};
        match self {
            Speaker::Agent(a) => {
                a.stop(if hard {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                });
            }
            Speaker::Keepalived(k) if hard => {
                // Parent and VRRP child at once: every process of the
                // namespace, all ours since the namespace is.
                let mut process = k.process.take().expect("keepalived runs");
                let listed = Command::new("ip")
                    .args(["netns", "pids", k.host.namespace()])
                    .output()
                    .expect("ip netns pids");
                for pid in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
                wait_for(DEADLINE, "keepalived to die", || {
                    process.child().try_wait().ok().flatten()
                });
                wait_until(DEADLINE, "keepalived's VRRP child to die", || {
                    Command::new("ip")
                        .args(["netns", "pids", k.host.namespace()])
                        .output()
                        .is_ok_and(|o| o.stdout.iter().all(u8::is_ascii_whitespace))
                });
            }
            Speaker::Keepalived(k) => k.stop(),
        }
    }

    fn log(&self) -> String {
        match self {
            Speaker::Agent(a) => a.process.as_ref().map(Spawned::stderr).unwrap_or_default(),
            Speaker::Keepalived(k) => k.log(),
        }
    }

    fn host(&self) -> &Host {
        match self {
            Speaker::Agent(a) => a.host,
            Speaker::Keepalived(k) => k.host,
        }
    }
}

/// Whether `address` is on `host`'s eth0, read in its namespace without
/// spawning a process.
fn holds_now(host: &Host, address: IpAddr) -> bool {
    host.in_netns(|| hactl_agent::network::interface_addresses("eth0").contains(&address))
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Takeover times, fault to the backup holding the VIP (its own interface,
/// polled in its namespace every 1 ms), median of five, for our agent and
/// keepalived 2.2.7, VRRPv3 at 1 s and 0.1 s adverts. Run by hand:
/// `cargo test -p hactl-agent --test daemon bench_takeover -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: about four minutes"]
fn bench_takeover() {
    require_root();
    const RUNS: usize = 5;
    let mut rows = Vec::new();
    for (advert, interval) in [
        ("1", Duration::from_secs(1)),
        ("0.1", Duration::from_millis(100)),
    ] {
        for implementation in ["hactl-agent", "keepalived"] {
            if std::env::var("HACTL_BENCH_ONLY").is_ok_and(|only| only != implementation) {
                continue;
            }
            let segment = Segment::new(2);
            let conf = |priority| InstanceConf {
                advert,
                ..InstanceConf::v3(priority)
            };
            let (mut master, backup_host) = match implementation {
                "hactl-agent" => (
                    Speaker::Agent(Agent::new(segment.host(0), 0, &conf(150))),
                    Speaker::Agent(Agent::new(segment.host(1), 1, &conf(100))),
                ),
                _ => (
                    Speaker::Keepalived(Keepalived::new(segment.host(0), 0, &conf(150))),
                    Speaker::Keepalived(Keepalived::new(segment.host(1), 1, &conf(100))),
                ),
            };
            let mut backup = backup_host;
            backup.start();
            for hard in [false, true] {
                let mut times = Vec::new();
                for run in 0..RUNS {
                    eprintln!("bench: {implementation} advert {advert} hard {hard} run {run}");
                    let _ = master.host().exec(&[
                        "ip",
                        "addr",
                        "del",
                        &format!("{}/24", vip()),
                        "dev",
                        "eth0",
                    ]);
                    master.start();
                    let start = std::time::Instant::now();
                    while !holds_now(master.host(), vip()) || holds_now(backup.host(), vip()) {
                        assert!(
                            start.elapsed() < DEADLINE,
                            "the master never held the VIP alone: master {} backup {}\n{}\n---\n{}",
                            holds_now(master.host(), vip()),
                            holds_now(backup.host(), vip()),
                            master.log(),
                            backup.log()
                        );
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let t0 = std::time::Instant::now();
                    master.fault(hard);
                    loop {
                        if holds_now(backup.host(), vip()) {
                            break;
                        }
                        assert!(t0.elapsed() < DEADLINE, "no takeover");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    times.push(t0.elapsed());
                }
                let rfc = if hard {
                    master_down_interval(Version::V3, 100, interval)
                } else {
                    skew_time(Version::V3, 100, interval)
                };
                rows.push(format!(
                    "| {implementation} | {advert} s | {} | {} ms | {} ms | {} |",
                    if hard {
                        "hard (SIGKILL)"
                    } else {
                        "graceful (SIGTERM)"
                    },
                    median(times.clone()).as_millis(),
                    rfc.as_millis(),
                    times
                        .iter()
                        .map(|t| t.as_millis().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            backup.fault(false);
        }
    }
    println!("| backup | advert_int | fault | median takeover | RFC bound | runs (ms) |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

/// `hactl-agent takeover|release` (issue 7, the drain drill): takeover on
/// the backup makes it master at once (no timer waited: the old master
/// hears the higher priority and steps down, RFC 5798 6.4.3); release
/// advertises the configured priority again, and the preempting old master
/// takes the VIP back within its Master_Down_Interval.
#[test]
fn takeover_moves_the_vip_at_once_and_release_moves_it_back() {
    require_root();
    let segment = Segment::new(2);
    let (a, b) = started_pair(&segment);

    let control = |agent: &Agent, verb: &str, instance: &str| {
        let out = Command::new(AGENT)
            .args([verb, "--instance", instance, "--socket"])
            .arg(agent.socket())
            .output()
            .expect("run hactl-agent");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        control(&b, "takeover", "nosuch").0,
        Some(1),
        "an unknown instance is refused"
    );
    assert_eq!(
        b.instance().state,
        "BACKUP",
        "a refused takeover changes nothing"
    );

    let asked = monotonic_ns();
    let (code, out) = control(&b, "takeover", "VI_1");
    assert_eq!((code, out.trim()), (Some(0), "VI_1"));
    assert_master_and_backup(&b, &a);
    let took = Duration::from_nanos(b.last_transition_to("MASTER").saturating_sub(asked));
    // At once: well under the Skew_Time of the old master's priority, the
    // smallest timer a failover could have waited.
    assert!(
        took <= skew_time(Version::V3, 150, ADVERT) + MARGIN,
        "takeover took {took:?}"
    );
    let i = b.instance();
    assert_eq!((i.priority, i.effective_priority), (100, 254));
    assert!(
        i.transitions
            .last()
            .is_some_and(|t| t.reason.contains("takeover")),
        "{:?}",
        i.transitions
    );

    let released = monotonic_ns();
    let (code, _) = control(&b, "release", "VI_1");
    assert_eq!(code, Some(0));
    assert_master_and_backup(&a, &b);
    let back = Duration::from_nanos(a.last_transition_to("MASTER").saturating_sub(released));
    let mdi = master_down_interval(Version::V3, 150, ADVERT);
    assert!(
        back <= mdi + MARGIN,
        "release hand-back took {back:?}, Master_Down_Interval {mdi:?}"
    );
    assert_eq!(b.instance().effective_priority, 100);
}
