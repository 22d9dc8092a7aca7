//! Operations, after pyinfra: an operation reads facts, compares them with
//! the wanted state, and yields either the steps that would get there or a
//! no-op with its reason. `--check` prints the plan; applying a non-empty
//! plan that succeeds is what "changed" means.
//!
//! [`PutFile`] compares one file by hash; [`plan_host`] is deploy's whole
//! operation on one host: the files whose hash differs, then what the
//! daemon needs (start when it does not run, restart when its binary
//! changed, reload when its config changed), or a no-op with its reason.
//! Both are pure: the facts come from one round trip (`crate::observe`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::facts::{self, FactError, FileHash};
use crate::ssh::{HostSession, SshError};

/// What an operation would do on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "plan")]
pub enum Plan<S> {
    /// Nothing to do, and why.
    NoOp {
        reason: String,
    },
    Steps {
        steps: Vec<S>,
    },
}

impl<S> Plan<S> {
    pub fn is_noop(&self) -> bool {
        matches!(self, Plan::NoOp { .. })
    }
}

/// A step of [`PutFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum FileStep {
    /// Write the file atomically with this mode; `replaces` is the old
    /// content's hash, `None` when the file is new.
    Upload {
        path: String,
        mode: u32,
        replaces: Option<String>,
    },
}

/// A file with the wanted content and mode. Content is compared by
/// SHA-256, so an unchanged file is not uploaded again (its mode is not
/// checked then). The digest is computed once, when the file is made, and
/// shared with its clones: one agent binary planned for a hundred hosts is
/// hashed once, not once per host.
#[derive(Clone, PartialEq, Eq)]
pub struct PutFile {
    pub path: String,
    pub content: Arc<[u8]>,
    pub mode: u32,
    digest: Arc<str>,
}

/// Without the content: a config holds the VRRP password (issue 14).
impl std::fmt::Debug for PutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutFile")
            .field("path", &self.path)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("mode", &format_args!("{:o}", self.mode))
            .field("digest", &self.digest)
            .finish()
    }
}

impl PutFile {
    pub fn new(path: impl Into<String>, content: impl Into<Arc<[u8]>>, mode: u32) -> PutFile {
        let content = content.into();
        let digest = sha256_hex(&content).into();
        PutFile {
            path: path.into(),
            content,
            mode,
            digest,
        }
    }

    /// The same content at another path (the digest is not computed again).
    pub fn at(&self, path: impl Into<String>, mode: u32) -> PutFile {
        PutFile {
            path: path.into(),
            mode,
            ..self.clone()
        }
    }

    /// SHA-256 of the content, lowercase hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The fact the plan needs.
    pub fn fact(&self) -> FileHash {
        FileHash {
            path: self.path.clone(),
        }
    }

    /// Compares the file's current hash (`None`: absent) with the content.
    pub fn plan(&self, current: Option<&str>) -> Plan<FileStep> {
        let wanted = self.digest();
        match current {
            Some(hash) if hash.eq_ignore_ascii_case(wanted) => Plan::NoOp {
                reason: format!("{} is up to date (sha256 {})", self.path, &wanted[..12]),
            },
            _ => Plan::Steps {
                steps: vec![FileStep::Upload {
                    path: self.path.clone(),
                    mode: self.mode,
                    replaces: current.map(str::to_string),
                }],
            },
        }
    }

    /// Gathers the fact and returns the plan.
    pub async fn check(&self, session: &HostSession) -> Result<Plan<FileStep>, FactError> {
        let current = facts::gather(session, &self.fact()).await?;
        Ok(self.plan(current.as_deref()))
    }

    /// Carries out a plan made by [`PutFile::plan`].
    pub async fn apply(
        &self,
        session: &HostSession,
        plan: &Plan<FileStep>,
    ) -> Result<(), SshError> {
        let Plan::Steps { steps } = plan else {
            return Ok(());
        };
        for FileStep::Upload { path, mode, .. } in steps {
            session.upload(self.content.clone(), path, *mode).await?;
        }
        Ok(())
    }
}

// ===== a host's deploy =====

/// What a file is to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// The daemon's binary: a change means a restart.
    Binary,
    /// The daemon's config: validated on the host before it replaces the
    /// old one; a change means a reload.
    Config,
    /// A check script the config runs: installed before the config is
    /// validated.
    CheckScript,
    /// A systemd unit.
    Unit,
}

/// A file deploy wants on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedFile {
    pub file: PutFile,
    pub kind: FileKind,
}

/// One step of a host's deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum HostStep {
    Upload {
        path: String,
        mode: u32,
        kind: FileKind,
    },
    Start,
    Restart,
    /// SIGHUP: unchanged instances keep running.
    Reload,
}

