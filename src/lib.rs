//! hactl: the control CLI's library. `main.rs` only parses the command line,
//! runs a command from here and maps its error to an exit code; integration
//! tests reach the same code through this crate.

pub mod agent_control;
pub mod arguments;
pub mod audit;
pub mod cluster_status;
pub mod config;
pub mod deploy;
pub mod drill;
pub mod error;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod operations;
pub mod output;
pub mod preflight;
pub mod remote_layout;
pub mod ssh;
pub mod subcommand;
pub mod targets;

use arguments::Arguments;
use config::{Config, Environment};
use output::Output;

/// Run the CLI on parsed arguments; returns the process exit code.
pub fn run(args: Arguments) -> i32 {
    let env = Environment::from_process();
    let color = !(args.no_color || env.no_color);
    let out = Output::new(color);
    let result =
        Config::from_arguments(args, &env).and_then(|config| subcommand::run(&config, &out));
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            if let error::Error::Plan(errors) = &e {
                for problem in &errors.0 {
                    out.error(&problem.to_string());
                }
            }
            if code != 0 {
                out.error(&error_chain(&e));
            }
            code
        }
    }
}

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
pub mod plan;
pub mod render;
