//! `hactl audit` against a real lab, as root: the demo inventory's two
//! pairs moved to a subnet of their own (10.213.220-223.0/24), real
//! `hactl-agent`s started inside the lab hosts, and faults made by hand
//! (an nftables partition, a killed agent, an edited config, an address
//! added to an interface, a host whose sshd refuses). Every verdict about
//! VIP holders is checked against the hosts' interfaces read here, outside
//! the audit, never against the agents' word.
//!
//! The agent binary must be built (`cargo build -p hactl-agent`; a
//! workspace test run builds it): it is taken from beside the hactl binary.
//! Each test owns one lab and one subnet; a guard stops the agents it
//! started (by PID) and removes the lab even when the test panics.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hactl::lab::{Lab, LabName, LabPaths};
use serde_json::Value;

static NEXT_LAB: AtomicU8 = AtomicU8::new(0);
/// This binary's subnets: 10.213.220.0/24 and up.
const FIRST_SUBNET: u8 = 220;
const SUBNETS: u8 = 4;

const AGENT: &str = "/usr/local/lib/hactl/hactl-agent";

fn hactl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hactl")
}

/// `hactl-agent`, built beside `hactl` by the workspace build.
fn agent_bin() -> PathBuf {
    let path = Path::new(hactl_bin()).with_file_name("hactl-agent");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p hactl-agent` first",
        path.display()
    );
    path
}

/// A lab of the demo inventory with agents running; removed on drop.
struct AuditLab {
    dir: PathBuf,
    inventory: PathBuf,
    lab: Lab,
    subnet: u8,
    agents: Vec<(String, u32)>,
}

impl AuditLab {
    #[track_caller]
    fn up() -> AuditLab {
        AuditLab::with_backend("agent")
    }

    /// The demo inventory with `hactl_backend: BACKEND` (agent or
    /// keepalived), its daemons started on every host.
    #[track_caller]
    fn with_backend(backend: &str) -> AuditLab {
        assert!(
            rustix::process::geteuid().is_root(),
            "the audit tests build namespaces: run them as root"
        );
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        assert!(n < SUBNETS, "out of test subnets");
        let subnet = FIRST_SUBNET + n;
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("hactl-audit-test-{pid}-{n}"));
        fs::create_dir_all(&dir).unwrap();
        let name = format!("au{pid:x}x{n}");
        let inventory = dir.join(format!("{name}.yaml"));
        let demo =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab.yaml"))
                .unwrap();
        let text = demo
            .replace("10.213.0.", &format!("10.213.{subnet}."))
            // A script with content: lives in /etc/hactl/checks (issue 14):
            // /bin/true runs without its content.
            .replace("/etc/hactl/checks/check_web.sh", "/bin/true")
            .replace(
                "                content: |\n                  #!/bin/sh\n                  test ! -e /run/hactl/fail-check_web\n",
                "",
            )
            .replace("hactl_backend: agent", &format!("hactl_backend: {backend}"))
            .replace(
                "    hactl_interface: eth0\n",
                "    hactl_interface: eth0\n    hactl_script_user: root\n",
            );
        assert_ne!(text, demo);
        fs::write(&inventory, text).unwrap();
        let lab = Lab::new(
            LabName::new(&name).unwrap(),
            &LabPaths::new(dir.join("labs")),
        );
        let mut me = AuditLab {
            dir,
            inventory,
            lab,
            subnet,
            agents: Vec::new(),
        };
        let up = me.hactl(&["lab", "up"], true);
        assert!(up.status.success(), "lab up: {}", stderr(&up));
        let config_dir = if backend == "agent" {
            "etc/hactl"
        } else {
            "etc/keepalived"
        };
        for host in ["lb01", "lb02", "lb03", "lb04"] {
            let root = me.host_root(host);
            let out = me.hactl(
                &[
                    "render",
                    "--host",
                    host,
                    "--out",
                    root.join(config_dir).to_str().unwrap(),
                ],
                true,
            );
            assert!(out.status.success(), "render: {}", stderr(&out));
            if backend == "agent" {
                let bin = root.join("usr/local/lib/hactl/hactl-agent");
                fs::create_dir_all(bin.parent().unwrap()).unwrap();
                fs::copy(agent_bin(), &bin).unwrap();
                me.start_agent(host);
            } else {
                me.start_keepalived(host);
            }
        }
        me
    }

    /// Runs hactl with this lab's state root; `inventory` appends it.
    fn hactl(&self, args: &[&str], inventory: bool) -> Output {
        let mut command = Command::new(hactl_bin());
        command.env("HACTL_LAB_DIR", self.dir.join("labs"));
        command.env_remove("HACTL_INVENTORY");
        if inventory {
            command.arg("-i").arg(&self.inventory);
        }
        command.args(args).output().unwrap()
    }

    /// `hactl audit` with this lab's lock file and a 15 s deadline.
    fn audit(&self, format: &str, extra: &[&str]) -> Output {
        self.audit_within(15, format, extra)
    }

    fn audit_within(&self, timeout: u64, format: &str, extra: &[&str]) -> Output {
        let lock = self.dir.join("audit.lock");
        let timeout = timeout.to_string();
        let mut args = vec![
            "audit",
            "--format",
            format,
            "--timeout",
            &timeout,
            "--lock",
            lock.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.hactl(&args, true)
    }

    /// The JSON report and the exit code.
    #[track_caller]
    fn audit_json(&self) -> (i32, Value) {
        let out = self.audit("json", &[]);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("json: {e}: {}{}", stdout(&out), stderr(&out)));
        assert!(
            !stdout(&out).contains("labpass") && !stderr(&out).contains("labpass"),
            "the VRRP password leaked"
        );
        (out.status.code().unwrap_or(-1), report)
    }

    /// Polls the audit until `ready` holds; panics with the last report.
    #[track_caller]
    fn audit_until(&self, what: &str, ready: impl Fn(i32, &Value) -> bool) -> (i32, Value) {
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            let (code, report) = self.audit_json();
            if ready(code, &report) {
                return (code, report);
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still exit {code}: {report:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn host_root(&self, host: &str) -> PathBuf {
        self.dir
            .join("labs")
            .join(self.lab.name().as_str())
            .join("hosts")
            .join(host)
            .join("root")
    }

    /// Runs a shell script inside a lab host.
    #[track_caller]
    fn sh(&self, host: &str, script: &str) -> String {
        let out = self
            .lab
            .command(host, &["sh", "-c", script])
            .unwrap()
            .output()
            .unwrap();
        assert!(out.status.success(), "{host}: {script}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    fn start_agent(&mut self, host: &str) {
        let pid = self.sh(
            host,
            &format!(
                "setsid {AGENT} run -f /etc/hactl/keepalived.conf --socket /run/hactl/agent.sock \
                 --state-dir /var/lib/hactl >/var/lib/hactl/agent.log 2>&1 </dev/null & echo $!"
            ),
        );
        self.agents
            .push((host.to_string(), pid.parse().expect("agent pid")));
    }

    /// Stock keepalived, VRRP only, its pid files in the host's /run/hactl.
    fn start_keepalived(&mut self, host: &str) {
        let pid = self.sh(
            host,
            "setsid keepalived -n -l -P -f /etc/keepalived/keepalived.conf \
             -p /run/hactl/keepalived.pid -r /run/hactl/keepalived-vrrp.pid \
             >/var/lib/hactl/keepalived.log 2>&1 </dev/null & echo $!",
        );
        self.agents
            .push((host.to_string(), pid.parse().expect("keepalived pid")));
    }

    /// Ends the daemon this test started on `host` with `signal`, waits.
    fn kill_agent(&mut self, host: &str) {
        self.stop_daemon(host, libc_sigkill());
    }

    fn stop_daemon(&mut self, host: &str, signal: i32) {
        let index = self
            .agents
            .iter()
            .position(|(h, _)| h == host)
            .expect("an agent of ours");
        let (_, pid) = self.agents.remove(index);
        // The PID is the host's own (each lab host has its PID namespace):
        // signal and watch it from inside the host.
        self.sh(host, &format!("kill -{signal} {pid} || true"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.runs(host, pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!self.runs(host, pid), "{host}: agent {pid} still runs");
    }

    /// Whether the host's PID names a live (not zombie) process there.
    fn runs(&self, host: &str, pid: u32) -> bool {
        let state = self.sh(
            host,
            &format!("sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1"),
        );
        !state.is_empty() && !matches!(state.as_str(), "Z" | "X")
    }

    fn vip(&self, last: u8) -> String {
        format!("10.213.{}.{last}", self.subnet)
    }

    /// Ground truth: the hosts with `address` on an interface.
    fn holders(&self, address: &str) -> BTreeSet<String> {
        let address: IpAddr = address.parse().unwrap();
        ["lb01", "lb02", "lb03", "lb04"]
            .iter()
            .filter(|h| {
                let json: Value = serde_json::from_str(&self.sh(h, "ip -j addr show")).unwrap();
                json.as_array().into_iter().flatten().any(|link| {
                    link["addr_info"].as_array().into_iter().flatten().any(|a| {
                        a["local"].as_str().and_then(|l| l.parse::<IpAddr>().ok()) == Some(address)
                    })
                })
            })
            .map(|h| h.to_string())
            .collect()
    }

    fn config_path(&self, host: &str) -> PathBuf {
        self.host_root(host).join("etc/hactl/keepalived.conf")
    }
}

impl Drop for AuditLab {
    fn drop(&mut self) {
        for (host, pid) in std::mem::take(&mut self.agents) {
            if let Ok(mut command) = self.lab.command(&host, &["kill", &pid.to_string()]) {
                let _ = command.output();
            }
        }
        let _ = self.hactl(&["lab", "down"], true);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn libc_sigkill() -> i32 {
    9
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The findings of `kind` as (pair, instance, hosts).
fn findings(report: &Value, kind: &str) -> Vec<(String, String, BTreeSet<String>)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["kind"] == kind)
        .map(|f| {
            (
                f["pair"].as_str().unwrap_or_default().to_string(),
                f["instance"].as_str().unwrap_or_default().to_string(),
                f["hosts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect(),
            )
        })
        .collect()
}

fn kinds(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["kind"].as_str().map(str::to_string))
        .collect()
}

fn instance_status(report: &Value, instance: &str) -> String {
    report["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["instance"] == instance)
        .and_then(|i| i["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn set(hosts: &[&str]) -> BTreeSet<String> {
    hosts.iter().map(|h| h.to_string()).collect()
}

/// Partition, agent down and an unreachable host, each from a healthy
/// pair and back.
#[test]
fn split_brain_agent_down_and_unreachable_hosts() {
    let mut lab = AuditLab::up();
    let (code, _) = lab.audit_until("healthy after start", |code, _| code == 0);
    assert_eq!(code, 0);
    let www = lab.vip(100);
    assert_eq!(lab.holders(&www), set(&["lb01"]));

    // Partition: lb02 stops hearing VRRP, becomes master of www too.
    lab.sh(
        "lb02",
        "nft add table inet hactl_audit_t && \
         nft add chain inet hactl_audit_t input '{ type filter hook input priority 0 ; }' && \
         nft add rule inet hactl_audit_t input ip protocol vrrp drop",
    );
    let (code, report) = lab.audit_until("split-brain seen", |code, report| {
        code == 2 && !findings(report, "split_brain").is_empty()
    });
    assert_eq!(code, 2);
    let truth = lab.holders(&www);
    assert_eq!(truth, set(&["lb01", "lb02"]), "both hold the VIP");
    let split = findings(&report, "split_brain");
    assert_eq!(split.len(), 1, "{report:#}");
    assert_eq!(split[0].0, "web_lb");
    assert_eq!(split[0].1, "www");
    assert_eq!(split[0].2, truth, "the finding names the hosts holding it");
    let nagios = lab.audit("nagios", &[]);
    assert_eq!(nagios.status.code(), Some(2));
    let line = stdout(&nagios);
    assert!(
        line.starts_with("HACTL AUDIT CRITICAL - 1 split-brain") && line.contains(" | "),
        "{line}"
    );

    // Heal: back to one holder and exit 0.
    lab.sh("lb02", "nft delete table inet hactl_audit_t");
    lab.audit_until("healed", |code, _| code == 0);
    assert_eq!(lab.holders(&www), set(&["lb01"]));

    // The api backup's agent dies: WARNING, the VIP still served.
    lab.kill_agent("lb04");
    let (_, report) = lab.audit_until("agent down", |code, _| code == 1);
    assert_eq!(
        findings(&report, "agent_down"),
        [("api_lb".to_string(), "api".to_string(), set(&["lb04"]))]
    );
    assert_eq!(lab.holders(&lab.vip(110)), set(&["lb03"]));
    lab.start_agent("lb04");
    lab.audit_until("agent back", |code, _| code == 0);

    // lb03 refuses SSH: api is UNKNOWN, web_lb still judged.
    lab.sh(
        "lb03",
        "nft add table inet hactl_audit_s && \
         nft add chain inet hactl_audit_s input '{ type filter hook input priority 0 ; }' && \
         nft add rule inet hactl_audit_s input tcp dport 22 reject with tcp reset",
    );
    let (code, report) = lab.audit_json();
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(
        findings(&report, "unreachable"),
        [("api_lb".to_string(), "api".to_string(), set(&["lb03"]))]
    );
    assert_eq!(instance_status(&report, "api"), "UNKNOWN");
    assert_eq!(instance_status(&report, "www"), "OK");
    assert_eq!(instance_status(&report, "blog"), "OK");
    lab.sh("lb03", "nft delete table inet hactl_audit_s");

    // lb04 swallows SSH: the deadline bounds the run, lb04 is UNKNOWN.
    lab.sh(
        "lb04",
        "nft add table inet hactl_audit_s && \
         nft add chain inet hactl_audit_s input '{ type filter hook input priority 0 ; }' && \
         nft add rule inet hactl_audit_s input tcp dport 22 drop",
    );
    let started = Instant::now();
    let out = lab.audit_within(3, "nagios", &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("HACTL AUDIT UNKNOWN - 1 unreachable"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("UNKNOWN unreachable api_lb/api [lb04]")),
        "{text}"
    );
    lab.sh("lb04", "nft delete table inet hactl_audit_s");
}

/// Drift, stale VIPs, a collision, the report formats and the lock.
#[test]
fn drift_stale_collision_formats_and_lock() {
    let lab = AuditLab::up();
    lab.audit_until("healthy after start", |code, _| code == 0);

    // Formats: the textfile written atomically, nothing on stdout.
    let prom = lab.dir.join("textfile").join("hactl.prom");
    fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let out = lab.audit("prometheus", &["--output", prom.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(&out));
    let text = fs::read_to_string(&prom).unwrap();
    for line in [
        "hactl_audit_instance_holders{pair=\"web_lb\",instance=\"www\"} 1",
        "hactl_audit_instance_masters{pair=\"api_lb\",instance=\"api\"} 1",
        "hactl_audit_instance_agents_up{pair=\"web_lb\",instance=\"blog\"} 2",
        "hactl_audit_findings{kind=\"split_brain\"} 0",
        "hactl_audit_status 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    let leftovers: Vec<_> = fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    let nagios = lab.audit("nagios", &[]);
    let first = stdout(&nagios);
    assert!(
        first.starts_with("HACTL AUDIT OK - 3 instances on 4 hosts") && first.contains(" | "),
        "{first}"
    );
    let table = lab.audit("table", &[]);
    assert!(
        stdout(&table).contains("lb01")
            && stdout(&table)
                .ends_with("OK: 3 instances on 4 hosts: one VIP holder and one master each\n")
    );

    // --limit audits the pairs of the selected hosts, each as a whole.
    let limited = lab.audit("json", &["--limit", "lb03"]);
    let report: Value = serde_json::from_slice(&limited.stdout).unwrap();
    let names: Vec<&str> = report["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["instance"].as_str())
        .collect();
    assert_eq!(names, ["api"]);
    assert_eq!(
        report["instances"][0]["hosts"],
        serde_json::json!(["lb03", "lb04"])
    );

    // Drift: lb02's config says advert_int 2 for its instances.
    let path = lab.config_path("lb02");
    let original = fs::read_to_string(&path).unwrap();
    fs::write(&path, original.replace("advert_int 1\n", "advert_int 2\n")).unwrap();
    let (code, report) = lab.audit_json();
    assert_eq!(code, 1, "{report:#}");
    let drift = findings(&report, "drift");
    assert_eq!(drift.len(), 2, "www and blog: {report:#}");
    assert!(
        drift
            .iter()
            .all(|d| d.0 == "web_lb" && d.2 == set(&["lb01", "lb02"]))
    );
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("advert_int differs")),
        "{report:#}"
    );
    fs::write(&path, &original).unwrap();
    assert_eq!(lab.audit_json().0, 0);

    // Stale: www's VIP on lb04 (api_lb) is WARNING; on lb02 (www's own
    // backup) it is a second holder: CRITICAL split-brain.
    let www = lab.vip(100);
    lab.sh("lb04", &format!("ip addr add {www}/24 dev eth0"));
    let (code, report) = lab.audit_json();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        findings(&report, "stale_vip"),
        [("api_lb".to_string(), String::new(), set(&["lb04"]))]
    );
    lab.sh("lb02", &format!("ip addr add {www}/24 dev eth0"));
    let (code, report) = lab.audit_json();
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(lab.holders(&www), set(&["lb01", "lb02", "lb04"]));
    assert_eq!(
        findings(&report, "split_brain")[0].2,
        set(&["lb01", "lb02"])
    );
    lab.sh("lb02", &format!("ip addr del {www}/24 dev eth0"));
    lab.sh("lb04", &format!("ip addr del {www}/24 dev eth0"));
    assert_eq!(lab.audit_json().0, 0);

    // Collision: api_lb's configs take www's VRID and web_lb's group.
    let web = fs::read_to_string(lab.config_path("lb01")).unwrap();
    let field = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap()
    };
    let (www_vrid, web_group) = (
        field(&web, "virtual_router_id "),
        field(&web, "vrrp_mcast_group4 "),
    );
    for host in ["lb03", "lb04"] {
        let path = lab.config_path(host);
        let text = fs::read_to_string(&path).unwrap();
        let vrid = field(&text, "virtual_router_id ");
        let group = field(&text, "vrrp_mcast_group4 ");
        fs::write(
            &path,
            text.replace(
                &format!("virtual_router_id {vrid}\n"),
                &format!("virtual_router_id {www_vrid}\n"),
            )
            .replace(&group, &web_group),
        )
        .unwrap();
    }
    let (code, report) = lab.audit_json();
    assert_eq!(code, 1, "{report:#}");
    // The edited files are not reloaded: the agents' VRID drifts from them.
    assert_eq!(kinds(&report), set(&["collision", "drift"]), "{report:#}");
    let detail = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["kind"] == "collision")
        .and_then(|f| f["detail"].as_str())
        .unwrap_or_default();
    assert!(
        detail.contains(&format!("VRID {www_vrid}")) && detail.contains(&web_group),
        "{detail}"
    );

    // Lock: a run while another holds the lock is UNKNOWN at once.
    let lock = lab.dir.join("audit.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let started = Instant::now();
    let out = lab.audit("nagios", &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(5), "it waited");
    assert!(
        stdout(&out).starts_with("HACTL AUDIT UNKNOWN - another hactl audit holds the lock"),
        "{}",
        stdout(&out)
    );
    drop(file);
    assert_eq!(lab.audit("nagios", &[]).status.code(), Some(1));
}

/// Stock keepalived: holders from the interfaces, the daemon's process
/// from its pid file (it has no status to ask for masters).
#[test]
fn keepalived_pairs_are_judged_by_their_interfaces() {
    let mut lab = AuditLab::with_backend("keepalived");
    let (_, report) = lab.audit_until("healthy after start", |code, _| code == 0);
    let www = report["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["instance"] == "www")
        .cloned()
        .unwrap_or_default();
    assert_eq!(www["holders"], serde_json::json!(["lb01"]));
    assert_eq!(www["agents_up"], serde_json::json!(["lb01", "lb02"]));
    assert_eq!(lab.holders(&lab.vip(100)), set(&["lb01"]));

    // keepalived on the api backup stops: WARNING, the VIP still served.
    lab.stop_daemon("lb04", 15);
    let (code, report) = lab.audit_json();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        findings(&report, "agent_down"),
        [("api_lb".to_string(), "api".to_string(), set(&["lb04"]))]
    );
    assert_eq!(lab.holders(&lab.vip(110)), set(&["lb03"]));
}
