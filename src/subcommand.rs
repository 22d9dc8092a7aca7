//! Runs a validated `Command`: load the inventory, select hosts, and print
//! through `output.rs`.

use clap::CommandFactory;

use crate::arguments::Arguments;
use crate::config::{Command, Config};
use crate::error::Error;
use crate::inventory::{Inventory, pattern};
use crate::output::Output;

/// Run one command.
pub fn run(config: &Config, out: &Output) -> Result<(), Error> {
    match &config.command {
        Command::Completions(shell) => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Arguments::command(), "hactl", &mut buf);
            out.text(&String::from_utf8_lossy(&buf))
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Arguments::command())
                .render(&mut buf)
                .map_err(Error::Stdout)?;
            out.text(&String::from_utf8_lossy(&buf))
        }
        Command::InventoryList => {
            let inv = load(config)?;
            let hosts = selected_hosts(config, &inv)?;
            out.json(&inv.to_ansible_list(hosts.as_deref()))
        }
        Command::InventoryTable | Command::InventoryValidate | Command::Render { .. } => {
            let _inv = load(config)?;
            Err(Error::Usage("not implemented yet".into()))
        }
    }
}

fn load(config: &Config) -> Result<Inventory, Error> {
    let path = config.inventory.as_deref().ok_or(Error::NoInventory)?;
    Ok(Inventory::load(path)?)
}

/// The `--limit` selection, `None` without a limit.
fn selected_hosts(config: &Config, inv: &Inventory) -> Result<Option<Vec<String>>, Error> {
    let Some(limit) = &config.limit else {
        return Ok(None);
    };
    let hosts = pattern::select(inv, limit)?;
    if hosts.is_empty() {
        return Err(Error::NoHosts(limit.clone()));
    }
    Ok(Some(hosts))
}
