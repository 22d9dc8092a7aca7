//! The lock that keeps cron runs of the audit from overlapping: an
//! exclusive, non-blocking `flock` on a lock file, held until the
//! [`AuditLock`] is dropped (or the process dies: the kernel releases it,
//! so a killed run never leaves a stale lock). The holder's PID is written
//! into the file so a refused run can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// The lock file used when `--lock` is not given and /run is writable.
pub const DEFAULT_LOCK: &str = "/run/hactl-audit.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another hactl audit holds the lock {}{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { path: PathBuf, holder: Option<u32> },
    #[error("cannot open the lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct AuditLock {
    _file: File,
}

/// The default lock path: /run when this user may write there, else the
/// temporary directory with the user id in the name.
pub fn default_path() -> PathBuf {
    let run = Path::new("/run");
    if rustix::fs::access(run, rustix::fs::Access::WRITE_OK).is_ok() {
        PathBuf::from(DEFAULT_LOCK)
    } else {
        std::env::temp_dir().join(format!(
            "hactl-audit-{}.lock",
            rustix::process::getuid().as_raw()
        ))
    }
}

impl AuditLock {
    /// Takes the lock or says who holds it; never waits.
    pub fn acquire(path: &Path) -> Result<AuditLock, LockError> {
        let open_error = |source| LockError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(open_error)?;
        if let Err(errno) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if errno == rustix::io::Errno::WOULDBLOCK {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            return Err(open_error(errno.into()));
        }
        // The PID is a courtesy for the refused run's message.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(AuditLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let path =
            std::env::temp_dir().join(format!("hactl-audit-lock-test-{}", std::process::id()));
        let first = AuditLock::acquire(&path).expect("first");
        match AuditLock::acquire(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        let again = AuditLock::acquire(&path).expect("free again");
        drop(again);
        let _ = std::fs::remove_file(&path);
    }
}
