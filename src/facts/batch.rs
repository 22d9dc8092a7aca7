//! Many facts in one round trip: a [`Batch`] runs the commands of several
//! facts in one remote shell script and hands each fact's parser exactly
//! the exit status, stdout and stderr its own command would have given, so
//! the parsers stay pure and tested on recorded output.
//!
//! Framing (what the script prints, per fact, in order; B is a marker
//! drawn at random for each batch, so no output can be mistaken for it):
//!
//! ```text
//! B\n                      the fact begins
//! <stdout, as it is>
//! \nB STATUS\n              stdout ends (the newline before B is ours)
//! <stderr, as it is>
//! \nB.\n                    the fact ends
//! ```
//!
//! Each command's stdout goes straight to the batch's (no copy), stdin is
//! /dev/null, stderr goes through one scratch file; a fact with a timeout
//! of its own runs under `timeout` (coreutils), whose status 124 is turned
//! into [`FactError::TimedOut`] here. The whole script runs as root when
//! any fact needs it. The batch as a whole is bounded by the session's
//! timeout: per fact the cost is its own command and nothing else, which
//! matters on a loaded host.

use std::time::Duration;

use super::{Fact, FactError};
use crate::ssh::{CommandOutput, HostSession, RemoteCommand, command_line};

/// The status `timeout(1)` exits with when it had to stop the command.
const TIMED_OUT: i32 = 124;

/// How long a fact without a timeout of its own may run inside a batch.
const DEFAULT_FACT_TIMEOUT: Duration = Duration::from_secs(20);

/// The script's prelude: a scratch file for stderr and the framing
/// function `f SECONDS ARGV...` (SECONDS 0: no timeout of its own). The
/// marker is `$0`.
const PRELUDE: &str = r#"e=$(mktemp) || exit 97
trap 'rm -f "$e"' EXIT
f() {
  s=$1; shift
  printf '%s\n' "$0"
  if [ "$s" != 0 ] && command -v timeout >/dev/null 2>&1; then
    timeout -k 1 "$s" "$@" </dev/null 2>"$e"
  else
    "$@" </dev/null 2>"$e"
  fi
  c=$?
  printf '\n%s %s\n' "$0" "$c"
  [ -s "$e" ] && cat "$e"
  printf '\n%s.\n' "$0"
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

    /// The one command that runs every fact (see the module doc), framed
    /// with `marker`.
    pub fn command(&self, marker: &str) -> Result<RemoteCommand, String> {
        let mut script = String::from(PRELUDE);
        let mut become_ = false;
        let mut total = Duration::ZERO;
        for (name, command) in &self.facts {
            total += command.timeout.unwrap_or(DEFAULT_FACT_TIMEOUT);
            become_ |= command.become_ == Some(true);
            let line = command_line(&command.argv, false)
                .map_err(|bad| format!("{name}: cannot quote {:?}", bad.0))?;
            let own = command.timeout.map_or(0, |t| t.as_secs().max(1));
            script.push_str(&format!("f {own} {line}\n"));
        }
        let mut command = RemoteCommand::new(&["sh", "-c", &script, marker])
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
        let marker = new_marker();
        let command = self.command(&marker).map_err(|reason| FactError::Batch {
            host: session.host().to_string(),
            reason,
        })?;
        let output = session.output(&command).await?;
        let frames = split_frames(&output.stdout, &marker).ok_or_else(|| FactError::Batch {
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

/// A marker no output will hold by chance: `hactl-` and 24 hex digits of
/// the clock, the process and a counter, hashed.
fn new_marker() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut words = String::from("hactl-");
    for round in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        h.write_u64(round);
        words.push_str(&format!("{:012x}", h.finish() & 0xffff_ffff_ffff));
    }
    words
}

/// Reads the frames of a batch's stdout; `None` when it is not framed.
pub fn split_frames(bytes: &[u8], marker: &str) -> Option<Vec<CommandOutput>> {
    let begin = format!("{marker}\n");
    let end_out = format!("\n{marker} ");
    let end = format!("\n{marker}.\n");
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        rest = rest.strip_prefix(begin.as_bytes())?;
        let stdout_len = find(rest, end_out.as_bytes())?;
        let stdout = rest[..stdout_len].to_vec();
        rest = &rest[stdout_len + end_out.len()..];
        let newline = rest.iter().position(|&b| b == b'\n')?;
        let status = std::str::from_utf8(&rest[..newline])
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()?;
        rest = &rest[newline + 1..];
        let stderr_len = find(rest, end.as_bytes())?;
        let stderr = rest[..stderr_len].to_vec();
        rest = &rest[stderr_len + end.len()..];
        frames.push(CommandOutput {
            status: Some(status),
            stdout,
            stderr,
        });
    }
    Some(frames)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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

    fn run_locally(batch: &Batch, marker: &str) -> Vec<CommandOutput> {
        let command = batch.command(marker).unwrap();
        let output = std::process::Command::new(&command.argv[0])
            .args(&command.argv[1..])
            .output()
            .unwrap();
        split_frames(&output.stdout, marker).unwrap()
    }

    #[test]
    fn frames_carry_status_stdout_and_stderr_exactly() {
        let m = "hactl-x";
        let bytes = b"hactl-x\nhello\n\nhactl-x 0\n\nhactl-x.\nhactl-x\n\nhactl-x 3\noops\n\nhactl-x.\nhactl-x\nab\nhactl-x 127\n\ncd\n\nhactl-x.\n";
        let frames = split_frames(bytes, m).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            (
                frames[0].status,
                frames[0].stdout.as_slice(),
                frames[0].stderr.as_slice()
            ),
            (Some(0), &b"hello\n"[..], &b""[..])
        );
        assert_eq!(frames[1].stdout, b"");
        assert_eq!(frames[1].stderr, b"oops\n");
        assert_eq!(frames[2].status, Some(127));
        assert_eq!(frames[2].stdout, b"ab");
        assert_eq!(frames[2].stderr, b"\ncd\n");
        assert!(split_frames(b"hactl-x\nshort", m).is_none());
        assert!(split_frames(b"garbage\n", m).is_none());
        assert_eq!(split_frames(b"", m).unwrap().len(), 0);
        assert_ne!(new_marker(), new_marker());
    }

    #[test]
    fn the_script_runs_each_fact_and_frames_its_output() {
        let mut batch = Batch::new();
        let a = RemoteCommand::new(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
        let b = RemoteCommand::new(&["printf", "%s", "$(reboot) it's"]).become_(true);
        batch.facts.push(("a", a));
        batch.facts.push(("b", b));
        assert_eq!(
            batch.command("m").unwrap().become_,
            Some(true),
            "one root fact makes it root"
        );
        let frames = run_locally(&batch, &new_marker());
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
        let frames = run_locally(&batch, &new_marker());
        assert_eq!(frames[0].status, Some(TIMED_OUT));
    }
}
