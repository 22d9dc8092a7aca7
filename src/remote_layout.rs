//! Where hactl puts things on a host: the one contract that `deploy`,
//! `status`, drills and audits share. Changing a path here changes it for
//! every command at once; hosts deployed with an older layout need a
//! redeploy.
//!
//! ```text
//! /usr/local/lib/hactl/hactl-agent      agent binary (+ .prev)
//! /etc/hactl/keepalived.conf            config, backend agent (+ .prev)
//! /etc/keepalived/keepalived.conf       config, backend keepalived (+ .prev)
//! /etc/hactl/checks/                    check scripts (hactl_checks content)
//! /var/lib/hactl/                       agent state, logs
//! /var/lib/hactl/vips.json              the agent's VIP ledger (crash safety)
//! /run/hactl/agent.sock                 agent status socket
//! /run/hactl/agent.pid                  supervised agent (no systemd)
//! /run/hactl/agent-supervisor.pid       its supervisor (`hactl-agent supervise`)
//! /run/hactl/keepalived.pid             supervised keepalived (no systemd)
//! /run/hactl/fail-<check>               drill flag: a lab check fails while it exists
//! /run/hactl/drill-undo.json            a drill's fault not yet undone (its undo)
//! ```
//!
//! Where systemd runs (PID 1 is systemd), the agent is the unit
//! `hactl-agent.service` and keepalived the distribution's
//! `keepalived.service`; elsewhere (the lab) hactl supervises the daemon
//! itself: started detached with `setsid`, stdin from /dev/null, output
//! appended to the log file, its PID in the pid file.

use crate::plan::Backend;

/// The agent binary.
pub const AGENT_BIN: &str = "/usr/local/lib/hactl/hactl-agent";
/// The directory of the agent binary.
pub const AGENT_BIN_DIR: &str = "/usr/local/lib/hactl";
/// The rendered config run by hactl-agent.
pub const AGENT_CONFIG: &str = "/etc/hactl/keepalived.conf";
/// The rendered config run by stock keepalived.
pub const KEEPALIVED_CONFIG: &str = "/etc/keepalived/keepalived.conf";
/// Suffix of the previous version of a replaced file (binary, config).
pub const PREVIOUS_SUFFIX: &str = ".prev";
/// Check scripts uploaded from `hactl_checks` entries with `content:`.
pub const CHECKS_DIR: &str = "/etc/hactl/checks";
/// The agent's state directory (`--state-dir`).
pub const STATE_DIR: &str = "/var/lib/hactl";
/// hactl's runtime directory: sockets, pid files, drill flags.
pub const RUN_DIR: &str = "/run/hactl";
/// The agent's record of the VIPs it added (`STATE_DIR/vips.json`).
pub const AGENT_LEDGER: &str = "/var/lib/hactl/vips.json";
/// Where deploy records the digests of the files it installed
/// (`crate::facts::FileHash`).
pub const SUMS_DIR: &str = "/var/lib/hactl/sums";
/// The agent's status socket (`--socket`).
pub const AGENT_SOCKET: &str = "/run/hactl/agent.sock";
/// Pid file of the agent when hactl supervises it.
pub const AGENT_PID_FILE: &str = "/run/hactl/agent.pid";
/// Pid file of `hactl-agent supervise`, the agent's parent when hactl
/// supervises it: it removes a dead agent's VIPs and restarts it.
pub const AGENT_SUPERVISOR_PID_FILE: &str = "/run/hactl/agent-supervisor.pid";
/// Log of the agent when hactl supervises it.
pub const AGENT_LOG: &str = "/var/lib/hactl/agent.log";
/// Pid file of keepalived's parent process when hactl supervises it (`-p`).
pub const KEEPALIVED_PID_FILE: &str = "/run/hactl/keepalived.pid";
/// keepalived's VRRP child pid file (`-r`).
pub const KEEPALIVED_VRRP_PID_FILE: &str = "/run/hactl/keepalived-vrrp.pid";
/// keepalived's checker child pid file (`-c`).
pub const KEEPALIVED_CHECKERS_PID_FILE: &str = "/run/hactl/keepalived-checkers.pid";
/// Log of keepalived when hactl supervises it.
pub const KEEPALIVED_LOG: &str = "/var/lib/hactl/keepalived.log";
/// The systemd unit of the agent.
pub const AGENT_UNIT: &str = "hactl-agent.service";
/// Where the agent's unit file goes.
pub const AGENT_UNIT_FILE: &str = "/etc/systemd/system/hactl-agent.service";
/// The distribution's keepalived unit.
pub const KEEPALIVED_UNIT: &str = "keepalived.service";

/// The undo of a drill's fault, written on the faulted host before the
/// fault and removed once undone: what a killed run left, for the next
/// run or `hactl failover-test --restore` (in /run: a reboot undoes the
/// faults too).
pub const DRILL_UNDO: &str = "/run/hactl/drill-undo.json";

/// The drill flag of a check: a check script deployed for the lab
/// (`test ! -e /run/hactl/fail-NAME`) fails while this file exists, so a
/// drill can fail a track_script without editing anything.
pub fn check_fail_flag(check: &str) -> String {
    format!("{RUN_DIR}/fail-{check}")
}

/// The config path a backend reads.
pub fn config_path(backend: Backend) -> &'static str {
    match backend {
        Backend::Agent => AGENT_CONFIG,
        Backend::Keepalived => KEEPALIVED_CONFIG,
    }
}

/// The pid file of a backend under hactl's supervision.
pub fn pid_file(backend: Backend) -> &'static str {
    match backend {
        Backend::Agent => AGENT_PID_FILE,
        Backend::Keepalived => KEEPALIVED_PID_FILE,
    }
}

/// The previous version of `path`.
pub fn previous(path: &str) -> String {
    format!("{path}{PREVIOUS_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_paths() {
        assert_eq!(check_fail_flag("check_web"), "/run/hactl/fail-check_web");
        assert_eq!(previous(AGENT_BIN), "/usr/local/lib/hactl/hactl-agent.prev");
        assert_eq!(config_path(Backend::Keepalived), KEEPALIVED_CONFIG);
        assert!(AGENT_BIN.starts_with(AGENT_BIN_DIR));
        assert!(AGENT_SOCKET.starts_with(RUN_DIR) && AGENT_PID_FILE.starts_with(RUN_DIR));
    }
}
