//! `hactl audit`: the split-brain and drift audit for cron, Nagios and
//! Prometheus (see `crate::audit`). Any run that cannot judge (no or a bad
//! inventory, the lock held, no runtime) is UNKNOWN (exit 3), with a Nagios
//! line when that format was asked for.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::{self, AuditOptions, Format, lock, report};
use crate::cli::{Context, Error};
use crate::ssh::{Pool, SshOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCommand(pub AuditOptions);

/// Why a run could not judge (all UNKNOWN).
#[derive(Debug, thiserror::Error)]
enum Unjudged {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Cli(#[from] Error),
    #[error(transparent)]
    Ssh(#[from] crate::ssh::SshError),
}

impl AuditCommand {
    /// Runs the audit; returns the Nagios exit code.
    pub fn execute(&self, ctx: &Context) -> i32 {
        let options = &self.0;
        let started = std::time::Instant::now();
        let result = lock::AuditLock::acquire(&options.lock)
            .map_err(Unjudged::from)
            .and_then(|lock| {
                let report = judge(ctx, options);
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
                let text = report::render(&report, options.format, run);
                match audit::deliver(options, &ctx.out, &text) {
                    Ok(()) => report.status.exit_code(),
                    Err(e) => {
                        ctx.out.error(&crate::error_chain(&e));
                        audit::UNKNOWN_EXIT
                    }
                }
            }
            Err(e) => {
                let why = crate::error_chain(&e);
                if options.format == Format::Nagios {
                    let _ = audit::deliver(options, &ctx.out, &report::nagios_unknown(&why));
                }
                ctx.out.error(&why);
                audit::UNKNOWN_EXIT
            }
        }
    }
}

/// Loads the plan, asks the hosts within the deadline, judges.
fn judge(ctx: &Context, options: &AuditOptions) -> Result<audit::Report, Unjudged> {
    let plan = ctx.selected_pairs()?;
    let hosts: Vec<String> = plan
        .pairs
        .iter()
        .flat_map(|p| p.hosts.iter().map(|h| h.name.clone()))
        .collect();
    let targets = ctx.targets(&hosts)?;
    let timeout = options.timeout.max(Duration::from_secs(1));
    let ssh = SshOptions {
        connect_timeout: (timeout / 3).clamp(Duration::from_secs(1), Duration::from_secs(10)),
        command_timeout: timeout,
        ..ctx.ssh_options(false)
    };
    let observations = ctx.runtime()?.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        let pool = Arc::new(Pool::new(ssh)?);
        let interrupt = pool.close_on_interrupt();
        let observations = audit::gather::gather_all(pool.clone(), &plan, &targets, deadline).await;
        interrupt.abort();
        pool.close_all();
        Ok::<_, Unjudged>(observations)
    })?;
    Ok(audit::judge(&plan, &observations))
}
