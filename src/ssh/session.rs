//! One host's logged-in connection: running commands (captured output,
//! timeout, optional stdin), turning a non-zero exit into a
//! [`RemoteError`], uploading files atomically, and long-running commands
//! whose stderr is watched while they run (a packet capture waiting for a
//! probe).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openssh::{Session, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::master::MasterHandle;
use super::quote::{command_line, script_argv};
use super::{RemoteError, SshError, Target, bounded_stderr};

/// Writes stdin to a temporary file next to the destination, sets its mode,
/// and renames it over the destination: readers see the old file or the new
/// one, never a part. The temporary file is removed if any step fails.
const ATOMIC_WRITE: &str = r#"set -e
tmp=$(mktemp "$1.hactl-XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
chmod "$2" "$tmp"
mv -f "$tmp" "$1"
trap - EXIT"#;

/// The shell's status for "command not found".
const COMMAND_NOT_FOUND: i32 = 127;

/// What a remote command did, whatever its exit status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// The exit code; `None` when a signal ended the command.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A command to run on a host: an argv, never a shell string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    pub argv: Vec<String>,
    /// Run through `sudo -n` (needs root); `None` follows the target's
    /// `become_`. A target that logs in as root never uses sudo.
    pub become_: Option<bool>,
    /// Bytes fed to the command's stdin (then closed); stdin is empty
    /// otherwise. Shared, so one agent binary uploaded to a hundred hosts
    /// is held once.
    pub stdin: Option<Arc<[u8]>>,
    /// Overrides the pool's command timeout.
    pub timeout: Option<Duration>,
    /// What the command is, for messages (`vrrp probe receiver`): an inline
    /// program is shown by this name, never in full.
    pub name: Option<&'static str>,
}

impl RemoteCommand {
    pub fn new<S: AsRef<str>>(argv: &[S]) -> RemoteCommand {
        RemoteCommand {
            argv: argv.iter().map(|a| a.as_ref().to_string()).collect(),
            become_: None,
            stdin: None,
            timeout: None,
            name: None,
        }
    }

    /// Names the command for messages (see [`RemoteCommand::describe`]).
    pub fn named(mut self, name: &'static str) -> RemoteCommand {
        self.name = Some(name);
        self
    }

    /// The command as messages show it: the argv quoted, with an inline
    /// program (the word after `-c`, or any word of several lines) shown as
    /// `<NAME>` so an error never prints a whole script.
    pub fn describe(&self) -> String {
        let mut words = Vec::with_capacity(self.argv.len());
        let mut after_c = false;
        for word in &self.argv {
            let inline = after_c || word.contains('\n');
            after_c = word == "-c";
            if inline {
                words.push(format!("<{}>", self.name.unwrap_or("script")));
            } else {
                words.push(
                    shlex::try_quote(word)
                        .map(|w| w.into_owned())
                        .unwrap_or_else(|_| format!("{word:?}")),
                );
            }
        }
        words.join(" ")
    }

