//! The lab fixture shared by the root package's lab tests (deploy, drills):
//! a copy of inventories/lab.yaml moved to a subnet the caller picks (each
//! test binary owns its own range) and a lab name of this run, built with
//! `hactl lab up` under a temporary `HACTL_LAB_DIR`, and removed with
//! `hactl lab down` when dropped, also when the test panics.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

/// The inventory hosts of inventories/lab.yaml.
pub const LAB_HOSTS: [&str; 4] = ["lb01", "lb02", "lb03", "lb04"];

/// A lab of (a changed copy of) the lab inventory.
pub struct TestLab {
    pub dir: PathBuf,
    pub inventory: PathBuf,
    /// The first three octets of the lab subnet, `10.214.7`.
    pub subnet: String,
}

impl TestLab {
    /// Builds the lab named `name` on `subnet`.0/24; `edit` changes the
    /// inventory text (already moved to the subnet) before the lab is built.
    #[track_caller]
    pub fn up(name: &str, subnet: &str, edit: impl FnOnce(String, &str) -> String) -> TestLab {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/lab.yaml"))
            .unwrap()
            .replace("10.213.0.", &format!("{subnet}."));
        TestLab::of(name, subnet, &edit(text, subnet))
    }

    /// Builds the lab named `name` of the inventory `text`, whose hosts are
    /// on `subnet`.0/24.
    #[track_caller]
    pub fn of(name: &str, subnet: &str, text: &str) -> TestLab {
        let dir = std::env::temp_dir().join(format!("hactl-test-{name}"));
        fs::create_dir_all(&dir).unwrap();
        let inventory = dir.join(format!("{name}.yaml"));
        fs::write(&inventory, text).unwrap();
        let lab = TestLab {
            dir,
            inventory,
            subnet: subnet.to_string(),
        };
        let out = lab.hactl(&["lab", "up"], &[]);
        assert!(out.status.success(), "lab up: {}", text_of(&out.stderr));
        lab
    }

    /// `hactl ARGS INVENTORY EXTRA`.
    pub fn hactl(&self, args: &[&str], extra: &[&str]) -> Output {
        self.hactl_on(&self.inventory, args, extra)
    }

    /// `hactl ARGS INVENTORY EXTRA` with another inventory, against this lab.
    pub fn hactl_on(&self, inventory: &Path, args: &[&str], extra: &[&str]) -> Output {
        let mut argv: Vec<&str> = args.to_vec();
        argv.push(inventory.to_str().unwrap());
        argv.extend(extra);
        Command::new(HACTL)
            .args(&argv)
            .env("HACTL_LAB_DIR", self.dir.join("labs"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// `hactl lab exec HOST -- sh -c SCRIPT`, which must succeed.
    #[track_caller]
    pub fn exec(&self, host: &str, script: &str) -> String {
        let out = Command::new(HACTL)
            .arg("-i")
            .arg(&self.inventory)
            .args(["lab", "exec", host, "--", "sh", "-c", script])
            .env("HACTL_LAB_DIR", self.dir.join("labs"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{host}: {script}: {}",
            text_of(&out.stderr)
        );
        text_of(&out.stdout)
    }

    /// The IPv4 addresses on a host's eth0.
    pub fn addresses(&self, host: &str) -> Vec<String> {
        let json: Value =
            serde_json::from_str(&self.exec(host, "ip -j -4 addr show dev eth0")).unwrap();
        json.as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["local"].as_str().map(str::to_string))
            .collect()
    }

    /// The lab hosts whose eth0 holds `vip`.
    pub fn holders(&self, vip: &str) -> Vec<String> {
        LAB_HOSTS
            .into_iter()
            .filter(|h| self.addresses(h).iter().any(|a| a == vip))
            .map(str::to_string)
            .collect()
    }

    /// The PID hactl recorded for a host's agent.
    pub fn agent_pid(&self, host: &str) -> String {
        self.exec(host, "cat /run/hactl/agent.pid")
            .trim()
            .to_string()
    }

    /// An address of the lab subnet, `vip(110)` = `10.214.7.110`.
    pub fn vip(&self, last: u8) -> String {
        format!("{}.{last}", self.subnet)
    }
}

/// Pings argv[1] every 10 ms (raw ICMP) until the file argv[2] exists;
/// prints `ready` once the socket is open, then `SENT RECEIVED
/// LONGEST_RUN_OF_LOST`.
pub const PROBER: &str = r#"import os, select, socket, struct, sys, time
vip, stop = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xffff
def checksum(b):
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff
got, seq = set(), 0
print("ready", flush=True)
def drain(until):
    while True:
        left = until - time.time()
        if left <= 0:
            return
        if select.select([s], [], [], left)[0]:
            data = s.recv(2048)
            ihl = (data[0] & 15) * 4
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and rid == ident:
                got.add(rseq)
while not os.path.exists(stop) and seq < 60000:
    seq += 1
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"hactl-probe!"
    packet = struct.pack("!BBHHH", 8, 0, checksum(body), ident, seq) + b"hactl-probe!"
    s.sendto(packet, (vip, 0))
    drain(time.time() + 0.01)
drain(time.time() + 0.3)
run = worst = 0
for i in range(1, seq + 1):
    run = 0 if i in got else run + 1
    worst = max(worst, run)
print(seq, len(got), worst, flush=True)
"#;

/// A client in the lab pinging a VIP every 10 ms until finished.
pub struct Pinger {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    stop: PathBuf,
}

impl Pinger {
    /// Starts pinging `vip` from lab host `from`; returns once its socket
    /// is open.
    #[track_caller]
    pub fn start(lab: &TestLab, from: &str, vip: &str) -> Pinger {
        let stop = lab.dir.join(format!("stop-pinger-{vip}"));
        let _ = fs::remove_file(&stop);
        let mut child = Command::new(HACTL)
            .args([
                "-i",
                lab.inventory.to_str().unwrap(),
                "lab",
                "exec",
                from,
                "--",
            ])
            .args(["python3", "-c", PROBER, vip, stop.to_str().unwrap()])
            .env("HACTL_LAB_DIR", lab.dir.join("labs"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        Pinger { child, lines, stop }
    }

    /// Stops; returns (sent, answered, longest run of lost pings).
    #[track_caller]
    pub fn finish(mut self) -> (u32, u32, u32) {
        fs::write(&self.stop, "").unwrap();
        let counts = self.lines.next().unwrap().unwrap();
        assert!(self.child.wait().unwrap().success());
        let counts: Vec<u32> = counts
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        (counts[0], counts[1], counts[2])
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.hactl(&["lab", "down"], &[]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
