//! `hactl preflight`: every selected pair host's prerequisites, a table of
//! pass / warn / fail with the fix; exit 1 on any failure.

use crate::cli::{Context, Error};
use crate::output::Progress;
use crate::preflight;
use crate::ssh::Pool;

use super::RemoteOptions;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightCommand {
    pub remote: RemoteOptions,
}

impl PreflightCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        let plan = ctx.plan()?;
        let targets = ctx.targets(&ctx.pair_hosts()?)?;
        let in_lab = ctx.lab()?.is_some();
        let options = ctx.ssh_options(self.remote.accept_new_host_keys);
        let report = ctx.runtime()?.block_on(async {
            let pool = Pool::new(options)?;
            let _interrupt = pool.close_on_interrupt();
            let progress = Progress::new(1, !ctx.settings.json);
            progress.message("preflight");
            let report = preflight::run(&pool, plan, &targets, in_lab).await;
            progress.finish();
            Ok::<_, Error>(report)
        })?;
        if ctx.settings.json {
            ctx.out.json(&report)?;
        } else {
            ctx.out.text(&report.table())?;
        }
        Ok(if report.has_failures() { 1 } else { 0 })
    }
}
