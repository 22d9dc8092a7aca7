//! A VRRP speaker under test in a namespaced host: our agent or keepalived
//! 2.2.7, started from one keepalived.conf rendered from [`Conf`], so the
//! two run the very same file (issue 13's "beside keepalived").

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hactl_agent::status::Status;

use super::netns::{Host, Spawned, wait_for, wait_until};

pub const AGENT: &str = env!("CARGO_BIN_EXE_hactl-agent");

/// One vrrp_instance.
#[derive(Debug, Clone)]
pub struct Inst {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    /// advert_int as written (`0.01`, `1`).
    pub advert: String,
    pub vips: Vec<String>,
    /// Lines inside the block.
    pub extra: String,
}

/// A whole keepalived.conf.
#[derive(Debug, Clone, Default)]
pub struct Conf {
    /// Lines inside global_defs (router_id is added).
    pub global: String,
    /// Blocks before the instances (vrrp_script).
    pub blocks: String,
    pub instances: Vec<Inst>,
}

impl Conf {
    pub fn render(&self, router_id: &str) -> String {
        let mut text = format!(
            "global_defs {{\n  router_id {router_id}\n{}}}\n",
            self.global
        );
        text.push_str(&self.blocks);
        for i in &self.instances {
            text.push_str(&format!(
                "vrrp_instance {} {{\n  state BACKUP\n  interface {}\n  virtual_router_id {}\n  \
                 priority {}\n  version 3\n  advert_int {}\n{}  virtual_ipaddress {{\n",
                i.name, i.interface, i.vrid, i.priority, i.advert, i.extra
            ));
            for v in &i.vips {
                text.push_str(&format!("    {v}\n"));
            }
            text.push_str("  }\n}\n");
        }
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agent,
    Keepalived,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Agent => "hactl-agent",
            Kind::Keepalived => "keepalived",
        }
    }
}

