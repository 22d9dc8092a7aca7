//! `hactl lab` end to end, as root: real namespaces, a real sshd per host and
//! the system ssh client. Each test builds its own lab with a unique name on
//! its own subnet (10.213.N.0/24) and a guard removes it even when the test
//! panics, so the tests run in parallel and leave nothing behind.

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hactl::lab::{Lab, LabError, LabHost, LabName, LabPaths, PRIVATE_DIRS, SshIdentity};
use serde_json::Value;

/// Labs and subnets handed out so far by this test binary.
static NEXT_LAB: AtomicU8 = AtomicU8::new(0);
static NEXT_SUBNET: AtomicU8 = AtomicU8::new(0);

/// Each run of this binary owns 8 subnets 10.213.N.0/24, picked by its PID,
/// so parallel runs do not collide.
const SUBNETS_PER_RUN: u8 = 8;

/// Where a test keeps its lab state.
enum StateRoot {
    /// Under the temporary directory.
    Temporary,
    /// Under /var/lib/hactl like the default, which each host's private
    /// /var/lib/hactl hides: the holder must bind that one last.
    UnderVarLibHactl,
}

/// A lab that is removed when the test ends, however it ends.
struct TestLab {
    lab: Lab,
    paths: LabPaths,
    hosts: Vec<LabHost>,
}

impl TestLab {
    /// Builds a lab of `count` hosts named `h1`, `h2`, ... on one subnet;
    /// the first host's sshd listens on port 22, the others on 2202, ...
    #[track_caller]
    fn up(count: u8, subnets: u8, root: StateRoot) -> TestLab {
        assert!(
            is_root(),
            "the lab tests build namespaces: run them as root"
        );
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let first = NEXT_SUBNET.fetch_add(subnets, Ordering::SeqCst);
        assert!(first + subnets <= SUBNETS_PER_RUN, "out of test subnets");
        let pid = std::process::id();
        let name = LabName::new(&format!("t{pid:x}x{n}")).unwrap();
        let base = u8::try_from(pid % 30).unwrap() * SUBNETS_PER_RUN;
        // Hosts go round-robin over the lab's subnets.
        let hosts: Vec<LabHost> = (1..=count)
            .map(|i| {
                let subnet = base + first + (i - 1) % subnets;
                let mut host =
                    LabHost::new(&format!("h{i}"), Ipv4Addr::new(10, 213, subnet, i), 24);
                host.ssh_port = if i == 1 { 22 } else { 2200 + u16::from(i) };
                host
            })
            .collect();
        let parent = match root {
            StateRoot::Temporary => std::env::temp_dir(),
            StateRoot::UnderVarLibHactl => PathBuf::from("/var/lib/hactl"),
        };
        let paths = LabPaths::new(parent.join(format!("lab-tests-{pid}-{n}")));
        let test_lab = TestLab {
            lab: Lab::new(name, &paths),
            paths,
            hosts,
        };
        let report = test_lab.lab.up(&test_lab.hosts).unwrap();
        assert!(!report.is_unchanged(), "a first up must build something");
        test_lab
    }

    /// The sshd PID of every host, in host order.
    #[track_caller]
    fn sshd_pids(&self) -> Vec<u32> {
        let status = self.lab.status().unwrap();
        assert!(status.is_healthy(), "{status:?}");
        status.hosts.iter().map(|h| h.sshd_pid.unwrap()).collect()
    }

    fn name(&self) -> &LabName {
        self.lab.name()
    }

    /// Runs a shell script inside a host.
    #[track_caller]
    fn in_host(&self, host: &str, script: &str) -> Output {
        self.lab
            .command(host, &["sh", "-c", script])
            .unwrap()
            .output()
            .unwrap()
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.lab.down();
        let _ = fs::remove_dir(self.paths.root());
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// `ssh root@HOST COMMAND` with the system client, the lab's key and strict
/// host key checking against the lab's known_hosts only.
#[track_caller]
fn ssh(identity: &SshIdentity, host: &LabHost, command: &str) -> Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(&identity.private_key)
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            identity.known_hosts.display()
        ))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &host.ssh_port.to_string()])
        .arg(format!("root@{}", host.address))
        .arg(command)
        .output()
        .unwrap()
}

