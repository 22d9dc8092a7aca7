//! What the IPVS tests run inside the VM's namespaces: hactl-agent and
//! keepalived as daemons, and the kernel's table as `ipvsadm -Ln` prints
//! it, normalised so two tables compare as text.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::netns::{Host, Spawned, wait_for};

/// The agent binary inside the VM (`vm/run.sh` puts it at a fixed path,
/// since the one cargo compiled in may be under the guest's tmpfs /tmp).
pub fn agent_bin() -> String {
    std::env::var("HACTL_VM_AGENT").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hactl-agent").into())
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// Generous under TCG: the VM is slow.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A scratch directory of this test process, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "hxi{}{tag}{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon in a host's namespace, ended with SIGTERM (and waited for).
pub struct Daemon<'h> {
    pub host: &'h Host,
    pub scratch: Scratch,
    process: Option<Spawned>,
}

impl<'h> Daemon<'h> {
    /// hactl-agent with `config`.
    pub fn agent(host: &'h Host, config: &str) -> Daemon<'h> {
        let scratch = Scratch::new("a");
        std::fs::write(scratch.0.join("keepalived.conf"), config).expect("config");
        let (conf, socket, state) = (
            scratch.file("keepalived.conf"),
            scratch.file("agent.sock"),
            scratch.file("state"),
        );
        let agent = agent_bin();
        let process = host.spawn(&[
            agent.as_str(),
            "run",
            "-f",
            &conf,
            "--socket",
            &socket,
            "--state-dir",
            &state,
        ]);
        Daemon {
            host,
            scratch,
            process: Some(process),
        }
    }

    /// keepalived with `config`; `checker_only` runs its LVS half alone.
    /// It logs to syslog (there is none in the VM): with `-l` its lines
    /// would land on the VM's console, between the test results.
    pub fn keepalived(host: &'h Host, config: &str, checker_only: bool) -> Daemon<'h> {
        let scratch = Scratch::new("k");
        std::fs::write(scratch.0.join("keepalived.conf"), config).expect("config");
        let f = |n: &str| scratch.file(n);
        let (conf, pid, vrrp, checkers) =
            (f("keepalived.conf"), f("k.pid"), f("v.pid"), f("c.pid"));
        let mut argv = vec![
            "keepalived",
            "-n",
            "-D",
            "-f",
            &conf,
            "-p",
            &pid,
            "-r",
            &vrrp,
            "-c",
            &checkers,
        ];
        if checker_only {
            argv.push("-C");
        }
        let process = host.spawn(&argv);
        Daemon {
            host,
            scratch,
            process: Some(process),
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.stdout() + &p.stderr())
            .unwrap_or_default()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.process.as_ref().map_or(0, Spawned::pid);
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0));
        nix::sys::signal::kill(pid, signal).expect("signal");
    }

    /// Whether the process has ended.
    pub fn exited(&self) -> bool {
        self.process.as_ref().is_none_or(|p| {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(p.pid()).unwrap_or(0));
            // Reaped or a zombie: signal 0 fails or /proc says Z.
            nix::sys::signal::kill(pid, None).is_err()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
        })
    }

    /// SIGTERM and wait for the exit.
    #[track_caller]
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(process.pid()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        wait_for(DEADLINE, "the daemon to exit", || {
            process.child().try_wait().ok().flatten()
        });
        self.process = Some(process);
    }

    /// The agent's status as JSON (`hactl-agent status --json`).
    pub fn status(&self) -> serde_json::Value {
        let socket = self.scratch.file("agent.sock");
        let agent = agent_bin();
        let out = self
            .host
            .exec(&[agent.as_str(), "status", "--json", "--socket", &socket]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        if let Some(p) = &mut self.process
            && matches!(p.child().try_wait(), Ok(None))
        {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(p.pid()).unwrap_or(0));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5)
                && matches!(p.child().try_wait(), Ok(None))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The table of `host` as sorted lines: each service (`TCP 10.0.0.1:80 rr
/// persistent 300`) followed by its destinations (`-> 10.0.1.1:80 Masq 1`)
/// in order, without the connection counters, blanks squeezed.
pub fn table(host: &Host) -> Vec<String> {
    let text = host.run(&["ipvsadm", "-Ln"]);
    let mut services: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().skip(3) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"->") {
            if let Some((_, dests)) = services.last_mut() {
                // -> ADDR:PORT FORWARD WEIGHT ACTIVE INACTIVE
                dests.push(words[..words.len().min(4)].join(" "));
            }
        } else if !words.is_empty() {
            services.push((words.join(" "), Vec::new()));
        }
    }
    services.sort();
    services
        .into_iter()
        .flat_map(|(s, mut d)| {
            d.sort();
            std::iter::once(s).chain(d.into_iter().map(|l| format!("  {l}")))
        })
        .collect()
}

/// The table once it has stopped changing for `quiet` (checkers settle),
/// within `deadline`.
#[track_caller]
pub fn settled_table(host: &Host, quiet: Duration, deadline: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut last = table(host);
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = table(host);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet && !last.is_empty() {
            return last;
        }
        assert!(
            start.elapsed() < deadline,
            "the table did not settle within {deadline:?}: {last:#?}"
        );
    }
}
