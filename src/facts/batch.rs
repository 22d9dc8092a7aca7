//! Many facts in one round trip: a [`Batch`] runs the commands of several
//! facts in one remote shell script and hands each fact's parser exactly
//! the exit status, stdout and stderr its own command would have given, so
//! the parsers stay pure and tested on recorded output.
//!
//! Framing (what the script prints, per fact, in order):
//!
//! ```text
//! STATUS STDOUT_LEN STDERR_LEN\n   one header line, decimal numbers
//! <STDOUT_LEN bytes of stdout><STDERR_LEN bytes of stderr>
//! ```
//!
//! Lengths instead of marker lines, so no output can be mistaken for a
//! frame. Each command runs with stdin from /dev/null under `timeout`
//! (coreutils) when the fact sets one; a fact that timed out reports
//! status 124 and is turned into [`FactError::TimedOut`] here. The whole
//! script runs as root when any fact needs it.

use std::time::Duration;

use super::{Fact, FactError};
use crate::ssh::{CommandOutput, HostSession, RemoteCommand, command_line};

/// The status `timeout(1)` exits with when it had to stop the command.
const TIMED_OUT: i32 = 124;

/// How long a fact without a timeout of its own may run inside a batch.
const DEFAULT_FACT_TIMEOUT: Duration = Duration::from_secs(20);

/// The script's prelude: a scratch directory and the framing function
/// `f SECONDS ARGV...`.
const PRELUDE: &str = r#"d=$(mktemp -d) || exit 97
trap 'rm -rf "$d"' EXIT
if command -v timeout >/dev/null 2>&1; then t=1; else t=; fi
f() {
  s=$1; shift
  if [ -n "$t" ]; then timeout -k 1 "$s" "$@" </dev/null >"$d/o" 2>"$d/e"; else "$@" </dev/null >"$d/o" 2>"$d/e"; fi
  c=$?
  printf '%s %s %s\n' "$c" "$(wc -c <"$d/o")" "$(wc -c <"$d/e")"
  cat "$d/o" "$d/e"
}
"#;

/// Where a fact's answer is in a batch's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// Facts to gather from one host in one command.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    facts: Vec<(&'static str, RemoteCommand)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a fact; its answer is read back with [`Answers::parse`].
    pub fn add<F: Fact>(&mut self, fact: &F) -> Slot {
        self.facts.push((fact.name(), fact.command()));
        Slot(self.facts.len() - 1)
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// The one command that runs every fact (see the module doc).
    pub fn command(&self) -> Result<RemoteCommand, String> {
        let mut script = String::from(PRELUDE);
        let mut become_ = false;
        let mut total = Duration::ZERO;
        for (name, command) in &self.facts {
            let limit = command.timeout.unwrap_or(DEFAULT_FACT_TIMEOUT);
            total += limit;
            become_ |= command.become_ == Some(true);
            let line = command_line(&command.argv, false)
                .map_err(|bad| format!("{name}: cannot quote {:?}", bad.0))?;
            script.push_str(&format!("f {} {line}\n", limit.as_secs().max(1)));
        }
        let mut command = RemoteCommand::new(&["sh", "-c", &script, "hactl-facts"])
            .timeout(total + Duration::from_secs(5))
            .named("fact batch");
        // Root when a fact needs it; otherwise the target's own setting.
        if become_ {
            command = command.become_(true);
        }
        Ok(command)
    }

    /// Runs every fact on `session` in one round trip.
    pub async fn run(&self, session: &HostSession) -> Result<Answers, FactError> {
        let command = self.command().map_err(|reason| FactError::Batch {
            host: session.host().to_string(),
            reason,
        })?;
        let output = session.output(&command).await?;
        let frames = split_frames(&output.stdout).ok_or_else(|| FactError::Batch {
            host: session.host().to_string(),
            reason: batch_failure(&output),
        })?;
        if frames.len() != self.facts.len() {
            return Err(FactError::Batch {
                host: session.host().to_string(),
                reason: format!(
                    "{} of {} facts answered; {}",
                    frames.len(),
                    self.facts.len(),
                    batch_failure(&output)
                ),
            });
        }
        Ok(Answers {
            host: session.host().to_string(),
            names: self.facts.iter().map(|(n, c)| (*n, c.clone())).collect(),
            frames,
        })
    }
}

/// Why a batch printed no (or too few) frames: its own status and stderr.
fn batch_failure(output: &CommandOutput) -> String {
    let status = match output.status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    };
    let stderr = crate::ssh::bounded_stderr(&output.stderr);
    if stderr.is_empty() {
        status
    } else {
        format!("{status}: {stderr}")
    }
}