/// The lab's namespaces on this machine.
fn namespaces_of(lab: &LabName) -> Vec<String> {
    let listing = Command::new("ip").args(["netns", "list"]).output().unwrap();
    text(&listing.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n == format!("hl-{lab}") || n.starts_with(&format!("hl-{lab}.")))
        .map(str::to_string)
        .collect()
}

/// The controller's links that carry the lab's alias, with their IPv4
/// addresses.
fn links_of(lab: &LabName) -> Vec<(String, Vec<String>)> {
    let listing = Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .unwrap();
    let links: Value = serde_json::from_slice(&listing.stdout).unwrap();
    let alias = format!("hactl-lab:{lab}");
    let listing = Command::new("ip")
        .args(["-j", "link", "show"])
        .output()
        .unwrap();
    let aliased: BTreeSet<String> = serde_json::from_slice::<Value>(&listing.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifalias"] == alias.as_str())
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| aliased.contains(l["ifname"].as_str().unwrap()))
        .map(|l| {
            let addresses = l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["family"] == "inet")
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                .collect();
            (l["ifname"].as_str().unwrap().to_string(), addresses)
        })
        .collect()
}

/// Whether a PID names a running process (zombies are gone: this machine's
/// init does not reap them).
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
fn assert_lab_is_gone(test_lab: &TestLab, pids: &[u32]) {
    let name = test_lab.name();
    assert_eq!(namespaces_of(name), Vec::<String>::new(), "namespaces left");
    assert_eq!(links_of(name), vec![], "controller links left");
    for pid in pids {
        assert!(!runs(*pid), "process {pid} still runs");
    }
    assert!(!test_lab.lab.dir().exists(), "state directory left");
    assert!(matches!(test_lab.lab.status(), Err(LabError::NotUp { .. })));
}

