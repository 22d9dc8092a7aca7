//! `hactl deploy`: preflight, render, push, start or reload, verify; pairs
//! concurrently, each rolled backups first and master last. `--check`
//! prints the plan, `--diff` the config differences (secrets redacted).

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Context, Error};
use crate::deploy::{self, DeployOptions};
use crate::operations::PutFile;
use crate::output::Progress;
use crate::plan::Backend;
use crate::remote_layout as layout;
use crate::ssh::Pool;

use super::RemoteOptions;

/// Exit status after an interrupt (128 + SIGINT).
const INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployCommand {
    pub remote: RemoteOptions,
    pub check: bool,
    pub diff: bool,
    /// The agent binary to push (default: `hactl-agent` beside this hactl).
    pub agent_bin: Option<PathBuf>,
}

impl DeployCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        // Before anything: a second deploy of this inventory refuses at
        // once (a --check changes nothing and needs no lock).
        let _lock = if self.check {
            None
        } else {
            let inventory = &ctx.inventory()?.path;
            Some(
                deploy::lock::ControllerLock::acquire(inventory)
                    .map_err(|e| Error::Busy(crate::error_chain(&e)))?,
            )
        };
        let plan = ctx.plan()?;
        let targets = ctx.targets(&ctx.pair_hosts()?)?;
        let agent_bin = if plan.pairs.iter().any(|p| p.backend == Backend::Agent) {
            let path = self.agent_bin.clone().unwrap_or_else(default_agent_bin);
            std::fs::read(&path).map_err(|source| Error::AgentBin { path, source })?
        } else {
            Vec::new()
        };
        let options = DeployOptions {
            check: self.check,
            diff: self.diff,
            agent_bin: PutFile::new(layout::AGENT_BIN, agent_bin, 0o755),
            templates: ctx.settings.templates.clone(),
            in_lab: ctx.lab()?.is_some(),
            forks: ctx.settings.forks,
            cancel: deploy::Cancel::default(),
        };
        let ssh = ctx.ssh_options(self.remote.accept_new_host_keys);
        let report = ctx.runtime()?.block_on(async {
            let pool = Arc::new(Pool::new(ssh)?);
            // Ctrl-C, SIGTERM or SIGHUP: the host in progress is rolled
            // back and nothing more starts; a second one ends at once.
            let cancel = options.cancel.clone();
            let closer = pool.closer();
            let out = ctx.out;
            let _signals = tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                let mut first = true;
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                    }
                    if !first {
                        closer.close();
                        std::process::exit(INTERRUPTED);
                    }
                    first = false;
                    cancel.set();
                    out.error(
                        "interrupted: rolling back the host in progress (again to quit at once)",
                    );
                }
            });
            let progress = Progress::new(targets.len(), !ctx.settings.json);
            let report = deploy::deploy(&pool, plan, &targets, &options, &progress).await;
            progress.finish();
            Ok::<_, Error>(report)
        })?;
        if options.cancel.is_set() {
            if ctx.settings.json {
                ctx.out.json(&report)?;
            } else {
                ctx.out.text(&report.text())?;
            }
            for h in report.hosts.iter().filter(|h| !h.ok) {
                if let Some(e) = &h.error {
                    ctx.out.error(e);
                }
            }
            return Ok(INTERRUPTED);
        }
        if ctx.settings.json {
            ctx.out.json(&report)?;
        } else {
            ctx.out.text(&report.text())?;
        }
        for h in report.hosts.iter().filter(|h| !h.ok) {
            match &h.error {
                Some(e) => ctx.out.error(e),
                None => ctx.out.error(&format!("{}: failed", h.host)),
            }
        }
        Ok(if report.ok() { 0 } else { 1 })
    }
}

/// `hactl-agent` next to the running `hactl`.
fn default_agent_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("hactl-agent")))
        .unwrap_or_else(|| "hactl-agent".into())
}
