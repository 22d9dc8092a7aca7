//! Facts, after pyinfra: what hactl needs to know about a host, each as one
//! remote command plus a pure parser of its output. The parsers never touch
//! the network, so they are tested on outputs recorded from real hosts
//! (`testdata/`); the lab tests run each command once to prove the
//! recordings still match reality.
//!
//! A command that may legitimately fail (a tool that is absent, a name that
//! does not resolve) is run with its exit status handed to the parser,
//! which decides whether that is an answer or an error. Values from the
//! inventory are argv words or positional parameters of a fixed script,
//! never part of a shell string (see `crate::ssh::quote`).
//!
//! Files: `system.rs` (hostname, sysctl, SELinux, ip_vs, sudo),
//! `network.rs` (name resolution, interfaces), `time_sync.rs`,
//! `firewall.rs` (rules that would drop VRRP), `files.rs` (hashes, pid
//! files), `probes.rs` (duplicate address check, VRRP reachability between
//! two hosts).

mod batch;
mod daemon;
mod files;
mod firewall;
mod network;
mod probes;
mod system;
mod time_sync;

pub use batch::{Answers, Batch, Slot, split_frames};
pub use daemon::{AgentAnswer, AgentStatus, Daemon, DaemonState, Supervisor};
pub use files::{FileHash, FileText, PidFileProcess, ProcessState, hash_record};
pub use firewall::{BlockingRule, FirewallBackend, FirewallRules, VrrpFirewall};
pub use network::{Interface, InterfaceAddress, Interfaces, Resolve};
pub use probes::{
    AddressUse, PairProbeReport, ProbeHost, VRRP_MULTICAST_GROUP, VrrpReachability, probe_pair,
};
pub use system::{Hostname, IpvsModule, IpvsState, Selinux, SelinuxMode, Sudo, SudoState, Sysctl};
pub use time_sync::{TimeSource, TimeSync, TimeSyncFact, TimeSyncState};

use crate::ssh::{CommandOutput, HostSession, RemoteCommand, SshError, bounded_stderr};

/// A fact: a command and a pure parser of what it printed.
pub trait Fact {
    type Output;

    /// A short name for errors and tables (`hostname`, `time sync`).
    fn name(&self) -> &'static str;

    /// The command; its become setting says whether it needs root.
    fn command(&self) -> RemoteCommand;

    /// Reads the command's output, whatever its exit status.
    fn parse(&self, output: &CommandOutput) -> Result<Self::Output, ParseError>;
}

/// Why an output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> ParseError {
        ParseError(message.into())
    }

    /// The usual error for an exit status the parser does not expect.
    pub(crate) fn unexpected(output: &CommandOutput) -> ParseError {
        let status = match output.status {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        let stderr = bounded_stderr(&output.stderr);
        if stderr.is_empty() {
            ParseError(status)
        } else {
            ParseError(format!("{status}: {stderr}"))
        }
    }
}

/// A fact that could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum FactError {
    #[error(transparent)]
    Ssh(#[from] SshError),

    #[error("{host}: cannot read the {fact} fact from {command}: {source}")]
    Parse {
        host: String,
        fact: &'static str,
        command: String,
        #[source]
        source: ParseError,
    },

    #[error("{host}: the {fact} fact did not answer within {}s", after.as_secs())]
    TimedOut {
        host: String,
        fact: &'static str,
        after: std::time::Duration,
    },

    #[error("{host}: the fact batch failed: {reason}")]
    Batch { host: String, reason: String },
}

/// Runs a fact's command on a host and parses its output.
pub async fn gather<F: Fact>(session: &HostSession, fact: &F) -> Result<F::Output, FactError> {
    let command = fact.command();
    let output = session.output(&command).await?;
    fact.parse(&output).map_err(|source| FactError::Parse {
        host: session.host().to_string(),
        fact: fact.name(),
        command: command.describe(),
        source,
    })
}

#[cfg(test)]
pub(crate) fn output(status: i32, stdout: &str, stderr: &str) -> CommandOutput {
    CommandOutput {
        status: Some(status),
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
    }
}
