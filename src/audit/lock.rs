//! The lock that keeps cron runs of the audit from overlapping: a
//! [`crate::lockfile`] held until the [`AuditLock`] is dropped (or the
//! process dies).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::lockfile::{self, Taken};

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
    lockfile::runtime_path(
        "hactl-audit.lock",
        &format!("hactl-audit-{}.lock", lockfile::uid()),
    )
}

impl AuditLock {
    /// Takes the lock or says who holds it; never waits.
    pub fn acquire(path: &Path) -> Result<AuditLock, LockError> {
        match lockfile::try_lock(path) {
            Ok(Taken::Locked(file)) => Ok(AuditLock { _file: file }),
            Ok(Taken::Held(holder)) => Err(LockError::Held {
                path: path.to_path_buf(),
                holder,
            }),
            Err(source) => Err(LockError::Open {
                path: path.to_path_buf(),
                source,
            }),
        }
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
