//! Test topologies in network namespaces: one Ethernet segment, a bridge and
//! N hosts, built and torn down by a test.
//!
//! ```text
//!   hx<pid>x<n>h0          hx<pid>x<n>h1         ...
//!   eth0 10.77.0.1/24      eth0 10.77.0.2/24
//!        fd00:77::1/64          fd00:77::2/64
//!     |                      |
//!   p0 ------- br0 ------- p1 ...       (namespace hx<pid>x<n>b)
//! ```
//!
//! Every name carries the test process's PID and a counter, so parallel
//! tests and concurrent test binaries never meet; interface names are the
//! same in every namespace and stay short. [`Segment`]'s `Drop` kills what
//! still runs in its namespaces (by PID, they are ours) and deletes them,
//! also when the test panics. Everything shells out to iproute2 (`ip`), the
//! tool the reader would type, so a failing step prints a command to retry
//! by hand. Needs root.

use std::fs::{self, File};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use serde_json::Value;

static SEGMENTS: AtomicUsize = AtomicUsize::new(0);

/// Polls `condition` every 20 ms until it holds; panics naming `what` once
/// `deadline` has passed.
#[track_caller]
pub fn wait_until(deadline: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(deadline, what, || condition().then_some(()));
}

/// Polls `probe` every 20 ms until it yields a value; panics naming `what`
/// once `deadline` has passed.
#[track_caller]
pub fn wait_for<T>(deadline: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Formats a MAC the way `ip` prints it.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[track_caller]
fn parse_mac(text: &str) -> [u8; 6] {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16).unwrap_or_else(|_| panic!("bad MAC {text:?}")))
        .collect();
    <[u8; 6]>::try_from(bytes).unwrap_or_else(|_| panic!("bad MAC {text:?}"))
}

/// Runs `ip ARGS...` and returns its stdout, panicking with its stderr on
/// failure.
#[track_caller]
fn ip(args: &[&str]) -> String {
    checked(
        Command::new("ip").args(args),
        &format!("ip {}", args.join(" ")),
    )
}

#[track_caller]
fn checked(command: &mut Command, shown: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}"));
    assert_success(&output, shown);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[track_caller]
fn assert_success(output: &Output, shown: &str) {
    assert!(
        output.status.success(),
        "{shown} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

#[track_caller]
fn json(text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|error| panic!("ip printed bad JSON ({error}): {text}"))
}

// ===== Segment =====

/// How many hosts; more knobs can join as tests need them.
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    hosts: usize,
}

impl SegmentBuilder {
    pub fn hosts(mut self, hosts: usize) -> SegmentBuilder {
        self.hosts = hosts;
        self
    }

