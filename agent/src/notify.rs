//! Notify scripts: `notify_master`, `notify_backup`, `notify_fault`,
//! `notify_stop` and the generic `notify` of instances and sync groups.
//!
//! keepalived.conf(5): the generic script gets four more arguments,
//! `INSTANCE|GROUP`, the name, the new state (`MASTER`, `BACKUP`, `FAULT`,
//! `STOP`) and the priority. Scripts run one at a time, in the order the
//! transitions happened, from a queue owned by its own task: the protocol
//! never waits for a script, and a script that hangs is killed at
//! [`NOTIFY_TIMEOUT`] so the ones behind it still run.
//!
//! A command line is split on blanks, with double or single quotes grouping
//! words, as keepalived reads its script lines; no shell is involved.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::mpsc;

/// How long one notify script may run.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// The identity scripts run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// The uid and gid of `user` (and its `group`, else the user's own),
    /// `None` when the host has no such user.
    pub fn of(user: &crate::config::ScriptUser) -> Option<RunAs> {
        let found = nix::unistd::User::from_name(&user.user).ok().flatten()?;
        let gid = match &user.group {
            Some(g) => nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .map_or(found.gid.as_raw(), |g| g.gid.as_raw()),
            None => found.gid.as_raw(),
        };
        Some(RunAs {
            uid: found.uid.as_raw(),
            gid,
        })
    }
}

/// One script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyJob {
    pub argv: Vec<String>,
}

/// How a job ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(Option<i32>),
    TimedOut,
    NotStarted(String),
}

/// Splits a script line into words (see the module doc).
pub fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Runs `argv` as `run_as`, killing it after `timeout`. The script leads a
/// process group of its own, and the timeout kills the whole group: a
/// `sh -c 'curl ...'` that hangs takes its children with it (issue 14),
/// where killing the direct child alone left them running.
pub async fn run_script(argv: &[String], run_as: Option<RunAs>, timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::NotStarted("empty command".to_owned());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(r) = run_as {
        command.uid(r.uid).gid(r.gid);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(e.to_string()),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => Outcome::Exited(status.code()),
        Ok(Err(e)) => Outcome::NotStarted(e.to_string()),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            Outcome::TimedOut
        }
    }
}

/// The sending half of the queue; dropping every sender ends the runner
/// once the queue is empty.
pub type NotifySender = mpsc::UnboundedSender<NotifyJob>;

/// Starts the runner task. It logs each failure to stderr through `log`.
pub fn spawn_queue(
    run_as: Option<RunAs>,
    log: fn(&str),
) -> (NotifySender, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<NotifyJob>();
    let handle = tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            match run_script(&job.argv, run_as, NOTIFY_TIMEOUT).await {
                Outcome::Exited(Some(0)) => {}
                Outcome::Exited(code) => log(&format!(
                    "notify {} exited with {}",
                    job.argv.join(" "),
                    code.map_or_else(|| "a signal".to_owned(), |c| c.to_string())
                )),
                Outcome::TimedOut => log(&format!(
                    "notify {} killed after {}s",
                    job.argv.join(" "),
                    NOTIFY_TIMEOUT.as_secs()
                )),
                Outcome::NotStarted(why) => {
                    log(&format!("notify {} not started: {why}", job.argv.join(" ")));
                }
            }
        }
    });
    (tx, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_groups_quotes() {
        assert_eq!(
            split_command(r#"/bin/x "a b" 'c d' e"#),
            vec!["/bin/x", "a b", "c d", "e"]
        );
        assert_eq!(split_command("  "), Vec::<String>::new());
        assert_eq!(split_command(r#"x """#), vec!["x", ""]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hung_script_is_killed_at_the_timeout() {
        let argv = split_command("/bin/sleep 30");
        let started = std::time::Instant::now();
        let outcome = run_script(&argv, None, Duration::from_millis(200)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// Issue 14: the timeout kills the script's whole process group, not
    /// only its direct child.
    #[tokio::test(flavor = "current_thread")]
    async fn a_timeout_kills_the_scripts_children_too() {
        let dir = std::env::temp_dir().join(format!("hactl-pgrp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let pidfile = dir.join("child.pid");
        let line = format!(
            "/bin/sh -c 'sleep 60 & echo $! > {}; wait'",
            pidfile.display()
        );
        // Long enough for sh to start its child and write the pid on a
        // loaded machine; the sleep outlives it by far.
        let outcome = run_script(&split_command(&line), None, Duration::from_secs(2)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("the script wrote its child's pid")
            .trim()
            .parse()
            .expect("pid");
        // Gone, or a zombie waiting for its new parent to reap it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            if matches!(state, None | Some("Z" | "X")) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the script's child {pid} outlived the timeout: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn exit_codes_and_missing_programs_are_reported() {
        let ok = run_script(&split_command("/bin/sh -c 'exit 3'"), None, NOTIFY_TIMEOUT).await;
        assert_eq!(ok, Outcome::Exited(Some(3)));
        let missing = run_script(&split_command("/nonexistent/x"), None, NOTIFY_TIMEOUT).await;
        assert!(matches!(missing, Outcome::NotStarted(_)), "{missing:?}");
    }
}