    pub fn become_(mut self, become_: bool) -> RemoteCommand {
        self.become_ = Some(become_);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Arc<[u8]>>) -> RemoteCommand {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> RemoteCommand {
        self.timeout = Some(timeout);
        self
    }
}

/// A logged-in host. Cheap to share (`Arc`); commands may run concurrently
/// over the one master connection.
#[derive(Debug)]
pub struct HostSession {
    target: Target,
    session: Arc<Session>,
    master: Arc<MasterHandle>,
    command_timeout: Duration,
}

impl HostSession {
    pub(crate) fn new(
        target: Target,
        master: Arc<MasterHandle>,
        command_timeout: Duration,
    ) -> HostSession {
        let socket = master.control_path.clone().into_boxed_path();
        HostSession {
            target,
            // A resumed session does not stop the master on drop: the
            // MasterHandle does, so the pool can also stop it on a signal.
            session: Arc::new(Session::resume_mux(socket, None)),
            master,
            command_timeout,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The inventory host name.
    pub fn host(&self) -> &str {
        &self.target.host
    }

    /// The PID of this host's ssh master, until it is stopped.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.pid()
    }

    /// Whether the master connection is still there to run commands.
    pub fn is_connected(&self) -> bool {
        self.master.is_running()
    }

    /// The command line `command` is sent as.
    pub fn render(&self, command: &RemoteCommand) -> Result<String, SshError> {
        // A root login needs no sudo (and lab hosts have none).
        let become_ = command.become_.unwrap_or(self.target.become_) && self.target.user != "root";
        command_line(&command.argv, become_).map_err(|bad| SshError::Quote {
            host: self.target.host.clone(),
            argument: bad.0,
        })
    }

    /// Runs `command` and returns what it did, whatever its exit status.
    pub async fn output(&self, command: &RemoteCommand) -> Result<CommandOutput, SshError> {
        let line = self.render(command)?;
        let shown = command.describe();
        let session_error = |source| SshError::Session {
            host: self.target.host.clone(),
            command: shown.clone(),
            source,
        };
        let run = async {
            let mut remote = self.session.raw_command(&line);
            remote
                .stdin(if command.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = remote.spawn().await.map_err(session_error)?;
            let stdin = child.stdin().take();
            let feed = async {
                if let (Some(mut pipe), Some(bytes)) = (stdin, &command.stdin) {
                    // A command that exits without reading all of stdin
                    // breaks the pipe; its exit status tells why.
                    let _ = pipe.write_all(bytes).await;
                    let _ = pipe.shutdown().await;
                }
            };
            let (_, stdout, stderr) = tokio::join!(
                feed,
                read_all(child.stdout().take()),
                read_all(child.stderr().take())
            );
            let status = exit_code(child.wait().await).map_err(session_error)?;
            Ok(CommandOutput {
                status,
                stdout,
                stderr,
            })
        };
        let limit = command.timeout.unwrap_or(self.command_timeout);
        match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Err(SshError::CommandTimeout {
                host: self.target.host.clone(),
                command: shown,
                after: limit,
            }),
        }
    }

    /// Runs `command`; a non-zero exit is a [`RemoteError`].
    pub async fn run(&self, command: &RemoteCommand) -> Result<CommandOutput, SshError> {
        let output = self.output(command).await?;
        if output.success() {
            return Ok(output);
        }
        Err(SshError::Remote(RemoteError {
            host: self.target.host.clone(),
            command: command.describe(),
            status: output.status,
            stderr: bounded_stderr(&output.stderr),
        }))
    }

    /// Runs an argv with the target's become setting; a non-zero exit is
    /// an error. Returns stdout.
    pub async fn run_argv<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, SshError> {
        Ok(self.run(&RemoteCommand::new(argv)).await?.stdout_text())
    }

    /// Writes `bytes` to the absolute `path` on the host with `mode`,
    /// atomically (temporary file in the same directory, then rename).
    pub async fn upload(
        &self,
        bytes: impl Into<Arc<[u8]>>,
        path: &str,
        mode: u32,
    ) -> Result<(), SshError> {
        if !path.starts_with('/') {
            return Err(SshError::RemotePath {
                host: self.target.host.clone(),
                path: path.to_string(),
            });
        }
        let argv = script_argv(ATOMIC_WRITE, &[path, &format!("{:o}", mode & 0o7777)]);
        self.run(&RemoteCommand::new(&argv).stdin(bytes)).await?;
        Ok(())
    }

    /// Uploads a local file, as [`HostSession::upload`].
    pub async fn upload_file(&self, local: &Path, path: &str, mode: u32) -> Result<(), SshError> {
        let bytes = std::fs::read(local).map_err(|source| SshError::LocalFile {
            host: self.target.host.clone(),
            path: local.to_path_buf(),
            source,
        })?;
        self.upload(bytes, path, mode).await
    }

    /// Starts `command` and returns at once; its stdout and stderr are
    /// captured. For commands that must be running before something else
    /// happens (a capture before a probe is sent).
    pub async fn spawn(&self, command: &RemoteCommand) -> Result<RunningCommand, SshError> {
        let line = self.render(command)?;
        let mut remote = Session::to_raw_command(self.session.clone(), &line);
        remote
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = remote.spawn().await.map_err(|source| SshError::Session {
            host: self.target.host.clone(),
            command: command.describe(),
            source,
        })?;
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        Ok(RunningCommand {
            host: self.target.host.clone(),
            command: command.describe(),
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
        })
    }
}

/// The stdin of a command started by [`HostSession::spawn_interactive`].
pub struct CommandInput {
    host: String,
    stdin: Option<openssh::ChildStdin>,
}

impl CommandInput {
    /// Writes one line to the command.
    pub async fn send_line(&mut self, line: &str) -> Result<(), std::io::Error> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                format!("{}: stdin already closed", self.host),
            ));
        };
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await
    }

    /// Closes stdin (the command sees end of file).
    pub async fn close(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.shutdown().await;
        }
    }
}

