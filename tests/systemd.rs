//! The hardened unit `hactl deploy` installs, run by a real systemd (issue
//! 13, and issue 14 item 1): systemd 252 as PID 1 in the qemu VM of the
//! IPVS tests (agent/tests/vm/run.sh with HACTL_VM_INIT=systemd), the unit
//! and keepalived.conf as `hactl render` writes them for the lab
//! inventory's lb03, its VIPs on a veth named like the inventory's
//! interface. Deploy-style start, `systemctl reload` (SIGHUP, same process,
//! the new VIP applied), `systemctl stop` (VIPs gone, ExecStopPost ran),
//! SIGKILL (ExecStopPost removes the VIPs at once, Restart=on-failure brings
//! the agent back), and the hardening seen from /proc: capabilities,
//! seccomp, the read-only mount namespace, SCHED_RR on the VRRP threads.
//!
//! One boot, one test; its own harness (as the IPVS tests): on the host it
//! renders the files and boots the VM with this binary as the guest's test
//! unit; inside it runs the test. Skipped, loudly, where qemu cannot run.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const NAME: &str = "systemd_unit_start_reload_stop_and_kill";
const HOST: &str = "lb03";
const UNIT: &str = "hactl-agent";
const IFACE: &str = "eth0";
/// lb03's instance `api` in inventories/lab.yaml, and the VIP the changed
/// inventory adds to it (the reload).
const VIPS: [&str; 2] = ["10.213.0.110/24", "10.213.0.111/24"];
const ADDED_VIP: &str = "10.213.0.112/24";
/// Generous: TCG emulation on a loaded box.
const DEADLINE: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let mut filters = Vec::new();
    let mut words = args.iter();
    while let Some(w) = words.next() {
        if [
            "--skip",
            "--test-threads",
            "--format",
            "--color",
            "--logfile",
            "-Z",
        ]
        .contains(&w.as_str())
        {
            words.next();
        } else if !w.starts_with('-') {
            filters.push(w.as_str());
        }
    }
    let ignored = args.iter().any(|a| a == "--ignored");
    let selected = !ignored
        && (filters.is_empty()
            || filters
                .iter()
                .any(|f| if exact { NAME == *f } else { NAME.contains(f) }));
    if !selected {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.00s\n"
        );
        return;
    }
    let code = if std::env::var_os("HACTL_IN_VM").is_some() {
        in_vm()
    } else {
        on_host(&args)
    };
    std::process::exit(code);
}

