//! Diagnostics of the keepalived.conf parser.
//!
//! A diagnostic is one `FILE:LINE: message` (or `FILE:LINE: warning: message`)
//! line. The parser collects every diagnostic of a file instead of stopping at
//! the first, so an operator fixes a config in one round; [`ConfigError`] is
//! what the library returns when a file cannot be read or holds errors.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Where a token, keyword or block comes from: the file as the operator
/// named it (the main file's path, or the include's resolved path) and the
/// 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is rejected.
    Error,
    /// The file is accepted; a value was changed or something looks wrong.
    Warning,
}

/// One message about one line of a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub origin: Origin,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(origin: &Origin, message: impl Into<String>) -> Self {
        Self {
            origin: origin.clone(),
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(origin: &Origin, message: impl Into<String>) -> Self {
        Self {
            origin: origin.clone(),
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.origin, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.origin, self.message),
        }
    }
}

/// Why a config could not be turned into a model.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The main file itself could not be read (a missing include is a
    /// diagnostic instead, naming the include line).
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read and holds at least one error. `diagnostics` holds the
    /// errors and the warnings, in file order.
    #[error("{} has {} error(s)", path.display(), diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}