#[test]
fn a_three_host_lab_answers_ssh_and_keeps_hosts_apart() {
    let test_lab = TestLab::up(3, 1, StateRoot::Temporary);
    let lab = &test_lab.lab;
    let identity = lab.ssh_identity();
    let name = test_lab.name();

    // Every host answers SSH from the controller under its inventory name.
    for host in &test_lab.hosts {
        let output = ssh(&identity, host, "hostname");
        assert!(
            output.status.success(),
            "{}: {}",
            host.name,
            text(&output.stderr)
        );
        assert_eq!(text(&output.stdout), host.name);
    }
    let by_name = Command::new("ssh")
        .arg("-F")
        .arg(&identity.ssh_config)
        .args(["h2", "cat /proc/sys/kernel/hostname"])
        .output()
        .unwrap();
    assert!(by_name.status.success(), "{}", text(&by_name.stderr));
    assert_eq!(text(&by_name.stdout), "h2");

    // The controller reaches the lab through one link, on the lab subnet.
    let controller = format!("10.213.{}.254/24", test_lab.hosts[0].address.octets()[2]);
    let links = links_of(name);
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].1, [controller]);

    // The hosts reach each other, by name: h1 fetches the host keys of h2
    // and h3 over the bridge, and they are the keys the controller trusts.
    let known_hosts = fs::read_to_string(&identity.known_hosts).unwrap();
    for peer in &test_lab.hosts[1..] {
        let scan = test_lab.in_host(
            "h1",
            &format!(
                "ssh-keyscan -T 5 -t ed25519 -p {} {}",
                peer.ssh_port, peer.name
            ),
        );
        assert!(scan.status.success(), "{}", text(&scan.stderr));
        let scanned = text(&scan.stdout);
        // "[h2]:2202 ssh-ed25519 AAAA...": the key after the name.
        let (_, key) = scanned
            .lines()
            .find(|l| !l.starts_with('#'))
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("no key in {scanned:?}"));
        let trusted = format!("[{}]:{} {key}", peer.address, peer.ssh_port);
        assert!(
            known_hosts.lines().any(|l| l == trusted),
            "{trusted} not in\n{known_hosts}"
        );
    }

    // Each host's directories are its own.
    let probe = format!("lab-test-{name}");
    let write: Vec<String> = PRIVATE_DIRS
        .iter()
        .map(|dir| format!("echo from-h1 > {dir}/{probe}"))
        .collect();
    let output = test_lab.in_host("h1", &write.join(" && "));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let read: Vec<String> = PRIVATE_DIRS
        .iter()
        .map(|dir| format!("cat {dir}/{probe}"))
        .collect();
    let output = test_lab.in_host("h1", &read.join(" && "));
    assert_eq!(
        text(&output.stdout),
        vec!["from-h1"; PRIVATE_DIRS.len()].join("\n")
    );
    for other in ["h2", "h3"] {
        for dir in PRIVATE_DIRS {
            let output = test_lab.in_host(other, &format!("test -e {dir}/{probe}"));
            assert_eq!(output.status.code(), Some(1), "{other} sees {dir}/{probe}");
        }
    }
    let controller_hosts = fs::read_to_string("/etc/hosts").unwrap();
    assert!(!controller_hosts.contains(&format!("hactl lab {name}")));
    for dir in PRIVATE_DIRS {
        assert!(
            !Path::new(dir).join(&probe).exists(),
            "the controller sees {dir}/{probe}"
        );
    }

    // Each host sees its own processes only (issue 10: a PID namespace per
    // host), sshd first: a process started on h1 over SSH is invisible to
    // h2, and `pkill` on h2 cannot reach it.
    let marker = format!("sleep 3{}", std::process::id() % 1000);
    let h1 = &test_lab.hosts[0];
    let started = ssh(
        &identity,
        h1,
        &format!("setsid {marker} </dev/null >/dev/null 2>&1 & echo started"),
    );
    assert!(started.status.success(), "{}", text(&started.stderr));
    let seen_on = |host: &str| {
        text(
            &test_lab
                .in_host(
                    host,
                    &format!("pgrep -fx '{marker}' >/dev/null && echo yes || echo no"),
                )
                .stdout,
        )
    };
    // The background child may not have run `sleep` yet when ssh returns.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen_on("h1") != "yes" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen_on("h1"), "yes");
    assert_eq!(seen_on("h2"), "no");
    let killed = test_lab.in_host("h2", &format!("pkill -fx '{marker}'; echo $?"));
    assert_eq!(
        text(&killed.stdout),
        "1",
        "h2's pkill found nothing to kill"
    );
    assert_eq!(seen_on("h1"), "yes");
    let init = test_lab.in_host("h3", "cat /proc/1/comm");
    assert_eq!(text(&init.stdout), "sshd");
    test_lab.in_host("h1", &format!("pkill -fx '{marker}'"));

    // Status sees every host up.
    let status = lab.status().unwrap();
    let names: Vec<&str> = status.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["h1", "h2", "h3"]);
    let pids = test_lab.sshd_pids();

    // A second up changes nothing.
    let again = lab.up(&test_lab.hosts).unwrap();
    assert!(again.is_unchanged(), "{:?}", again.changes);
    assert_eq!(test_lab.sshd_pids(), pids);

    // Down removes it all; a second down has nothing left to do.
    let report = lab.down().unwrap();
    assert!(!report.removed.is_empty());
    assert_lab_is_gone(&test_lab, &pids);
    assert_eq!(lab.down().unwrap().removed, Vec::<String>::new());
}