impl fmt::Display for HostStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostStep::Upload { path, mode, .. } => write!(f, "upload {path} (mode {mode:o})"),
            HostStep::Start => f.write_str("start"),
            HostStep::Restart => f.write_str("restart"),
            HostStep::Reload => f.write_str("reload (SIGHUP)"),
        }
    }
}

/// Deploy's operation on one host: `hashes` are the current SHA-256 of
/// every wanted path (`None`: absent), `pid` the daemon's when it runs.
pub fn plan_host(
    wanted: &[WantedFile],
    hashes: &BTreeMap<String, Option<String>>,
    pid: Option<u32>,
    daemon: &str,
) -> Plan<HostStep> {
    let mut steps = Vec::new();
    let mut changed = Vec::new();
    for w in wanted {
        let current = hashes.get(&w.file.path).cloned().flatten();
        if !w.file.plan(current.as_deref()).is_noop() {
            changed.push(w.kind);
            steps.push(HostStep::Upload {
                path: w.file.path.clone(),
                mode: w.file.mode,
                kind: w.kind,
            });
        }
    }
    match pid {
        None => steps.push(HostStep::Start),
        Some(_) if changed.contains(&FileKind::Binary) => steps.push(HostStep::Restart),
        Some(_) if changed.contains(&FileKind::Config) => steps.push(HostStep::Reload),
        Some(_) => {}
    }
    match (steps.is_empty(), pid) {
        (true, Some(pid)) => Plan::NoOp {
            reason: format!("no change: files up to date, {daemon} running (pid {pid})"),
        },
        _ => Plan::Steps { steps },
    }
}

/// SHA-256 of `bytes`, lowercase hex, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_sha256sum() {
        // FIPS 180-4's examples, and a multi-block input against sha256sum.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = vec![b'a'; 1000];
        let output = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&long)?;
                child.wait_with_output()
            })
            .unwrap();
        let want = String::from_utf8(output.stdout).unwrap();
        assert_eq!(sha256_hex(&long), want.split_whitespace().next().unwrap());
    }

    #[test]
    fn a_host_plan_uploads_what_differs_and_acts_on_the_daemon() {
        let file = |path: &str, content: &str, kind| WantedFile {
            file: PutFile::new(path, content.as_bytes(), 0o600),
            kind,
        };
        let wanted = [
            file("/bin/agent", "bin", FileKind::Binary),
            file("/etc/c.sh", "check", FileKind::CheckScript),
            file("/etc/k.conf", "conf", FileKind::Config),
        ];
        let current = |changed: &[&str]| -> BTreeMap<String, Option<String>> {
            wanted
                .iter()
                .map(|w| {
                    let hash = if changed.contains(&w.file.path.as_str()) {
                        Some("0".repeat(64))
                    } else {
                        Some(w.file.digest().to_string())
                    };
                    (w.file.path.clone(), hash)
                })
                .collect()
        };
        let steps = |plan: Plan<HostStep>| match plan {
            Plan::Steps { steps } => steps.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Plan::NoOp { reason } => vec![reason],
        };
        let cases: &[(&[&str], Option<u32>, &[&str])] = &[
            (
                &[],
                Some(9),
                &["no change: files up to date, agent running (pid 9)"],
            ),
            (&[], None, &["start"]),
            (
                &["/etc/k.conf"],
                Some(9),
                &["upload /etc/k.conf (mode 600)", "reload (SIGHUP)"],
            ),
            (
                &["/bin/agent", "/etc/k.conf"],
                Some(9),
                &[
                    "upload /bin/agent (mode 600)",
                    "upload /etc/k.conf (mode 600)",
                    "restart",
                ],
            ),
            (&["/etc/c.sh"], Some(9), &["upload /etc/c.sh (mode 600)"]),
        ];
        for (changed, pid, want) in cases {
            assert_eq!(
                steps(plan_host(&wanted, &current(changed), *pid, "agent")),
                *want,
                "{changed:?} {pid:?}"
            );
        }
        let mut absent = current(&[]);
        absent.insert("/etc/k.conf".into(), None);
        assert_eq!(
            steps(plan_host(&wanted, &absent, Some(9), "agent")),
            ["upload /etc/k.conf (mode 600)", "reload (SIGHUP)"]
        );
    }

    #[test]
    fn an_unchanged_file_is_a_noop_with_its_reason() {
        let put = PutFile::new("/etc/hactl/hactl.conf", &b"abc"[..], 0o600);
        let same = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        match put.plan(Some(same)) {
            Plan::NoOp { reason } => assert_eq!(
                reason,
                "/etc/hactl/hactl.conf is up to date (sha256 ba7816bf8f01)"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            put.plan(None),
            Plan::Steps {
                steps: vec![FileStep::Upload {
                    path: "/etc/hactl/hactl.conf".into(),
                    mode: 0o600,
                    replaces: None
                }]
            }
        );
        let old = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(!put.plan(Some(old)).is_noop());
    }
}
