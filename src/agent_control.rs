//! Running the VRRP daemon on a host: start, stop (SIGTERM, then wait),
//! kill (SIGKILL), reload (SIGHUP), whether it runs, and its status, for
//! both backends (hactl-agent and stock keepalived) and both supervisors
//! (systemd where PID 1 is systemd, else hactl's own pid file). `deploy`
//! uses it to roll hosts; drills use it to break and restore them. Every
//! path comes from [`crate::remote_layout`].
//!
//! Under hactl's supervision the daemon is started detached (`setsid`,
//! stdin from /dev/null, output appended to its log under
//! /var/lib/hactl) and its PID written to the pid file. "Running" means the
//! pid file names a live process (not a zombie). hactl-agent runs under
//! `hactl-agent supervise`, which removes a dead agent's VIPs at once and
//! restarts it (the unit's `ExecStopPost=` and `Restart=on-failure` where
//! systemd runs).
//!
//! The status of hactl-agent is its own JSON document
//! (`hactl-agent status --json`, [`hactl_agent::status::Status`]). Stock
//! keepalived has no such API here, so its status is `None` and callers
//! read VIP placement from the interfaces.

use std::time::Duration;

use hactl_agent::status::Status;

pub use crate::facts::Supervisor;
use crate::facts::{self, FactError, PidFileProcess, ProcessState};
use crate::plan::Backend;
use crate::remote_layout as layout;
use crate::ssh::{HostSession, RemoteCommand, SshError, script_argv};

/// How long `stop` waits for the daemon to exit after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Fact(#[from] FactError),
    #[error("{host}: cannot read the agent status: {source}")]
    Status {
        host: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{host}: {what} did not exit within {}s of SIGTERM", STOP_WAIT.as_secs())]
    StopTimeout { host: String, what: &'static str },
}

/// The daemon of one backend on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentControl {
    pub backend: Backend,
    pub supervisor: Supervisor,
}

/// Starts the agent detached under its supervisor (`hactl-agent
/// supervise`, which writes the agent's PID to PIDFILE, removes a dead
/// agent's VIPs and restarts it): argv AGENT CONFIG SOCKET STATE_DIR LOG
/// PIDFILE SUPERVISOR_PIDFILE. A supervisor still alive (waiting to
/// restart a dead agent) is told to restart it now rather than a second
/// one started. Prints the agent's PID once it runs.
const START_AGENT: &str = r#"set -e
mkdir -p -m 0755 /run/hactl "$4"
s=$(cat -- "$7" 2>/dev/null || true)
case $s in ''|*[!0-9]*) s= ;; esac
if [ -n "$s" ] && grep -q supervise "/proc/$s/cmdline" 2>/dev/null; then
  kill -s USR1 "$s"
else
  rm -f -- "$6"
  setsid "$1" supervise --pid-file "$6" -f "$2" --socket "$3" --state-dir "$4" </dev/null >>"$5" 2>&1 &
  echo $! > "$7"
fi
i=0
while :; do
  p=$(cat -- "$6" 2>/dev/null || true)
  case $p in ''|*[!0-9]*) ;; *) if [ -d "/proc/$p" ]; then echo "$p"; exit 0; fi ;; esac
  if [ $i -ge 100 ]; then echo "the agent's supervisor wrote no live pid to $6 within 10 s" >&2; exit 1; fi
  sleep 0.1; i=$((i + 1))
done"#;

/// Stops the supervised agent: SIGTERM to its supervisor (which forwards
/// it and does not restart), or to the agent when no supervisor runs (an
/// agent started by an older hactl); waits until both are gone: argv
/// PIDFILE SUPERVISOR_PIDFILE TENTHS. Exit 1 on timeout.
const STOP_AGENT: &str = r#"alive() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  case $(sed 's/.*) //' "/proc/$1/stat" | cut -c1) in Z|X) return 1 ;; esac
}
p=$(cat -- "$1" 2>/dev/null || true); case $p in ''|*[!0-9]*) p= ;; esac
s=$(cat -- "$2" 2>/dev/null || true); case $s in ''|*[!0-9]*) s= ;; esac
if [ -n "$s" ] && ! grep -q supervise "/proc/$s/cmdline" 2>/dev/null; then s=; fi
if alive "$s"; then kill -s TERM "$s" 2>/dev/null || true
elif alive "$p"; then kill -s TERM "$p" 2>/dev/null || true; fi
i=0
while alive "$p" || alive "$s"; do
  [ $i -ge "$3" ] && exit 1
  sleep 0.1; i=$((i + 1))