    /// Creates the namespaces, the bridge and the veth pairs. A failure
    /// half-way panics and the part already built is removed.
    #[track_caller]
    pub fn build(self) -> Segment {
        assert!(
            (1..=200).contains(&self.hosts),
            "a segment has 1 to 200 hosts"
        );
        let prefix = format!(
            "hx{}x{}",
            std::process::id(),
            SEGMENTS.fetch_add(1, Ordering::Relaxed)
        );
        let scratch = std::env::temp_dir().join(&prefix);
        let mut segment = Segment {
            bridge: format!("{prefix}b"),
            prefix,
            hosts: Vec::new(),
            namespaces: Vec::new(),
            scratch,
        };
        fs::create_dir_all(&segment.scratch)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", segment.scratch.display()));
        segment.add_namespace(&segment.bridge.clone());
        let bridge = segment.bridge.clone();
        ip(&[
            "-n",
            &bridge,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        for index in 0..self.hosts {
            let host = Host {
                namespace: format!("{}h{index}", segment.prefix),
                index,
                ipv4: Segment::ipv4(index as u8 + 1),
                ipv6: Segment::ipv6(index as u16 + 1),
                scratch: segment.scratch.clone(),
            };
            segment.add_namespace(&host.namespace);
            let port = format!("p{index}");
            ip(&[
                "-n",
                &bridge,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &host.namespace,
            ]);
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"]);
            let v4 = format!("{}/24", host.ipv4);
            let v6 = format!("{}/64", host.ipv6);
            ip(&["-n", &host.namespace, "addr", "add", &v4, "dev", "eth0"]);
            ip(&[
                "-n",
                &host.namespace,
                "addr",
                "add",
                &v6,
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &host.namespace, "link", "set", "eth0", "up"]);
            segment.hosts.push(host);
        }
        segment
    }
}

/// One bridged Ethernet segment of hosts, each in its own namespace.
#[derive(Debug)]
pub struct Segment {
    prefix: String,
    bridge: String,
    hosts: Vec<Host>,
    /// Every namespace created, in order, for teardown.
    namespaces: Vec<String>,
    /// Logs of spawned processes.
    scratch: PathBuf,
}

impl Segment {
    pub fn builder() -> SegmentBuilder {
        SegmentBuilder { hosts: 2 }
    }

    /// A segment of `hosts` hosts.
    #[track_caller]
    pub fn new(hosts: usize) -> Segment {
        Segment::builder().hosts(hosts).build()
    }

    /// 10.77.0.`n`: host `i` has `n = i + 1`; free numbers serve as VIPs.
    pub fn ipv4(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, n)
    }

    /// fd00:77::`n`, numbered like [`Segment::ipv4`].
    pub fn ipv6(n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, n)
    }

