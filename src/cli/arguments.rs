//! The command line as clap parses it: raw flags and arguments, no checks
//! beyond clap's own. `config.rs` turns these into a validated `Config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Deploy, drill and audit VRRP load-balancer pairs from an Ansible inventory.
#[derive(Parser, Debug)]
#[command(name = "hactl", version, about, propagate_version = true)]
pub struct Arguments {
    /// Inventory file (else $HACTL_INVENTORY, else `inventory` in ./ansible.cfg)
    #[arg(short = 'i', long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Only these hosts: an Ansible host pattern (`lb01,web:!lb02`, `lb*`, `web:&db`)
    #[arg(long, global = true, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// How many hosts to work on at once
    #[arg(long, global = true, value_name = "N", default_value_t = 5)]
    pub forks: usize,
    /// Print JSON on stdout instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// No colours (also when NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Use the templates in DIR instead of the built-in ones
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Keep OpenSSH's own key exchange order (by default hactl puts
    /// curve25519 first where OpenSSH would lead with sntrup761x25519, which
    /// costs about 0.1 s of CPU per host on each side)
    #[arg(long, global = true)]
    pub ssh_default_kex: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the resolved cluster plan (pairs, instances, roles, VRIDs)
    Inventory(InventoryArgs),
    /// Print (or write) the files a host would get; secrets are redacted on stdout
    Render(RenderArgs),
    /// Print a shell completion script
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout
    Man,
    /// Print hactl's version (with --json: `{"name": "hactl", "version": "X.Y.Z"}`)
    Version,
    /// Split-brain and drift audit for cron, Nagios and Prometheus (exit 0/1/2/3)
    Audit(AuditArgs),
    /// A local replica of the inventory's hosts in network namespaces
    #[command(subcommand)]
    Lab(LabCommand),
    /// Check every pair host's prerequisites: pass / warn / fail with the fix
    Preflight(RemoteArgs),
    /// Preflight, render, push and start or reload, rolling pair by pair
    Deploy(DeployArgs),
    /// Each instance: master, host states and priorities, VIP holders, agents
    Status(RemoteArgs),
    /// Drill failovers on a lab: break each pair on purpose, time the takeover
    FailoverTest(FailoverTestArgs),
}

#[derive(Args, Debug)]
pub struct FailoverTestArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Only this pair
    #[arg(long, value_name = "NAME")]
    pub pair: Option<String>,
    /// Only this instance
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Scenarios, comma-separated: graceful, kill, link, check, drain, partition (default: all)
    #[arg(long, value_name = "S,...")]
    pub scenario: Option<String>,
    /// Run on an inventory that is not marked as a lab
    #[arg(long)]
    pub yes: bool,
    /// Only undo what an earlier, killed run left on the hosts (recorded
    /// on each), then exit
    #[arg(long)]
    pub restore: bool,
}

#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// Inventory file (same as --inventory)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Record the host key of a host not yet in known_hosts (a changed key
    /// is always refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print what would be done and change nothing
    #[arg(long)]
    pub check: bool,
    /// Show config differences (secrets redacted)
    #[arg(long)]
    pub diff: bool,
    /// The hactl-agent binary to deploy (default: next to this hactl)
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Build the lab (running it again changes nothing)
    Up(LabArgs),
    /// Remove the lab: processes, namespaces, links, state
    Down(LabArgs),
    /// Each host: namespace, sshd, answers SSH
    Status(LabArgs),
    /// Run a command inside a lab host's namespaces
    Exec {
        /// The inventory host
        host: String,
        /// The command and its arguments (after `--`)
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
}

#[derive(Args, Debug)]
pub struct LabArgs {
    /// Inventory file (same as --inventory)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Inventory file (same as --inventory)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only check the inventory and the plan; print nothing on success
    #[arg(long, conflicts_with = "list")]
    pub validate: bool,
    /// Print the JSON `ansible-inventory --list` prints (hactl_auth_pass
    /// redacted unless --show-secrets)
    #[arg(long)]
    pub list: bool,
    /// With --list: print hactl_auth_pass as written, for use as a dynamic
    /// inventory (`ansible-inventory` prints it too)
    #[arg(long, requires = "list")]
    pub show_secrets: bool,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Inventory file (same as --inventory)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The host whose files to render
    #[arg(long, value_name = "HOST")]
    pub host: String,
    /// Only this file (keepalived.conf, hactl-agent.service, a check script)
    #[arg(long = "file", value_name = "NAME")]
    pub only: Option<String>,
    /// Write the files (in full, mode 0600) into DIR instead of printing them
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Inventory file (same as --inventory)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Report format (--json is the same as --format json)
    #[arg(long, value_enum, default_value_t = crate::audit::Format::Table)]
    pub format: crate::audit::Format,
    /// Write the report to FILE (atomically) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Bound the whole run; hosts that have not answered by then are UNKNOWN
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Lock file against overlapping runs [default: /run/hactl-audit.lock]
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}
