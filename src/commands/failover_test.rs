//! `hactl failover-test`: refuse a non-lab inventory without `--yes` (exit
//! 2, nothing touched), run the drills with Ctrl-C undoing the fault in
//! progress, print the table or the JSON, exit 0 when every drill is ok.

use crate::cli::{Context, Error};
use crate::drill::{self, DrillOptions, Drills, report};
use crate::output::Progress;
use crate::ssh::Pool;

use super::RemoteOptions;

/// Exit status after Ctrl-C (128 + SIGINT).
const INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverTestCommand {
    pub remote: RemoteOptions,
    pub options: DrillOptions,
    /// Run on an inventory that is not marked as a lab.
    pub yes: bool,
    /// Only undo what a killed run left.
    pub restore: bool,
}

impl FailoverTestCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        let plan = ctx.plan()?;
        let selected = drill::select(plan, &self.options).map_err(Error::Usage)?;
        let lab_built = ctx.lab()?.is_some();
        if !self.yes && !drill::is_lab(plan, lab_built) {
            let path = ctx.inventory()?.path.display().to_string();
            return Err(Error::Usage(format!(
                "{path} is not marked as a lab (no lab built for it, no `{}: true` on its hosts): \
                 drills break pairs on purpose; pass --yes to run them anyway",
                drill::LAB_VAR
            )));
        }
        let hosts: Vec<String> = selected
            .iter()
            .flat_map(|(p, _)| p.hosts.iter().map(|h| h.name.clone()))
            .collect();
        let targets = ctx.targets(&hosts)?;
        let ssh = ctx.ssh_options(self.remote.accept_new_host_keys);
        let scenarios = &self.options.scenarios;
        ctx.runtime()?.block_on(async {
            let pool = std::sync::Arc::new(Pool::new(ssh)?);
            if self.restore {
                let mut pairs: Vec<&crate::plan::PairPlan> =
                    selected.iter().map(|(p, _)| *p).collect();
                pairs.dedup_by(|a, b| a.name == b.name);
                let restored = drill::restore_recorded(&pool, &targets, &pairs).await;
                pool.close_all();
                if ctx.settings.json {
                    ctx.out.json(&restored)?;
                } else {
                    let mut text = String::new();
                    for line in &restored.undone {
                        text.push_str(&format!("{line}\n"));
                    }
                    if restored.undone.is_empty() && restored.errors.is_empty() {
                        text.push_str("nothing left undone\n");
                    }
                    ctx.out.text(&text)?;
                }
                for e in &restored.errors {
                    ctx.out.error(e);
                }
                return Ok(if restored.errors.is_empty() { 0 } else { 1 });
            }
            let drills = Drills::new();
            let progress = Progress::new(selected.len() * scenarios.len(), !ctx.settings.json);
            let work = drills.run(&pool, &targets, &selected, scenarios, &progress);
            // Every signal that ends a run runs the undo of the fault in
            // progress first.
            use tokio::signal::unix::{SignalKind, signal};
            let (mut int, mut term, mut hup) = (
                signal(SignalKind::interrupt()).map_err(Error::Runtime)?,
                signal(SignalKind::terminate()).map_err(Error::Runtime)?,
                signal(SignalKind::hangup()).map_err(Error::Runtime)?,
            );
            let reports = tokio::select! {
                reports = work => reports,
                _ = int.recv() => return interrupted(ctx, &drills, &pool, &targets, &progress).await,
                _ = term.recv() => return interrupted(ctx, &drills, &pool, &targets, &progress).await,
                _ = hup.recv() => return interrupted(ctx, &drills, &pool, &targets, &progress).await,
            };
            progress.finish();
            pool.close_all();
            if ctx.settings.json {
                ctx.out.json(&reports)?;
            } else {
                ctx.out.text(&report::table(&reports))?;
            }
            if let Some(why) = drills.stopped_by() {
                ctx.out.error(&format!("the run stopped: {why}"));
            }
            Ok(report::exit_code(&reports))
        })
    }
}

/// After a signal: the pending undo, then exit 130 (1 more when it failed:
/// the record stays on the host for `--restore`).
async fn interrupted(
    ctx: &Context,
    drills: &Drills,
    pool: &Pool,
    targets: &[crate::ssh::Target],
    progress: &Progress,
) -> Result<i32, Error> {
    progress.finish();
    ctx.out.error("interrupted: restoring the pair");
    for e in drills.undo_pending(pool, targets).await {
        ctx.out.error(&e);
    }
    pool.close_all();
    Ok(INTERRUPTED)
}
