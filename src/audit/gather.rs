//! What the audit asks each host, over SSH, within one deadline: its
//! interface addresses (`ip -j addr`), the agent's status
//! (`hactl-agent status --json`; for stock keepalived only whether its
//! process runs), the config file the agent runs, and the agent's VIP
//! ledger. Each is a fact (a command plus a pure parser); this module only
//! runs them and files the answers as [`Observations`] for `judge.rs`.
//!
//! A host that fails to connect, or has not answered all four when the
//! deadline passes, is [`HostObservation::Unreachable`]; the others are
//! unaffected.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::judge::{
    AgentInstance, AgentState, ConfigState, HostFacts, HostObservation, Observations,
};
use super::running::parse_running;
use crate::facts::{self, Fact, Interfaces, ParseError, PidFileProcess, ProcessState};
use crate::plan::{Backend, ClusterPlan};
use crate::remote_layout::{
    AGENT_BIN as AGENT_BINARY, AGENT_CONFIG, AGENT_LEDGER, AGENT_SOCKET, KEEPALIVED_CONFIG,
    KEEPALIVED_PID_FILE,
};
use crate::ssh::{CommandOutput, HostSession, Pool, RemoteCommand, Target, script_argv};

/// keepalived's pid files: where hactl supervises it (the lab), then
/// keepalived's own default (systemd).
pub const KEEPALIVED_PID_FILES: [&str; 2] = [KEEPALIVED_PID_FILE, "/run/keepalived.pid"];

/// `hactl-agent status` exits 3 when its socket does not answer.
const STATUS_UNREACHABLE: i32 = 3;
/// The shell's "command not found".
const NOT_FOUND: i32 = 127;
/// Exit status of [`READ_FILE`] when the file does not exist.
const NO_SUCH_FILE: i32 = 44;

/// Prints a file, or exits 44 when it does not exist.
const READ_FILE: &str = r#"[ -e "$1" ] || exit 44
exec cat -- "$1""#;

// ===== facts =====

/// `hactl-agent status --json`: per instance name, its state.
#[derive(Debug, Clone)]
pub struct AgentStatus;

#[derive(Deserialize)]
struct StatusJson {
    instances: Vec<StatusInstance>,
}

#[derive(Deserialize)]
struct StatusInstance {
    name: String,
    state: String,
    #[serde(default)]
    vrid: Option<u8>,
    #[serde(default)]
    version: Option<u8>,
}

impl Fact for AgentStatus {
    type Output = AgentState;

    fn name(&self) -> &'static str {
        "agent status"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&[AGENT_BINARY, "status", "--json", "--socket", AGENT_SOCKET])
    }

    fn parse(&self, output: &CommandOutput) -> Result<AgentState, ParseError> {
        match output.status {
            Some(0) => {}
            Some(STATUS_UNREACHABLE) => {
                return Ok(AgentState::Down(format!(
                    "its status socket {AGENT_SOCKET} does not answer"
                )));
            }
            Some(NOT_FOUND) => {
                return Ok(AgentState::Down(format!("{AGENT_BINARY} is not installed")));
            }
            _ => return Err(ParseError::unexpected(output)),
        }
        let status: StatusJson = serde_json::from_slice(&output.stdout)
            .map_err(|e| ParseError(format!("status json: {e}")))?;
        Ok(AgentState::Up(
            status
                .instances
                .into_iter()
                .map(|i| {
                    let live = AgentInstance {
                        state: i.state,
                        vrid: i.vrid,
                        version: i.version,
                    };
                    (i.name, live)
                })
                .collect(),
        ))
    }
}

/// The text of a file, `None` when it does not exist.
#[derive(Debug, Clone)]
pub struct FileText {
    pub path: String,
}

impl Fact for FileText {
    type Output = Option<String>;

    fn name(&self) -> &'static str {
        "file"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&script_argv(READ_FILE, &[&self.path]))
    }

    fn parse(&self, output: &CommandOutput) -> Result<Option<String>, ParseError> {
        match output.status {
            Some(0) => Ok(Some(output.stdout_text())),
            Some(NO_SUCH_FILE) => Ok(None),
            _ => Err(ParseError::unexpected(output)),
        }
    }
}

#[derive(Deserialize)]
struct LedgerEntry {
    address: String,
}

/// The addresses of a ledger file (`[{"interface": .., "address": "A/L"}]`).
pub fn parse_ledger(text: &str) -> Result<Vec<IpAddr>, ParseError> {
    let entries: Vec<LedgerEntry> =
        serde_json::from_str(text).map_err(|e| ParseError(format!("ledger json: {e}")))?;
    entries
        .iter()
        .map(|e| {
            e.address
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| ParseError(format!("ledger address {:?}", e.address)))
        })
        .collect()
}

// ===== gathering =====

