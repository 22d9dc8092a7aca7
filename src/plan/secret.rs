//! `Secret`: a value (the VRRP `auth_pass`) that never shows in output. Its
//! `Debug`, `Display` and `Serialize` print `<redacted>`; only the renderer
//! that writes a host's real file calls [`Secret::expose`].
//!
//! `hactl_auth_pass` is given directly (`hactl_auth_pass: s3cret`), from an
//! environment variable (`{env: VRRP_PASS}`) or from a file
//! (`{file: secrets/vrrp}`, relative to the inventory's directory, one
//! trailing newline removed).

use std::fmt;
use std::path::Path;

pub const REDACTED: &str = "<redacted>";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Literal(Secret),
    Env(String),
    File(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set")]
    EnvMissing(String),
    #[error("cannot read secret file {0}")]
    File(String),
    #[error("the secret is empty")]
    Empty,
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value: only for files written to their host.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl SecretSource {
    /// Read the secret; `base` is the inventory's directory, `env` looks up
    /// environment variables.
    pub fn resolve(
        &self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, SecretError> {
        let secret = match self {
            Self::Literal(s) => s.clone(),
            Self::Env(var) => Secret(env(var).ok_or_else(|| SecretError::EnvMissing(var.clone()))?),
            Self::File(path) => {
                let p = base.join(path);
                // The io error text is not kept: it could quote the path only,
                // but keep errors predictable.
                let text = std::fs::read_to_string(&p)
                    .map_err(|_| SecretError::File(p.display().to_string()))?;
                Secret(text.strip_suffix('\n').unwrap_or(&text).to_string())
            }
        };
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_everywhere() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn sources_resolve() {
        let dir = std::env::temp_dir().join(format!("hactl-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pass"), "fromfile\n").unwrap();
        let env = |k: &str| (k == "PASS").then(|| "fromenv".to_string());
        let cases = [
            (SecretSource::Literal(Secret::new("lit")), Ok("lit")),
            (SecretSource::Env("PASS".into()), Ok("fromenv")),
            (SecretSource::File("pass".into()), Ok("fromfile")),
            (
                SecretSource::Env("NOPE".into()),
                Err(SecretError::EnvMissing("NOPE".into())),
            ),
        ];
        for (src, want) in cases {
            let got = src.resolve(&dir, &env);
            assert_eq!(got.as_ref().map(|s| s.expose()), want.as_ref().map(|s| *s));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
