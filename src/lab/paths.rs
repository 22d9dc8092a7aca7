//! Where a lab keeps its files, and the two careful writes the lab makes
//! (directories with a fixed mode, files replaced atomically only when their
//! content changes, so a second `up` can say it changed nothing).
//!
//! ```text
//! <root>/<lab>/                         LabPaths::lab_dir
//!   state.json                          what the lab created (down reads it)
//!   id_ed25519, id_ed25519.pub          the controller's key for every host
//!   known_hosts                         every host key, as [addr]:port and addr
//!   ssh_config                          `ssh -F ssh_config HOST` works
//!   hosts/<host>/holder.pid, holder.log the namespace holder (sshd) and its log
//!   hosts/<host>/root/etc/ssh/          the host's /etc/ssh: sshd_config,
//!                                       host key, authorized_keys, sshd.pid
//!   hosts/<host>/root/etc/hactl/ ...    the host's private directories
//!   hosts/<host>/root/etc/hosts         the host's /etc/hosts
//! ```

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{LabError, LabName};

/// The default parent of all lab state directories.
pub const SYSTEM_LAB_ROOT: &str = "/var/lib/hactl/lab";

/// The directories each lab host gets for itself, seen from inside the host.
/// `/etc/ssh` and `/run/sshd` serve the host's sshd; `/root` is the home of
/// its root login, empty (the controller's dotfiles, a shell profile that
/// takes locks in the home, never run on a lab host); the others are where
/// deploy puts hactl's files.
pub const PRIVATE_DIRS: [&str; 8] = [
    "/root",
    "/etc/hactl",
    "/var/lib/hactl",
    "/run/hactl",
    "/etc/keepalived",
    "/usr/local/lib/hactl",
    "/etc/ssh",
    "/run/sshd",
];

/// The file each lab host gets for itself: `/etc/hosts` names every lab
/// host, so hosts (and their keepalived scripts) reach peers by name.
pub const PRIVATE_HOSTS_FILE: &str = "/etc/hosts";

/// Where labs keep their state: `/var/lib/hactl/lab` unless a caller (a
/// test, `--lab-dir`) picks another root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabPaths {
    root: PathBuf,
}

impl Default for LabPaths {
    fn default() -> Self {
        LabPaths::system()
    }
}

impl LabPaths {
    pub fn system() -> LabPaths {
        LabPaths::new(SYSTEM_LAB_ROOT)
    }

    pub fn new(root: impl Into<PathBuf>) -> LabPaths {
        LabPaths { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state directory of one lab.
    pub fn lab_dir(&self, lab: &LabName) -> PathBuf {
        self.root.join(lab.as_str())
    }
}

// ===== the layout of one lab directory =====

pub(crate) fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub(crate) fn client_key(dir: &Path) -> PathBuf {
    dir.join("id_ed25519")
}

pub(crate) fn known_hosts(dir: &Path) -> PathBuf {
    dir.join("known_hosts")
}

pub(crate) fn ssh_config(dir: &Path) -> PathBuf {
    dir.join("ssh_config")
}

pub(crate) fn host_dir(dir: &Path, host: &str) -> PathBuf {
    dir.join("hosts").join(host)
}

/// The directory that a host sees at `inside` (an absolute path).
pub(crate) fn host_private_dir(dir: &Path, host: &str, inside: &str) -> PathBuf {
    host_dir(dir, host)
        .join("root")
        .join(inside.trim_start_matches('/'))
}

pub(crate) fn holder_pid_file(dir: &Path, host: &str) -> PathBuf {
    host_dir(dir, host).join("holder.pid")
}

pub(crate) fn holder_log(dir: &Path, host: &str) -> PathBuf {
    host_dir(dir, host).join("holder.log")
}

// ===== careful writes =====

/// Creates a directory and its parents, root-owned `mode` (sshd's
/// StrictModes and privilege separation refuse group- or world-writable
/// directories). Returns whether it had to be created.
pub(crate) fn ensure_dir(path: &Path, mode: u32) -> Result<bool, LabError> {
    if path.is_dir() {
        return Ok(false);
    }
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(LabError::io(path))?;
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(LabError::io(path))?;
    Ok(true)
}

/// Replaces `path` with `content` (mode `mode`) unless it already holds
/// exactly that. Returns whether it wrote.
pub(crate) fn write_if_changed(path: &Path, content: &str, mode: u32) -> Result<bool, LabError> {
    if fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(false);
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(LabError::io(&temporary))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(LabError::io(&temporary))?;
    fs::rename(&temporary, path).map_err(LabError::io(path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_directories_mirror_the_paths_inside() {
        let dir = Path::new("/var/lib/hactl/lab/demo");
        assert_eq!(
            host_private_dir(dir, "lb1", "/usr/local/lib/hactl"),
            Path::new("/var/lib/hactl/lab/demo/hosts/lb1/root/usr/local/lib/hactl")
        );
        let paths = LabPaths::default();
        assert_eq!(
            paths.lab_dir(&LabName::new("demo").unwrap()),
            Path::new("/var/lib/hactl/lab/demo")
        );
    }

    #[test]
    fn writes_only_what_changed() {
        let dir = std::env::temp_dir().join(format!("hactl-lab-paths-{}", std::process::id()));
        assert!(ensure_dir(&dir, 0o700).unwrap());
        assert!(!ensure_dir(&dir, 0o700).unwrap());
        let file = dir.join("f");
        assert!(write_if_changed(&file, "one", 0o600).unwrap());
        assert!(!write_if_changed(&file, "one", 0o600).unwrap());
        assert!(write_if_changed(&file, "two", 0o600).unwrap());
        assert_eq!(fs::read_to_string(&file).unwrap(), "two");
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }
}