/// Reads the frames of a batch's stdout; `None` when it is not framed.
pub fn split_frames(bytes: &[u8]) -> Option<Vec<CommandOutput>> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let newline = rest.iter().position(|&b| b == b'\n')?;
        let header = std::str::from_utf8(&rest[..newline]).ok()?;
        let mut numbers = header.split_whitespace().map(|n| n.parse::<usize>());
        let (Some(Ok(status)), Some(Ok(out_len)), Some(Ok(err_len)), None) = (
            numbers.next(),
            numbers.next(),
            numbers.next(),
            numbers.next(),
        ) else {
            return None;
        };
        let body = &rest[newline + 1..];
        if body.len() < out_len + err_len {
            return None;
        }
        frames.push(CommandOutput {
            status: i32::try_from(status).ok(),
            stdout: body[..out_len].to_vec(),
            stderr: body[out_len..out_len + err_len].to_vec(),
        });
        rest = &body[out_len + err_len..];
    }
    Some(frames)
}

/// What a batch's facts answered.
#[derive(Debug, Clone)]
pub struct Answers {
    host: String,
    names: Vec<(&'static str, RemoteCommand)>,
    frames: Vec<CommandOutput>,
}

impl Answers {
    /// The answer of the fact added at `slot`, parsed by that fact.
    pub fn parse<F: Fact>(&self, slot: Slot, fact: &F) -> Result<F::Output, FactError> {
        let output = &self.frames[slot.0];
        let (name, command) = &self.names[slot.0];
        if output.status == Some(TIMED_OUT) {
            return Err(FactError::TimedOut {
                host: self.host.clone(),
                fact: name,
                after: command.timeout.unwrap_or(DEFAULT_FACT_TIMEOUT),
            });
        }
        fact.parse(output).map_err(|source| FactError::Parse {
            host: self.host.clone(),
            fact: name,
            command: command.describe(),
            source,
        })
    }

    /// The raw output at `slot` (for tests and recordings).
    pub fn output(&self, slot: Slot) -> &CommandOutput {
        &self.frames[slot.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_status_stdout_and_stderr_exactly() {
        let bytes = b"0 6 0\nhello\n3 0 5\noops\n127 2 4\nab\ncd\n";
        let frames = split_frames(bytes).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].status, Some(0));
        assert_eq!(frames[0].stdout, b"hello\n");
        assert_eq!(frames[1].stderr, b"oops\n");
        assert_eq!(frames[2].status, Some(127));
        assert_eq!(frames[2].stdout, b"ab");
        assert_eq!(frames[2].stderr, b"\ncd\n");
        // Output that looks like a header is just output.
        let tricky = b"0 8 0\n0 99 0\n\n";
        assert_eq!(split_frames(tricky).unwrap()[0].stdout, b"0 99 0\n\n");
        assert!(split_frames(b"0 10 0\nshort").is_none());
        assert!(split_frames(b"garbage\n").is_none());
        assert_eq!(split_frames(b"").unwrap().len(), 0);
    }

    #[test]
    fn the_script_runs_each_fact_and_frames_its_output() {
        let mut batch = Batch::new();
        let a = RemoteCommand::new(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
        let b = RemoteCommand::new(&["printf", "%s", "$(reboot) it's"]).become_(true);
        batch.facts.push(("a", a));
        batch.facts.push(("b", b));
        let command = batch.command().unwrap();
        assert_eq!(command.become_, Some(true), "one root fact makes it root");
        let output = std::process::Command::new(&command.argv[0])
            .args(&command.argv[1..])
            .output()
            .unwrap();
        let frames = split_frames(&output.stdout).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            (
                frames[0].status,
                frames[0].stdout.as_slice(),
                frames[0].stderr.as_slice()
            ),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
        assert_eq!(frames[1].stdout, b"$(reboot) it's");
    }

    #[test]
    fn a_fact_that_outlives_its_timeout_says_so() {
        let mut batch = Batch::new();
        let slow = RemoteCommand::new(&["sleep", "5"]).timeout(Duration::from_secs(1));
        batch.facts.push(("slow", slow));
        let command = batch.command().unwrap();
        let output = std::process::Command::new(&command.argv[0])
            .args(&command.argv[1..])
            .output()
            .unwrap();
        let frames = split_frames(&output.stdout).unwrap();
        assert_eq!(frames[0].status, Some(TIMED_OUT));
    }
}
