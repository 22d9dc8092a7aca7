//! The SSH layer: how hactl runs commands on inventory hosts.
//!
//! hactl drives the system `ssh` through the `openssh` crate: one
//! multiplexed master connection per host (`ssh -M -f -N`, then each command
//! is a new session over its control socket, spoken natively by
//! `native-mux`), so a run of many small commands pays for one login per
//! host. The masters live in a short private control directory, exit after
//! an idle timeout (never "forever"), and are closed when the [`Pool`] is
//! dropped or hactl is interrupted ([`Pool::close_on_interrupt`]).
//!
//! Host keys are checked strictly: a host whose key is unknown or changed
//! is refused with an error naming it. Trust on first use
//! ([`HostKeyPolicy::AcceptNew`]) must be chosen explicitly, and even then a
//! key that differs from a recorded one is refused.
//!
//! Every command is an argv quoted word by word for the remote shell
//! (`quote.rs`); become is `sudo -n --`. A command that exits non-zero is a
//! [`RemoteError`] with host, command, status and stderr.
//!
//! Files: `master.rs` starts, checks and stops master connections and reads
//! ssh's failures; `session.rs` runs commands and uploads files over one;
//! `pool.rs` holds the masters and fans work out over hosts; `quote.rs`
//! builds command lines; `error.rs` the errors.

mod error;
mod master;
mod pool;
mod quote;
mod session;

use std::path::PathBuf;
use std::time::Duration;

pub use error::{RemoteError, STDERR_LIMIT, SshError, bounded_stderr};
pub use master::CONTROL_PATH_LIMIT;
pub(crate) use pool::join_all;
pub use pool::{HostResult, MasterCloser, Pool};
pub use quote::{BECOME_PREFIX, command_line, script_argv};
pub use session::{
    CommandInput, CommandLines, CommandOutput, HostSession, RemoteCommand, RunningCommand,
};

use crate::lab::{LabHost, SshIdentity};

/// How an unknown or changed host key is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// `StrictHostKeyChecking=yes`: only keys already in known_hosts.
    #[default]
    Strict,
    /// `StrictHostKeyChecking=accept-new`: a host with no entry gets its key
    /// recorded on first use; a key that differs from an entry is refused.
    AcceptNew,
}

impl HostKeyPolicy {
    fn ssh_option(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "StrictHostKeyChecking=yes",
            HostKeyPolicy::AcceptNew => "StrictHostKeyChecking=accept-new",
        }
    }
}

/// One host as the SSH layer reaches it, from the inventory's connection
/// variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The inventory host name: errors and results are keyed by it.
    pub host: String,
    /// Where to connect (`ansible_host`, else the inventory name).
    pub address: String,
    /// `ansible_port`.
    pub port: u16,
    /// `ansible_user`.
    pub user: String,
    /// `ansible_ssh_private_key_file`; `None` lets ssh pick (agent, config).
    pub identity_file: Option<PathBuf>,
    /// A known_hosts file to use instead of the user's.
    pub known_hosts: Option<PathBuf>,
    /// `ansible_become`: commands run through `sudo -n`.
    pub become_: bool,
    /// `ansible_ssh_common_args`, already split (see [`Target::common_args`]).
    pub common_args: Vec<String>,
}

impl Target {
    /// A target on port 22 as root, without become or extra arguments.
    pub fn new(host: &str, address: &str) -> Target {
        Target {
            host: host.to_string(),
            address: address.to_string(),
            port: 22,
            user: "root".to_string(),
            identity_file: None,
            known_hosts: None,
            become_: false,
            common_args: Vec::new(),
        }
    }

    /// A lab host, logged into with the lab's key and checked against the
    /// lab's known_hosts (`hactl lab up` wrote both).
    pub fn for_lab_host(host: &LabHost, identity: &SshIdentity) -> Target {
        Target {
            port: host.ssh_port,
            identity_file: Some(identity.private_key.clone()),
            known_hosts: Some(identity.known_hosts.clone()),
            ..Target::new(&host.name, &host.address.to_string())
        }
    }

    /// Splits `ansible_ssh_common_args` as a POSIX shell would. These are
    /// options for the local ssh, trusted like the rest of the inventory
    /// (Ansible passes them the same way); the host key, control and
    /// timeout options hactl sets come first and win over them.
    pub fn common_args(host: &str, args: &str) -> Result<Vec<String>, SshError> {
        shlex::split(args).ok_or_else(|| SshError::CommonArgs {
            host: host.to_string(),
            args: args.to_string(),
        })
    }

    /// Refuses values that ssh would read as options or that cannot name a
    /// host or user.
    fn validate(&self) -> Result<(), SshError> {
        let invalid = |reason: String| SshError::InvalidTarget {
            host: self.host.clone(),
            reason,
        };
        for (what, value) in [("address", &self.address), ("user", &self.user)] {
            if value.is_empty() {
                return Err(invalid(format!("empty {what}")));
            }
            if value.starts_with('-') {
                return Err(invalid(format!("{what} {value:?} starts with '-'")));
            }
            if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(format!("{what} {value:?} holds blanks")));
            }
        }
        Ok(())
    }
}

