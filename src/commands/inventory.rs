//! `hactl inventory`: the resolved plan as a table (or JSON, secrets
//! redacted), `--validate` to check only, `--list` for the JSON
//! `ansible-inventory --list` prints (`hactl_auth_pass` redacted unless
//! `--show-secrets`).

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};

use crate::cli::{Context, Error};
use crate::plan::{ClusterPlan, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryMode {
    Table,
    Validate,
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryCommand {
    pub mode: InventoryMode,
    /// `--list --show-secrets`: `hactl_auth_pass` as written (issue 14:
    /// redacted by default, like every other output).
    pub show_secrets: bool,
}

impl InventoryCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        match self.mode {
            InventoryMode::List => {
                let inv = ctx.inventory()?;
                let hosts = ctx.selection()?;
                let secrets = if self.show_secrets {
                    crate::inventory::ListSecrets::Show
                } else {
                    crate::inventory::ListSecrets::Redact
                };
                ctx.out.json(&inv.to_ansible_list(hosts, secrets))?;
            }
            InventoryMode::Validate => {
                ctx.plan()?;
            }
            InventoryMode::Table => {
                let plan = ctx.plan()?;
                let hosts = ctx.selection()?;
                if ctx.settings.json {
                    ctx.out.json(&limit_plan(plan, hosts))?;
                } else {
                    ctx.out
                        .text(&plan_table(plan, hosts, ctx.out.stdout_color()))?;
                }
            }
        }
        Ok(0)
    }
}

/// The plan shown for the selected hosts only: pairs without a selected
/// host go, and so do other hosts' roles.
fn limit_plan(plan: &ClusterPlan, hosts: Option<&[String]>) -> ClusterPlan {
    let Some(hosts) = hosts else {
        return plan.clone();
    };
    let mut out = plan.clone();
    out.pairs
        .retain(|p| p.hosts.iter().any(|h| hosts.contains(&h.name)));
    for p in &mut out.pairs {
        p.hosts.retain(|h| hosts.contains(&h.name));
        for i in &mut p.instances {
            i.roles.retain(|r| hosts.contains(&r.host));
        }
    }
    out
}

/// The plan as a table: one row per instance and host.
pub fn plan_table(plan: &ClusterPlan, hosts: Option<&[String]>, color: bool) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Disabled);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(vec![
        "pair",
        "instance",
        "host",
        "role",
        "priority",
        "VRID",
        "multicast group",
        "VIPs",
    ]);
    for pair in &plan.pairs {
        for inst in &pair.instances {
            for role in &inst.roles {
                if hosts.is_some_and(|h| !h.contains(&role.host)) {
                    continue;
                }
                let state = Cell::new(role.state.to_string());
                let state = match (color, role.state) {
                    (true, State::Master) => state.fg(Color::Green),
                    _ => state,
                };
                let vips: Vec<String> = inst.vips.iter().map(|v| v.to_string()).collect();
                table.add_row(vec![
                    Cell::new(&pair.name),
                    Cell::new(&inst.name),
                    Cell::new(&role.host),
                    state,
                    Cell::new(role.priority),
                    Cell::new(inst.vrid),
                    Cell::new(pair.mcast_group),
                    Cell::new(vips.join(" ")),
                ]);
            }
        }
    }
    format!("{table}\n")
}
