//! The `hactl` control CLI: parse the command line, run the command, map its
//! error to an exit code.

use clap::Parser;

fn main() {
    let args = hactl::cli::Arguments::parse();
    std::process::exit(hactl::cli::run(args));
}
