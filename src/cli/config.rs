//! The validated configuration of one run: `arguments.rs`'s raw flags turned
//! into a [`Config`]: the [`Settings`] (which inventory, which hosts, how to
//! print) and the [`Command`] to run, with its own options. The inventory is chosen in this order: `-i/--inventory`
//! or the positional FILE, `$HACTL_INVENTORY`, then `inventory` in the
//! `[defaults]` section of `./ansible.cfg` (relative to that file).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::arguments::{Arguments, Command as RawCommand, LabCommand as RawLab};
use super::error::Error;
use crate::audit::{AuditOptions, Format};
use crate::commands::{
    AuditCommand, Command, DeployCommand, FailoverTestCommand, InventoryCommand, InventoryMode,
    LabCommand, PreflightCommand, RemoteOptions, RenderCommand, StatusCommand,
};
use crate::drill::DrillOptions;

/// The global settings of one run, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The chosen inventory; `None` when none was given or found (the
    /// commands that need one say so).
    pub inventory: Option<PathBuf>,
    pub limit: Option<String>,
    pub forks: usize,
    pub json: bool,
    pub color: bool,
    pub templates: Option<PathBuf>,
    /// `--ssh-default-kex`: OpenSSH's key exchange order, untouched.
    pub ssh_default_kex: bool,
    /// Where labs keep their state (`$HACTL_LAB_DIR`, else /var/lib/hactl/lab).
    pub lab_root: PathBuf,
}

/// A validated command line: what to run and with which settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub command: Command,
    pub settings: Settings,
}