    #[track_caller]
    pub fn host(&self, index: usize) -> &Host {
        self.hosts
            .get(index)
            .unwrap_or_else(|| panic!("segment {} has no host {index}", self.prefix))
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The unique prefix of this segment's namespace names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Sets the bridge side of host `index`'s cable up or down: the host's
    /// eth0 keeps IFF_UP but loses its carrier, as when a cable is pulled.
    #[track_caller]
    pub fn port_set(&self, index: usize, up: bool) {
        let port = format!("p{}", self.host(index).index);
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &port,
            if up { "up" } else { "down" },
        ]);
    }

    #[track_caller]
    fn add_namespace(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Hosts first: deleting a namespace takes its veth end and with it
        // the peer in the bridge namespace.
        for namespace in self.namespaces.iter().rev() {
            kill_namespace_processes(namespace);
            let deleted = Command::new("ip")
                .args(["netns", "del", namespace])
                .output();
            if !matches!(&deleted, Ok(output) if output.status.success()) {
                eprintln!("warning: could not delete network namespace {namespace}: {deleted:?}");
            }
        }
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

/// Kills, by PID, whatever still runs in `namespace`: only processes this
/// test started can be there, since the namespace's name is ours alone.
fn kill_namespace_processes(namespace: &str) {
    let Ok(output) = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
    else {
        return;
    };
    for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

// ===== Host =====

/// A host of a [`Segment`]: a namespace with `lo` and `eth0` up.
#[derive(Debug)]
pub struct Host {
    namespace: String,
    index: usize,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    scratch: PathBuf,
}

/// A process started in a host's namespace; killed by PID (and reaped) when
/// dropped, if it still runs. Its output goes to files read with
/// [`Spawned::stdout`] and [`Spawned::stderr`].
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Host {
    /// The namespace's name (for `ip netns exec NAME` by hand).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// eth0's IPv4 address (10.77.0.i+1/24).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// eth0's IPv6 address (fd00:77::i+1/64, no DAD).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }

    fn command(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespace]).args(argv);
        command
    }

    /// Runs `argv` in the namespace and returns what it did, success or not.
    #[track_caller]
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {argv:?} in {}: {error}", self.namespace))
    }

    /// Runs `argv` in the namespace, panics unless it succeeds, returns its
    /// stdout.
    #[track_caller]
    pub fn run(&self, argv: &[&str]) -> String {
        let output = self.exec(argv);
        assert_success(&output, &format!("{argv:?} in {}", self.namespace));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts `argv` in the namespace (`ip netns exec` execs into it, so the
    /// PID is the program's own).
    #[track_caller]
    pub fn spawn(&self, argv: &[&str]) -> Spawned {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let serial = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let stdout = self.scratch.join(format!("h{}-{serial}.out", self.index));
        let stderr = self.scratch.join(format!("h{}-{serial}.err", self.index));
        let open = |path: &PathBuf| {
            File::create(path)
                .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()))
        };
        let child = self
            .command(argv)
            .stdin(Stdio::null())
            .stdout(open(&stdout))
            .stderr(open(&stderr))
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {argv:?} in {}: {error}", self.namespace));
        Spawned {
            child,
            stdout,
            stderr,
        }
    }

    /// Sets a sysctl in this namespace only (`net.*` keys are per
    /// namespace), by writing its /proc/sys file: no procps needed.
    /// Interface names with dots in `key` are not supported.
    #[track_caller]
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(&[
            "sh",
            "-c",
            "printf '%s\\n' \"$1\" > \"$2\"",
            "sh",
            value,
            &path,
        ]);
        let read = self.run(&["cat", &path]);
        assert_eq!(read.trim(), value, "{key} in {}", self.namespace);
    }

    /// The MAC of `interface`.
    #[track_caller]
    pub fn mac(&self, interface: &str) -> [u8; 6] {
        let links = json(&ip(&[
            "-n",
            &self.namespace,
            "-j",
            "link",
            "show",
            "dev",
            interface,
        ]));
        let text = links[0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("no MAC on {interface} in {}: {links}", self.namespace));
        parse_mac(text)
    }

    /// The addresses on `interface` with their prefix lengths, as
    /// `ip addr show` lists them.
    #[track_caller]
    pub fn addresses(&self, interface: &str) -> Vec<(IpAddr, u8)> {
        let links = json(&ip(&[
            "-n",
            &self.namespace,
            "-j",
            "addr",
            "show",
            "dev",
            interface,
        ]));
        let mut found = Vec::new();
        for entry in links[0]["addr_info"].as_array().into_iter().flatten() {
            let address = entry["local"].as_str().and_then(|text| text.parse().ok());
            let prefix_len = entry["prefixlen"]
                .as_u64()
                .and_then(|n| u8::try_from(n).ok());
            if let (Some(address), Some(prefix_len)) = (address, prefix_len) {
                found.push((address, prefix_len));
            }
        }
        found
    }

    /// The MAC eth0's neighbour table holds for `address`, if it holds a
    /// usable one (not FAILED or INCOMPLETE).
    #[track_caller]
    pub fn neighbour(&self, address: IpAddr) -> Option<[u8; 6]> {
        let text = address.to_string();
        let entries = json(&ip(&[
            "-n",
            &self.namespace,
            "-j",
            "neigh",
            "show",
            "to",
            &text,
            "dev",
            "eth0",
        ]));
        let entry = entries
            .as_array()?
            .iter()
            .find(|entry| entry["dst"] == text.as_str())?;
        entry["lladdr"].as_str().map(parse_mac)
    }

    /// `ip link set eth0 up|down` in this namespace.
    #[track_caller]
    pub fn link_set(&self, up: bool) {
        ip(&[
            "-n",
            &self.namespace,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]);
    }

    /// Runs `work` on a thread that has entered this namespace, so sockets
    /// it opens (netlink, packet, IP) belong to the host. The test's own
    /// thread stays where it was.
    #[track_caller]
    pub fn in_netns<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.namespace);
        let namespace =
            File::open(&path).unwrap_or_else(|error| panic!("cannot open {path}: {error}"));
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || {
                setns(&namespace, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|error| panic!("cannot enter {path}: {error}"));
                work()
            });
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs the future made by `work` to completion on a current-thread
    /// tokio runtime inside this namespace.
    #[track_caller]
    pub fn block_on<F: Future>(&self, work: impl FnOnce() -> F + Send) -> F::Output
    where
        F::Output: Send,
    {
        self.in_netns(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|error| panic!("cannot start a tokio runtime: {error}"));
            runtime.block_on(work())
        })
    }
}