/// The files the guest installs: the unit and lb03's config as rendered,
/// and the config of an inventory with one more VIP.
fn render(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lab = fs::read_to_string(root.join("inventories/lab.yaml")).unwrap();
    let before = "vips: [10.213.0.110/24, 10.213.0.111/24]";
    assert!(lab.contains(before), "lab.yaml: lb03's VIPs moved");
    let changed = lab.replace(
        before,
        &format!("vips: [10.213.0.110/24, 10.213.0.111/24, {ADDED_VIP}]"),
    );
    for (name, text) in [("v1", &lab), ("v2", &changed)] {
        let inv = dir.join(format!("{name}.yaml"));
        fs::write(&inv, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
            .arg("render")
            .arg(&inv)
            .args(["--host", HOST, "--out"])
            .arg(dir.join(name))
            .env_remove("HACTL_INVENTORY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hactl render {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let unit = |v: &str| fs::read(dir.join(v).join("hactl-agent.service")).unwrap();
    assert_eq!(unit("v1"), unit("v2"), "a VIP more changes the unit");
}

fn on_host(args: &[String]) -> i32 {
    let me = std::env::current_exe().unwrap();
    let agent = Path::new(env!("CARGO_BIN_EXE_hactl")).with_file_name("hactl-agent");
    if !agent.exists() {
        eprintln!(
            "systemd test: {} is missing: run `cargo build -p hactl-agent` first",
            agent.display()
        );
        return 1;
    }
    let files = std::env::temp_dir().join(format!("hactl-systemd-{}", std::process::id()));
    let _ = fs::remove_dir_all(&files);
    fs::create_dir_all(&files).unwrap();
    render(&files);
    let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/agent/tests/vm/run.sh");
    println!("systemd test: booting the test VM with systemd as PID 1 (qemu TCG)");
    let started = Instant::now();
    let status = Command::new(runner)
        .arg(&me)
        .args(args)
        .env("HACTL_VM_INIT", "systemd")
        .env("HACTL_VM_FILES", &files)
        .env(
            "HACTL_VM_TIMEOUT",
            std::env::var("HACTL_VM_TIMEOUT").unwrap_or_else(|_| "240".into()),
        )
        .status();
    let _ = fs::remove_dir_all(&files);
    match status {
        Ok(s) if s.code() == Some(125) => {
            println!(
                "\nsystemd test: SKIPPED {NAME}: qemu cannot run on this machine (see the message above)"
            );
            println!(
                "\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n"
            );
            0
        }
        Ok(s) => {
            println!(
                "systemd test: the VM ran for {:.1}s",
                started.elapsed().as_secs_f64()
            );
            s.code().unwrap_or(1)
        }
        Err(e) => {
            eprintln!("systemd test: cannot run {runner}: {e}");
            1
        }
    }
}

fn in_vm() -> i32 {
    println!("\nrunning 1 test (inside the VM, systemd as PID 1)");
    let t = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(test));
    let took = t.elapsed().as_secs_f64();
    if outcome.is_err() {
        let _ = Command::new("journalctl")
            .args(["--no-pager", "-o", "short-monotonic", "-n", "80"])
            .status();
    }
    let ok = outcome.is_ok();
    println!(
        "test {NAME} ... {} ({took:.1}s)",
        if ok { "ok" } else { "FAILED" }
    );
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {took:.2}s\n",
        if ok { "ok" } else { "FAILED" },
        u8::from(ok),
        u8::from(!ok)
    );
    if ok { 0 } else { 101 }
}

#[track_caller]
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[track_caller]
fn systemctl(args: &[&str]) {
    run("systemctl", args);
}

fn show(property: &str) -> String {
    let out = run("systemctl", &["show", UNIT, "-p", property, "--value"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn main_pid() -> u32 {
    show("MainPID").parse().unwrap_or(0)
}

/// The addresses on the VIP interface.
fn addresses() -> BTreeSet<String> {
    let out = run("/usr/sbin/ip", &["-o", "-4", "addr", "show", "dev", IFACE]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet")?;
            w.next().map(str::to_owned)
        })
        .collect()
}

fn set(vips: &[&str]) -> BTreeSet<String> {
    vips.iter().map(|v| (*v).to_owned()).collect()
}

#[track_caller]
fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agent's answer on its status socket: instance name -> state.
fn status() -> Option<Vec<(String, String)>> {
    let out = Command::new("/usr/local/lib/hactl/hactl-agent")
        .args(["status", "--json", "--socket", "/run/hactl/agent.sock"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        v["instances"]
            .as_array()?
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap_or_default().to_owned(),
                    i["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

#[track_caller]
fn wait_master() {
    wait_for("the status socket to answer api MASTER", DEADLINE, || {
        status()?
            .iter()
            .any(|(n, s)| n == "api" && s == "MASTER")
            .then_some(())
    });
}

#[track_caller]
fn wait_vips(want: &BTreeSet<String>) -> Duration {
    let start = Instant::now();
    wait_for(&format!("the VIPs {want:?} on {IFACE}"), DEADLINE, || {
        want.is_subset(&addresses()).then_some(())
    });
    start.elapsed()
}

#[track_caller]
fn wait_no_vips(vips: &BTreeSet<String>) -> Duration {
    let start = Instant::now();
    wait_for(
        &format!("the VIPs {vips:?} gone from {IFACE}"),
        DEADLINE,
        || addresses().is_disjoint(vips).then_some(()),
    );
    start.elapsed()
}

/// The runs of ExecStopPost's `hactl-agent cleanup` so far, from the
/// unit's journal: what each said (`removed N address(es)`). systemd
/// resets the ExecStopPost status `systemctl show` reports once the unit
/// is inactive, so the journal is the record.
fn cleanups() -> Vec<String> {
    journal_says(" address(es)")
        .into_iter()
        .filter(|l| l.starts_with("removed "))
        .collect()
}

/// Waits for cleanup run number `n` (from 1) to be in the journal.
#[track_caller]
fn wait_cleanup(n: usize) -> String {
    wait_for(
        &format!("ExecStopPost's cleanup run {n} in the journal"),
        DEADLINE,
        || cleanups().get(n - 1).cloned(),
    )
}

fn proc_status(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn proc_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The hardening directives, seen from the running agent.
#[track_caller]
fn check_hardening(pid: u32) {
    let status = proc_status(pid);
    // CapabilityBoundingSet: NET_BIND_SERVICE(10) NET_ADMIN(12) NET_RAW(13)
    // SETUID(7) SETGID(6) KILL(5) SYS_NICE(23) IPC_LOCK(14).
    let want: u64 = [5u32, 6, 7, 10, 12, 13, 14, 23]
        .iter()
        .map(|b| 1u64 << b)
        .sum();
    let bounding = u64::from_str_radix(&proc_field(&status, "CapBnd:"), 16).unwrap();
    assert_eq!(bounding, want, "CapBnd {bounding:x}, want {want:x}");
    let effective = u64::from_str_radix(&proc_field(&status, "CapEff:"), 16).unwrap();
    assert_eq!(effective, want, "CapEff {effective:x}");
    // SystemCallArchitectures, MemoryDenyWriteExecute, RestrictNamespaces,
    // RestrictAddressFamilies, LockPersonality: seccomp filters.
    assert_eq!(proc_field(&status, "Seccomp:"), "2", "no seccomp filter");
    assert_eq!(
        proc_field(&status, "NoNewPrivs:"),
        "0",
        "NoNewPrivileges=no"
    );
    // ProtectSystem=strict, PrivateTmp: a mount namespace of its own with a
    // read-only root, writable state and runtime directories.
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("1"),
        "no mount namespace of its own"
    );
    let mounts = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let options = |point: &str| {
        mounts
            .lines()
            .rfind(|l| l.split_whitespace().nth(4) == Some(point))
            .map(|l| l.split_whitespace().nth(5).unwrap_or_default().to_owned())
    };
    assert!(
        options("/").is_some_and(|o| o.split(',').any(|x| x == "ro")),
        "/ not read-only for the agent:\n{mounts}"
    );
    for rw in ["/var/lib/hactl", "/run/hactl"] {
        assert!(
            options(rw).is_some_and(|o| o.split(',').any(|x| x == "rw")),
            "{rw} not writable for the agent:\n{mounts}"
        );
    }
    assert!(options("/tmp").is_some(), "no private /tmp:\n{mounts}");
    for hidden in ["/root", "/home"] {
        if Path::new(hidden).exists() {
            assert!(
                options(hidden).is_some(),
                "ProtectHome: {hidden} not covered"
            );
        }
    }
    println!(
        "  hardening: CapBnd=CapEff={bounding:x} Seccomp=2 NoNewPrivs=0, read-only /, private /tmp"
    );
}

/// The agent's threads under SCHED_RR (policy 2), by name; each must run
/// at the default priority 10 (setting it needs CAP_SYS_NICE).
#[track_caller]
fn rr_threads(pid: u32) -> Vec<String> {
    let mut rr = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return rr;
    };
    for task in tasks {
        let task = task.unwrap().path();
        let stat = fs::read_to_string(task.join("stat")).unwrap_or_default();
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields 40 and 41 of proc_pid_stat(5): rt_priority, policy.
        let (prio, policy) = (fields[40 - 3], fields[41 - 3]);
        if policy == "2" {
            assert_eq!(prio, "10", "VRRP thread {comm}) rt priority");
            rr.push(comm.rsplit('(').next().unwrap_or_default().to_owned());
        }
    }
    rr
}

/// The VRRP threads start under SCHED_RR: CAP_SYS_NICE is granted. They
/// are the protocol loop (the main thread, named as the binary) and the
/// receive thread of eth0 (agent/src/daemon/tasks.rs).
#[track_caller]
fn check_rr(pid: u32) {
    let want = ["hactl-agent", "vrrp-recv-eth0"];
    let rr = wait_for(&format!("{want:?} under SCHED_RR"), DEADLINE, || {
        let rr = rr_threads(pid);
        want.iter().all(|w| rr.iter().any(|t| t == w)).then_some(rr)
    });
    println!("  scheduling: SCHED_RR 10 on threads {rr:?}");
}

/// The journal's lines of the agent that say `what`.
fn journal_says(what: &str) -> Vec<String> {
    let out = run("journalctl", &["-u", UNIT, "-o", "cat", "--no-pager"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(what))
        .map(str::to_owned)
        .collect()
}

/// CLOCK_MONOTONIC of the last journal entry of the unit (systemd's own
/// included) whose message contains `what`, in seconds.
fn journal_time(what: &str) -> Option<f64> {
    let out = run("journalctl", &["-u", UNIT, "-o", "json", "--no-pager"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["MESSAGE"].as_str().is_some_and(|m| m.contains(what)))
        .filter_map(|v| v["__MONOTONIC_TIMESTAMP"].as_str()?.parse::<f64>().ok())
        .map(|us| us / 1e6)
        .next_back()
}

/// CLOCK_MONOTONIC now, from /proc/uptime (10 ms steps; no suspend here).
fn uptime() -> f64 {
    fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Deploy's modes (src/render.rs): the unit 0644, the config 0600.
fn install(from: &Path, to: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::copy(from, to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).unwrap();
}

fn test() {
    let files = PathBuf::from("/payload/files");
    run(
        "/usr/sbin/ip",
        &[
            "link", "add", IFACE, "type", "veth", "peer", "name", "vip-peer",
        ],
    );
    run("/usr/sbin/ip", &["link", "set", "vip-peer", "up"]);
    // lb03's own address (its ansible_host): the adverts' source.
    run(
        "/usr/sbin/ip",
        &["addr", "add", "10.213.0.13/24", "dev", IFACE],
    );
    run("/usr/sbin/ip", &["link", "set", IFACE, "up"]);

    // Deploy's layout (src/remote_layout.rs) and its steps: binary, config, unit,
    // daemon-reload, start.
    fs::create_dir_all("/usr/local/lib/hactl").unwrap();
    fs::create_dir_all("/etc/hactl").unwrap();
    fs::copy("/payload/hactl-agent", "/usr/local/lib/hactl/hactl-agent").unwrap();
    install(
        &files.join("v1/keepalived.conf"),
        "/etc/hactl/keepalived.conf",
        0o600,
    );
    install(
        &files.join("v1/hactl-agent.service"),
        "/etc/systemd/system/hactl-agent.service",
        0o644,
    );
    systemctl(&["daemon-reload"]);
    let t = Instant::now();
    systemctl(&["start", UNIT]);
    assert_eq!(show("ActiveState"), "active");
    let pid = main_pid();
    assert_ne!(pid, 0, "no MainPID");
    check_rr(pid);
    wait_master();
    wait_vips(&set(&VIPS));
    println!(
        "  start: MainPID {pid}, api MASTER and its VIPs after {:.2}s",
        t.elapsed().as_secs_f64()
    );
    check_hardening(pid);
    let dropped = journal_says("RLIMIT_RTTIME reached");
    if !dropped.is_empty() {
        println!("  NOTE: the VRRP threads fell back to SCHED_OTHER: {dropped:?}");
    }

    // Reload: SIGHUP to the same process, the added VIP applied.
    install(
        &files.join("v2/keepalived.conf"),
        "/etc/hactl/keepalived.conf",
        0o600,
    );
    let t = Instant::now();
    systemctl(&["reload", UNIT]);
    let all = set(&[VIPS[0], VIPS[1], ADDED_VIP]);
    // A reload that adds a VIP keeps the instance's state: the kept VIPs
    // never leave the interface.
    let mut dropped = false;
    wait_for(&format!("the VIPs {all:?} on {IFACE}"), DEADLINE, || {
        let now = addresses();
        dropped |= !now.contains(VIPS[0]);
        all.is_subset(&now).then_some(())
    });
    assert_eq!(main_pid(), pid, "reload restarted the agent");
    assert!(!dropped, "{} left the interface during the reload", VIPS[0]);
    assert_eq!(show("ActiveState"), "active");
    wait_master();
    println!(
        "  reload: same MainPID, {ADDED_VIP} added after {:.2}s ({} left the interface meanwhile: {dropped})",
        t.elapsed().as_secs_f64(),
        VIPS[0]
    );

    // Stop: the agent ends, its VIPs with it, ExecStopPost ran.
    let done = cleanups().len();
    systemctl(&["stop", UNIT]);
    assert_eq!(show("ActiveState"), "inactive");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "agent {pid} still runs"
    );
    assert!(
        addresses().is_disjoint(&all),
        "VIPs after stop: {:?}",
        addresses()
    );
    // The agent released its VIPs itself: the cleanup found none left.
    let said = wait_cleanup(done + 1);
    assert_eq!(said, "removed 0 address(es)");
    println!("  stop: agent gone, VIPs gone, ExecStopPost ran ({said})");

    // For the timeline below: the same cleanup run by hand, unsandboxed,
    // with nothing to remove.
    let t = Instant::now();
    run(
        "/usr/local/lib/hactl/hactl-agent",
        &["cleanup", "--state-dir", "/var/lib/hactl"],
    );
    let by_hand = t.elapsed();

    // SIGKILL: ExecStopPost removes the VIPs at once, Restart=on-failure
    // brings the agent back.
    systemctl(&["start", UNIT]);
    let pid = main_pid();
    check_rr(pid);
    wait_master();
    wait_vips(&all);
    let restarts: u32 = show("NRestarts").parse().unwrap();
    let killed = Instant::now();
    let killed_at = uptime();
    run("/bin/kill", &["-9", &pid.to_string()]);
    wait_no_vips(&all);
    let gone = killed.elapsed();
    let back = wait_for("a new MainPID", DEADLINE, || {
        let new = main_pid();
        (new != 0 && new != pid && show("ActiveState") == "active").then_some(killed.elapsed())
    });
    let new_pid = main_pid();
    check_rr(new_pid);
    wait_vips(&all);
    let vips_back = killed.elapsed();
    // The cleanup, not the dead agent, removed them.
    let said = wait_cleanup(done + 2);
    assert_eq!(said, format!("removed {} address(es)", all.len()));
    // Where the time went, from the journal's clock.
    let step = |what: &str| {
        journal_time(what).map_or_else(
            || "?".to_owned(),
            |t| format!("{:.0} ms", (t - killed_at) * 1000.0),
        )
    };
    println!(
        "  kill -9 timeline (journal, 10 ms steps): systemd saw the exit at {}, the cleanup's first removal at {}, its summary at {} (the cleanup by hand, without a sandbox: {:.0} ms)",
        step("Main process exited, code=killed"),
        step("removed 10.213.0.110/24"),
        step("address(es)"),
        by_hand.as_secs_f64() * 1000.0
    );
    assert_eq!(show("NRestarts").parse::<u32>().unwrap(), restarts + 1);
    println!(
        "  kill -9: VIPs gone {:.0} ms after the kill (ExecStopPost: {said}), new MainPID {new_pid} after {:.2}s (RestartSec=2), VIPs back after {:.2}s",
        gone.as_secs_f64() * 1000.0,
        back.as_secs_f64(),
        vips_back.as_secs_f64()
    );
    assert!(
        gone <= Duration::from_secs(1),
        "the killed agent's VIPs stayed {gone:?} (target 1 s)"
    );
    check_hardening(new_pid);

    systemctl(&["stop", UNIT]);
    assert!(addresses().is_disjoint(&all));
}
