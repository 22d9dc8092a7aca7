//! Runs a validated `Command`: load the inventory, resolve the plan, select
//! hosts with `--limit`, and print through `output.rs`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::arguments::Arguments;
use crate::cluster_status;
use crate::config::{Command, Config};
use crate::deploy::{self, DeployOptions};
use crate::error::Error;
use crate::inventory::{Inventory, pattern};
use crate::lab::{self, Lab, LabName, LabPaths};
use crate::output::{self, Output, Progress};
use crate::plan::{self, ClusterPlan};
use crate::preflight;
use crate::render::{self, Secrets};
use crate::ssh::{HostKeyPolicy, Pool, SshOptions};
use crate::targets;
use std::time::Duration;

/// Run one command; returns the exit code of a command that succeeded
/// (0, or what `lab exec` ran returned).
pub fn run(config: &Config, out: &Output) -> Result<i32, Error> {
    if let Some(code) = run_lab(config, out)? {
        return Ok(code);
    }
    if let Command::Audit(options) = &config.command {
        return Ok(crate::audit::run(config, options, out));
    }
    if let Some(code) = run_remote(config, out)? {
        return Ok(code);
    }
    if let Some(code) = crate::drill::command::run(config, out)? {
        return Ok(code);
    }
    run_inventory(config, out).map(|()| 0)
}

/// The commands that read the inventory and the plan.
fn run_inventory(config: &Config, out: &Output) -> Result<(), Error> {
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
        Command::Version => {
            let version = env!("CARGO_PKG_VERSION");
            if config.json {
                out.json(&serde_json::json!({"name": "hactl", "version": version}))
            } else {
                out.text(&format!("hactl {version}\n"))
            }
        }
        Command::InventoryList => {
            let inv = load(config)?;
            let hosts = selected_hosts(config, &inv)?;
            out.json(&inv.to_ansible_list(hosts.as_deref()))
        }
        Command::InventoryValidate => {
            let inv = load(config)?;
            resolve(&inv)?;
            Ok(())
        }
        Command::InventoryTable => {
            let inv = load(config)?;
            let plan = resolve(&inv)?;
            let hosts = selected_hosts(config, &inv)?;
            if config.json {
                let value = serde_json::to_value(limit_plan(&plan, hosts.as_deref()))
                    .map_err(|e| Error::Stdout(e.into()))?;
                out.json(&value)
            } else {
                out.text(&output::plan_table(
                    &plan,
                    hosts.as_deref(),
                    out.stdout_color(),
                ))
            }
        }
        Command::Render { host, out: dir } => {
            let inv = load(config)?;
            let plan = resolve(&inv)?;
            let templates = config.templates.as_deref();
            match dir {
                Some(dir) => {
                    for file in render::render_host(&plan, host, templates, Secrets::Reveal)? {
                        write_private(&dir.join(&file.name), &file.content)?;
                    }
                    Ok(())
                }
                None => {
                    let files = render::render_host(&plan, host, templates, Secrets::Redact)?;
                    if config.json {
                        let files: Vec<serde_json::Value> = files
                            .iter()
                            .map(|f| serde_json::json!({"name": f.name, "content": f.content}))
                            .collect();
                        out.json(&serde_json::json!({"host": host, "files": files}))
                    } else {
                        let text: Vec<&str> = files.iter().map(|f| f.content.as_str()).collect();
                        out.text(&text.join("\n"))
                    }
                }
            }
        }
        Command::LabUp | Command::LabDown | Command::LabStatus | Command::LabExec { .. } => {
            unreachable!("lab commands run in run_lab")
        }
        Command::Preflight(_)
        | Command::Deploy { .. }
        | Command::Status(_)
        | Command::FailoverTest { .. } => {
            unreachable!("remote commands run in run_remote or drill::command")
        }
        Command::Audit(_) => unreachable!("the audit runs in run"),
    }
}