/// Asks every target at most `forks` at a time; whatever has not answered
/// at `deadline` is unreachable.
pub async fn gather_all(
    pool: Arc<Pool>,
    plan: &ClusterPlan,
    targets: &[Target],
    deadline: Instant,
) -> Observations {
    let permits = Arc::new(Semaphore::new(pool.options().forks.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let backend = plan
            .pair_of(&target.host)
            .map_or(Backend::Agent, |p| p.backend);
        let (pool, permits, target) = (pool.clone(), permits.clone(), target.clone());
        tasks.spawn(async move {
            let host = target.host.clone();
            let work = async {
                let _permit = permits.acquire().await.ok();
                let session = pool.connect(&target).await.map_err(|e| e.to_string())?;
                gather_host(&session, backend).await
            };
            let observation = match tokio::time::timeout_at(deadline, work).await {
                Ok(Ok(facts)) => HostObservation::Reached(facts),
                Ok(Err(why)) => HostObservation::Unreachable(why),
                Err(_) => HostObservation::Unreachable("no answer before the deadline".into()),
            };
            (host, observation)
        });
    }
    let mut hosts = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((host, observation)) = joined {
            hosts.insert(host, observation);
        }
    }
    Observations { hosts }
}

/// The four facts of one host, side by side over its one connection.
async fn gather_host(session: &HostSession, backend: Backend) -> Result<HostFacts, String> {
    let config_path = match backend {
        Backend::Agent => AGENT_CONFIG,
        Backend::Keepalived => KEEPALIVED_CONFIG,
    };
    let config_fact = FileText {
        path: config_path.to_string(),
    };
    let ledger_fact = FileText {
        path: AGENT_LEDGER.to_string(),
    };
    let agent = async {
        match backend {
            Backend::Agent => facts::gather(session, &AgentStatus).await,
            Backend::Keepalived => {
                let mut state = Ok(ProcessState::NoPidFile);
                for pid_file in KEEPALIVED_PID_FILES {
                    let fact = PidFileProcess {
                        pid_file: pid_file.to_string(),
                    };
                    state = facts::gather(session, &fact).await;
                    if !matches!(state, Ok(ProcessState::NoPidFile)) {
                        break;
                    }
                }
                state.map(|p| match p {
                    ProcessState::Running { .. } => AgentState::Running,
                    ProcessState::NoPidFile => {
                        AgentState::Down("keepalived is not running (no pid file)".into())
                    }
                    ProcessState::Malformed => {
                        AgentState::Down("keepalived's pid file holds no pid".into())
                    }
                    ProcessState::NotRunning { pid } => {
                        AgentState::Down(format!("keepalived is not running (pid {pid} is gone)"))
                    }
                })
            }
        }
    };
    let (interfaces, agent, config, ledger) = tokio::join!(
        facts::gather(session, &Interfaces),
        agent,
        facts::gather(session, &config_fact),
        facts::gather(session, &ledger_fact),
    );
    let addresses = interfaces
        .map_err(|e| e.to_string())?
        .iter()
        .flat_map(|i| i.addresses.iter().map(|a| a.address))
        .collect();
    let agent = agent.unwrap_or_else(|e| AgentState::Down(e.to_string()));
    let config = match config {
        Ok(Some(text)) => match parse_running(&text, config_path) {
            Ok(running) => ConfigState::Parsed(running),
            Err(e) => ConfigState::Broken(format!("{config_path}: {e}")),
        },
        Ok(None) => ConfigState::Missing,
        Err(e) => ConfigState::Broken(e.to_string()),
    };
    // A missing or unreadable ledger only means nothing is recorded.
    let ledger = match ledger {
        Ok(Some(text)) => parse_ledger(&text).unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(HostFacts {
        addresses,
        agent,
        config,
        ledger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(status: i32, stdout: &str) -> CommandOutput {
        CommandOutput {
            status: Some(status),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn agent_status_answers() {
        let json = r#"{"pid": 9, "instances": [{"name": "www", "state": "MASTER", "vrid": 51}, {"name": "blog", "state": "BACKUP"}]}"#;
        match AgentStatus.parse(&output(0, json)).unwrap() {
            AgentState::Up(states) => {
                assert_eq!(states["www"].state, "MASTER");
                assert_eq!(states["www"].vrid, Some(51));
                assert_eq!(states["blog"], AgentInstance::new("BACKUP"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            AgentStatus.parse(&output(3, "")).unwrap(),
            AgentState::Down(why) if why.contains("does not answer")
        ));
        assert!(matches!(
            AgentStatus.parse(&output(127, "")).unwrap(),
            AgentState::Down(why) if why.contains("not installed")
        ));
        assert!(AgentStatus.parse(&output(0, "{")).is_err());
        assert!(AgentStatus.parse(&output(1, "")).is_err());
    }

    #[test]
    fn file_text_and_ledger() {
        let fact = FileText {
            path: "/etc/x".into(),
        };
        assert_eq!(
            fact.parse(&output(0, "a\n")).unwrap().as_deref(),
            Some("a\n")
        );
        assert_eq!(fact.parse(&output(44, "")).unwrap(), None);
        assert!(fact.parse(&output(1, "")).is_err());
        let ledger = parse_ledger(r#"[{"interface": "eth0", "address": "10.0.0.5/24"}]"#).unwrap();
        assert_eq!(ledger, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert!(parse_ledger(r#"[{"interface": "eth0", "address": "x"}]"#).is_err());
    }
}
