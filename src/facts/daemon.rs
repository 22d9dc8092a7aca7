//! The VRRP daemon of a host as facts: who supervises it and whether it
//! runs ([`Daemon`]), and what hactl-agent says about itself
//! ([`AgentStatus`], its status socket's JSON).
//!
//! "Supervised by systemd" means PID 1 is systemd (`/run/systemd/system`
//! exists, as sd_booted(3) checks); the daemon's process is then the
//! unit's `MainPID`. Elsewhere (the lab) hactl supervises it with a pid
//! file, and "running" means the pid file names a live, non-zombie process.

use std::time::Duration;

use hactl_agent::status::Status;
use serde::Serialize;

use super::files::{PidFileProcess, ProcessState};
use super::{Fact, ParseError};
use crate::plan::Backend;
use crate::remote_layout as layout;
use crate::ssh::{CommandOutput, RemoteCommand, script_argv};

/// `hactl-agent status` exits with this when its socket does not answer.
const STATUS_UNREACHABLE: i32 = 3;
/// The shell's "command not found".
const NOT_FOUND: i32 = 127;

/// Who keeps the daemon running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Supervisor {
    /// PID 1 is systemd: a unit.
    Systemd,
    /// hactl's pid file (the lab: no systemd inside its hosts).
    Hactl,
}

/// The supervisor and the daemon's process: argv UNIT PIDFILE. Prints
/// `systemd` then the unit's MainPID, or `hactl` then what the pid-file
/// script prints.
const DAEMON_SCRIPT: &str = r#"if [ -d /run/systemd/system ]; then
  echo systemd
  systemctl show -p MainPID --value "$1" 2>/dev/null || echo 0
  exit 0
fi
echo hactl
p=$(cat -- "$2" 2>/dev/null) || { echo nofile; exit 0; }
case $p in ''|*[!0-9]*) echo malformed; exit 0 ;; esac
echo "pid $p"
cat "/proc/$p/stat" 2>/dev/null || true"#;

/// The daemon of `backend` on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daemon {
    pub backend: Backend,
}

/// What [`Daemon`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonState {
    pub supervisor: Supervisor,
    pub process: ProcessState,
}

impl DaemonState {
    /// The daemon's PID when it runs.
    pub fn pid(&self) -> Option<u32> {
        match self.process {
            ProcessState::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

impl Daemon {
    fn name_of(self) -> &'static str {
        match self.backend {
            Backend::Agent => "hactl-agent",
            Backend::Keepalived => "keepalived",
        }
    }
}

impl Fact for Daemon {
    type Output = DaemonState;

    fn name(&self) -> &'static str {
        "daemon"
    }

    fn command(&self) -> RemoteCommand {
        let unit = match self.backend {
            Backend::Agent => layout::AGENT_UNIT,
            Backend::Keepalived => layout::KEEPALIVED_UNIT,
        };
        RemoteCommand::new(&script_argv(
            DAEMON_SCRIPT,
            &[unit, layout::pid_file(self.backend)],
        ))
        .become_(true)
        .named("daemon fact")
    }

    fn parse(&self, output: &CommandOutput) -> Result<DaemonState, ParseError> {
        if !output.success() {
            return Err(ParseError::unexpected(output));
        }
        let text = output.stdout_text();
        let (first, rest) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        match first.trim() {
            "systemd" => {
                let process = match rest.trim().parse::<u32>() {
                    Ok(0) | Err(_) => ProcessState::NotRunning { pid: 0 },
                    Ok(pid) => ProcessState::Running {
                        pid,
                        command: self.name_of().to_string(),
                    },
                };
                Ok(DaemonState {
                    supervisor: Supervisor::Systemd,
                    process,
                })
            }
            "hactl" => {
                let pid_file = PidFileProcess {
                    pid_file: layout::pid_file(self.backend).to_string(),
                };
                let process = pid_file.parse(&CommandOutput {
                    status: Some(0),
                    stdout: rest.as_bytes().to_vec(),
                    stderr: Vec::new(),
                })?;
                Ok(DaemonState {
                    supervisor: Supervisor::Hactl,
                    process,
                })
            }
            other => Err(ParseError::new(format!("unexpected line {other:?}"))),
        }
    }
}

/// What the agent answered on its status socket.
#[derive(Debug, Clone)]
pub enum AgentAnswer {
    Up(Box<Status>),
    /// No answer, and why (socket silent, binary missing).
    Down(String),
}

/// `hactl-agent status --json` on the host (root: the socket is 0600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentStatus;

impl Fact for AgentStatus {
    type Output = AgentAnswer;