/// One speaker's files and, while it runs, its process.
pub struct Node<'a> {
    pub host: &'a Host,
    pub kind: Kind,
    pub dir: PathBuf,
    pub process: Option<Spawned>,
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl<'a> Node<'a> {
    #[track_caller]
    pub fn new(host: &'a Host, kind: Kind, conf: &Conf) -> Node<'a> {
        let dir = std::env::temp_dir().join(format!(
            "hxl{}x{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let node = Node {
            host,
            kind,
            dir,
            process: None,
        };
        node.write(conf);
        node
    }

    pub fn write(&self, conf: &Conf) {
        let id = format!("r{}", self.host.namespace());
        std::fs::write(self.dir.join("keepalived.conf"), conf.render(&id)).expect("config");
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Starts the speaker without waiting for it.
    #[track_caller]
    pub fn spawn(&mut self) {
        let conf = self.path("keepalived.conf");
        let argv: Vec<String> = match self.kind {
            Kind::Agent => {
                let _ = std::fs::remove_file(self.socket());
                vec![
                    AGENT.to_owned(),
                    "run".to_owned(),
                    "-f".to_owned(),
                    conf,
                    "--socket".to_owned(),
                    self.path("agent.sock"),
                    "--state-dir".to_owned(),
                    self.path("state"),
                ]
            }
            Kind::Keepalived => {
                let (pid, vrrp_pid) = (self.path("k.pid"), self.path("v.pid"));
                let _ = std::fs::remove_file(&pid);
                let _ = std::fs::remove_file(&vrrp_pid);
                [
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
                ]
                .map(str::to_owned)
                .to_vec()
            }
        };
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.process = Some(self.host.spawn(&argv));
    }

    /// Starts the speaker; an agent is waited for until it answers.
    #[track_caller]
    pub fn start(&mut self) {
        self.spawn();
        if self.kind == Kind::Agent {
            self.wait_answering();
        }
    }

    #[track_caller]
    pub fn wait_answering(&mut self) {
        wait_until(Duration::from_secs(20), "the agent's status socket", || {
            if let Some(p) = self.process.as_mut()
                && let Ok(Some(exit)) = p.child().try_wait()
            {
                panic!("the agent exited ({exit}):\n{}", p.stderr());
            }
            self.status().is_some()
        });
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        let pid = self.process.as_ref().map_or(0, Spawned::pid);
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
    }

    /// The PIDs whose CPU and memory count for this speaker: the agent, or
    /// keepalived's parent and its VRRP child.
    pub fn pids(&self) -> Vec<i32> {
        let main = self.pid().as_raw();
        let mut pids = vec![main];
        if self.kind == Kind::Keepalived
            && let Ok(text) = std::fs::read_to_string(self.path("v.pid"))
            && let Ok(child) = text.trim().parse::<i32>()
        {
            pids.push(child);
        }
        pids
    }

    /// Sends `signal` (by PID, ours) and waits for the exit.
    #[track_caller]
    pub fn stop(&mut self, signal: nix::sys::signal::Signal) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(process.pid()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, signal);
        wait_for(Duration::from_secs(20), "the speaker to exit", || {
            process.child().try_wait().ok().flatten()
        });
        if self.kind == Kind::Keepalived && signal == nix::sys::signal::Signal::SIGKILL {
            // The VRRP child outlives a killed parent: end it too, by PID.
            if let Ok(text) = std::fs::read_to_string(self.path("v.pid"))
                && let Ok(child) = text.trim().parse::<i32>()
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), signal);
            }
        }
    }

    /// `hactl-agent status --json`, if the agent answers.
    pub fn status(&self) -> Option<Status> {
        let output = Command::new(AGENT)
            .args(["status", "--json", "--socket"])
            .arg(self.socket())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// The state of every instance, in config order.
    pub fn states(&self) -> Option<Vec<String>> {
        Some(
            self.status()?
                .instances
                .into_iter()
                .map(|i| i.state)
                .collect(),
        )
    }

    #[track_caller]
    pub fn wait_all(&self, state: &str, deadline: Duration) {
        wait_until(
            deadline,
            &format!("every instance of {} to be {state}", self.host.namespace()),
            || {
                self.states()
                    .is_some_and(|s| !s.is_empty() && s.iter().all(|x| x == state))
            },
        );
    }

    /// Transitions to MASTER: the agent's counters, keepalived's log.
    pub fn master_transitions(&self) -> u64 {
        match self.kind {
            Kind::Agent => self.status().map_or(0, |s| {
                s.instances
                    .iter()
                    .map(|i| i.transitions.iter().filter(|t| t.to == "MASTER").count() as u64)
                    .sum()
            }),
            Kind::Keepalived => self.log().matches("Entering MASTER STATE").count() as u64,
        }
    }

    /// Every state transition so far.
    pub fn transitions(&self) -> u64 {
        match self.kind {
            Kind::Agent => self.status().map_or(0, |s| {
                s.instances.iter().map(|i| i.counters.transitions).sum()
            }),
            Kind::Keepalived => {
                let log = self.log();
                (log.matches("Entering MASTER STATE").count()
                    + log.matches("Entering BACKUP STATE").count()
                    + log.matches("Entering FAULT STATE").count()) as u64
            }
        }
    }

    /// What the speaker logged so far.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.stdout() + &p.stderr())
            .unwrap_or_default()
    }

    pub fn holds(&self, interface: &str, address: IpAddr) -> bool {
        self.host
            .in_netns(|| hactl_agent::network::interface_addresses(interface).contains(&address))
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let pids = self.pids();
            let _ = p.child().kill();
            let _ = p.child().wait();
            for pid in pids.into_iter().skip(1) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU seconds (user + system) and resident bytes of `pid`, from /proc.
pub fn cpu_and_rss(pid: i32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cpu = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (t(11) + t(12)) / 100.0
        })
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    (cpu, rss)
}

/// Busy loops on every core (an equivalent of `stress-ng --cpu N`), until
/// dropped.
pub struct CpuLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    /// `workers` spinning threads at the default policy and nice 0.
    pub fn start(workers: usize) -> CpuLoad {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..workers)
            .map(|_| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Adds `count` more segments: bridge `brN` in the segment's bridge
/// namespace and an interface `vN` on every host (10.78.N.H/24), so one
/// agent can run 255 VRIDs on each. The segment's teardown deletes them
/// with its namespaces. (VLANs would do, but not every kernel has 8021q.)
#[track_caller]
pub fn add_segments(segment: &super::netns::Segment, count: u8) {
    let bridge = format!("{}b", segment.prefix());
    let ip = |argv: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(argv)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip {argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for n in 1..=count {
        let br = format!("br{n}");
        ip(&[
            "-n",
            &bridge,
            "link",
            "add",
            &br,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &bridge, "link", "set", &br, "up"]);
        for host in segment.hosts() {
            let port = format!("q{}x{n}", host.ipv4().octets()[3]);
            let name = format!("v{n}");
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
                &name,
                "netns",
                host.namespace(),
            ]);
            ip(&["-n", &bridge, "link", "set", &port, "master", &br, "up"]);
            let address = format!("10.78.{n}.{}/24", host.ipv4().octets()[3]);
            host.run(&["ip", "addr", "add", &address, "dev", &name]);
            host.run(&["ip", "link", "set", &name, "up"]);
        }
    }
}
