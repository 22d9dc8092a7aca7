//! The CLI's errors, each knowing its exit code:
//! 0 success, 1 a runtime failure (I/O, templates), 2 a bad command line,
//! inventory or plan. A closed stdout (broken pipe) is not an error.

use std::path::PathBuf;

use crate::inventory::InventoryError;
use crate::inventory::pattern::PatternError;
use crate::lab::LabError;
use crate::output::StdoutError;
use crate::plan::PlanErrors;
use crate::render::RenderError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(
        "no inventory: pass -i FILE, set HACTL_INVENTORY, or set `inventory` in [defaults] of ./ansible.cfg"
    )]
    NoInventory,
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Plan(#[from] PlanErrors),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("--limit `{0}` matches no host")]
    NoHosts(String),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Ssh(#[from] crate::ssh::SshError),
    #[error("cannot read the agent binary {}", path.display())]
    AgentBin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
    /// Another run holds a lock (deploy).
    #[error("{0}")]
    Busy(String),
}

impl From<StdoutError> for Error {
    fn from(e: StdoutError) -> Self {
        Error::Stdout(e.0)
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_)
            | Self::NoInventory
            | Self::Inventory(_)
            | Self::Pattern(_)
            | Self::Plan(_)
            | Self::Render(RenderError::UnknownHost(_))
            | Self::NoHosts(_) => 2,
            Self::Lab(e) => e.exit_code(),
            Self::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Self::Write { .. }
            | Self::Stdout(_)
            | Self::Render(_)
            | Self::Ssh(_)
            | Self::AgentBin { .. }
            | Self::Busy(_)
            | Self::Runtime(_) => 1,
        }
    }
}
