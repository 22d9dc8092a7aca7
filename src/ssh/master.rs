//! Master connections: one `ssh -M -f -N` per host, its control socket in a
//! short private directory, its PID learned over the mux protocol so it can
//! be stopped for sure. Also the reading of ssh's log when a master fails,
//! which turns ssh's English into [`SshError`] variants.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{SshError, SshOptions, Target, bounded_stderr};

/// `sun_path` holds 108 bytes on Linux, the NUL included; ssh first binds a
/// temporary name, the control path plus 17 characters.
pub const CONTROL_PATH_LIMIT: usize = 107 - 17;

/// Control directories made by this process so far.
static NEXT_CONTROL_DIR: AtomicU32 = AtomicU32::new(0);

/// How long a master gets to exit after being asked, before SIGTERM.
const STOP_GRACE: Duration = Duration::from_millis(500);

// ===== control directory =====

/// A private (0700) directory holding the control sockets and master logs
/// of one pool; removed on drop.
#[derive(Debug)]
pub(crate) struct ControlDir {
    path: PathBuf,
}

impl ControlDir {
    pub(crate) fn create(parent: Option<&Path>) -> Result<ControlDir, SshError> {
        let parent = match parent {
            Some(parent) => parent.to_path_buf(),
            None => {
                let temp = std::env::temp_dir();
                // Room for "/hactl-ssh-PID-N/N.log" under the socket limit.
                if temp.as_os_str().len() > 40 {
                    PathBuf::from("/tmp")
                } else {
                    temp
                }
            }
        };
        let n = NEXT_CONTROL_DIR.fetch_add(1, Ordering::SeqCst);
        let path = parent.join(format!("hactl-ssh-{}-{n}", std::process::id()));
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| SshError::ControlDir {
                path: path.clone(),
                source,
            })?;
        Ok(ControlDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ===== the ssh command line =====

/// The argv (after `ssh`) that starts a master for `target`. hactl's own
/// options come before the inventory's common args: ssh keeps the first
/// value it reads for an option, so host key checking and the control
/// settings cannot be turned off by an inventory.
pub(crate) fn master_argv(
    target: &Target,
    options: &SshOptions,
    control_path: &Path,
    log: &Path,
) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "-E".into(),
        log.display().to_string(),
        "-S".into(),
        control_path.display().to_string(),
        "-M".into(),
        "-f".into(),
        "-N".into(),
    ];
    let mut option = |value: String| {
        argv.push("-o".into());
        argv.push(value);
    };
    option(format!(
        "ControlPersist={}s",
        options.control_persist.as_secs().max(1)
    ));
    option("BatchMode=yes".into());
    if let Some(kex) = options.key_exchange.ssh_option() {
        option(kex.into());
    }
    option(options.host_key_policy.ssh_option().into());
    option(format!(
        "ConnectTimeout={}",
        options.connect_timeout.as_secs().max(1)
    ));
    // A dead peer is noticed within 3 x 5 s instead of TCP's minutes.
    option("ServerAliveInterval=5".into());
    option("ServerAliveCountMax=3".into());
    if let Some(known_hosts) = &target.known_hosts {
        option(format!(
            "UserKnownHostsFile={}",
            ssh_config_value(&known_hosts.display().to_string())
        ));
    }
    if let Some(identity) = &target.identity_file {
        option("IdentitiesOnly=yes".into());
        argv.push("-i".into());
        argv.push(identity.display().to_string());
    }
    if let Some(config) = &options.ssh_config {
        argv.push("-F".into());
        argv.push(config.display().to_string());
    }
    argv.push("-p".into());
    argv.push(target.port.to_string());
    argv.push("-l".into());
    argv.push(target.user.clone());
    argv.extend(target.common_args.iter().cloned());
    argv.push("--".into());
    argv.push(target.address.clone());
    argv
}