done
rm -f -- "$1" "$2"
exit 0"#;

/// Starts keepalived detached in the foreground mode, VRRP only: argv
/// CONFIG PIDFILE VRRP_PIDFILE CHECKERS_PIDFILE LOG. keepalived writes its
/// pid file itself (and refuses to start when the file names a live
/// process, so it must not be written for it).
const START_KEEPALIVED: &str = r#"set -e
mkdir -p -m 0755 /run/hactl /var/lib/hactl
rm -f -- "$2" "$3" "$4"
setsid keepalived --dont-fork --log-console --log-detail --vrrp -f "$1" -p "$2" -r "$3" -c "$4" </dev/null >>"$5" 2>&1 &
echo $!"#;

/// Sends a signal to the process of a pid file: argv SIGNAL PIDFILE.
/// Prints `none` when no live process is named.
const SIGNAL: &str = r#"p=$(cat -- "$2" 2>/dev/null) || { echo none; exit 0; }
case $p in ''|*[!0-9]*) echo none; exit 0 ;; esac
kill -s "$1" "$p" 2>/dev/null && echo "$p" || echo none"#;

/// Waits until the process of a pid file is gone (or a zombie): argv
/// PIDFILE TENTHS. Exit 1 on timeout.
const WAIT_GONE: &str = r#"p=$(cat -- "$1" 2>/dev/null) || exit 0
i=0
while [ -r "/proc/$p/stat" ]; do
  case $(sed 's/.*) //' "/proc/$p/stat" | cut -c1) in Z|X) break ;; esac
  [ $i -ge "$2" ] && exit 1
  sleep 0.1; i=$((i + 1))
done
rm -f -- "$1"
exit 0"#;

impl AgentControl {
    /// The supervisor this host uses: systemd when it runs as PID 1
    /// (`/run/systemd/system` exists), else hactl.
    pub async fn detect(session: &HostSession, backend: Backend) -> Result<Self, ControlError> {
        let out = session
            .output(&RemoteCommand::new(&["test", "-d", "/run/systemd/system"]).become_(false))
            .await?;
        let supervisor = if out.success() {
            Supervisor::Systemd
        } else {
            Supervisor::Hactl
        };
        Ok(AgentControl {
            backend,
            supervisor,
        })
    }

