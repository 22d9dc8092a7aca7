//! The `hactl-agent` binary: parse the command line, run, map errors to exit
//! codes.
//!
//! Exit codes: 0 success, 1 the config is unusable (unreadable or invalid),
//! 2 bad command line (clap). Diagnostics go to stderr, one `FILE:LINE:
//! message` per line; reports go to stdout. A closed stdout (`| head`) is not
//! an error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hactl_agent::check::{self, CheckError, Format};
use hactl_agent::config::ConfigError;

#[derive(Parser)]
#[command(
    name = "hactl-agent",
    version,
    about = "VRRP v2/v3 and IPVS agent speaking keepalived.conf"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a keepalived.conf and summarize it; exit 1 with FILE:LINE
    /// messages when it is invalid.
    Check(CheckArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// The keepalived.conf to check.
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    file: PathBuf,
    /// Print the parsed model as JSON (passwords redacted).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(&args),
    }
}

fn run_check(args: &CheckArgs) -> ExitCode {
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };
    match check::run(&args.file, format) {
        Ok(report) => {
            let mut stderr = std::io::stderr().lock();
            for w in &report.warnings {
                let _ = writeln!(stderr, "{w}");
            }
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            let _ = stdout.write_all(report.stdout.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            match &e {
                CheckError::Config(ConfigError::Invalid { diagnostics, .. }) => {
                    for d in diagnostics {
                        let _ = writeln!(stderr, "{d}");
                    }
                }
                other => {
                    let mut message = other.to_string();
                    let mut source = std::error::Error::source(other);
                    while let Some(s) = source {
                        message.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    let _ = writeln!(stderr, "hactl-agent: {message}");
                }
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