/// ssh_config quoting: a value with blanks goes in double quotes.
fn ssh_config_value(value: &str) -> String {
    if value.contains(char::is_whitespace) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

// ===== reading ssh's failures =====

/// What a failed master's log says, as an error naming the host.
pub(crate) fn classify_failure(target: &Target, log: &str) -> SshError {
    let host = target.host.clone();
    let known_hosts = target
        .known_hosts
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the known_hosts files".to_string());
    let lines: Vec<&str> = log
        .lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty())
        .collect();
    let find = |needle: &str| lines.iter().find(|l| l.contains(needle)).copied();
    let detail = |line: &str| line.strip_prefix("ssh: ").unwrap_or(line).to_string();

    if find("REMOTE HOST IDENTIFICATION HAS CHANGED").is_some()
        || find("has changed and you have requested strict checking").is_some()
    {
        return SshError::HostKeyChanged { host, known_hosts };
    }
    if find("and you have requested strict checking").is_some()
        || find("Host key verification failed").is_some()
    {
        return SshError::HostKeyUnknown { host, known_hosts };
    }
    if find("Connection timed out").is_some() || find("Operation timed out").is_some() {
        return SshError::ConnectTimeout {
            host,
            after: Duration::ZERO,
        };
    }
    if let Some(line) = find("Permission denied (") {
        return SshError::AuthFailed {
            host,
            user: target.user.clone(),
            detail: detail(line),
        };
    }
    for needle in [
        "Connection refused",
        "No route to host",
        "Network is unreachable",
        "Could not resolve hostname",
        "Connection closed by",
        "Connection reset by",
    ] {
        if let Some(line) = find(needle) {
            return SshError::Unreachable {
                host,
                detail: detail(line),
            };
        }
    }
    let tail = lines
        .iter()
        .rev()
        .take(3)
        .rev()
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    SshError::MasterFailed {
        host,
        detail: if tail.is_empty() {
            "ssh exited without a message".to_string()
        } else {
            bounded_stderr(tail.as_bytes())
        },
    }
}

// ===== a running master =====

/// A master connection's control socket and PID. Stopping is idempotent and
/// synchronous, so a signal handler and `Drop` can both do it.
#[derive(Debug)]
pub(crate) struct MasterHandle {
    pub(crate) control_path: PathBuf,
    pid: Mutex<Option<u32>>,
}

