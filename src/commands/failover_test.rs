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
            let drills = Drills::new();
            let progress = Progress::new(selected.len() * scenarios.len(), !ctx.settings.json);
            let work = drills.run(&pool, &targets, &selected, scenarios, &progress);
            let reports = tokio::select! {
                reports = work => reports,
                _ = tokio::signal::ctrl_c() => {
                    progress.finish();
                    ctx.out.error("interrupted: restoring the pair");
                    for e in drills.undo_pending(&pool, &targets).await {
                        ctx.out.error(&e);
                    }
                    pool.close_all();
                    return Ok(INTERRUPTED);
                }
            };
            progress.finish();
            pool.close_all();
            if ctx.settings.json {
                ctx.out.json(&reports)?;
            } else {
                ctx.out.text(&report::table(&reports))?;
            }
            Ok(report::exit_code(&reports))
        })
    }
}
