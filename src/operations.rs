//! Operations, after pyinfra: an operation reads facts, compares them with
//! the wanted state, and yields either the steps that would get there or a
//! no-op with its reason. `--check` prints the plan; applying a non-empty
//! plan that succeeds is what "changed" means.
//!
//! [`PutFile`] is the first one (deploy uploads the agent binary, its
//! config and its service file with it); the others (start, reload) follow
//! the same shape.

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
/// checked then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutFile {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

impl PutFile {
    /// The fact the plan needs.
    pub fn fact(&self) -> FileHash {
        FileHash {
            path: self.path.clone(),
        }
    }

    /// Compares the file's current hash (`None`: absent) with the content.
    pub fn plan(&self, current: Option<&str>) -> Plan<FileStep> {
        let wanted = sha256_hex(&self.content);
        match current {
            Some(hash) if hash.eq_ignore_ascii_case(&wanted) => Plan::NoOp {
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
    fn an_unchanged_file_is_a_noop_with_its_reason() {
        let put = PutFile {
            path: "/etc/hactl/hactl.conf".into(),
            content: b"abc".to_vec(),
            mode: 0o600,
        };
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
