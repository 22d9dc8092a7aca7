//! `hactl-agent supervise`: where no systemd runs (the lab, other init
//! systems), a small parent that keeps the promise of the systemd unit's
//! `ExecStopPost=hactl-agent cleanup` and `Restart=on-failure`: a VIP never
//! outlives its agent (issue 14).
//!
//! ```text
//! supervise ── spawn `AGENT run ...` ── its PID to --pid-file
//!    │  SIGTERM/SIGINT: forwarded, wait, exit (no restart)
//!    │  SIGHUP: forwarded (reload)
//!    ▼
//! child exits ── status 0 (SIGTERM, a clean stop): exit
//!            └─ else (SIGKILL, a crash): remove its VIPs and IPVS
//!               services (the ledger, like `cleanup`), wait the backoff
//!               (2 s doubling to 30 s; SIGUSR1 cuts it short), restart
//! ```
//!
//! The pid file names the agent itself, not this process: signals sent to
//! the agent (a drill's SIGKILL, a reload's SIGHUP) reach it directly, and
//! a SIGTERM to the agent is a clean stop this parent does not undo. Each
//! step is one log line on stderr (the agent's log).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{DaemonError, Options, log};

/// The first restart waits this long (the systemd unit's `RestartSec=`).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The backoff doubles up to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);

/// What `hactl-agent supervise` was asked to do.
#[derive(Debug, Clone)]
pub struct SuperviseOptions {
    /// The agent binary to run (the path, read again at each restart: a
    /// deployed binary is the one restarted).
    pub program: PathBuf,
    pub run: Options,
    /// Where the running agent's PID is written.
    pub pid_file: PathBuf,
}

fn signal_stream(kind: SignalKind, name: &'static str) -> Result<Signal, DaemonError> {
    signal(kind).map_err(|source| DaemonError::Signal {
        signal: name,
        source,
    })
}

/// Writes `pid` to `path` atomically (a reader never sees it half written).
fn write_pid(path: &Path, pid: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}

/// How a child ended, for the log.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended".to_string(),
    }
}

/// The next backoff after `current`.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// Runs the agent until it stops cleanly or this process is told to stop.
pub fn supervise(options: &SuperviseOptions) -> Result<(), DaemonError> {
    super::runtime()?.block_on(supervise_loop(options))
}

async fn supervise_loop(options: &SuperviseOptions) -> Result<(), DaemonError> {
    let mut term = signal_stream(SignalKind::terminate(), "SIGTERM")?;
    let mut int = signal_stream(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = signal_stream(SignalKind::hangup(), "SIGHUP")?;
    let mut usr1 = signal_stream(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut child = tokio::process::Command::new(&options.program)
            .arg("run")
            .arg("-f")
            .arg(&options.run.config)
            .arg("--socket")
            .arg(&options.run.socket)
            .arg("--state-dir")
            .arg(&options.run.state_dir)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(DaemonError::Runtime)?;
        let pid = child.id().unwrap_or(0);
        if let Err(e) = write_pid(&options.pid_file, pid) {
            log(&format!(
                "supervisor: cannot write {}: {e}",
                options.pid_file.display()
            ));
        }
        log(&format!("supervisor: started the agent (pid {pid})"));
        let started = Instant::now();
        let forward = |signal: nix::sys::signal::Signal| {
            if let Ok(raw) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), signal);
            }
        };
        let status = loop {
            tokio::select! {
                status = child.wait() => break status.map_err(DaemonError::Runtime)?,
                _ = term.recv() => {
                    forward(nix::sys::signal::Signal::SIGTERM);
                    let status = child.wait().await.map_err(DaemonError::Runtime)?;
                    log(&format!("supervisor: stopping; the agent (pid {pid}) {}", describe(status)));
                    return Ok(());
                }
                _ = int.recv() => {
                    forward(nix::sys::signal::Signal::SIGTERM);
                    let status = child.wait().await.map_err(DaemonError::Runtime)?;
                    log(&format!("supervisor: stopping; the agent (pid {pid}) {}", describe(status)));
                    return Ok(());
                }
                _ = hup.recv() => forward(nix::sys::signal::Signal::SIGHUP),
                _ = usr1.recv() => {}
            }
        };
        if status.success() {
            log(&format!(
                "supervisor: the agent (pid {pid}) stopped cleanly; not restarting"
            ));
            return Ok(());
        }
        log(&format!(
            "supervisor: the agent (pid {pid}) {}; removing what it left",
            describe(status)
        ));
        match super::clean(&options.run.state_dir).await {
            Ok(cleaned) => log(&format!(
                "supervisor: removed {} address(es), {} IPVS service(s)",
                cleaned.addresses, cleaned.services
            )),
            Err(e) => log(&format!("supervisor: cleanup failed: {e}")),
        }
        if started.elapsed() >= STABLE {
            backoff = FIRST_BACKOFF;
        }
        log(&format!(
            "supervisor: restarting the agent in {:.1} s",
            backoff.as_secs_f64()
        ));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = usr1.recv() => log("supervisor: SIGUSR1: restarting now"),
            _ = term.recv() => { log("supervisor: stopping"); return Ok(()); }
            _ = int.recv() => { log("supervisor: stopping"); return Ok(()); }
        }
        backoff = next_backoff(backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling() {
        let mut b = FIRST_BACKOFF;
        let mut seen = vec![b.as_secs()];
        for _ in 0..6 {
            b = next_backoff(b);
            seen.push(b.as_secs());
        }
        assert_eq!(seen, [2, 4, 8, 16, 30, 30, 30]);
    }
}
