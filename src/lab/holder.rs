//! The namespace holder of a lab host: one long-lived process that owns the
//! host's UTS, mount and PID namespaces and is the host's sshd.
//!
//! ```text
//! setsid --fork                       new session, parent exits at once
//!   ip netns exec hl-<lab>.<host>     enter the host's network namespace
//!     unshare --uts --mount --pid     new hostname, mount table and PIDs;
//!             --propagation private   mounts never leak to the controller;
//!             --fork --kill-child     the child is PID 1 of the host
//!       sh -c SCRIPT                  pid file, hostname, /proc, bind mounts
//!         exec sshd -D -e             the same PID, for the host's lifetime
//! ```
//!
//! The script records its PID as this machine sees it (the first `NSpid`
//! of `/proc/self/status`, read before the host's own `/proc` is mounted),
//! and each step execs the next, so the recorded PID is sshd's. sshd is
//! PID 1 of the host: it reaps what the host's sessions leave behind, and
//! when it ends the kernel ends every process of the host. Inside the host
//! `ps`, `pgrep` and `pkill` see that host's processes only. The fork
//! detaches the holder from the controller: it outlives `hactl lab up`.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::paths::{
    PRIVATE_DIRS, PRIVATE_HOSTS_FILE, holder_log, holder_pid_file, host_dir, host_private_dir,
};
use super::system::{describe, is_alive, namespace_inode, net_namespace_of, shell_quote, wait_for};
use super::{LabError, LabHost};

const SSHD: &str = "/usr/sbin/sshd";

/// The holder's script. Binds come in an order where none hides the source
/// of a later one: a target that contains the lab directory (the default
/// `/var/lib/hactl` does) is bound last.
pub(crate) fn script(dir: &Path, host: &LabHost) -> String {
    let mut targets: Vec<&str> = PRIVATE_DIRS.to_vec();
    targets.sort_by_key(|target| dir.starts_with(target));
    let mut lines = vec![
        "set -e".to_string(),
        // `exec 3<` opens /proc/self in this shell itself, never a subshell.
        "exec 3</proc/self/status".to_string(),
        format!(
            "while read -r key pid rest <&3; do if [ \"$key\" = NSpid: ]; then echo \"$pid\" > {}; break; fi; done",
            shell_quote(&holder_pid_file(dir, &host.name).to_string_lossy())
        ),
        "exec 3<&-".to_string(),
        "mount -t proc proc /proc".to_string(),
        // Writing the UTS namespace's hostname needs no hostname(1).
        format!(
            "printf %s {} > /proc/sys/kernel/hostname",
            shell_quote(&host.name)
        ),
    ];
    // /etc/hosts always exists and never contains the lab directory.
    lines.push(format!(
        "mount --bind {} {target}",
        shell_quote(&host_private_dir(dir, &host.name, PRIVATE_HOSTS_FILE).to_string_lossy()),
        target = shell_quote(PRIVATE_HOSTS_FILE),
    ));
    for target in targets {
        let source = host_private_dir(dir, &host.name, target);
        // The mount point may be missing on the controller (/etc/hactl);
        // an empty directory there is the only trace the lab leaves.
        lines.push(format!(
            "mkdir -p {target} && mount --bind {} {target}",
            shell_quote(&source.to_string_lossy()),
            target = shell_quote(target),
        ));
    }
    lines.push(format!("exec {SSHD} -D -e -f /etc/ssh/sshd_config"));
    lines.join("\n")
}

/// Starts the holder of `host` in `namespace` and returns its PID.
pub(crate) fn start(dir: &Path, host: &LabHost, namespace: &str) -> Result<u32, LabError> {
    let pid_file = holder_pid_file(dir, &host.name);
    match fs::remove_file(&pid_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LabError::io(&pid_file)(e)),
    }
    let log_path = holder_log(dir, &host.name);
    let log = File::create(&log_path).map_err(LabError::io(&log_path))?;
    let log_too = log.try_clone().map_err(LabError::io(&log_path))?;
    let mut command = Command::new("setsid");
    command
        .args(["--fork", "ip", "netns", "exec", namespace])
        .args([
            "unshare",
            "--uts",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ])
        .args(["sh", "-c", &script(dir, host)])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_too);
    let status = command.status().map_err(|source| LabError::Spawn {
        command: describe(&command),
        source,
    })?;
    let not_started = || LabError::HolderDidNotStart {
        host: host.name.clone(),
        log: log_tail(dir, &host.name),
    };
    if !status.success() {
        return Err(not_started());
    }
    let mut pid = None;
    wait_for(Duration::from_secs(5), || {
        pid = read_pid(&pid_file);
        pid.is_some()
    });
    let pid = pid.ok_or_else(not_started)?;
    if running_pid(dir, host, namespace) != Some(pid) {
        return Err(not_started());
    }
    Ok(pid)
}

/// The PID of the host's holder if it runs, in the host's namespace (a PID
/// file that survived a reboot may name some other process now).
pub(crate) fn running_pid(dir: &Path, host: &LabHost, namespace: &str) -> Option<u32> {
    let pid = read_pid(&holder_pid_file(dir, &host.name))?;
    let inode = namespace_inode(namespace)?;
    (is_alive(pid) && net_namespace_of(pid) == Some(inode)).then_some(pid)
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The end of the holder's log, for error messages.
pub(crate) fn log_tail(dir: &Path, host: &str) -> String {
    let text = fs::read_to_string(holder_log(dir, host)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(8)..].join("; ");
    if tail.is_empty() {
        format!("nothing (see {})", host_dir(dir, host).display())
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn binds_that_would_hide_the_lab_directory_come_last() {
        let host = LabHost::new("lb1", Ipv4Addr::new(10, 0, 0, 1), 24);
        let script = script(Path::new("/var/lib/hactl/lab/demo"), &host);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "set -e");
        assert!(
            lines[2].ends_with("> '/var/lib/hactl/lab/demo/hosts/lb1/holder.pid'; break; fi; done"),
            "{}",
            lines[2]
        );
        assert_eq!(lines[4], "mount -t proc proc /proc");
        assert_eq!(lines[5], "printf %s 'lb1' > /proc/sys/kernel/hostname");
        assert_eq!(
            lines[lines.len() - 2],
            "mkdir -p '/var/lib/hactl' && mount --bind \
             '/var/lib/hactl/lab/demo/hosts/lb1/root/var/lib/hactl' '/var/lib/hactl'"
        );
        assert_eq!(
            lines[lines.len() - 1],
            "exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config"
        );
        for target in PRIVATE_DIRS {
            let binds = lines
                .iter()
                .filter(|l| l.ends_with(&format!(" '{target}'")))
                .count();
            assert_eq!(binds, 1, "{target} bound {binds} times");
        }

        assert_eq!(
            lines[6],
            "mount --bind '/var/lib/hactl/lab/demo/hosts/lb1/root/etc/hosts' '/etc/hosts'"
        );

        let elsewhere = super::script(Path::new("/tmp/labs/demo"), &host);
        assert!(elsewhere.lines().nth(7).unwrap().ends_with(" '/root'"));
    }
}
