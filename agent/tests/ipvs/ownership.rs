//! What the agent may touch: it creates or corrects the services its
//! config names and removes their stale destinations; on SIGHUP it
//! touches only what changed (and says what, one log line each); on
//! SIGTERM it deletes the services it created, never one it found.

use nix::sys::signal::Signal;

use crate::lab::{DEADLINE, Daemon, table};
use crate::support::netns::{Segment, wait_until};

const HEADER: &str = "vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  virtual_ipaddress {
    10.77.0.200/24
  }
}
";

fn config(rs2_weight: u32, second: &str) -> String {
    format!(
        "{HEADER}virtual_server 10.9.0.1 80 {{
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.9.1.1 80 {{
  }}
  real_server 10.9.1.2 80 {{
    weight {rs2_weight}
  }}
}}
virtual_server {second} 80 {{
  lb_algo wlc
  lb_kind NAT
  protocol TCP
  real_server 10.9.1.1 80 {{
  }}
}}
"
    )
}

pub fn agent_touches_only_its_own() {
    let segment = Segment::new(1);
    let host = segment.host(0);
    // Someone else's service, and a stale copy of one the config names.
    host.run(&["ipvsadm", "-A", "-t", "10.9.9.9:80", "-s", "sh"]);
    host.run(&["ipvsadm", "-A", "-t", "10.9.0.1:80", "-s", "wlc"]);
    host.run(&[
        "ipvsadm",
        "-a",
        "-t",
        "10.9.0.1:80",
        "-r",
        "10.9.1.7:80",
        "-m",
    ]);

    let agent = Daemon::agent(host, &config(1, "10.9.0.2"));
    let want = [
        "TCP 10.9.0.1:80 rr",
        "  -> 10.9.1.1:80 Masq 1",
        "  -> 10.9.1.2:80 Masq 1",
        "TCP 10.9.0.2:80 wlc",
        "  -> 10.9.1.1:80 Masq 1",
        "TCP 10.9.9.9:80 sh",
    ];
    wait_until(DEADLINE, "the configured table", || table(host) == want);

    // SIGHUP: one weight changes, one service goes, one comes.
    std::fs::write(
        agent.scratch.0.join("keepalived.conf"),
        config(5, "10.9.0.3"),
    )
    .expect("new config");
    agent.signal(Signal::SIGHUP);
    let want = [
        "TCP 10.9.0.1:80 rr",
        "  -> 10.9.1.1:80 Masq 1",
        "  -> 10.9.1.2:80 Masq 5",
        "TCP 10.9.0.3:80 wlc",
        "  -> 10.9.1.1:80 Masq 1",
        "TCP 10.9.9.9:80 sh",
    ];
    wait_until(DEADLINE, "the reloaded table", || table(host) == want);
    wait_until(DEADLINE, "the reload's log", || {
        agent.log().contains("ipvs: SIGHUP: delete TCP 10.9.0.2:80")
    });
    let touched: Vec<String> = agent
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("hactl-agent: ipvs: SIGHUP: "))
        .filter(|l| !l.starts_with("now "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        touched,
        [
            "change TCP 10.9.0.1:80 -> 10.9.1.2:80 Masq weight 5",
            "add TCP 10.9.0.3:80 wlc",
            "add TCP 10.9.0.3:80 -> 10.9.1.1:80 Masq weight 1",
            "delete TCP 10.9.0.2:80",
        ],
        "a reload touches what changed and nothing else:\n{}",
        agent.log()
    );

    // SIGTERM: what the agent created goes; what it found stays.
    let mut agent = agent;
    agent.stop();
    assert_eq!(
        table(host),
        [
            "TCP 10.9.0.1:80 rr",
            "  -> 10.9.1.1:80 Masq 1",
            "  -> 10.9.1.2:80 Masq 5",
            "TCP 10.9.9.9:80 sh",
        ],
        "{}",
        agent.log()
    );
}

/// A SIGKILLed agent leaves its services; `hactl-agent cleanup` removes
/// them (and only them), and a new agent would adopt them.
pub fn cleanup_after_a_crash() {
    let segment = Segment::new(1);
    let host = segment.host(0);
    host.run(&["ipvsadm", "-A", "-t", "10.9.9.9:80", "-s", "sh"]);
    let agent = Daemon::agent(host, &config(1, "10.9.0.2"));
    wait_until(DEADLINE, "the configured table", || table(host).len() == 6);
    agent.signal(Signal::SIGKILL);
    wait_until(DEADLINE, "the agent gone", || agent.exited());
    assert_eq!(table(host).len(), 6, "a killed agent cannot clean up");
    let state = agent.scratch.file("state");
    let agent_bin = crate::lab::agent_bin();
    let out = host.run(&[agent_bin.as_str(), "cleanup", "--state-dir", &state]);
    assert!(out.contains("removed 2 IPVS service(s)"), "{out}");
    assert_eq!(table(host), ["TCP 10.9.9.9:80 sh"]);
}

/// MISC_CHECK runs as its `user`, and enable_script_security refuses a
/// program others may write (its server stays out, the log says why).
pub fn misc_check_user_and_script_security() {
    use std::os::unix::fs::PermissionsExt;
    let segment = Segment::new(1);
    let host = segment.host(0);
    let dir = crate::lab::Scratch::new("misc");
    let write = |name: &str, body: &str, mode: u32| {
        let path = dir.0.join(name);
        std::fs::write(&path, body).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("mode");
        path.to_string_lossy().into_owned()
    };
    let uid_file = dir.file("uid");
    let who = write(
        "who.sh",
        &format!("#!/bin/sh\nid -u > {uid_file}\nexit 0\n"),
        0o755,
    );
    // The uid file must be writable by nobody.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).expect("mode");
    let open = write("open.sh", "#!/bin/sh\nexit 0\n", 0o777);
    let text = format!(
        "global_defs {{\n  script_user root\n  enable_script_security\n}}\n{HEADER}virtual_server 10.9.0.1 80 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.9.1.1 80 {{
    MISC_CHECK {{
      misc_path {who}
      user nobody
    }}
  }}
  real_server 10.9.1.2 80 {{
    MISC_CHECK {{
      misc_path {open}
    }}
  }}
}}
"
    );
    let agent = Daemon::agent(host, &text);
    wait_until(DEADLINE, "only 10.9.1.1 in the table", || {
        table(host) == ["TCP 10.9.0.1:80 rr", "  -> 10.9.1.1:80 Masq 1"]
    });
    wait_until(DEADLINE, "the check to write its uid", || {
        std::fs::read_to_string(&uid_file).is_ok_and(|t| !t.trim().is_empty())
    });
    let uid = std::fs::read_to_string(&uid_file).unwrap_or_default();
    assert_eq!(uid.trim(), "65534", "MISC_CHECK ran as nobody");
    assert!(
        agent.log().contains("refused by enable_script_security"),
        "{}",
        agent.log()
    );
}
