//! The command line, after just (`arguments.rs` -> `config.rs` ->
//! `commands/`): clap's raw arguments are validated into a [`Config`]
//! (which command, with its own options, and the global settings), a
//! [`Context`] is opened once from the settings (inventory, plan, host
//! selection, SSH pool), and the command runs against it. Every error knows
//! its exit code (`error.rs`).

pub mod arguments;
pub mod config;
pub mod context;
pub mod error;

pub use arguments::Arguments;
pub use config::{Config, Environment, Settings};
pub use context::Context;
pub use error::Error;

use crate::output::Output;

/// Runs the CLI on parsed arguments; returns the process exit code.
pub fn run(args: Arguments) -> i32 {
    raise_open_file_limit();
    let env = Environment::from_process();
    let color = !(args.no_color || env.no_color);
    let out = Output::new(color);
    let result = Config::from_arguments(args, &env).and_then(|config| {
        let ctx = Context::new(config.settings, out);
        config.command.execute(&ctx)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            if let Error::Plan(errors) = &e {
                for problem in &errors.0 {
                    out.error(&problem.to_string());
                }
            }
            if code != 0 {
                out.error(&crate::error_chain(&e));
            }
            code
        }
    }
}

/// Every host in flight holds a few descriptors (its mux sessions' socket
/// and pipes); at fleet size the usual soft limit of 1024 is too few, so
/// the soft limit is raised to the hard one, as a server would.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}