#[test]
fn down_after_a_crash_removes_everything() {
    let test_lab = TestLab::up(2, 1, StateRoot::UnderVarLibHactl);
    let name = test_lab.name().clone();

    // A lab keeps the hosts it was built with.
    let mut other_hosts = test_lab.hosts.clone();
    other_hosts.pop();
    assert!(matches!(
        test_lab.lab.up(&other_hosts),
        Err(LabError::SpecChanged { .. })
    ));

    // Another lab may not take a subnet this one routes.
    let intruder = Lab::new(LabName::new(&format!("{name}i")).unwrap(), &test_lab.paths);
    match intruder.up(&test_lab.hosts) {
        Err(LabError::SubnetInUse { subnet, .. }) => {
            assert_eq!(
                subnet,
                format!("10.213.{}.0/24", test_lab.hosts[0].address.octets()[2])
            );
        }
        other => panic!("expected SubnetInUse, got {other:?}"),
    }
    assert!(!intruder.dir().exists());
    assert_eq!(namespaces_of(intruder.name()), Vec::<String>::new());

    // Something else runs in a host, as an agent would.
    let mut straggler = test_lab
        .lab
        .command("h2", &["sleep", "600"])
        .unwrap()
        .spawn()
        .unwrap();
    let mut pids = test_lab.sshd_pids();
    pids.push(straggler.id());
    assert!(test_lab.lab.dir().join("state.json").exists());

    // The controller "crashed": a fresh handle, with only the state on disk.
    let fresh = Lab::new(name, &test_lab.paths);
    fresh.down().unwrap();
    let status = straggler.wait().unwrap();
    assert_eq!(status.signal(), Some(15), "the straggler ends by SIGTERM");
    assert_lab_is_gone(&test_lab, &pids);
}

#[test]
fn down_finds_a_lab_whose_state_file_is_lost() {
    let test_lab = TestLab::up(1, 1, StateRoot::Temporary);
    let pids = test_lab.sshd_pids();
    let state: PathBuf = test_lab.lab.dir().join("state.json");
    fs::remove_file(&state).unwrap();
    assert!(!test_lab.lab.exists());

    let fresh = Lab::new(test_lab.name().clone(), &test_lab.paths);
    let report = fresh.down().unwrap();
    assert!(!report.removed.is_empty());
    assert_lab_is_gone(&test_lab, &pids);
}

#[test]
fn up_repairs_a_lab_on_two_subnets_whose_sshd_died() {
    let test_lab = TestLab::up(2, 2, StateRoot::UnderVarLibHactl);
    let lab = &test_lab.lab;
    let identity = lab.ssh_identity();
    let (h1, h2) = (&test_lab.hosts[0], &test_lab.hosts[1]);
    assert_ne!(h1.address.octets()[2], h2.address.octets()[2]);

    // One controller link per subnet, each on its own subnet only.
    let mut addresses: Vec<String> = links_of(test_lab.name())
        .into_iter()
        .flat_map(|(_, addresses)| addresses)
        .collect();
    addresses.sort();
    let mut want: Vec<String> = [h1, h2]
        .iter()
        .map(|h| format!("10.213.{}.254/24", h.address.octets()[2]))
        .collect();
    want.sort();
    assert_eq!(addresses, want);

    // A host file written before the crash is there after the repair.
    let output = test_lab.in_host("h2", "echo kept > /var/lib/hactl/before");
    assert!(output.status.success(), "{}", text(&output.stderr));

    // h2's sshd dies; status says so and leaves h1 alone.
    let pids = test_lab.sshd_pids();
    let killed = Command::new("kill")
        .arg(pids[1].to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = lab.status().unwrap();
    while status.hosts[1].sshd_pid.is_some() && Instant::now() < deadline {
        status = lab.status().unwrap();
    }
    assert_eq!(status.hosts[1].sshd_pid, None, "{status:?}");
    assert!(!status.hosts[1].answers_ssh);
    assert_eq!(status.hosts[0].sshd_pid, Some(pids[0]));
    assert!(status.hosts[0].answers_ssh);
    assert!(matches!(
        lab.exec("h2", &["true"]),
        Err(LabError::HostNotRunning { .. })
    ));

    // Up restarts exactly that sshd, with the same host key.
    let report = lab.up(&test_lab.hosts).unwrap();
    assert_eq!(report.changes.len(), 1, "{:?}", report.changes);
    assert!(
        report.changes[0].starts_with("started sshd of h2"),
        "{:?}",
        report.changes
    );
    for host in [h1, h2] {
        let output = ssh(
            &identity,
            host,
            "hostname; cat /var/lib/hactl/before 2>/dev/null || true",
        );
        assert!(
            output.status.success(),
            "{}: {}",
            host.name,
            text(&output.stderr)
        );
        let want = if host.name == "h2" { "h2\nkept" } else { "h1" };
        assert_eq!(text(&output.stdout), want);
    }
    let status = lab
        .exec("h2", &["test", "-f", "/etc/ssh/sshd_config"])
        .unwrap();
    assert!(status.success());
}

// ===== the CLI on inventories/lab.yaml =====

/// `hactl lab down` for an inventory, however the test ends.
struct CliLab {
    inventory: PathBuf,
    state: PathBuf,
}

impl CliLab {
    fn hactl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hactl"))
            .args(args)
            .arg(&self.inventory)
            .env("HACTL_LAB_DIR", &self.state)
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    }
}

