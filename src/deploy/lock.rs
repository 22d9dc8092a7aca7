//! The locks that keep two `hactl deploy` runs from rolling the same hosts
//! at once (issue 14): one on the controller, per inventory, taken before
//! anything else so a second run refuses at once; and one on each host of
//! a pair with something to change, so runs from two controllers (or two
//! inventories naming one host) refuse each other too.
//!
//! Both are `flock`s the kernel releases when their holder dies: a hactl
//! killed with SIGKILL leaves no lock behind. The host's is held by a
//! remote `flock` whose stdin is deploy's SSH channel; when the channel
//! closes (deploy done, or its process gone) the remote end reads end of
//! file and lets go.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::lockfile::{self, Taken};
use crate::remote_layout as layout;
use crate::ssh::{CommandInput, CommandLines, HostSession, RemoteCommand, script_argv};

/// The controller's lock of one inventory: in /run when this user may
/// write there, else the temporary directory; named by a digest of the
/// inventory's canonical path.
pub fn controller_path(inventory: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(inventory).unwrap_or_else(|_| inventory.to_path_buf());
    let digest = crate::operations::sha256_hex(canonical.to_string_lossy().as_bytes());
    let name = format!("hactl-deploy-{}.lock", &digest[..16]);
    lockfile::runtime_path(&name, &format!("{}-{name}", lockfile::uid()))
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another hactl deploy of {inventory} is running{} (lock {}): nothing done", holder.map(|p| format!(" (pid {p})")).unwrap_or_default(), path.display())]
    Held {
        inventory: String,
        path: PathBuf,
        holder: Option<u32>,
    },
    #[error("cannot open the lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held controller lock; released on drop (or when the process dies).
/// The file is removed on drop, so runs leave nothing in /run; a run that
/// locked a file already unlinked by the holder before it tries again
/// with the file now at the path.
#[derive(Debug)]
pub struct ControllerLock {
    file: File,
    path: PathBuf,
}

impl Drop for ControllerLock {
    fn drop(&mut self) {
        // Unlinked while still held: whoever opens the path next gets a
        // new file, whoever holds the old one sees it is gone.
        if still_at(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `file` is still the file at `path` (not unlinked meanwhile).
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

impl ControllerLock {
    /// Takes the lock of `inventory` or says who holds it; never waits.
    pub fn acquire(inventory: &Path) -> Result<ControllerLock, LockError> {
        let path = controller_path(inventory);
        let mut tries = 0;
        loop {
            let file = Self::try_once(inventory, &path)?;
            tries += 1;
            // Not at the path any more: its previous holder removed it as
            // this run locked it; the lock is the new file's.
            if still_at(&file, &path) || tries == 3 {
                return Ok(ControllerLock { file, path });
            }
        }
    }

    fn try_once(inventory: &Path, path: &Path) -> Result<File, LockError> {
        match lockfile::try_lock(path) {
            Ok(Taken::Locked(file)) => Ok(file),
            Ok(Taken::Held(holder)) => Err(LockError::Held {
                inventory: inventory.display().to_string(),
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

/// Takes the host's deploy lock and holds it while its stdin stays open:
/// argv OWNER. Prints `locked`, `busy OWNER-OF-THE-HOLDER`, or `nolock`
/// (no flock(1) on the host: only the controller's lock applies).
const HOST_LOCK: &str = r#"command -v flock >/dev/null 2>&1 || { echo nolock; exec cat >/dev/null; }
mkdir -p -m 0755 /run/hactl
exec 9>>/run/hactl/deploy.lock
if flock -n 9; then
  printf '%s\n' "$1" > /run/hactl/deploy.owner
  echo locked
  exec cat >/dev/null
fi
echo "busy $(cat /run/hactl/deploy.owner 2>/dev/null)"
exit 0"#;

/// A held host lock (see the module doc).
pub struct HostLock {
    input: CommandInput,
    lines: CommandLines,
}

impl HostLock {
    /// Takes `session`'s host lock. `Err` says why not (held by another
    /// deploy, named by its owner line, or the command failed).
    pub async fn acquire(session: &HostSession) -> Result<Option<HostLock>, String> {
        let host = session.host().to_string();
        let owner = format!(
            "hactl deploy pid {} on {}",
            std::process::id(),
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "this controller".into())
        );
        let command = RemoteCommand::new(&script_argv(HOST_LOCK, &[owner.as_str()])).become_(true);
        let (input, mut lines) = session
            .spawn_interactive(&command)
            .await
            .map_err(|e| e.to_string())?;
        let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        match first.split_once(' ').map_or((first.as_str(), ""), |p| p) {
            ("locked", _) => Ok(Some(HostLock { input, lines })),
            ("nolock", _) => Ok(Some(HostLock { input, lines })),
            ("busy", holder) => Err(format!(
                "another deploy holds {host}'s lock {}/deploy.lock ({}): not touched",
                layout::RUN_DIR,
                if holder.is_empty() {
                    "owner unknown"
                } else {
                    holder
                }
            )),
            _ => {
                let (status, stderr) = lines.finish().await.map_err(|e| e.to_string())?;
                Err(format!(
                    "cannot take {host}'s deploy lock (status {status:?}): {stderr}"
                ))
            }
        }
    }

    /// Lets go of the lock and waits for the remote end to exit.
    pub async fn release(mut self) {
        self.input.close().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.lines.finish()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_one_inventory_is_refused_and_nothing_stays_behind() {
        let dir = std::env::temp_dir().join(format!("deploy-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inventory = dir.join("inv.yaml");
        std::fs::write(&inventory, "all: {}\n").unwrap();
        let held = ControllerLock::acquire(&inventory).unwrap();
        let path = controller_path(&inventory);
        assert!(path.exists());
        match ControllerLock::acquire(&inventory) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        assert!(!path.exists(), "the lock file is removed with the lock");
        let again = ControllerLock::acquire(&inventory).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
