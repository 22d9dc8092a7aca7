//! The `hactl-agent` binary: parse the command line, run, map errors to exit
//! codes.
//!
//! Exit codes: 0 success, 1 the config is unusable (unreadable or invalid),
//! 2 bad command line (clap), 3 the host refused (sockets, addresses, the
//! status socket unreachable). Diagnostics go to stderr, one `FILE:LINE:
//! message` per line; reports go to stdout. A closed stdout (`| head`) is not
//! an error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hactl_agent::check::{self, CheckError, Format};
use hactl_agent::config::ConfigError;
use hactl_agent::{daemon, status};

#[derive(Parser)]
#[command(
    name = "hactl-agent",
    version,
    about = "VRRP v2/v3 and IPVS agent speaking keepalived.conf"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: the config to run (as `run -f`).
    #[arg(short = 'f', long = "use-file", value_name = "FILE", global = false)]
    file: Option<PathBuf>,
    /// Without a subcommand: check the config and exit (as `check`).
    #[arg(long = "config-test")]
    config_test: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Check a keepalived.conf and summarize it; exit 1 with FILE:LINE
    /// messages when it is invalid.
    Check(CheckArgs),
    /// Run the VRRP daemon in the foreground (logs on stderr).
    Run(RunArgs),
    /// Print the status of the running agent.
    Status(StatusArgs),
    /// Run the daemon under a small supervisor (where no systemd runs):
    /// when it dies other than by a clean stop, remove its VIPs, then
    /// restart it with a backoff.
    Supervise(SuperviseArgs),
    /// Remove the VIPs and IPVS services a killed agent left behind
    /// (recorded in the state directory).
    Cleanup(CleanupArgs),
    /// Become master now (a planned switchover): advertise a priority above
    /// the master's, which steps down when it hears it.
    Takeover(TakeoverArgs),
    /// End a takeover: back to the configured priority (a master by
    /// takeover steps down with a priority 0 advert).
    Release(ReleaseArgs),
}

#[derive(Args)]
struct TakeoverArgs {
    /// Only this instance (default: every instance).
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// The priority to advertise (1-254).
    #[arg(long, value_name = "N", default_value_t = status::TAKEOVER_PRIORITY,
          value_parser = clap::value_parser!(u8).range(1..=254))]
    priority: u8,
    /// The status socket.
    #[arg(long, value_name = "PATH", default_value = status::DEFAULT_SOCKET)]
    socket: PathBuf,
}

#[derive(Args)]
struct ReleaseArgs {
    /// Only this instance (default: every instance).
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// The status socket.
    #[arg(long, value_name = "PATH", default_value = status::DEFAULT_SOCKET)]
    socket: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// The keepalived.conf to run.
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    file: PathBuf,
    /// The status socket.
    #[arg(long, value_name = "PATH", default_value = status::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Where the agent records the VIPs it adds.
    #[arg(long, value_name = "DIR", default_value = daemon::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

#[derive(Args)]
struct SuperviseArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Where the running agent's PID is written.
    #[arg(long, value_name = "PATH")]
    pid_file: PathBuf,
}

#[derive(Args)]
struct StatusArgs {
    /// The status socket.
    #[arg(long, value_name = "PATH", default_value = status::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CleanupArgs {
    /// The state directory of the agent.
    #[arg(long, value_name = "DIR", default_value = daemon::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
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
        Some(Command::Check(args)) => run_check(&args),
        Some(Command::Run(args)) => run_daemon(&args),
        Some(Command::Status(args)) => run_status(&args),
        Some(Command::Supervise(args)) => run_supervisor(&args),
        Some(Command::Cleanup(args)) => run_cleanup(&args),
        Some(Command::Takeover(args)) => run_control(
            &args.socket,
            &status::ControlRequest::Takeover {
                instance: args.instance,
                priority: Some(args.priority),
            },
        ),
        Some(Command::Release(args)) => run_control(
            &args.socket,
            &status::ControlRequest::Release {
                instance: args.instance,
            },
        ),
        None => match cli.file {
            Some(file) if cli.config_test => run_check(&CheckArgs { file, json: false }),
            Some(file) => run_daemon(&RunArgs {
                file,
                socket: PathBuf::from(status::DEFAULT_SOCKET),
                state_dir: PathBuf::from(daemon::DEFAULT_STATE_DIR),
            }),
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "hactl-agent: give a subcommand or -f FILE (see --help)"
                );
                ExitCode::from(2)
            }
        },
    }
}

fn report_error(e: &dyn std::error::Error) {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    let _ = writeln!(std::io::stderr(), "hactl-agent: {message}");
}

fn run_daemon(args: &RunArgs) -> ExitCode {
    let options = daemon::Options {
        config: args.file.clone(),
        socket: args.socket.clone(),
        state_dir: args.state_dir.clone(),
    };
    match daemon::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(daemon::DaemonError::Config(ConfigError::Invalid { diagnostics, .. })) => {
            let mut stderr = std::io::stderr().lock();
            for d in diagnostics {
                let _ = writeln!(stderr, "{d}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_supervisor(args: &SuperviseArgs) -> ExitCode {
    // The path this was started by: after a deploy replaced the binary,
    // /proc/self/exe names the deleted old one.
    let program = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("hactl-agent"));
    let options = daemon::supervise::SuperviseOptions {
        program,
        run: daemon::Options {
            config: args.run.file.clone(),
            socket: args.run.socket.clone(),
            state_dir: args.run.state_dir.clone(),
        },
        pid_file: args.pid_file.clone(),
    };
    match daemon::supervise::supervise(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Exit 0 when the agent did it, 1 when it refused (no such instance), 3
/// when it cannot be reached.
fn run_control(socket: &std::path::Path, request: &status::ControlRequest) -> ExitCode {
    match status::control(socket, request) {
        Ok(reply) if reply.ok => {
            let _ = writeln!(std::io::stdout(), "{}", reply.instances.join(" "));
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            let error = reply.error.unwrap_or_else(|| "refused".to_owned());
            let _ = writeln!(std::io::stderr(), "hactl-agent: {error}");
            ExitCode::from(1)
        }
        Err(e) => {
            report_error(&e);
            ExitCode::from(3)
        }
    }
}

fn run_status(args: &StatusArgs) -> ExitCode {
    match status::fetch(&args.socket) {
        Ok(s) => {
            let text = if args.json {
                match serde_json::to_string_pretty(&s) {
                    Ok(mut t) => {
                        t.push('\n');
                        t
                    }
                    Err(e) => {
                        report_error(&e);
                        return ExitCode::from(1);
                    }
                }
            } else {
                status::table(&s)
            };
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(&e);
            ExitCode::from(3)
        }
    }
}

fn run_cleanup(args: &CleanupArgs) -> ExitCode {
    match daemon::cleanup(&args.state_dir) {
        Ok(cleaned) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "removed {} address(es)", cleaned.addresses);
            if cleaned.services > 0 {
                let _ = writeln!(out, "removed {} IPVS service(s)", cleaned.services);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(&e);
            ExitCode::from(e.exit_code())
        }
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