impl Drop for CliLab {
    fn drop(&mut self) {
        let _ = self.hactl(&["lab", "down"]);
        let _ = fs::remove_dir_all(self.inventory.parent().unwrap());
    }
}

/// The demo inventory, moved to subnet 10.213.250.0/24 (outside the
/// library tests' subnets) and a lab name of this run, built through the
/// binary: every host answers SSH with its own hostname, `up` again changes
/// nothing, `exec` runs inside the host, and `down` leaves no namespace.
#[test]
fn the_cli_builds_the_demo_inventory_and_removes_it() {
    assert!(
        is_root(),
        "the lab tests build namespaces: run them as root"
    );
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("hactl-lab-cli-{pid}"));
    fs::create_dir_all(&dir).unwrap();
    let demo = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/lab.yaml"))
        .unwrap()
        .replace("10.213.0.", "10.213.250.");
    let inventory = dir.join(format!("cli{pid:x}.yaml"));
    fs::write(&inventory, demo).unwrap();
    let lab = CliLab {
        inventory,
        state: dir.join("state"),
    };
    let lab_name = format!("cli{pid:x}");

    let up = lab.hactl(&["lab", "up"]);
    assert!(up.status.success(), "lab up: {}", text(&up.stderr));

    let status = lab.hactl(&["--json", "lab", "status"]);
    assert!(
        status.status.success(),
        "lab status: {}",
        text(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let hosts: Vec<&str> = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["lb01", "lb02", "lb03", "lb04"]);

    let ssh_config = lab.state.join(&lab_name).join("ssh_config");
    for host in &hosts {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(&ssh_config)
            .args(["-o", "BatchMode=yes", host, "hostname"])
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh {host}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), *host);
    }

    let again = lab.hactl(&["lab", "up"]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("nothing changed"),
        "{}",
        text(&again.stdout)
    );

    let exec = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .arg("-i")
        .arg(&lab.inventory)
        .args(["lab", "exec", "lb03", "--", "hostname"])
        .env("HACTL_LAB_DIR", &lab.state)
        .output()
        .unwrap();
    assert!(exec.status.success(), "lab exec: {}", text(&exec.stderr));
    assert_eq!(text(&exec.stdout), "lb03");

    let down = lab.hactl(&["lab", "down"]);
    assert!(down.status.success(), "lab down: {}", text(&down.stderr));
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !text(&namespaces.stdout).contains(&format!("hl-{lab_name}")),
        "namespaces left: {}",
        text(&namespaces.stdout)
    );
    assert!(!lab.state.join(&lab_name).exists());
}
