//! File facts: a file's SHA-256 (deploy skips an upload whose hash
//! matches), and the process a pid file names (the lab's agent runs under
//! hactl's supervision with a pid file instead of systemd).
//!
//! Hashing the agent binary (megabytes) on every host at every run is the
//! biggest cost of a deploy with nothing to change, so deploy records, when
//! it installs a file, the file's size, inode and change time with its
//! digest (`/var/lib/hactl/sums/`, one file per path); the hash fact trusts
//! that record only while all three still match (any write, rename, chmod or
//! replacement changes the change time, which no user can set back), and
//! hashes the file otherwise, as git's index and rsync's quick check do.

use serde::Serialize;

use super::{Fact, ParseError};
use crate::ssh::{CommandOutput, RemoteCommand, script_argv};

// ===== hashes =====

/// The digest of argv PATH RECORD: the record's when the file's `size
/// inode ctime` still match its first line, else `sha256sum`'s.
const QUICK_HASH: &str = r#"if [ -r "$2" ] && { read -r want && read -r sum; } <"$2" && [ -n "$sum" ] \
   && [ "$(stat -c '%s %i %.9Z' -- "$1" 2>/dev/null)" = "$want" ]; then
  printf '%s  %s\n' "$sum" "$1"
  exit 0
fi
exec sha256sum -- "$1""#;

/// The SHA-256 of PATH: the lowercase hex digest, `None` when the file does
/// not exist (see the module doc for the record deploy keeps). Runs as
/// root when the target becomes root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    pub path: String,
}

/// Where deploy records the digest of an installed file.
pub fn hash_record(path: &str) -> String {
    format!(
        "{}/{}",
        crate::remote_layout::SUMS_DIR,
        path.trim_start_matches('/').replace('/', "%")
    )
}

impl Fact for FileHash {
    type Output = Option<String>;

    fn name(&self) -> &'static str {
        "file hash"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&script_argv(
            QUICK_HASH,
            &[self.path.as_str(), &hash_record(&self.path)],
        ))
        .named("file hash")
    }

    fn parse(&self, output: &CommandOutput) -> Result<Option<String>, ParseError> {
        if !output.success() {
            if output.stderr_text().contains("No such file") {
                return Ok(None);
            }
            return Err(ParseError::unexpected(output));
        }
        // "<64 hex>  PATH"; a path with a newline or backslash gets a
        // leading "\" (GNU coreutils escaping).
        let text = output.stdout_text();
        let digest = text
            .trim_start_matches('\\')
            .split_whitespace()
            .next()
            .unwrap_or_default();
        if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ParseError::new(format!("not a sha256sum line: {text:?}")));
        }
        Ok(Some(digest.to_ascii_lowercase()))
    }
}

// ===== file contents =====

/// Exit status of [`READ_FILE`] when the file does not exist.
const NO_SUCH_FILE: i32 = 44;

/// Prints a file, or exits 44 when it does not exist.
const READ_FILE: &str = r#"[ -e "$1" ] || exit 44
exec cat -- "$1""#;

/// The text of a file, `None` when it does not exist (root may be needed:
/// the config holds the VRRP password and is 0600).
#[derive(Debug, Clone, PartialEq, Eq)]
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
            .become_(true)
            .named("read file")
    }

    fn parse(&self, output: &CommandOutput) -> Result<Option<String>, ParseError> {
        match output.status {
            Some(0) => Ok(Some(output.stdout_text())),
            Some(NO_SUCH_FILE) => Ok(None),
            _ => Err(ParseError::unexpected(output)),
        }
    }
}

// ===== processes =====

/// Reads the pid file and that process's `/proc/PID/stat`. Prints `nofile`,
/// `malformed`, or `pid N` followed by the stat line when the process exists.
const PID_FILE_SCRIPT: &str = r#"p=$(cat -- "$1" 2>/dev/null) || { echo nofile; exit 0; }
case $p in ''|*[!0-9]*) echo malformed; exit 0 ;; esac
echo "pid $p"
cat "/proc/$p/stat" 2>/dev/null || true"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProcessState {
    NoPidFile,
    /// The pid file does not hold a number.
    Malformed,
    /// The pid file names a process that is gone (or a zombie).
    NotRunning {
        pid: u32,
    },
    Running {
        pid: u32,
        command: String,
    },
}

/// The process a pid file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFileProcess {
    pub pid_file: String,
}

impl Fact for PidFileProcess {
    type Output = ProcessState;

