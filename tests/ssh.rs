//! The SSH layer and the facts against a real lab, as root: namespaces
//! with a real sshd each, the system ssh client. Each test builds its own
//! lab with a unique name on its own subnet (10.213.240-254.0/24, above the
//! lab tests' range) and a guard removes it even when the test panics.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hactl::facts::{
    self, AddressUse, FileHash, Hostname, Interfaces, IpvsModule, IpvsState, PidFileProcess,
    ProbeHost, ProcessState, Resolve, Selinux, SelinuxMode, Sudo, SudoState, Sysctl, TimeSyncFact,
    VrrpFirewall, VrrpReachability,
};
use hactl::lab::{Lab, LabHost, LabName, LabPaths};
use hactl::operations::{Plan, PutFile};
use hactl::ssh::{HostKeyPolicy, Pool, RemoteCommand, SshError, SshOptions, Target};

static NEXT_LAB: AtomicU8 = AtomicU8::new(0);

/// Labs per run of this binary; each gets one subnet.
const LABS_PER_RUN: u8 = 5;

/// A lab removed when the test ends, however it ends.
struct TestLab {
    lab: Lab,
    paths: LabPaths,
    hosts: Vec<LabHost>,
}

impl TestLab {
    /// `count` hosts h1, h2, ... on one subnet; h1's sshd on port 22, the
    /// others on 2202, 2203, ...
    #[track_caller]
    fn up(count: u8) -> TestLab {
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        assert!(n < LABS_PER_RUN, "out of test subnets");
        let pid = std::process::id();
        let subnet = 240 + u8::try_from(pid % 3).unwrap() * LABS_PER_RUN + n;
        let name = LabName::new(&format!("s{pid:x}x{n}")).unwrap();
        let hosts: Vec<LabHost> = (1..=count)
            .map(|i| {
                let mut host =
                    LabHost::new(&format!("h{i}"), Ipv4Addr::new(10, 213, subnet, i), 24);
                host.ssh_port = if i == 1 { 22 } else { 2200 + u16::from(i) };
                host
            })
            .collect();
        let paths = LabPaths::new(std::env::temp_dir().join(format!("ssh-tests-{pid}-{n}")));
        let test_lab = TestLab {
            lab: Lab::new(name, &paths),
            paths,
            hosts,
        };
        test_lab.lab.up(&test_lab.hosts).unwrap();
        test_lab
    }

    fn targets(&self) -> Vec<Target> {
        let identity = self.lab.ssh_identity();
        self.hosts
            .iter()
            .map(|h| Target::for_lab_host(h, &identity))
            .collect()
    }

    /// Runs a shell script inside a host, outside SSH.
    #[track_caller]
    fn in_host(&self, host: &str, script: &str) -> String {
        let output = self
            .lab
            .command(host, &["sh", "-c", script])
            .unwrap()
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn subnet(&self) -> u8 {
        self.hosts[0].address.octets()[2]
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.lab.down();
        let _ = fs::remove_dir_all(self.paths.root());
    }
}

fn options() -> SshOptions {
    SshOptions {
        connect_timeout: Duration::from_secs(3),
        command_timeout: Duration::from_secs(20),
        forks: 3,
        ..SshOptions::default()
    }
}

/// Whether a PID names a live (not zombie) process.
fn runs(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with(['Z', 'X']))
        })
        .is_some_and(|zombie| !zombie)
}

