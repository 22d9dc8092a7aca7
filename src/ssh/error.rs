//! The SSH layer's errors. A failure names the host it happened on; a
//! remote command's failure also carries the command as it was sent, its
//! exit status and the stderr it wrote (trimmed and bounded), so a message
//! alone tells an operator what ran where and why it failed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// At most this many bytes of a remote command's stderr are kept.
pub const STDERR_LIMIT: usize = 4096;

/// Everything that can go wrong between hactl and a host.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("{host}: invalid target: {reason}")]
    InvalidTarget { host: String, reason: String },

    #[error("{host}: ansible_ssh_common_args has unbalanced quotes: {args:?}")]
    CommonArgs { host: String, args: String },

    #[error("cannot create the ssh control directory {}", path.display())]
    ControlDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{host}: control socket path {} is longer than {limit} bytes", path.display())]
    ControlPathTooLong {
        host: String,
        path: PathBuf,
        limit: usize,
    },

    #[error("{host}: cannot start ssh")]
    Spawn {
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{host}: no ssh connection within {}s", after.as_secs())]
    ConnectTimeout { host: String, after: Duration },

    #[error("{host}: unreachable: {detail}")]
    Unreachable { host: String, detail: String },

    #[error("{host}: login as {user} refused: {detail}")]
    AuthFailed {
        host: String,
        user: String,
        detail: String,
    },

    #[error(
        "{host}: host key is not in {known_hosts}: refused (add it to known_hosts, or allow trust on first use explicitly)"
    )]
    HostKeyUnknown { host: String, known_hosts: String },

    #[error(
        "{host}: HOST KEY CHANGED: the key offered differs from the one in {known_hosts}; refused (someone may be intercepting the connection; if the host was reinstalled, remove its old entry)"
    )]
    HostKeyChanged { host: String, known_hosts: String },

    #[error("{host}: ssh master connection failed: {detail}")]
    MasterFailed { host: String, detail: String },

    #[error("{host}: ssh session failed while running {command}")]
    Session {
        host: String,
        command: String,
        #[source]
        source: openssh::Error,
    },

    #[error("{host}: {command} did not finish within {}s", after.as_secs())]
    CommandTimeout {
        host: String,
        command: String,
        after: Duration,
    },

    #[error("{host}: remote path {path:?} is not absolute")]
    RemotePath { host: String, path: String },

    #[error("{host}: cannot read {}", path.display())]
    LocalFile {
        host: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{host}: argument {argument:?} cannot be quoted for the remote shell")]
    Quote { host: String, argument: String },

    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl SshError {
    /// The inventory host the error happened on, if it belongs to one.
    pub fn host(&self) -> Option<&str> {
        match self {
            SshError::ControlDir { .. } => None,
            SshError::InvalidTarget { host, .. }
            | SshError::CommonArgs { host, .. }
            | SshError::ControlPathTooLong { host, .. }
            | SshError::Spawn { host, .. }
            | SshError::ConnectTimeout { host, .. }
            | SshError::Unreachable { host, .. }
            | SshError::AuthFailed { host, .. }
            | SshError::HostKeyUnknown { host, .. }
            | SshError::HostKeyChanged { host, .. }
            | SshError::MasterFailed { host, .. }
            | SshError::Session { host, .. }
            | SshError::CommandTimeout { host, .. }
            | SshError::RemotePath { host, .. }
            | SshError::LocalFile { host, .. }
            | SshError::Quote { host, .. } => Some(host),
            SshError::Remote(remote) => Some(&remote.host),
        }
    }

    /// Whether the host could not be reached or logged into at all (as
    /// opposed to a command failing on it).
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            SshError::ConnectTimeout { .. }
                | SshError::Unreachable { .. }
                | SshError::AuthFailed { .. }
                | SshError::HostKeyUnknown { .. }
                | SshError::HostKeyChanged { .. }
                | SshError::MasterFailed { .. }
        )
    }
}

/// A remote command that ran and exited non-zero (or was killed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The inventory host.
    pub host: String,
    /// The command line as the remote shell received it.
    pub command: String,
    /// The exit code; `None` when a signal ended the command.
    pub status: Option<i32>,
    /// The command's stderr, trimmed and cut to [`STDERR_LIMIT`] bytes.
    pub stderr: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ", self.host, self.command)?;
        match self.status {
            Some(code) => write!(f, "exited with status {code}")?,
            None => write!(f, "was killed by a signal")?,
        }
        if !self.stderr.is_empty() {
            write!(f, ": {}", self.stderr)?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}

/// Trims `stderr` and keeps at most [`STDERR_LIMIT`] bytes of it, cut on a
/// character boundary, marking the cut.
pub fn bounded_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.len() <= STDERR_LIMIT {
        return text.to_string();
    }
    let mut end = STDERR_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [... {} more bytes]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_error_names_host_command_status_and_stderr() {
        let error = RemoteError {
            host: "lb1".into(),
            command: "ls /nope".into(),
            status: Some(2),
            stderr: "ls: cannot access '/nope'".into(),
        };
        assert_eq!(
            error.to_string(),
            "lb1: ls /nope exited with status 2: ls: cannot access '/nope'"
        );
        let killed = RemoteError {
            status: None,
            stderr: String::new(),
            ..error
        };
        assert_eq!(killed.to_string(), "lb1: ls /nope was killed by a signal");
    }

    #[test]
    fn stderr_is_trimmed_and_bounded() {
        assert_eq!(bounded_stderr(b"  oops\n\n"), "oops");
        let long = "é".repeat(STDERR_LIMIT);
        let kept = bounded_stderr(long.as_bytes());
        assert!(kept.len() < STDERR_LIMIT + 40, "{}", kept.len());
        assert!(kept.ends_with(&format!("[... {} more bytes]", STDERR_LIMIT)));
    }
}
