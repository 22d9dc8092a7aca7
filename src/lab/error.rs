//! The lab's error type. Every failure of a system command carries the command
//! line, its exit status and its captured stderr, so `hactl lab up` can say
//! which step broke without a second run under strace.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitStatus;

/// What can go wrong while building, probing or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid lab name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("invalid lab host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    #[error("lab subnets {first} and {second} overlap")]
    OverlappingSegments { first: String, second: String },

    #[error(
        "subnet {subnet} is already routed via {device} on this machine; \
         pick another subnet for the lab"
    )]
    SubnetInUse { subnet: String, device: String },

    #[error("lab {lab} is up with other hosts; run `hactl lab down` first")]
    SpecChanged { lab: String },

    #[error("lab {lab} is not up (no state file at {path})")]
    NotUp { lab: String, path: PathBuf },

    #[error("lab {lab} has no host {host}")]
    UnknownHost { lab: String, host: String },

    #[error("lab host {host} is not running (its sshd holder is gone); run `hactl lab up`")]
    HostNotRunning { host: String },

    #[error("lab {lab}: processes {pids:?} survived SIGKILL")]
    ProcessesSurvived { lab: String, pids: Vec<u32> },

    #[error("lab host {host}: the namespace holder did not start; its log says: {log}")]
    HolderDidNotStart { host: String, log: String },

    #[error(
        "lab host {host}: sshd did not answer on {address}:{port} within {seconds} s; \
         its log says: {log}"
    )]
    SshdTimeout {
        host: String,
        address: Ipv4Addr,
        port: u16,
        seconds: u64,
        log: String,
    },

    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },

    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },

    #[error("unexpected output from `{command}`: {reason}")]
    UnexpectedOutput { command: String, reason: String },

    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("state file {path} is unreadable")]
    StateFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl LabError {
    /// The process exit code for this error: 2 for a request that can never
    /// work as written, 1 for a failure of the machine or a lab host.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::InvalidName { .. }
            | LabError::InvalidHost { .. }
            | LabError::OverlappingSegments { .. }
            | LabError::UnknownHost { .. } => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { path, source }
    }
}
