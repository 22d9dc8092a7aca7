//! The verbs: one file each, a thin entry point that takes its own options
//! and the run's [`Context`], calls the domain modules below, prints
//! through `ctx.out` and returns the exit code. No command calls another.

mod audit;
mod completions;
mod deploy;
mod failover_test;
mod inventory;
mod lab;
mod preflight;
mod render;
mod status;
mod version;

pub use audit::AuditCommand;
pub use deploy::DeployCommand;
pub use failover_test::FailoverTestCommand;
pub use inventory::{InventoryCommand, InventoryMode};
pub use lab::LabCommand;
pub use preflight::PreflightCommand;
pub use render::RenderCommand;
pub use status::StatusCommand;

use crate::cli::{Context, Error};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Inventory(InventoryCommand),
    Render(RenderCommand),
    Completions(clap_complete::Shell),
    Man,
    /// hactl's version, for people and for scripts (`--json`).
    Version,
    Audit(AuditCommand),
    Lab(LabCommand),
    Preflight(PreflightCommand),
    Deploy(DeployCommand),
    Status(StatusCommand),
    FailoverTest(FailoverTestCommand),
}

/// Settings of the commands that log into hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Trust on first use (`--accept-new-host-keys`).
    pub accept_new_host_keys: bool,
}

impl Command {
    /// Runs the command; the exit code of a run that succeeded (0, or what
    /// the command's own convention says: audit's Nagios codes, `lab exec`
    /// the remote command's).
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        match self {
            Command::Inventory(c) => c.execute(ctx),
            Command::Render(c) => c.execute(ctx),
            Command::Completions(shell) => completions::completions(ctx, *shell),
            Command::Man => completions::man(ctx),
            Command::Version => version::version(ctx),
            Command::Audit(c) => Ok(c.execute(ctx)),
            Command::Lab(c) => c.execute(ctx),
            Command::Preflight(c) => c.execute(ctx),
            Command::Deploy(c) => c.execute(ctx),
            Command::Status(c) => c.execute(ctx),
            Command::FailoverTest(c) => c.execute(ctx),
        }
    }
}