    fn unit(&self) -> &'static str {
        match self.backend {
            Backend::Agent => layout::AGENT_UNIT,
            Backend::Keepalived => layout::KEEPALIVED_UNIT,
        }
    }

    fn what(&self) -> &'static str {
        match self.backend {
            Backend::Agent => "hactl-agent",
            Backend::Keepalived => "keepalived",
        }
    }

    /// Starts the daemon (it must not be running).
    pub async fn start(&self, session: &HostSession) -> Result<(), ControlError> {
        let command = match (self.supervisor, self.backend) {
            (Supervisor::Systemd, _) => {
                session.run_argv(&["systemctl", "daemon-reload"]).await?;
                RemoteCommand::new(&["systemctl", "start", self.unit()])
            }
            (Supervisor::Hactl, Backend::Agent) => RemoteCommand::new(&script_argv(
                START_AGENT,
                &[
                    layout::AGENT_BIN,
                    layout::AGENT_CONFIG,
                    layout::AGENT_SOCKET,
                    layout::STATE_DIR,
                    layout::AGENT_LOG,
                    layout::AGENT_PID_FILE,
                    layout::AGENT_SUPERVISOR_PID_FILE,
                ],
            )),
            (Supervisor::Hactl, Backend::Keepalived) => RemoteCommand::new(&script_argv(
                START_KEEPALIVED,
                &[
                    layout::KEEPALIVED_CONFIG,
                    layout::KEEPALIVED_PID_FILE,
                    layout::KEEPALIVED_VRRP_PID_FILE,
                    layout::KEEPALIVED_CHECKERS_PID_FILE,
                    layout::KEEPALIVED_LOG,
                ],
            )),
        };
        session.run(&command.become_(true)).await?;
        Ok(())
    }

    /// The last lines of the supervised daemon's log (empty under systemd:
    /// see `journalctl -u UNIT`).
    pub async fn log_tail(&self, session: &HostSession, lines: usize) -> String {
        if self.supervisor == Supervisor::Systemd {
            return String::new();
        }
        let log = match self.backend {
            Backend::Agent => layout::AGENT_LOG,
            Backend::Keepalived => layout::KEEPALIVED_LOG,
        };
        let command =
            RemoteCommand::new(&["tail", "-n", &lines.to_string(), "--", log]).become_(true);
        match session.output(&command).await {
            Ok(out) if out.success() => out.stdout_text().trim().to_string(),
            _ => String::new(),
        }
    }

    /// SIGTERM, then waits until the daemon has exited (a master releases
    /// its VIPs with a priority 0 advert first). Not running is fine.
    pub async fn stop(&self, session: &HostSession) -> Result<(), ControlError> {
        if self.supervisor == Supervisor::Systemd {
            session
                .run(&RemoteCommand::new(&["systemctl", "stop", self.unit()]).become_(true))
                .await?;
            return Ok(());
        }
        let tenths = (STOP_WAIT.as_millis() / 100).to_string();
        let pid_file = layout::pid_file(self.backend);
        let script = if self.backend == Backend::Agent {
            script_argv(
                STOP_AGENT,
                &[pid_file, layout::AGENT_SUPERVISOR_PID_FILE, &tenths],
            )
        } else {
            self.signal(session, "TERM").await?;
            script_argv(WAIT_GONE, &[pid_file, &tenths])
        };
        let waited = session
            .output(
                &RemoteCommand::new(&script)
                    .become_(true)
                    .timeout(STOP_WAIT + Duration::from_secs(5)),
            )
            .await?;
        if !waited.success() {
            return Err(ControlError::StopTimeout {
                host: session.host().to_string(),
                what: self.what(),
            });
        }
        Ok(())
    }

    /// SIGKILL: the daemon dies without releasing anything (a drill's
    /// crash).
    pub async fn kill(&self, session: &HostSession) -> Result<Option<u32>, ControlError> {
        if self.supervisor == Supervisor::Systemd {
            session
                .run(
                    &RemoteCommand::new(&["systemctl", "kill", "-s", "KILL", self.unit()])
                        .become_(true),
                )
                .await?;
            return Ok(None);
        }
        self.signal(session, "KILL").await
    }

    /// SIGHUP: re-read the config; unchanged instances keep running.
    pub async fn reload(&self, session: &HostSession) -> Result<(), ControlError> {
        if self.supervisor == Supervisor::Systemd {
            session
                .run(&RemoteCommand::new(&["systemctl", "reload", self.unit()]).become_(true))
                .await?;
            return Ok(());
        }
        self.signal(session, "HUP").await?;
        Ok(())
    }

    /// Sends `signal` to the supervised daemon; its PID, `None` when none
    /// runs.
    async fn signal(
        &self,
        session: &HostSession,
        signal: &str,
    ) -> Result<Option<u32>, ControlError> {
        let out = session
            .run(
                &RemoteCommand::new(&script_argv(
                    SIGNAL,
                    &[signal, layout::pid_file(self.backend)],
                ))
                .become_(true),
            )
            .await?;
        Ok(out.stdout_text().trim().parse().ok())
    }

    /// The daemon's process.
    pub async fn process(&self, session: &HostSession) -> Result<ProcessState, ControlError> {
        if self.supervisor == Supervisor::Systemd {
            let out = session
                .run(&RemoteCommand::new(&[
                    "systemctl",
                    "show",
                    "-p",
                    "MainPID",
                    "--value",
                    self.unit(),
                ]))
                .await?;
            return Ok(match out.stdout_text().trim().parse::<u32>() {
                Ok(0) | Err(_) => ProcessState::NotRunning { pid: 0 },
                Ok(pid) => ProcessState::Running {
                    pid,
                    command: self.what().to_string(),
                },
            });
        }
        let fact = PidFileProcess {
            pid_file: layout::pid_file(self.backend).to_string(),
        };
        Ok(facts::gather(session, &fact).await?)
    }

    /// The daemon's PID when it runs.
    pub async fn running_pid(&self, session: &HostSession) -> Result<Option<u32>, ControlError> {
        Ok(match self.process(session).await? {
            ProcessState::Running { pid, .. } => Some(pid),
            _ => None,
        })
    }

    /// hactl-agent's status document; `None` when the agent does not
    /// answer, and always for keepalived (see the module doc).
    pub async fn status(&self, session: &HostSession) -> Result<Option<Status>, ControlError> {
        if self.backend == Backend::Keepalived {
            return Ok(None);
        }
        agent_status(session).await
    }
}

/// `hactl-agent status --json` on the host, parsed; `None` when the agent
/// does not answer on its socket.
pub async fn agent_status(session: &HostSession) -> Result<Option<Status>, ControlError> {
    Ok(match facts::gather(session, &facts::AgentStatus).await? {
        facts::AgentAnswer::Up(status) => Some(*status),
        facts::AgentAnswer::Down(_) => None,
    })
}