    fn name(&self) -> &'static str {
        "process"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&script_argv(PID_FILE_SCRIPT, &[&self.pid_file]))
    }

    fn parse(&self, output: &CommandOutput) -> Result<ProcessState, ParseError> {
        if !output.success() {
            return Err(ParseError::unexpected(output));
        }
        let text = output.stdout_text();
        let mut lines = text.lines();
        let pid = match lines.next().map(str::trim) {
            Some("nofile") => return Ok(ProcessState::NoPidFile),
            Some("malformed") => return Ok(ProcessState::Malformed),
            Some(line) => line
                .strip_prefix("pid ")
                .and_then(|p| p.parse::<u32>().ok())
                .ok_or_else(|| ParseError::new(format!("unexpected line {line:?}")))?,
            None => return Err(ParseError::new("no output")),
        };
        let Some(stat) = lines.next() else {
            return Ok(ProcessState::NotRunning { pid });
        };
        // "PID (comm) STATE ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            return Err(ParseError::new(format!("not a stat line: {stat:?}")));
        };
        let state = stat[close + 1..].trim_start().chars().next();
        if matches!(state, Some('Z' | 'X')) {
            return Ok(ProcessState::NotRunning { pid });
        }
        Ok(ProcessState::Running {
            pid,
            command: stat[open + 1..close].to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    #[test]
    fn hashes_and_missing_files() {
        let fact = FileHash {
            path: "/usr/local/lib/hactl/hactl-agent".into(),
        };
        assert_eq!(
            &fact.command().argv[4..],
            [
                "/usr/local/lib/hactl/hactl-agent",
                "/var/lib/hactl/sums/usr%local%lib%hactl%hactl-agent"
            ]
        );
        let line = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /x\n";
        assert_eq!(
            fact.parse(&output(0, line, "")).unwrap().as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let escaped = format!("\\{line}");
        assert!(fact.parse(&output(0, &escaped, "")).unwrap().is_some());
        let missing = "sha256sum: /x: No such file or directory\n";
        assert_eq!(fact.parse(&output(1, "", missing)).unwrap(), None);
        assert!(
            fact.parse(&output(1, "", "sha256sum: /x: Permission denied"))
                .is_err()
        );
        assert!(fact.parse(&output(0, "abc  /x\n", "")).is_err());
    }

    /// The record is trusted only while size, inode and change time match.
    #[test]
    fn the_recorded_digest_is_used_until_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("hactl-quick-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        let record = dir.join("record");
        std::fs::write(&file, b"abc").unwrap();
        let run = || {
            let out = std::process::Command::new("sh")
                .args(["-c", QUICK_HASH, "sh"])
                .arg(&file)
                .arg(&record)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let real = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(run().starts_with(real), "no record: hashed");
        let stat = std::process::Command::new("stat")
            .args(["-c", "%s %i %.9Z", "--"])
            .arg(&file)
            .output()
            .unwrap();
        let recorded = "1".repeat(64);
        std::fs::write(
            &record,
            format!("{}{recorded}\n", String::from_utf8(stat.stdout).unwrap()),
        )
        .unwrap();
        assert!(run().starts_with(&recorded), "the record matches");
        std::fs::write(&file, b"abc").unwrap();
        assert!(
            run().starts_with(real),
            "rewritten (same bytes): hashed again"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pid_file_states() {
        let fact = PidFileProcess {
            pid_file: "/run/hactl/agent.pid".into(),
        };
        let stat = include_str!("testdata/proc_stat.txt");
        assert_eq!(
            fact.parse(&output(0, &format!("pid 4242\n{stat}"), ""))
                .unwrap(),
            ProcessState::Running {
                pid: 4242,
                command: "hactl-agent (x)".into()
            }
        );
        let zombie = stat.replacen(") S ", ") Z ", 1);
        assert_eq!(
            fact.parse(&output(0, &format!("pid 4242\n{zombie}"), ""))
                .unwrap(),
            ProcessState::NotRunning { pid: 4242 }
        );
        assert_eq!(
            fact.parse(&output(0, "pid 4242\n", "")).unwrap(),
            ProcessState::NotRunning { pid: 4242 }
        );
        assert_eq!(
            fact.parse(&output(0, "nofile\n", "")).unwrap(),
            ProcessState::NoPidFile
        );
        assert_eq!(
            fact.parse(&output(0, "malformed\n", "")).unwrap(),
            ProcessState::Malformed
        );
    }

    #[test]
    fn the_pid_file_script_never_evaluates_the_file() {
        let dir = std::env::temp_dir().join(format!("hactl-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.pid");
        let marker = dir.join("pwned");
        std::fs::write(&path, format!("1; touch {}", marker.display())).unwrap();
        let fact = PidFileProcess {
            pid_file: path.display().to_string(),
        };
        let run = std::process::Command::new(&fact.command().argv[0])
            .args(&fact.command().argv[1..])
            .output()
            .unwrap();
        let parsed = fact
            .parse(&output(
                run.status.code().unwrap(),
                &String::from_utf8_lossy(&run.stdout),
                "",
            ))
            .unwrap();
        assert_eq!(parsed, ProcessState::Malformed);
        assert!(!marker.exists());
        std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        let run = std::process::Command::new(&fact.command().argv[0])
            .args(&fact.command().argv[1..])
            .output()
            .unwrap();
        let parsed = fact
            .parse(&output(0, &String::from_utf8_lossy(&run.stdout), ""))
            .unwrap();
        assert!(
            matches!(parsed, ProcessState::Running { pid, .. } if pid == std::process::id()),
            "{parsed:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
