//! `hactl status`: per instance, who is master, each host's state and
//! priority, the VIP holders (from the interfaces) and the agents; exit 1
//! when a host cannot be reached.

use crate::cli::{Context, Error};
use crate::ssh::Pool;
use crate::status;

use super::RemoteOptions;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCommand {
    pub remote: RemoteOptions,
}

impl StatusCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        // The pairs that hold a selected host; of those, the selected hosts.
        let plan = &ctx.selected_pairs()?;
        let targets = ctx.targets(&ctx.pair_hosts()?)?;
        let options = ctx.ssh_options(self.remote.accept_new_host_keys);
        let report = ctx.runtime()?.block_on(async {
            let pool = std::sync::Arc::new(Pool::new(options)?);
            let _interrupt = pool.close_on_interrupt();
            Ok::<_, Error>(status::gather(&pool, plan, &targets).await)
        })?;
        if ctx.settings.json {
            ctx.out.json(&report)?;
        } else {
            ctx.out.text(&report.table())?;
        }
        Ok(if report.unreachable() { 1 } else { 0 })
    }
}