/// The process environment a config depends on, passed in so tests can
/// give their own.
pub struct Environment {
    pub hactl_inventory: Option<OsString>,
    pub no_color: bool,
    pub cwd: PathBuf,
    pub lab_dir: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        Self {
            hactl_inventory: std::env::var_os("HACTL_INVENTORY").filter(|v| !v.is_empty()),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            lab_dir: std::env::var_os("HACTL_LAB_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

fn remote(accept_new_host_keys: bool) -> RemoteOptions {
    RemoteOptions {
        accept_new_host_keys,
    }
}

impl Config {
    pub fn from_arguments(args: Arguments, env: &Environment) -> Result<Self, Error> {
        if args.forks == 0 {
            return Err(Error::Usage("--forks must be at least 1".into()));
        }
        let (command, file) = match args.command {
            RawCommand::Inventory(i) => {
                let mode = if i.validate {
                    InventoryMode::Validate
                } else if i.list {
                    InventoryMode::List
                } else {
                    InventoryMode::Table
                };
                (
                    Command::Inventory(InventoryCommand {
                        mode,
                        show_secrets: i.show_secrets,
                    }),
                    i.file,
                )
            }
            RawCommand::Render(r) => (
                Command::Render(RenderCommand {
                    host: r.host,
                    file: r.only,
                    out: r.out,
                }),
                r.file,
            ),
            RawCommand::Audit(a) => {
                if a.timeout == 0 {
                    return Err(Error::Usage("--timeout must be at least 1".into()));
                }
                let format = if args.json { Format::Json } else { a.format };
                (
                    Command::Audit(AuditCommand(AuditOptions {
                        format,
                        output: a.output,
                        timeout: Duration::from_secs(a.timeout),
                        lock: a.lock.unwrap_or_else(crate::audit::lock::default_path),
                    })),
                    a.file,
                )
            }
            RawCommand::Completions { shell } => (Command::Completions(shell), None),
            RawCommand::Man => (Command::Man, None),
            RawCommand::Version => (Command::Version, None),
            RawCommand::Lab(RawLab::Up(l)) => (Command::Lab(LabCommand::Up), l.file),
            RawCommand::Lab(RawLab::Down(l)) => (Command::Lab(LabCommand::Down), l.file),
            RawCommand::Lab(RawLab::Status(l)) => (Command::Lab(LabCommand::Status), l.file),
            RawCommand::Lab(RawLab::Exec { host, command }) => {
                (Command::Lab(LabCommand::Exec { host, command }), None)
            }
            RawCommand::Preflight(r) => (
                Command::Preflight(PreflightCommand {
                    remote: remote(r.accept_new_host_keys),
                }),
                r.file,
            ),
            RawCommand::FailoverTest(f) => (
                Command::FailoverTest(FailoverTestCommand {
                    remote: remote(f.remote.accept_new_host_keys),
                    options: DrillOptions {
                        pair: f.pair,
                        instance: f.instance,
                        scenarios: crate::drill::scenario::parse_list(
                            f.scenario.as_deref().unwrap_or(""),
                        )
                        .map_err(|e| Error::Usage(e.to_string()))?,
                    },
                    yes: f.yes,
                    restore: f.restore,
                }),
                f.remote.file,
            ),
            RawCommand::Status(r) => (
                Command::Status(StatusCommand {
                    remote: remote(r.accept_new_host_keys),
                }),
                r.file,
            ),
            RawCommand::Deploy(d) => (
                Command::Deploy(DeployCommand {
                    remote: remote(d.remote.accept_new_host_keys),
                    check: d.check,
                    diff: d.diff,
                    agent_bin: d.agent_bin,
                }),
                d.remote.file,
            ),
        };
        let inventory = match command {
            Command::Completions(_) | Command::Man | Command::Version => None,
            // The audit reports a missing inventory itself, as UNKNOWN (3).
            Command::Audit(_) => choose_inventory(file.or(args.inventory), env).ok(),
            _ => Some(choose_inventory(file.or(args.inventory), env)?),
        };
        Ok(Self {
            command,
            settings: Settings {
                inventory,
                limit: args.limit,
                forks: args.forks,
                json: args.json,
                color: !(args.no_color || env.no_color),
                templates: args.templates,
                ssh_default_kex: args.ssh_default_kex,
                lab_root: env
                    .lab_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(crate::lab::SYSTEM_LAB_ROOT)),
            },
        })
    }
}

/// Pick the inventory file (see the module doc for the order).
pub fn choose_inventory(cli: Option<PathBuf>, env: &Environment) -> Result<PathBuf, Error> {
    if let Some(p) = cli {
        return Ok(p);
    }
    if let Some(p) = &env.hactl_inventory {
        return Ok(PathBuf::from(p));
    }
    let cfg = env.cwd.join("ansible.cfg");
    if let Ok(text) = std::fs::read_to_string(&cfg)
        && let Some(value) = ansible_cfg_inventory(&text)
    {
        let path = expand_home(&value);
        return Ok(if path.is_absolute() {
            path
        } else {
            env.cwd.join(path)
        });
    }
    Err(Error::NoInventory)
}

/// The first entry of `inventory` in the `[defaults]` section of an
/// ansible.cfg (INI: `key = value` or `key: value`, `#`/`;` comments).
pub fn ansible_cfg_inventory(text: &str) -> Option<String> {
    let mut in_defaults = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            in_defaults = line == "[defaults]";
            continue;
        }
        if !in_defaults {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        if key.trim() != "inventory" {
            continue;
        }
        let value = value
            .split(" ;")
            .next()
            .unwrap_or("")
            .split(" #")
            .next()
            .unwrap_or("");
        let first = value.split(',').next().unwrap_or("").trim();
        if !first.is_empty() {
            found = Some(first.to_string());
        }
    }
    found
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansible_cfg_inventory_lines() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "[defaults]\ninventory = inv/lab.yaml\n",
                Some("inv/lab.yaml"),
            ),
            ("[defaults]\ninventory: a.yml, b.yml\n", Some("a.yml")),
            (
                "[defaults]\n# inventory = x\ninventory = y ; comment\n",
                Some("y"),
            ),
            ("[other]\ninventory = x\n", None),
            ("[defaults]\nforks = 5\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                ansible_cfg_inventory(text).as_deref(),
                *want,
                "cfg {text:?}"
            );
        }
    }

    #[test]
    fn arguments_become_commands() {
        use clap::Parser;
        let env = Environment {
            hactl_inventory: None,
            no_color: true,
            cwd: PathBuf::from("/nonexistent"),
            lab_dir: None,
        };
        let inventory = |mode| {
            Command::Inventory(InventoryCommand {
                mode,
                show_secrets: false,
            })
        };
        let cases: &[(&[&str], Command, Option<&str>)] = &[
            (
                &["inventory", "x.yml"],
                inventory(InventoryMode::Table),
                Some("x.yml"),
            ),
            (
                &["inventory", "--list", "-i", "y.yml"],
                inventory(InventoryMode::List),
                Some("y.yml"),
            ),
            (
                &["-i", "a.yml", "inventory", "--validate"],
                inventory(InventoryMode::Validate),
                Some("a.yml"),
            ),
            (
                &["-i", "a.yml", "render", "--host", "lb01", "b.yml"],
                Command::Render(RenderCommand {
                    host: "lb01".into(),
                    file: None,
                    out: None,
                }),
                Some("b.yml"),
            ),
            (
                &["completions", "bash"],
                Command::Completions(clap_complete::Shell::Bash),
                None,
            ),
            (&["man"], Command::Man, None),
            (&["version", "--json"], Command::Version, None),
            (
                &[
                    "audit",
                    "a.yml",
                    "--format",
                    "nagios",
                    "--timeout",
                    "5",
                    "--lock",
                    "/l",
                    "--output",
                    "/o",
                ],
                Command::Audit(AuditCommand(AuditOptions {
                    format: Format::Nagios,
                    output: Some(PathBuf::from("/o")),
                    timeout: Duration::from_secs(5),
                    lock: PathBuf::from("/l"),
                })),
                Some("a.yml"),
            ),
            (
                &["--json", "audit", "--lock", "/l", "-i", "b.yml"],
                Command::Audit(AuditCommand(AuditOptions {
                    format: Format::Json,
                    output: None,
                    timeout: Duration::from_secs(30),
                    lock: PathBuf::from("/l"),
                })),
                Some("b.yml"),
            ),
        ];
        for (argv, want, inv) in cases {
            let args =
                Arguments::try_parse_from(std::iter::once("hactl").chain(argv.iter().copied()))
                    .unwrap();
            let config = Config::from_arguments(args, &env).unwrap();
            assert_eq!(&config.command, want, "{argv:?}");
            assert_eq!(
                config.settings.inventory.as_deref(),
                inv.map(Path::new),
                "{argv:?}"
            );
            assert!(!config.settings.color, "NO_COLOR turns colours off");
        }
        let args =
            Arguments::try_parse_from(["hactl", "--forks", "0", "inventory", "a.yml"]).unwrap();
        assert!(matches!(
            Config::from_arguments(args, &env),
            Err(Error::Usage(_))
        ));
        let args = Arguments::try_parse_from(["hactl", "inventory"]).unwrap();
        assert!(matches!(
            Config::from_arguments(args, &env),
            Err(Error::NoInventory)
        ));
    }

    #[test]
    fn inventory_choice_order() {
        let dir = std::env::temp_dir().join(format!("hactl-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ansible.cfg"),
            "[defaults]\ninventory = from_cfg.yml\n",
        )
        .unwrap();
        let env = |var: Option<&str>| Environment {
            hactl_inventory: var.map(OsString::from),
            no_color: false,
            cwd: dir.clone(),
            lab_dir: None,
        };
        let cases: &[(Option<&str>, Option<&str>, PathBuf)] = &[
            (Some("cli.yml"), Some("env.yml"), PathBuf::from("cli.yml")),
            (None, Some("env.yml"), PathBuf::from("env.yml")),
            (None, None, dir.join("from_cfg.yml")),
        ];
        for (cli, var, want) in cases {
            let got = choose_inventory(cli.map(PathBuf::from), &env(*var)).unwrap();
            assert_eq!(&got, want);
        }
        std::fs::remove_file(dir.join("ansible.cfg")).unwrap();
        assert!(matches!(
            choose_inventory(None, &env(None)),
            Err(Error::NoInventory)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