/// The `lab` commands; `None` for any other command.
fn run_lab(config: &Config, out: &Output) -> Result<Option<i32>, Error> {
    let (Command::LabUp | Command::LabDown | Command::LabStatus | Command::LabExec { .. }) =
        &config.command
    else {
        return Ok(None);
    };
    let inventory = load(config)?;
    let name = LabName::from_inventory_path(&inventory.path)?;
    let lab = Lab::new(name, &LabPaths::new(&config.lab_root));
    match &config.command {
        Command::LabUp => {
            let report = lab.up(&lab::inventory::lab_hosts(&inventory)?)?;
            if config.json {
                out.json(&to_json(&report)?)?;
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
            Ok(Some(0))
        }
        Command::LabDown => {
            let report = lab.down()?;
            if config.json {
                out.json(&to_json(&report)?)?;
            } else if report.removed.is_empty() {
                out.text(&format!("lab {}: nothing to remove\n", report.lab))?;
            } else {
                out.text(&format!(
                    "lab {}: removed {} items\n",
                    report.lab,
                    report.removed.len()
                ))?;
            }
            Ok(Some(0))
        }
        Command::LabStatus => {
            let status = lab.status()?;
            if config.json {
                out.json(&to_json(&status)?)?;
            } else {
                out.text(&output::lab_status_table(&status))?;
            }
            Ok(Some(if status.is_healthy() { 0 } else { 1 }))
        }
        Command::LabExec { host, command } => {
            let status = lab.exec(host, command)?;
            Ok(Some(status.code().unwrap_or(1)))
        }
        _ => Ok(None),
    }
}

/// The commands that log into the pair hosts (`preflight`, `deploy`,
/// `status`); `None` for any other command. They run on a tokio runtime
/// whose pool closes its SSH masters on exit and on Ctrl-C.
fn run_remote(config: &Config, out: &Output) -> Result<Option<i32>, Error> {
    let (Command::Preflight(remote) | Command::Status(remote) | Command::Deploy { remote, .. }) =
        &config.command
    else {
        return Ok(None);
    };
    let inv = load(config)?;
    let plan = resolve(&inv)?;
    let selected = selected_hosts(config, &inv)?;
    let hosts: Vec<String> = plan
        .pairs
        .iter()
        .flat_map(|p| p.hosts.iter().map(|h| h.name.clone()))
        .filter(|h| selected.as_ref().is_none_or(|s| s.contains(h)))
        .collect();
    let lab = targets::lab_identity(&inv.path, &config.lab_root);
    let targets = targets::targets(&inv, &hosts, lab.as_ref())?;
    let options = ssh_options(config, remote.accept_new_host_keys);
    let agent_bin = match &config.command {
        Command::Deploy { agent_bin, .. }
            if plan.pairs.iter().any(|p| p.backend == plan::Backend::Agent) =>
        {
            let path = match agent_bin {
                Some(p) => p.clone(),
                None => std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(|d| d.join("hactl-agent")))
                    .unwrap_or_else(|| "hactl-agent".into()),
            };
            std::fs::read(&path).map_err(|source| Error::AgentBin { path, source })?
        }
        _ => Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let pool = Pool::new(options)?;
        let _interrupt = pool.close_on_interrupt();
        match &config.command {
            Command::Preflight(_) => {
                let progress = Progress::new(1, !config.json);
                progress.message("preflight");
                let report = preflight::run(&pool, &plan, &targets, lab.is_some()).await;
                progress.finish();
                if config.json {
                    out.json(&to_json(&report)?)?;
                } else {
                    out.text(&output::preflight_table(&report))?;
                }
                Ok(Some(if report.has_failures() { 1 } else { 0 }))
            }
            Command::Status(_) => {
                let report = cluster_status::gather(&pool, &plan, &targets).await;
                if config.json {
                    out.json(&to_json(&report)?)?;
                } else {
                    out.text(&output::status_table(&report))?;
                }
                let unreachable = report
                    .instances
                    .iter()
                    .flat_map(|i| &i.hosts)
                    .any(|h| h.error.is_some());
                Ok(Some(if unreachable { 1 } else { 0 }))
            }
            Command::Deploy { check, diff, .. } => {
                let options = DeployOptions {
                    check: *check,
                    diff: *diff,
                    agent_bin: std::sync::Arc::new(agent_bin),
                    templates: config.templates.clone(),
                    in_lab: lab.is_some(),
                };
                let progress = Progress::new(targets.len(), !config.json);
                let report = deploy::deploy(&pool, &plan, &targets, &options, &progress).await;
                progress.finish();
                if config.json {
                    out.json(&to_json(&report)?)?;
                } else {
                    out.text(&output::deploy_text(&report))?;
                }
                for h in report.hosts.iter().filter(|h| !h.ok) {
                    let error = h.error.as_deref().unwrap_or("failed");
                    if error.starts_with(&format!("{}: ", h.host)) {
                        out.error(error);
                    } else {
                        out.error(&format!("{}: {error}", h.host));
                    }
                }
                Ok(Some(if report.ok() { 0 } else { 1 }))
            }
            _ => Ok(None),
        }
    })
}

fn to_json(value: &impl serde::Serialize) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::Stdout(e.into()))
}

fn load(config: &Config) -> Result<Inventory, Error> {
    let path = config.inventory.as_deref().ok_or(Error::NoInventory)?;
    Ok(Inventory::load(path)?)
}

fn resolve(inv: &Inventory) -> Result<ClusterPlan, Error> {
    Ok(plan::resolve(inv, &|k| std::env::var(k).ok())?)
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

/// Write a file readable by its owner only (mode 0600), atomically: a
/// temporary file in the same directory, then a rename.
fn write_private(path: &Path, content: &str) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(content.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// SSH settings of the commands that reach hosts: `--forks`, strict host
/// keys unless trust on first use is asked for, a 5 s connect timeout.
pub(crate) fn ssh_options(config: &Config, accept_new_host_keys: bool) -> SshOptions {
    SshOptions {
        forks: config.forks,
        host_key_policy: if accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: Duration::from_secs(5),
        ..SshOptions::default()
    }
}