#[track_caller]
fn assert_gone_soon(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while pids.iter().any(|p| runs(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        assert!(!runs(*pid), "ssh master {pid} still runs");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn commands_fan_out_over_hosts_and_report_failures() {
    let test_lab = TestLab::up(3);
    let mut targets = test_lab.targets();
    // An address on the lab subnet with nothing behind it.
    let ghost = Target {
        host: "ghost".into(),
        address: format!("10.213.{}.77", test_lab.subnet()),
        ..targets[0].clone()
    };
    targets.insert(1, ghost);
    let rt = runtime();
    let pool = Pool::new(options()).unwrap();
    let pids = rt.block_on(async {
        // Every reachable host answers with its own name; the ghost times
        // out and the others go on.
        let started = Instant::now();
        let results = pool
            .fan_out(&targets, |session| async move {
                session.run_argv(&["uname", "-n"]).await
            })
            .await;
        let hosts: Vec<&str> = results.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts, ["h1", "ghost", "h2", "h3"]);
        for result in &results {
            match (&result.host[..], &result.result) {
                ("ghost", Err(SshError::ConnectTimeout { host, .. })) => assert_eq!(host, "ghost"),
                ("ghost", other) => panic!("ghost: {other:?}"),
                (host, Ok(name)) => assert_eq!(name.trim(), host),
                (host, Err(error)) => panic!("{host}: {error}"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );

        let h1 = pool.connect(&targets[0]).await.unwrap();
        // A failing command names host, command, status and stderr.
        match h1.run_argv(&["ls", "/no such dir"]).await {
            Err(SshError::Remote(error)) => {
                assert_eq!(error.host, "h1");
                assert_eq!(error.command, "ls '/no such dir'");
                assert_eq!(error.status, Some(2));
                assert!(error.stderr.contains("/no such dir"), "{}", error.stderr);
                assert!(!error.stderr.ends_with('\n'));
            }
            other => panic!("{other:?}"),
        }

        // Hostile arguments arrive literally and run nothing.
        let marker = "/tmp/hactl-ssh-test-pwned";
        let hostile = [
            format!("$(touch {marker})"),
            format!("; touch {marker}"),
            format!("`touch {marker}`"),
            "it's \"quoted\"\nnext line".to_string(),
        ];
        let mut argv = vec!["printf".to_string(), "%s\\0".to_string()];
        argv.extend(hostile.iter().cloned());
        let output = h1.run(&RemoteCommand::new(&argv)).await.unwrap();
        let seen: Vec<String> = output
            .stdout_text()
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        assert_eq!(seen, hostile);
        assert_eq!(
            test_lab.in_host("h1", &format!("test -e {marker} && echo yes || echo no")),
            "no"
        );

        // Upload: atomic (a new inode replaces the old file, no temporary
        // file left), with the mode asked.
        let path = "/etc/hactl/uploaded.conf";
        h1.upload(b"old\n".to_vec(), path, 0o600).await.unwrap();
        let before = test_lab.in_host("h1", &format!("stat -c %i {path}"));
        let content = b"new $(reboot) content\n".to_vec();
        h1.upload(content.clone(), path, 0o640).await.unwrap();
        assert_eq!(
            test_lab.in_host("h1", &format!("stat -c '%a %s' {path}; cat {path}")),
            format!("640 {}\nnew $(reboot) content", content.len())
        );
        assert_ne!(
            test_lab.in_host("h1", &format!("stat -c %i {path}")),
            before
        );
        assert_eq!(test_lab.in_host("h1", "ls -A /etc/hactl"), "uploaded.conf");
        // A failed upload leaves the old file and no temporary file.
        let failed = h1
            .upload(b"x".to_vec(), "/etc/hactl/missing-dir/file", 0o644)
            .await;
        assert!(matches!(failed, Err(SshError::Remote(_))), "{failed:?}");
        assert_eq!(test_lab.in_host("h1", "ls -A /etc/hactl"), "uploaded.conf");
        assert!(matches!(
            h1.upload(vec![], "relative/path", 0o644).await,
            Err(SshError::RemotePath { .. })
        ));

        // A command that outlives its timeout is reported as such.
        let slow = RemoteCommand::new(&["sleep", "5"]).timeout(Duration::from_millis(300));
        assert!(matches!(
            h1.output(&slow).await,
            Err(SshError::CommandTimeout { host, .. }) if host == "h1"
        ));

        // One master per host, reused.
        let again = pool.connect(&targets[0]).await.unwrap();
        assert_eq!(again.master_pid(), h1.master_pid());
        let pids = pool.master_pids();
        assert_eq!(pids.len(), 3, "{pids:?}");
        pids
    });
    for pid in &pids {
        assert!(runs(*pid));
    }
    drop(pool);
    assert_gone_soon(&pids);
}

/// Set for the child half of the Ctrl-C test: the targets, one per line,
/// as "host address port key known_hosts".
const INTERRUPT_CHILD: &str = "HACTL_SSH_TEST_INTERRUPT_TARGETS";

/// Where the child half writes its masters' PIDS.
const INTERRUPT_CHILD_PIDS: &str = "HACTL_SSH_TEST_INTERRUPT_PIDS";

/// The child half of `ctrl_c_stops_every_master`: connects, prints its
/// masters' PIDs, and waits to be interrupted. Returns at once when not
/// started by that test.
#[test]
fn interrupt_child() {
    let Ok(spec) = std::env::var(INTERRUPT_CHILD) else {
        return;
    };
    let targets: Vec<Target> = spec
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            Target {
                port: words[2].parse().unwrap(),
                identity_file: Some(words[3].into()),
                known_hosts: Some(words[4].into()),
                ..Target::new(words[0], words[1])
            }
        })
        .collect();
    runtime().block_on(async {
        let pool = Pool::new(options()).unwrap();
        let _handler = pool.close_on_interrupt();
        let results = pool
            .fan_out(&targets, |session| async move {
                session.run_argv(&["true"]).await
            })
            .await;
        assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
        let pids: Vec<String> = pool.master_pids().iter().map(u32::to_string).collect();
        let report = PathBuf::from(std::env::var(INTERRUPT_CHILD_PIDS).unwrap());
        let text = format!("{}\n{}", pids.join(" "), pool.control_dir().display());
        fs::write(report.with_extension("tmp"), text).unwrap();
        fs::rename(report.with_extension("tmp"), &report).unwrap();
        std::future::pending::<()>().await;
    });
}

#[test]
fn ctrl_c_stops_every_master() {
    let test_lab = TestLab::up(2);
    let spec: Vec<String> = test_lab
        .targets()
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {} {}",
                t.host,
                t.address,
                t.port,
                t.identity_file.as_ref().unwrap().display(),
                t.known_hosts.as_ref().unwrap().display()
            )
        })
        .collect();
    let report = test_lab.paths.root().join("child-pids");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "interrupt_child", "--test-threads=1"])
        .env(INTERRUPT_CHILD, spec.join("\n"))
        .env(INTERRUPT_CHILD_PIDS, &report)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !report.exists() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child reported no master PIDs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = fs::read_to_string(&report).unwrap();
    let (pids, control_dir) = text.split_once('\n').unwrap();
    let control_dir = PathBuf::from(control_dir);
    assert!(control_dir.is_dir());
    let pids: Vec<u32> = pids.split(' ').map(|pid| pid.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    for pid in &pids {
        assert!(runs(*pid), "master {pid} is not running");
    }
    let child_pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(child_pid, rustix::process::Signal::INT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not exit on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_gone_soon(&pids);
    assert!(
        !control_dir.exists(),
        "{} left behind",
        control_dir.display()
    );
}

#[test]
fn an_interrupt_handler_can_stop_every_master_while_the_pool_lives() {
    let test_lab = TestLab::up(2);
    let targets = test_lab.targets();
    let rt = runtime();
    let pool = Pool::new(options()).unwrap();
    let results = rt.block_on(pool.fan_out(&targets, |session| async move {
        session.run_argv(&["true"]).await.map(|_| session)
    }));
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    let pids = pool.master_pids();
    assert_eq!(pids.len(), 2);
    // What `close_on_interrupt` does on SIGINT, from another thread.
    let closer = pool.closer();
    std::thread::spawn(move || closer.close()).join().unwrap();
    assert_gone_soon(&pids);
    assert_eq!(pool.master_pids(), Vec::<u32>::new());
    // A session whose master is gone fails its commands; the pool
    // connects again on the next use.
    let h1 = results[0].result.as_ref().unwrap();
    assert!(!h1.is_connected());
    let after = rt.block_on(h1.run_argv(&["true"]));
    assert!(matches!(after, Err(SshError::Session { .. })), "{after:?}");
    let fresh = rt.block_on(pool.connect(&targets[0])).unwrap();
    assert!(fresh.is_connected());
    assert!(!pids.contains(&fresh.master_pid().unwrap()));
    assert_eq!(
        rt.block_on(fresh.run_argv(&["uname", "-n"]))
            .unwrap()
            .trim(),
        "h1"
    );
    let new_pids = pool.master_pids();
    drop(pool);
    assert_gone_soon(&new_pids);
}

#[test]
fn host_keys_are_checked_strictly_unless_trust_on_first_use_is_asked() {
    let test_lab = TestLab::up(1);
    let target = test_lab.targets().remove(0);
    let known_hosts = test_lab.lab.ssh_identity().known_hosts;
    let lab_entries = fs::read_to_string(&known_hosts).unwrap();
    let rt = runtime();
    let connect = |policy: HostKeyPolicy, known: PathBuf| {
        let pool = Pool::new(SshOptions {
            host_key_policy: policy,
            ..options()
        })
        .unwrap();
        let target = Target {
            known_hosts: Some(known),
            ..target.clone()
        };
        let result = rt.block_on(async {
            let session = pool.connect(&target).await?;
            session.run_argv(&["uname", "-n"]).await
        });
        let pids = pool.master_pids();
        drop(pool);
        assert_gone_soon(&pids);
        result
    };

    // The lab's own entry: accepted.
    assert_eq!(
        connect(HostKeyPolicy::Strict, known_hosts.clone())
            .unwrap()
            .trim(),
        "h1"
    );

    // Another key under the host's name: refused loudly, with either policy.
    let dir = test_lab.paths.root().join("keys");
    fs::create_dir_all(&dir).unwrap();
    let other = dir.join("other");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(keygen.success());
    let other_key = fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    let changed: String = lab_entries
        .lines()
        .map(|l| {
            format!(
                "{} {}\n",
                l.split_whitespace().next().unwrap(),
                other_key.join(" ")
            )
        })
        .collect();
    let changed_file = dir.join("known_hosts_changed");
    fs::write(&changed_file, &changed).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        match connect(policy, changed_file.clone()) {
            Err(error @ SshError::HostKeyChanged { .. }) => {
                assert_eq!(error.host(), Some("h1"));
                assert!(error.to_string().contains("HOST KEY CHANGED"), "{error}");
            }
            other => panic!("{policy:?}: {other:?}"),
        }
        assert_eq!(fs::read_to_string(&changed_file).unwrap(), changed);
    }

    // No entry: refused by default; recorded on first use when asked.
    let empty = dir.join("known_hosts_empty");
    fs::write(&empty, "").unwrap();
    match connect(HostKeyPolicy::Strict, empty.clone()) {
        Err(SshError::HostKeyUnknown { host, .. }) => assert_eq!(host, "h1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        connect(HostKeyPolicy::AcceptNew, empty.clone())
            .unwrap()
            .trim(),
        "h1"
    );
    let recorded = fs::read_to_string(&empty).unwrap();
    let lab_key: Vec<&str> = lab_entries
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    assert!(
        recorded.contains(&lab_key.join(" ")),
        "{recorded} lacks {lab_key:?}"
    );
    assert_eq!(
        connect(HostKeyPolicy::Strict, empty).unwrap().trim(),
        "h1",
        "the recorded key is trusted afterwards"
    );
}

#[test]
fn facts_match_the_lab() {
    let test_lab = TestLab::up(2);
    let targets = test_lab.targets();
    let (h1, h2) = (&test_lab.hosts[0], &test_lab.hosts[1]);
    let rt = runtime();
    let pool = Pool::new(options()).unwrap();
    rt.block_on(async {
        let s1 = pool.connect(&targets[0]).await.unwrap();
        let s2 = pool.connect(&targets[1]).await.unwrap();

        assert_eq!(facts::gather(&s1, &Hostname).await.unwrap(), "h1");
        let peer = Resolve { name: "h2".into() };
        assert_eq!(facts::gather(&s1, &peer).await.unwrap(), [h2.address]);
        let nowhere = Resolve {
            name: "no-such-host.invalid".into(),
        };
        assert_eq!(facts::gather(&s1, &nowhere).await.unwrap(), Vec::<Ipv4Addr>::new());

        // Time sync: whatever the host has, it is an answer, never an error;
        // the lab shares the controller's tools, so check against them.
        let sync = facts::gather(&s1, &TimeSyncFact).await.unwrap();
        let controller_has_tools = ["chronyc", "ntpq"]
            .iter()
            .any(|t| Command::new("sh").args(["-c", &format!("command -v {t}")]).status().unwrap().success())
            || Command::new("timedatectl").arg("show").output().unwrap().status.success();
        assert_eq!(sync.has_no_service(), !controller_has_tools, "{sync:?}");

        let nonlocal = Sysctl::new("net.ipv4.ip_nonlocal_bind").unwrap();
        test_lab.in_host("h1", "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind");
        assert_eq!(facts::gather(&s1, &nonlocal).await.unwrap().as_deref(), Some("1"));
        assert_eq!(facts::gather(&s2, &nonlocal).await.unwrap().as_deref(), Some("0"));
        let absent = Sysctl::new("net.ipv4.no_such_key").unwrap();
        assert_eq!(facts::gather(&s1, &absent).await.unwrap(), None);

        let interfaces = facts::gather(&s1, &Interfaces).await.unwrap();
        let eth = interfaces.iter().find(|i| i.name == h1.interface).unwrap();
        assert!(eth.up);
        assert!(eth.addresses.iter().any(|a| a.address == h1.address && a.prefix_len == 24));
        assert!(eth.subnet_contains(h2.address.into()));

        let selinux_installed = Command::new("sh").args(["-c", "command -v getenforce"]).status().unwrap().success();
        let mode = facts::gather(&s1, &Selinux).await.unwrap();
        assert_eq!(mode == SelinuxMode::Absent, !selinux_installed);

        let ipvs = facts::gather(&s1, &IpvsModule).await.unwrap();
        if std::path::Path::new("/proc/net/ip_vs").exists() {
            assert_eq!(ipvs, IpvsState::Loaded);
        } else {
            assert_ne!(ipvs, IpvsState::Loaded);
        }

        let sudo_installed = Command::new("sh").args(["-c", "command -v sudo"]).status().unwrap().success();
        let sudo = facts::gather(&s1, &Sudo).await.unwrap();
        assert_eq!(sudo == SudoState::NotInstalled, !sudo_installed, "{sudo:?}");

        s1.upload(b"hello\n".to_vec(), "/var/lib/hactl/hashed", 0o644).await.unwrap();
        let hash = FileHash {
            path: "/var/lib/hactl/hashed".into(),
        };
        assert_eq!(
            facts::gather(&s1, &hash).await.unwrap().as_deref(),
            Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        );
        let missing = FileHash {
            path: "/var/lib/hactl/none".into(),
        };
        assert_eq!(facts::gather(&s1, &missing).await.unwrap(), None);

        // An operation: the first check plans an upload, the second is a
        // no-op with its reason.
        let put = PutFile::new("/etc/hactl/op.conf", &b"priority 100\n"[..], 0o600);
        let plan = put.check(&s1).await.unwrap();
        assert!(!plan.is_noop(), "{plan:?}");
        put.apply(&s1, &plan).await.unwrap();
        match put.check(&s1).await.unwrap() {
            Plan::NoOp { reason } => assert!(reason.contains("up to date"), "{reason}"),
            other => panic!("{other:?}"),
        }

        // A process under a pid file: the lab host's sshd.
        let sshd = PidFileProcess {
            pid_file: "/etc/ssh/sshd.pid".into(),
        };
        match facts::gather(&s1, &sshd).await.unwrap() {
            ProcessState::Running { command, .. } => assert_eq!(command, "sshd"),
            other => panic!("{other:?}"),
        }
        let none = PidFileProcess {
            pid_file: "/run/hactl/none.pid".into(),
        };
        assert_eq!(facts::gather(&s1, &none).await.unwrap(), ProcessState::NoPidFile);

        // One probe exchange: VRRP both ways; h1 asks who holds h2's
        // address (h2 answers ARP) and a spare one (nobody does).
        let spare = Ipv4Addr::new(10, 213, test_lab.subnet(), 99);
        let h2_mac = test_lab.in_host("h2", &format!("cat /sys/class/net/{}/address", h2.interface));
        let ends = |targets: Vec<Ipv4Addr>| {
            vec![
                ProbeHost {
                    session: &s1,
                    address: h1.address,
                    interface: h1.interface.clone(),
                    arp_targets: targets,
                },
                ProbeHost {
                    session: &s2,
                    address: h2.address,
                    interface: h2.interface.clone(),
                    arp_targets: Vec::new(),
                },
            ]
        };
        let group = Ipv4Addr::new(224, 0, 0, 18);
        let seen = facts::probe_pair(&ends(vec![h2.address, spare]), group).await;
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(seen.vrrp[&pair("h1", "h2")], VrrpReachability::Received);
        assert_eq!(seen.vrrp[&pair("h2", "h1")], VrrpReachability::Received);
        assert_eq!(
            seen.arp[&("h1".to_string(), h2.address)],
            Ok(AddressUse::InUse { mac: Some(h2_mac) })
        );
        assert_eq!(seen.arp[&("h1".to_string(), spare)], Ok(AddressUse::Free));

        // VRRP passes h1 -> h2 until h2's firewall drops it, and the
        // firewall fact names the rule.
        assert_eq!(facts::gather(&s2, &VrrpFirewall).await.unwrap().blocking, []);
        test_lab.in_host(
            "h2",
            "nft add table inet hx && nft add chain inet hx input '{ type filter hook input priority 0; }' \
             && nft add rule inet hx input ip protocol vrrp drop",
        );
        let seen = facts::probe_pair(&ends(Vec::new()), group).await;
        assert_eq!(
            seen.vrrp[&pair("h1", "h2")],
            VrrpReachability::NotReceived { sender_error: None }
        );
        assert_eq!(seen.vrrp[&pair("h2", "h1")], VrrpReachability::Received);
        let rules = facts::gather(&s2, &VrrpFirewall).await.unwrap();
        let named: Vec<(&str, &str)> = rules
            .blocking
            .iter()
            .map(|r| (r.location.as_str(), r.rule.as_str()))
            .collect();
        assert_eq!(named.len(), 1, "{named:?}");
        assert!(named[0].0.starts_with("inet hx input handle "), "{named:?}");
        assert_eq!(named[0].1, "ip protocol vrrp drop");
    });
}