/// The stdout lines of a command started by
/// [`HostSession::spawn_interactive`], then its exit.
pub struct CommandLines {
    host: String,
    command: String,
    child: openssh::Child<Arc<Session>>,
    stdout: Option<tokio::io::Lines<tokio::io::BufReader<openssh::ChildStdout>>>,
    stderr: Option<openssh::ChildStderr>,
}

impl CommandLines {
    /// The next line of stdout; `None` at its end.
    pub async fn next_line(&mut self) -> Option<String> {
        self.stdout.as_mut()?.next_line().await.ok().flatten()
    }

    /// Waits for the command to exit: its status and (bounded) stderr.
    pub async fn finish(mut self) -> Result<(Option<i32>, String), SshError> {
        let stderr = read_all(self.stderr.take()).await;
        let status = exit_code(self.child.wait().await).map_err(|source| SshError::Session {
            host: self.host.clone(),
            command: self.command.clone(),
            source,
        })?;
        Ok((status, bounded_stderr(&stderr)))
    }
}

impl HostSession {
    /// Starts `command` with its stdin open, for a conversation: lines to
    /// it, lines from it (probes that must wait for each other).
    pub async fn spawn_interactive(
        &self,
        command: &RemoteCommand,
    ) -> Result<(CommandInput, CommandLines), SshError> {
        use tokio::io::AsyncBufReadExt;
        let line = self.render(command)?;
        let mut remote = Session::to_raw_command(self.session.clone(), &line);
        remote
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = remote.spawn().await.map_err(|source| SshError::Session {
            host: self.target.host.clone(),
            command: command.describe(),
            source,
        })?;
        let stdin = child.stdin().take();
        let stdout = child
            .stdout()
            .take()
            .map(|out| tokio::io::BufReader::new(out).lines());
        let stderr = child.stderr().take();
        Ok((
            CommandInput {
                host: self.target.host.clone(),
                stdin,
            },
            CommandLines {
                host: self.target.host.clone(),
                command: command.describe(),
                child,
                stdout,
                stderr,
            },
        ))
    }
}

/// A command started by [`HostSession::spawn`].
pub struct RunningCommand {
    host: String,
    command: String,
    child: openssh::Child<Arc<Session>>,
    stdout: Option<openssh::ChildStdout>,
    stderr: Option<openssh::ChildStderr>,
    stderr_seen: Vec<u8>,
}

impl RunningCommand {
    /// The command line as sent.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Reads the command's stderr until it holds `needle` (true), ends, or
    /// `limit` passes (false).
    pub async fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> bool {
        let Some(stderr) = self.stderr.as_mut() else {
            return false;
        };
        let seen = &mut self.stderr_seen;
        let search = async {
            let mut buffer = [0u8; 1024];
            loop {
                if String::from_utf8_lossy(seen).contains(needle) {
                    return true;
                }
                match stderr.read(&mut buffer).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => seen.extend_from_slice(&buffer[..n]),
                }
            }
        };
        tokio::time::timeout(limit, search).await.unwrap_or(false)
    }

    /// Waits for the command to end (at most `limit`) and returns what it
    /// did; stderr includes what [`RunningCommand::wait_for_stderr`] read.
    pub async fn finish(mut self, limit: Duration) -> Result<CommandOutput, SshError> {
        let host = self.host.clone();
        let command = self.command.clone();
        let run = async {
            let (stdout, stderr) =
                tokio::join!(read_all(self.stdout.take()), read_all(self.stderr.take()));
            let status =
                exit_code(self.child.wait().await).map_err(|source| SshError::Session {
                    host: host.clone(),
                    command: command.clone(),
                    source,
                })?;
            let mut all_stderr = std::mem::take(&mut self.stderr_seen);
            all_stderr.extend(stderr);
            Ok(CommandOutput {
                status,
                stdout,
                stderr: all_stderr,
            })
        };
        match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Err(SshError::CommandTimeout {
                host: self.host,
                command: self.command,
                after: limit,
            }),
        }
    }
}

/// The exit code of a finished command. openssh reports exit 127 as an
/// error ("remote command not found") and a command killed by a signal as
/// `RemoteProcessTerminated`; both are outcomes of the command, not of the
/// connection, so they become a status here and the caller keeps stderr.
fn exit_code(
    status: Result<std::process::ExitStatus, openssh::Error>,
) -> Result<Option<i32>, openssh::Error> {
    match status {
        Ok(status) => Ok(status.code()),
        Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Some(COMMAND_NOT_FOUND))
        }
        Err(openssh::Error::RemoteProcessTerminated) => Ok(None),
        Err(other) => Err(other),
    }
}

async fn read_all<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes).await;
    }
    bytes
}
