//! `hactl lab`: a local replica of an inventory's hosts in Linux namespaces,
//! the test bed of every other feature.
//!
//! Each host gets a network namespace (`hl-<lab>.<host>`), a UTS namespace
//! whose hostname is its inventory name, a mount namespace with private
//! `/etc/hactl`, `/var/lib/hactl`, `/run/hactl`, `/etc/keepalived`,
//! `/usr/local/lib/hactl`, `/etc/ssh` and `/run/sshd`, an `/etc/hosts` that
//! names every lab host, and an sshd on its
//! inventory address and port. The controller (the namespace hactl runs in)
//! reaches the hosts through one veth per subnet, so plain `ssh` with the
//! lab's key works, and hactl's SSH layer picks the key up through
//! [`Lab::ssh_identity`].
//!
//! Files: `up.rs` builds (idempotent), `down.rs` removes (also after a
//! crash), `holder.rs` is the per-host process that owns the namespaces,
//! `topology.rs` plans subnets, `names.rs` names things, `paths.rs` lays out
//! the state directory, `state.rs` records what was built, `ssh.rs` writes
//! keys and configs, `system.rs` runs `ip` and reads `/proc`.

mod down;
mod error;
mod holder;
mod names;
mod paths;
mod ssh;
mod state;
mod system;
mod topology;
mod up;

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::Duration;

use serde::Serialize;

pub use error::LabError;
pub use names::LabName;
pub use paths::{LabPaths, PRIVATE_DIRS, PRIVATE_HOSTS_FILE, SYSTEM_LAB_ROOT};
pub use ssh::SshIdentity;
pub use topology::LabHost;

use paths::{client_key, known_hosts, ssh_config};
use state::LabState;
use system::{describe, namespace_exists};

/// How long `status` waits for a host's SSH banner.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A lab by name. Holds no live state: every call reads the state
/// directory and the machine, so a fresh `Lab` can manage a lab that
/// another (maybe dead) process built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    name: LabName,
    dir: PathBuf,
}

/// What `up` did. An empty `changes` means the lab was already as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpReport {
    pub lab: LabName,
    pub changes: Vec<String>,
    pub identity: SshIdentity,
}

impl UpReport {
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What `down` removed; empty when there was no lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownReport {
    pub lab: LabName,
    pub removed: Vec<String>,
}

/// The lab as `status` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabStatus {
    pub lab: LabName,
    pub hosts: Vec<HostStatus>,
}

impl LabStatus {
    /// Whether every host runs and answers SSH.
    pub fn is_healthy(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.namespace_exists && h.sshd_pid.is_some() && h.answers_ssh)
    }
}

/// One host as `status` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub address: Ipv4Addr,
    pub ssh_port: u16,
    pub namespace: String,
    pub namespace_exists: bool,
    /// The PID of the host's sshd (its namespace holder) if it runs.
    pub sshd_pid: Option<u32>,
    /// Whether `address:port` sent an SSH banner within a second.
    pub answers_ssh: bool,
}

impl Lab {
    pub fn new(name: LabName, paths: &LabPaths) -> Lab {
        let dir = paths.lab_dir(&name);
        // The holder script and ssh_config need absolute paths.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Lab { name, dir }
    }

    pub fn name(&self) -> &LabName {
        &self.name
    }

    /// The lab's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key, known_hosts and ssh_config that log into the lab's hosts.
    pub fn ssh_identity(&self) -> SshIdentity {
        SshIdentity {
            private_key: client_key(&self.dir),
            known_hosts: known_hosts(&self.dir),
            ssh_config: ssh_config(&self.dir),
        }
    }

    /// Whether the lab has a state file (it was built and not removed).
    pub fn exists(&self) -> bool {
        paths::state_file(&self.dir).exists()
    }

    /// Each host of the lab: namespace present, sshd running, SSH answering.
    pub fn status(&self) -> Result<LabStatus, LabError> {
        let state = self.load()?;
        let hosts = thread::scope(|scope| {
            let probes: Vec<_> = state
                .hosts
                .iter()
                .map(|host| scope.spawn(|| self.host_status(host)))
                .collect();
            probes
                .into_iter()
                .zip(&state.hosts)
                .map(|(probe, host)| {
                    // A panicking probe is a bug; report the host as down.
                    probe.join().unwrap_or_else(|_| HostStatus {
                        name: host.name.clone(),
                        address: host.address,
                        ssh_port: host.ssh_port,
                        namespace: names::host_namespace(&self.name, &host.name),
                        namespace_exists: false,
                        sshd_pid: None,
                        answers_ssh: false,
                    })
                })
                .collect()
        });
        Ok(LabStatus {
            lab: self.name.clone(),
            hosts,
        })
    }

    fn host_status(&self, host: &LabHost) -> HostStatus {
        let namespace = names::host_namespace(&self.name, &host.name);
        HostStatus {
            name: host.name.clone(),
            address: host.address,
            ssh_port: host.ssh_port,
            namespace_exists: namespace_exists(&namespace),
            sshd_pid: holder::running_pid(&self.dir, host, &namespace),
            answers_ssh: ssh::answers_ssh(host.address, host.ssh_port, PROBE_TIMEOUT),
            namespace,
        }
    }

    /// A command that runs `argv` inside `host` (its network, UTS, mount and
    /// PID namespaces, working directory `/`), like `hactl lab exec HOST --
    /// CMD`.
    pub fn command<S: AsRef<OsStr>>(&self, host: &str, argv: &[S]) -> Result<Command, LabError> {
        let state = self.load()?;
        let lab_host =
            state
                .hosts
                .iter()
                .find(|h| h.name == host)
                .ok_or_else(|| LabError::UnknownHost {
                    lab: self.name.to_string(),
                    host: host.to_string(),
                })?;
        let namespace = names::host_namespace(&self.name, host);
        let pid = holder::running_pid(&self.dir, lab_host, &namespace).ok_or_else(|| {
            LabError::HostNotRunning {
                host: host.to_string(),
            }
        })?;
        let mut command = Command::new("nsenter");
        command
            .args([
                "-t",
                &pid.to_string(),
                "-n",
                "-u",
                "-m",
                "-p",
                "--wdns=/",
                "--",
            ])
            .args(argv);
        Ok(command)
    }

    /// Runs `argv` inside `host` with the caller's stdin, stdout and stderr.
    pub fn exec<S: AsRef<OsStr>>(&self, host: &str, argv: &[S]) -> Result<ExitStatus, LabError> {
        let mut command = self.command(host, argv)?;
        command.status().map_err(|source| LabError::Spawn {
            command: describe(&command),
            source,
        })
    }

    fn load(&self) -> Result<LabState, LabError> {
        LabState::load(&self.dir)?.ok_or_else(|| LabError::NotUp {
            lab: self.name.to_string(),
            path: paths::state_file(&self.dir),
        })
    }
}
