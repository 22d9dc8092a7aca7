//! `hactl audit`: the split-brain and drift audit, safe under cron.
//!
//! ```text
//!  lock (flock) ─> inventory + plan ─> gather.rs (SSH, one deadline) ─> Observations
//!                                                                          │
//!        report.rs (table | json | nagios | prometheus) <─ Report <─ judge.rs (pure)
//! ```
//!
//! Cron safety: a lock file stops overlapping runs (the second exits 3
//! UNKNOWN at once), `--timeout` bounds the whole run (hosts that have not
//! answered by then are UNKNOWN, the rest are judged), no progress or
//! colour is printed, and with `--output` the report is written atomically
//! (temporary file in the same directory, then rename), which is what
//! node_exporter's textfile collector needs. The exit code follows the
//! Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a run
//! that cannot judge at all (bad inventory, lock held) is UNKNOWN.

pub mod gather;
pub mod judge;
pub mod lock;
pub mod report;
pub mod running;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::output::Output;

pub use judge::{Finding, Kind, Report, Severity, judge};

/// The exit code of a run that could not judge.
pub const UNKNOWN_EXIT: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Nagios,
    Prometheus,
}

/// The audit's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    pub format: Format,
    pub output: Option<PathBuf>,
    /// Bounds the whole run.
    pub timeout: Duration,
    pub lock: PathBuf,
}

/// The report could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The report to `--output` (atomically) or to stdout.
pub fn deliver(options: &AuditOptions, out: &Output, text: &str) -> Result<(), DeliverError> {
    match &options.output {
        None => out.text(text).map_err(|e| DeliverError::Stdout(e.0)),
        Some(path) => write_atomically(path, text).map_err(|source| DeliverError::Write {
            path: path.clone(),
            source,
        }),
    }
}

/// A temporary file beside `path` whose name does not end like it (so a
/// textfile collector reading `*.prom` never sees a part), then a rename.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