impl MasterHandle {
    pub(crate) fn pid(&self) -> Option<u32> {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the master still runs: not stopped, and its process alive
    /// (ssh exits on its own when the host stops answering keepalives).
    pub(crate) fn is_running(&self) -> bool {
        self.pid().is_some_and(is_ssh_process)
    }

    /// Asks the master to exit over its socket, then SIGTERMs it if it is
    /// still there after a grace period. Only a PID that still names an ssh
    /// process is signalled, so a reused PID is left alone.
    pub(crate) fn stop(&self) {
        let Some(pid) = self.pid.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let _ = openssh_mux_client::shutdown_mux_master(&self.control_path);
        let deadline = Instant::now() + STOP_GRACE;
        while is_ssh_process(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if is_ssh_process(pid)
            && let Some(raw) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(raw, rustix::process::Signal::TERM);
        }
        let _ = fs::remove_file(&self.control_path);
    }
}

impl Drop for MasterHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `pid` is a live (not zombie) process named `ssh`.
pub(crate) fn is_ssh_process(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (comm) STATE ...": comm may hold spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next();
    comm == "ssh" && !matches!(state, Some('Z' | 'X'))
}

/// Starts a master for `target` with its socket `control_path`, waits until
/// it is logged in (or failed), and learns its PID.
pub(crate) async fn start(
    target: &Target,
    options: &SshOptions,
    control_path: PathBuf,
) -> Result<Arc<MasterHandle>, SshError> {
    target.validate()?;
    if control_path.as_os_str().len() > CONTROL_PATH_LIMIT {
        return Err(SshError::ControlPathTooLong {
            host: target.host.clone(),
            path: control_path,
            limit: CONTROL_PATH_LIMIT,
        });
    }
    let log = control_path.with_extension("log");
    let argv = master_argv(target, options, &control_path, &log);
    let mut command = tokio::process::Command::new("ssh");
    command
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| SshError::Spawn {
        host: target.host.clone(),
        source,
    })?;
    // ConnectTimeout bounds the TCP connect only; the login gets as long
    // again, so a host that accepts and then stalls still fails in time.
    let login_deadline = options.connect_timeout * 2 + Duration::from_secs(1);
    let status = match tokio::time::timeout(login_deadline, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            return Err(SshError::Spawn {
                host: target.host.clone(),
                source,
            });
        }
        Err(_) => {
            let _ = child.kill().await;
            let _ = fs::remove_file(&log);
            return Err(SshError::ConnectTimeout {
                host: target.host.clone(),
                after: login_deadline,
            });
        }
    };
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    if !status.success() {
        return Err(match classify_failure(target, &log_text) {
            SshError::ConnectTimeout { host, .. } => SshError::ConnectTimeout {
                host,
                after: options.connect_timeout,
            },
            other => other,
        });
    }
    let pid = match openssh_mux_client::Connection::connect(&control_path).await {
        Ok(mut connection) => connection.send_alive_check().await.ok().map(|p| p.get()),
        Err(_) => None,
    };
    let Some(pid) = pid else {
        return Err(SshError::MasterFailed {
            host: target.host.clone(),
            detail: format!(
                "ssh logged in but its control socket {} does not answer",
                control_path.display()
            ),
        });
    };
    Ok(Arc::new(MasterHandle {
        control_path,
        pid: Mutex::new(Some(pid)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        let mut target = Target::new("lb1", "10.0.0.1");
        target.port = 2202;
        target.known_hosts = Some("/lab/known hosts".into());
        target.identity_file = Some("/lab/id".into());
        target.common_args = vec!["-o".into(), "StrictHostKeyChecking=no".into()];
        target
    }

    #[test]
    fn hactl_options_come_before_the_inventory_args() {
        let argv = master_argv(
            &target(),
            &SshOptions::default(),
            Path::new("/tmp/c/0"),
            Path::new("/tmp/c/0.log"),
        );
        let position = |word: &str| argv.iter().position(|a| a == word).unwrap();
        assert!(position("StrictHostKeyChecking=yes") < position("StrictHostKeyChecking=no"));
        assert!(argv.contains(&"ControlPersist=60s".to_string()));
        assert!(argv.contains(&"UserKnownHostsFile=\"/lab/known hosts\"".to_string()));
        assert_eq!(&argv[argv.len() - 2..], ["--", "10.0.0.1"]);
        let accept = SshOptions {
            host_key_policy: super::super::HostKeyPolicy::AcceptNew,
            ..SshOptions::default()
        };
        let argv = master_argv(&target(), &accept, Path::new("/c"), Path::new("/l"));
        assert!(argv.contains(&"StrictHostKeyChecking=accept-new".to_string()));
    }

    /// Logs as ssh 9.2 writes them (recorded from the lab).
    #[test]
    fn ssh_failures_become_typed_errors() {
        let cases: [(&str, &str); 7] = [
            (
                include_str!("testdata/host_key_changed.log"),
                "HostKeyChanged",
            ),
            (
                include_str!("testdata/host_key_unknown.log"),
                "HostKeyUnknown",
            ),
            (
                "ssh: connect to host 10.213.201.77 port 22: Connection timed out\r\n",
                "ConnectTimeout",
            ),
            (
                "ssh: connect to host 10.213.201.77 port 22: Connection refused\r\n",
                "Unreachable",
            ),
            (
                "root@10.213.201.1: Permission denied (publickey).\r\n",
                "AuthFailed",
            ),
            (
                "ssh: Could not resolve hostname nowhere: Name or service not known\r\n",
                "Unreachable",
            ),
            ("something new\r\n", "MasterFailed"),
        ];
        for (log, want) in cases {
            let error = classify_failure(&target(), log);
            let got = format!("{error:?}");
            assert!(got.starts_with(want), "{want}: {got}");
            assert_eq!(error.host(), Some("lb1"));
            assert!(error.to_string().starts_with("lb1: "), "{error}");
        }
    }

    #[test]
    fn only_live_ssh_processes_count() {
        assert!(!is_ssh_process(std::process::id()));
        assert!(!is_ssh_process(u32::MAX));
    }

    #[test]
    fn control_dirs_are_private_short_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = ControlDir::create(None).unwrap();
        let path = dir.path().to_path_buf();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(path.join("999").as_os_str().len() <= CONTROL_PATH_LIMIT);
        drop(dir);
        assert!(!path.exists());
    }
}
