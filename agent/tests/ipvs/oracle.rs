//! Differential oracle: keepalived 2.2.7 and hactl-agent read the same
//! file and must program the same IPVS table. For each file of
//! `tests/ipvs/corpus/` (every scheduler and forwarding method,
//! persistence, weights, checkers failing with and without
//! inhibit_on_failure, sorry servers, firewall marks, groups, IPv6):
//! keepalived's checker process runs them until the table settles, the
//! sorted `ipvsadm -Ln` is kept, keepalived stops; then the agent runs them
//! and its table must be the same, line for line. Both must leave an
//! empty table behind when they stop.

use std::path::Path;
use std::time::Duration;

use crate::lab::{DEADLINE, Daemon, settled_table, table};
use crate::support::netns::{Segment, wait_until};

/// Prepended to every corpus file: the agent runs its VRRP half too.
const HEADER: &str = "global_defs {
  router_id oracle
  script_user root
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress {
    10.77.0.200/24
  }
}
";

/// How long a table must stay the same to count as settled: longer than
/// the corpus's delay_loop plus a check.
const QUIET: Duration = Duration::from_millis(2500);

/// The corpus, compiled in: the VM has no source tree.
const CORPUS: &[(&str, &str)] = &[
    ("algos.conf", include_str!("corpus/algos.conf")),
    ("checkers.conf", include_str!("corpus/checkers.conf")),
    (
        "fwmark-groups.conf",
        include_str!("corpus/fwmark-groups.conf"),
    ),
    ("ipv6.conf", include_str!("corpus/ipv6.conf")),
    ("kinds.conf", include_str!("corpus/kinds.conf")),
    ("persistence.conf", include_str!("corpus/persistence.conf")),
    ("sorry.conf", include_str!("corpus/sorry.conf")),
];

pub fn same_table_as_keepalived() {
    // The corpus files use distinct services, so they run as one file:
    // one keepalived and one agent run instead of one per file (the VM is
    // slow), and a clash between files would be a parse error here.
    let mut text = HEADER.to_owned();
    for (name, body) in CORPUS {
        hactl_agent::config::parse_str(&format!("{HEADER}{body}"), Path::new(name))
            .unwrap_or_else(|e| panic!("{name}: the agent rejects it: {e:?}"));
        text.push_str(body);
    }
    hactl_agent::config::parse_str(&text, Path::new("corpus.conf"))
        .unwrap_or_else(|e| panic!("the corpus as one file: {e:?}"));
    let segment = Segment::new(1);
    let host = segment.host(0);
    let mut keepalived = Daemon::keepalived(host, &text, true);
    let theirs = settled_table(host, QUIET, DEADLINE);
    keepalived.stop();
    wait_until(DEADLINE, "keepalived to empty the table", || {
        table(host).is_empty()
    });

    let mut agent = Daemon::agent(host, &text);
    let ours = settled_table(host, QUIET, DEADLINE);
    agent.stop();
    let left = table(host);
    assert!(
        left.is_empty(),
        "the agent left services behind: {left:#?}\n{}",
        agent.log()
    );
    let services = theirs.iter().filter(|l| !l.starts_with(' ')).count();
    println!(
        "oracle: {} corpus files, {services} services, {} table lines",
        CORPUS.len(),
        theirs.len()
    );
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|l| !b.contains(l)).cloned().collect()
    };
    assert_eq!(
        ours,
        theirs,
        "the tables differ\n  only keepalived's: {:?}\n  only the agent's: {:?}\n  agent log:\n{}",
        only(&theirs, &ours),
        only(&ours, &theirs),
        agent.log()
    );
}
