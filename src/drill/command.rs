//! The glue of `hactl failover-test`: load the inventory and the plan,
//! refuse a non-lab inventory without `--yes` (exit 2, nothing touched),
//! run the drills on a tokio runtime with Ctrl-C undoing the fault in
//! progress, print the table or the JSON, exit 0 when every drill is ok.

use crate::config::{Command, Config};
use crate::error::Error;
use crate::inventory::Inventory;
use crate::output::{Output, Progress};
use crate::plan;
use crate::ssh::Pool;
use crate::targets;

use super::{Drills, report};

/// Exit status after Ctrl-C (128 + SIGINT).
const INTERRUPTED: i32 = 130;

/// Runs `failover-test`; `None` for any other command.
pub fn run(config: &Config, out: &Output) -> Result<Option<i32>, Error> {
    let Command::FailoverTest {
        remote,
        options,
        yes,
    } = &config.command
    else {
        return Ok(None);
    };
    let path = config.inventory.as_deref().ok_or(Error::NoInventory)?;
    let inv = Inventory::load(path)?;
    let plan = plan::resolve(&inv, &|k| std::env::var(k).ok())?;
    let selected = super::select(&plan, options).map_err(Error::Usage)?;
    let lab = targets::lab_identity(&inv.path, &config.lab_root);
    if !yes && !super::is_lab(&inv, &plan, lab.is_some()) {
        return Err(Error::Usage(format!(
            "{} is not marked as a lab (no lab built for it, no `{}: true` on its hosts): \
             drills break pairs on purpose; pass --yes to run them anyway",
            inv.path.display(),
            super::LAB_VAR
        )));
    }
    let hosts: Vec<String> = selected
        .iter()
        .flat_map(|(p, _)| p.hosts.iter().map(|h| h.name.clone()))
        .collect();
    let targets = targets::targets(&inv, &hosts, lab.as_ref())?;
    let ssh = crate::subcommand::ssh_options(config, remote.accept_new_host_keys);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let pool = std::sync::Arc::new(Pool::new(ssh)?);
        let drills = Drills::new();
        let progress = Progress::new(selected.len() * options.scenarios.len(), !config.json);
        let work = drills.run(&pool, &targets, &selected, &options.scenarios, &progress);
        let reports = tokio::select! {
            reports = work => reports,
            _ = tokio::signal::ctrl_c() => {
                progress.finish();
                out.error("interrupted: restoring the pair");
                for e in drills.undo_pending(&pool, &targets).await {
                    out.error(&e);
                }
                pool.close_all();
                return Ok(Some(INTERRUPTED));
            }
        };
        progress.finish();
        pool.close_all();
        if config.json {
            let value = serde_json::to_value(&reports).map_err(|e| Error::Stdout(e.into()))?;
            out.json(&value)?;
        } else {
            out.text(&report::table(&reports))?;
        }
        Ok(Some(report::exit_code(&reports)))
    })
}
