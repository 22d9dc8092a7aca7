//! The controller's lock files (the audit's and deploy's): an exclusive,
//! non-blocking `flock` that the kernel releases when its holder dies, so a
//! killed run never leaves a stale lock. The holder's PID is written into
//! the file so that a refused run can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// What [`try_lock`] found.
#[derive(Debug)]
pub enum Taken {
    /// Ours until the file is closed.
    Locked(File),
    /// Another process holds it (its PID, when the file names one).
    Held(Option<u32>),
}

/// Opens (or creates, 0644) `path` and takes its lock; never waits.
pub fn try_lock(path: &Path) -> std::io::Result<Taken> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)?;
    if let Err(errno) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
        if errno == rustix::io::Errno::WOULDBLOCK {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(Taken::Held(text.trim().parse().ok()));
        }
        return Err(errno.into());
    }
    // The PID is a courtesy for the refused run's message.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(Taken::Locked(file))
}

/// `/run/RUN_NAME` when this user may write in /run, else `TMP_NAME` in the
/// temporary directory (which names the user, so users do not collide).
pub fn runtime_path(run_name: &str, tmp_name: &str) -> PathBuf {
    let run = Path::new("/run");
    if rustix::fs::access(run, rustix::fs::Access::WRITE_OK).is_ok() {
        run.join(run_name)
    } else {
        std::env::temp_dir().join(tmp_name)
    }
}

/// The user id, for [`runtime_path`]'s temporary names.
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}
