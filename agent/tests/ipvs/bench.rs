//! Benchmarks for BENCHMARKS.md, run only when asked (`cargo test -p
//! hactl-agent --test ipvs -- --ignored`): hactl-agent and keepalived
//! 2.2.7 in the same VM, with the same config.
//!
//! - checker reaction: a real server's httpd is killed; the time until it
//!   is out of the LB's table (HTTP_GET, delay_loop 1, retry 2,
//!   delay_before_retry 0.5, connect_timeout 1), over several trials;
//! - CPU: 100 real servers, each checked by HTTP_GET every second, the
//!   daemon's CPU time (every process in the LB's namespace: keepalived's
//!   parent and checker child) over a steady window.

use std::time::{Duration, Instant};

use crate::lab::{DEADLINE, Daemon};
use crate::support::netns::{Host, wait_until};
use crate::traffic::{
    LB1, Lab, RS, has_destination, http_checker, real_servers, virtual_server, vrrp, wait_serving,
};

const TRIALS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn reaction_trials(lab: &Lab, daemon: &str) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..TRIALS {
        lab.kill_http(RS[0]);
        let start = Instant::now();
        wait_until(DEADLINE, "rs1 out of the table", || {
            !has_destination(lab.host(LB1), RS[0], None)
        });
        times.push(start.elapsed().as_secs_f64());
        lab.start_http(RS[0]);
        wait_until(DEADLINE, "rs1 back", || {
            has_destination(lab.host(LB1), RS[0], Some(1))
        });
        // Out of phase with the checker's loop, differently each trial.
        std::thread::sleep(Duration::from_millis(1000 + 170 * times.len() as u64));
    }
    println!(
        "bench checker reaction {daemon}: median {:.2}s, min {:.2}s, max {:.2}s over {TRIALS} trials: {times:.2?}",
        median(times.clone()),
        times.iter().copied().fold(f64::MAX, f64::min),
        times.iter().copied().fold(0.0, f64::max),
    );
    times
}

pub fn checker_reaction() {
    let lab = Lab::new();
    let config =
        vrrp(150, "MASTER") + &virtual_server(&real_servers(&http_checker, &|_| String::new()));
    for daemon in ["hactl-agent", "keepalived"] {
        let running = if daemon == "keepalived" {
            Daemon::keepalived(lab.host(LB1), &config, false)
        } else {
            Daemon::agent(lab.host(LB1), &config)
        };
        wait_serving(&lab, LB1);
        reaction_trials(&lab, daemon);
        drop(running);
        wait_until(DEADLINE, "the table emptied", || {
            crate::lab::table(lab.host(LB1)).is_empty()
        });
    }
}

/// User + system CPU seconds of every process in `host`'s namespace.
fn namespace_cpu(host: &Host) -> f64 {
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", host.namespace()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // sysconf(_SC_CLK_TCK) is 100 on Linux/x86-64.
    let ticks: u64 = pids
        .split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name (which may hold spaces).
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .sum();
    ticks as f64 / 100.0
}

pub fn cpu_100_real_servers() {
    let lab = Lab::new();
    let rs_host = lab.host(RS[0]);
    // 100 more addresses on rs1: its httpd answers on all of them.
    let addresses: Vec<String> = (110..210).map(|n| format!("10.77.0.{n}")).collect();
    for a in &addresses {
        rs_host.run(&["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"]);
    }
    let body: String = addresses
        .iter()
        .map(|a| {
            format!(
                "  real_server {a} 80 {{\n    HTTP_GET {{\n      url {{\n        path /\n      }}\n      connect_timeout 1\n    }}\n  }}\n"
            )
        })
        .collect();
    let config = vrrp(150, "MASTER") + &virtual_server(&body);
    let window = Duration::from_secs(20);
    for daemon in ["hactl-agent", "keepalived"] {
        let running = if daemon == "keepalived" {
            Daemon::keepalived(lab.host(LB1), &config, false)
        } else {
            Daemon::agent(lab.host(LB1), &config)
        };
        wait_until(DEADLINE, "100 destinations", || {
            crate::lab::table(lab.host(LB1)).len() == 101
        });
        std::thread::sleep(Duration::from_secs(3));
        let before = namespace_cpu(lab.host(LB1));
        let start = Instant::now();
        std::thread::sleep(window);
        let used = namespace_cpu(lab.host(LB1)) - before;
        let wall = start.elapsed().as_secs_f64();
        let still = crate::lab::table(lab.host(LB1)).len();
        println!(
            "bench cpu {daemon}: 100 real servers, HTTP_GET every 1s: {used:.2}s CPU in {wall:.1}s = {:.1}% of one core; {} destinations in the table",
            100.0 * used / wall,
            still - 1
        );
        assert_eq!(still, 101, "every real server stayed up");
        drop(running);
        wait_until(DEADLINE, "the table emptied", || {
            crate::lab::table(lab.host(LB1)).is_empty()
        });
    }
}