/// Settings shared by every connection of a [`Pool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// How long a host has to accept the TCP connection (ssh's
    /// `ConnectTimeout`, whole seconds); login must finish within twice it.
    pub connect_timeout: Duration,
    /// How long one command may run, unless the command sets its own.
    pub command_timeout: Duration,
    /// How long an idle master connection outlives its last use (ssh's
    /// `ControlPersist`), in case hactl dies without closing it.
    pub control_persist: Duration,
    pub host_key_policy: HostKeyPolicy,
    /// How many hosts are worked on at once (`--forks`).
    pub forks: usize,
    /// An ssh_config to read instead of `~/.ssh/config` (`ssh -F`).
    pub ssh_config: Option<PathBuf>,
    /// Where the control directory is made; the system temporary directory
    /// (or /tmp when that path is too long for sockets) by default.
    pub control_dir_parent: Option<PathBuf>,
    pub key_exchange: KeyExchange,
}

/// Which key exchange the masters prefer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyExchange {
    /// A fast one first: OpenSSH 9.0-9.8 put `sntrup761x25519` first, whose
    /// key generation costs about 0.1 s of CPU per connection on each side
    /// (100 hosts: 10 s of CPU on each side); `curve25519-sha256` costs
    /// under 1 ms. Where the local ssh offers ML-KEM (OpenSSH 9.9+, a fast
    /// post-quantum hybrid that is its default), nothing is changed.
    #[default]
    Fast,
    /// OpenSSH's own order, untouched.
    System,
}

impl KeyExchange {
    /// The `KexAlgorithms` option to pass, if any.
    fn ssh_option(self) -> Option<&'static str> {
        static PREFERENCE: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
        if self == KeyExchange::System {
            return None;
        }
        *PREFERENCE.get_or_init(|| {
            let listed = std::process::Command::new("ssh")
                .args(["-Q", "kex"])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            fast_preference(&listed)
        })
    }
}

/// From `ssh -Q kex`: put curve25519 first unless ML-KEM (fast and
/// post-quantum) is there to lead the default order.
fn fast_preference(listed: &str) -> Option<&'static str> {
    let has = |name: &str| listed.lines().any(|l| l.trim() == name);
    if has("mlkem768x25519-sha256") || !has("curve25519-sha256") {
        return None;
    }
    Some("KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org")
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(300),
            control_persist: Duration::from_secs(60),
            host_key_policy: HostKeyPolicy::Strict,
            forks: 5,
            ssh_config: None,
            control_dir_parent: None,
            key_exchange: KeyExchange::Fast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn fast_key_exchange_unless_mlkem_leads_already() {
        let openssh_9_2 = "sntrup761x25519-sha512@openssh.com\ncurve25519-sha256\ncurve25519-sha256@libssh.org\necdh-sha2-nistp256\n";
        assert_eq!(
            fast_preference(openssh_9_2),
            Some("KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org")
        );
        let openssh_9_9 = "mlkem768x25519-sha256\nsntrup761x25519-sha512\ncurve25519-sha256\n";
        assert_eq!(fast_preference(openssh_9_9), None);
        assert_eq!(fast_preference(""), None);
        assert_eq!(KeyExchange::System.ssh_option(), None);
    }

    #[test]
    fn common_args_split_like_a_shell() {
        let args = Target::common_args("lb1", "-o ProxyJump='bastion 1' -o 'A=b c'").unwrap();
        assert_eq!(args, ["-o", "ProxyJump=bastion 1", "-o", "A=b c"]);
        assert!(matches!(
            Target::common_args("lb1", "-o 'open"),
            Err(SshError::CommonArgs { host, .. }) if host == "lb1"
        ));
    }

    #[test]
    fn targets_that_ssh_would_read_as_options_are_refused() {
        let mut target = Target::new("lb1", "-oProxyCommand=reboot");
        assert!(target.validate().is_err());
        target.address = "10.0.0.1".into();
        assert!(target.validate().is_ok());
        target.user = "root x".into();
        assert!(target.validate().is_err());
    }

    #[test]
    fn lab_targets_use_the_lab_key_and_known_hosts() {
        let mut host = LabHost::new("h2", Ipv4Addr::new(10, 213, 9, 2), 24);
        host.ssh_port = 2202;
        let identity = SshIdentity {
            private_key: "/l/id".into(),
            known_hosts: "/l/kh".into(),
            ssh_config: "/l/cfg".into(),
        };
        let target = Target::for_lab_host(&host, &identity);
        assert_eq!(target.address, "10.213.9.2");
        assert_eq!(target.port, 2202);
        assert_eq!(target.user, "root");
        assert_eq!(target.identity_file, Some("/l/id".into()));
        assert_eq!(target.known_hosts, Some("/l/kh".into()));
    }
}
