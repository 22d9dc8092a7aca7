//! `hactl lab up|down|status|exec`: the lab of the inventory (see
//! `crate::lab`), with a report per verb.

use std::ffi::OsString;

use crate::cli::{Context, Error};
use crate::lab::{Lab, LabHost, LabName, LabPaths, LabStatus};
use crate::output::plain_table;
use crate::plan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabCommand {
    Up,
    Down,
    Status,
    Exec {
        host: String,
        command: Vec<OsString>,
    },
}

impl LabCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        let inventory = ctx.inventory()?;
        let name = LabName::from_inventory_path(&inventory.path)?;
        let lab = Lab::new(name, &LabPaths::new(&ctx.settings.lab_root));
        let out = &ctx.out;
        let json = ctx.settings.json;
        match self {
            LabCommand::Up => {
                let hosts: Vec<LabHost> = plan::addressing::host_addresses(inventory)?
                    .into_iter()
                    .map(|h| {
                        let mut host = LabHost::new(&h.name, h.address, h.prefix_len);
                        host.ssh_port = h.ssh_port;
                        if let Some(interface) = h.interface {
                            host.interface = interface;
                        }
                        host
                    })
                    .collect();
                let report = lab.up(&hosts)?;
                if json {
                    out.json(&report)?;
                } else if report.is_unchanged() {
                    out.text(&format!(
                        "lab {}: already up, nothing changed\n",
                        report.lab
                    ))?;
                } else {
                    let mut text = format!("lab {}: up\n", report.lab);
                    for change in &report.changes {
                        text.push_str(&format!("  {change}\n"));
                    }
                    text.push_str(&format!(
                        "ssh: ssh -F {} HOST\n",
                        report.identity.ssh_config.display()
                    ));
                    out.text(&text)?;
                }
                Ok(0)
            }
            LabCommand::Down => {
                let report = lab.down()?;
                if json {
                    out.json(&report)?;
                } else if report.removed.is_empty() {
                    out.text(&format!("lab {}: nothing to remove\n", report.lab))?;
                } else {
                    out.text(&format!(
                        "lab {}: removed {} items\n",
                        report.lab,
                        report.removed.len()
                    ))?;
                }
                Ok(0)
            }
            LabCommand::Status => {
                let status = lab.status()?;
                if json {
                    out.json(&status)?;
                } else {
                    out.text(&lab_status_table(&status))?;
                }
                Ok(if status.is_healthy() { 0 } else { 1 })
            }
            LabCommand::Exec { host, command } => {
                let status = lab.exec(host, command)?;
                Ok(status.code().unwrap_or(1))
            }
        }
    }
}

/// `hactl lab status`: one row per host.
pub fn lab_status_table(status: &LabStatus) -> String {
    let mut table = plain_table(vec!["host", "address", "namespace", "sshd", "answers SSH"]);
    for host in &status.hosts {
        table.add_row(vec![
            host.name.clone(),
            format!("{}:{}", host.address, host.ssh_port),
            if host.namespace_exists {
                host.namespace.clone()
            } else {
                format!("{} (missing)", host.namespace)
            },
            host.sshd_pid
                .map_or_else(|| "down".to_string(), |pid| format!("pid {pid}")),
            if host.answers_ssh { "yes" } else { "no" }.to_string(),
        ]);
    }
    format!("lab {}\n{table}\n", status.lab)
}