    fn name(&self) -> &'static str {
        "agent status"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&[
            layout::AGENT_BIN,
            "status",
            "--socket",
            layout::AGENT_SOCKET,
            "--json",
        ])
        .become_(true)
        .timeout(Duration::from_secs(10))
    }

    fn parse(&self, output: &CommandOutput) -> Result<AgentAnswer, ParseError> {
        match output.status {
            Some(0) => serde_json::from_slice(&output.stdout)
                .map(|s| AgentAnswer::Up(Box::new(s)))
                .map_err(|e| ParseError::new(format!("status json: {e}"))),
            Some(STATUS_UNREACHABLE) => Ok(AgentAnswer::Down(format!(
                "its status socket {} does not answer",
                layout::AGENT_SOCKET
            ))),
            Some(NOT_FOUND) => Ok(AgentAnswer::Down(format!(
                "{} is not installed",
                layout::AGENT_BIN
            ))),
            _ => Err(ParseError::unexpected(output)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    #[test]
    fn supervisor_and_process() {
        let fact = Daemon {
            backend: Backend::Agent,
        };
        let state = fact.parse(&output(0, "systemd\n4242\n", "")).unwrap();
        assert_eq!(state.supervisor, Supervisor::Systemd);
        assert_eq!(state.pid(), Some(4242));
        let state = fact.parse(&output(0, "systemd\n0\n", "")).unwrap();
        assert_eq!(state.pid(), None);
        let stat = "hactl\npid 77\n77 (hactl-agent) S 1 77 77 0 -1 4194560\n";
        let state = fact.parse(&output(0, stat, "")).unwrap();
        assert_eq!(
            (state.supervisor, state.pid()),
            (Supervisor::Hactl, Some(77))
        );
        let zombie = "hactl\npid 77\n77 (hactl-agent) Z 1 77 77 0 -1 4194560\n";
        assert_eq!(fact.parse(&output(0, zombie, "")).unwrap().pid(), None);
        assert_eq!(
            fact.parse(&output(0, "hactl\nnofile\n", ""))
                .unwrap()
                .process,
            ProcessState::NoPidFile
        );
        assert!(fact.parse(&output(0, "what\n", "")).is_err());
        assert!(
            fact.parse(&output(1, "", "sudo: a password is required"))
                .is_err()
        );
    }

    #[test]
    fn agent_status_answers() {
        let json = r#"{"pid": 9, "config": "/etc/hactl/keepalived.conf", "started": "2026-12-01T00:00:00.000Z", "instances": [], "sockets": []}"#;
        match AgentStatus.parse(&output(0, json, "")).unwrap() {
            AgentAnswer::Up(status) => assert_eq!(status.pid, 9),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            AgentStatus.parse(&output(3, "", "")).unwrap(),
            AgentAnswer::Down(why) if why.contains("does not answer")
        ));
        assert!(matches!(
            AgentStatus.parse(&output(127, "", "")).unwrap(),
            AgentAnswer::Down(why) if why.contains("not installed")
        ));
        assert!(AgentStatus.parse(&output(0, "{", "")).is_err());
        assert!(AgentStatus.parse(&output(1, "", "")).is_err());
    }
}
