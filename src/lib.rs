//! hactl: the control CLI's library. `main.rs` only parses the command line
//! and hands it to [`cli::run`]; integration tests reach the same code
//! through this crate.
//!
//! Layers, top to bottom (a module only imports those below it):
//!
//! ```text
//!  cli/ (arguments, config, Context, errors)  ->  commands/<verb>.rs
//!    deploy/  drill/  audit/  preflight/  status.rs     (what a verb does)
//!    observe/  operations/  agent_control.rs           (hosts, as facts)
//!    facts/  ssh/  render.rs rendered.rs  lab/                    (one host, one file)
//!    plan/  inventory/  remote_layout.rs  output.rs    (data)
//! ```

pub mod agent_control;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod drill;
pub mod facts;
pub mod fuzz;
pub mod inventory;
pub mod lab;
pub mod lockfile;
pub mod observe;
pub mod operations;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod remote_layout;
pub mod render;
pub mod rendered;
pub mod ssh;
pub mod status;

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}
