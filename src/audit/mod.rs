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
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::inventory::{Inventory, pattern};
use crate::output::Output;
use crate::plan::{self, ClusterPlan};
use crate::ssh::{Pool, SshOptions};
use crate::targets;

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

/// Why a run could not judge (all UNKNOWN).
#[derive(Debug, thiserror::Error)]
enum Unjudged {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Cli(#[from] crate::error::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Ssh(#[from] crate::ssh::SshError),
    #[error(transparent)]
    Target(#[from] targets::TargetError),
}

/// Runs the audit; returns the Nagios exit code.
pub fn run(config: &Config, options: &AuditOptions, out: &Output) -> i32 {
    let started = std::time::Instant::now();
    let result = lock::AuditLock::acquire(&options.lock)
        .map_err(Unjudged::from)
        .and_then(|lock| {
            let report = audit(config, options);
            drop(lock);
            report
        });
    match result {
        Ok(report) => {
            let finished = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let run = report::RunInfo {
                finished,
                duration_secs: started.elapsed().as_secs_f64(),
            };
            let text = match options.format {
                Format::Table => report::table(&report),
                Format::Nagios => report::nagios(&report),
                Format::Prometheus => report::prometheus(&report, run),
                Format::Json => {
                    let mut text =
                        serde_json::to_string_pretty(&report::json(&report)).unwrap_or_default();
                    text.push('\n');
                    text
                }
            };
            match deliver(options, out, &text) {
                Ok(()) => report.status.exit_code(),
                Err(e) => {
                    out.error(&crate::error_chain(&e));
                    UNKNOWN_EXIT
                }
            }
        }
        Err(e) => {
            let why = crate::error_chain(&e);
            if options.format == Format::Nagios {
                let _ = deliver(options, out, &report::nagios_unknown(&why));
            }
            out.error(&why);
            UNKNOWN_EXIT
        }
    }
}

/// Loads the plan, asks the hosts, judges.
fn audit(config: &Config, options: &AuditOptions) -> Result<Report, Unjudged> {
    let path = config
        .inventory
        .as_deref()
        .ok_or(crate::error::Error::NoInventory)?;
    let inventory = Inventory::load(path).map_err(crate::error::Error::from)?;
    let plan =
        plan::resolve(&inventory, &|k| std::env::var(k).ok()).map_err(crate::error::Error::from)?;
    let plan = limit_pairs(config, &inventory, plan)?;
    let hosts: Vec<String> = plan
        .pairs
        .iter()
        .flat_map(|p| p.hosts.iter().map(|h| h.name.clone()))
        .collect();
    let lab = targets::lab_identity(&inventory.path, &config.lab_root);
    let targets = targets::targets(&inventory, &hosts, lab.as_ref())?;
    let timeout = options.timeout.max(Duration::from_secs(1));
    let ssh = SshOptions {
        connect_timeout: (timeout / 3).clamp(Duration::from_secs(1), Duration::from_secs(10)),
        command_timeout: timeout,
        forks: config.forks,
        ..SshOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Unjudged::Runtime)?;
    let observations = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        let pool = Arc::new(Pool::new(ssh)?);
        let interrupt = pool.close_on_interrupt();
        let observations = gather::gather_all(pool.clone(), &plan, &targets, deadline).await;
        interrupt.abort();
        pool.close_all();
        Ok::<_, Unjudged>(observations)
    })?;
    Ok(judge(&plan, &observations))
}

/// With `--limit`, only the pairs with a selected host (a pair is judged
/// as a whole).
fn limit_pairs(
    config: &Config,
    inventory: &Inventory,
    mut plan: ClusterPlan,
) -> Result<ClusterPlan, crate::error::Error> {
    let Some(limit) = &config.limit else {
        return Ok(plan);
    };
    let selected = pattern::select(inventory, limit)?;
    plan.pairs
        .retain(|p| p.hosts.iter().any(|h| selected.contains(&h.name)));
    if plan.pairs.is_empty() {
        return Err(crate::error::Error::NoHosts(limit.clone()));
    }
    Ok(plan)
}

/// The report to `--output` (atomically) or to stdout.
fn deliver(options: &AuditOptions, out: &Output, text: &str) -> Result<(), crate::error::Error> {
    match &options.output {
        None => out.text(text),
        Some(path) => write_atomically(path, text).map_err(|source| crate::error::Error::Write {
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
