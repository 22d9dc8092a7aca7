//! The `hactl` control CLI: parse the command line, run the command, map its
//! error to an exit code.

use clap::Parser;

/// Deploy, drill and audit VRRP load-balancer pairs from an Ansible inventory.
#[derive(Parser, Debug)]
#[command(name = "hactl", version, about)]
struct Arguments {}

fn main() {
    let _args = Arguments::parse();
}
