//! `hactl failover-test` against a real lab (issue 7), as root. The test
//! copies inventories/lab.yaml onto its own subnet (10.213.225.0/24, which
//! no other test uses) and lab name, switches it to VRRPv3 with 0.2 s
//! adverts so drills take about a second each (Skew_Time of priority 100 is
//! 120 ms, Master_Down_Interval 720 ms), keeps the lab state in a
//! temporary `HACTL_LAB_DIR`, and a guard runs `hactl lab down` even when
//! the test panics.
//!
//! One lab for the whole binary (one deploy is most of the run time): the
//! test walks through the scenarios, the refusal of a non-lab inventory
//! and an unhealthy pair in turn. The VIP's place is read from the hosts'
//! interfaces (`ip addr` through `hactl lab exec`), not from the drill's
//! word.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");
const SUBNET: &str = "10.213.225";

struct TestLab {
    dir: PathBuf,
    inventory: PathBuf,
}

impl TestLab {
    #[track_caller]
    fn up() -> TestLab {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("drill-tests-{pid}"));
        fs::create_dir_all(&dir).unwrap();
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/lab.yaml"))
            .unwrap()
            .replace("10.213.0.", &format!("{SUBNET}."))
            // VRRPv3 has no authentication.
            .replace("            hactl_auth_pass: labpass\n", "")
            .replace(
                "    hactl_interface: eth0\n",
                "    hactl_interface: eth0\n    hactl_vrrp_version: 3\n    hactl_advert_int: 0.2\n",
            );
        assert!(
            text.contains("hactl_advert_int: 0.2"),
            "lab.yaml changed shape"
        );
        let inventory = dir.join(format!("dr{pid:x}.yaml"));
        fs::write(&inventory, text).unwrap();
        let lab = TestLab { dir, inventory };
        let out = lab.hactl(&["lab", "up"], &[]);
        assert!(out.status.success(), "lab up: {}", text_of(&out.stderr));
        lab
    }

    fn hactl(&self, args: &[&str], extra: &[&str]) -> Output {
        self.hactl_on(&self.inventory, args, extra)
    }

    fn hactl_on(&self, inventory: &std::path::Path, args: &[&str], extra: &[&str]) -> Output {
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

    #[track_caller]
    fn exec(&self, host: &str, script: &str) -> String {
        let out = Command::new(HACTL)
            .args([
                "-i",
                self.inventory.to_str().unwrap(),
                "lab",
                "exec",
                host,
                "--",
            ])
            .args(["sh", "-c", script])
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

    /// The hosts whose eth0 holds `vip`.
    fn holders(&self, vip: &str) -> Vec<String> {
        ["lb01", "lb02", "lb03", "lb04"]
            .into_iter()
            .filter(|h| {
                let json: Value =
                    serde_json::from_str(&self.exec(h, "ip -j -4 addr show dev eth0")).unwrap();
                json.as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|i| i["addr_info"].as_array().cloned().unwrap_or_default())
                    .any(|a| a["local"] == vip)
            })
            .map(str::to_string)
            .collect()
    }

    fn agent_pid(&self, host: &str) -> String {
        self.exec(host, "cat /run/hactl/agent.pid")
            .trim()
            .to_string()
    }

    /// `failover-test --json` with `extra`: exit code and the drills.
    #[track_caller]
    fn drills(&self, extra: &[&str]) -> (Option<i32>, Vec<Value>) {
        let out = self.hactl(&["failover-test", "--json"], extra);
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("failover-test --json: {e}: {}", text_of(&out.stderr)));
        let drills = json.as_array().cloned().expect("a JSON array");
        (out.status.code(), drills)
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.hactl(&["lab", "down"], &[]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ms(drill: &Value, key: &str) -> u64 {
    drill[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {drill}"))
}

#[test]
fn drills_on_a_lab_restore_each_pair_and_refuse_what_they_must() {
    assert!(
        nix_is_root(),
        "the drill tests build network namespaces: run them as root"
    );
    let lab = TestLab::up();
    let out = lab.hactl(&["deploy"], &[]);
    assert!(out.status.success(), "deploy: {}", text_of(&out.stderr));
    let api = format!("{SUBNET}.110");
    let www = format!("{SUBNET}.100");
    assert_eq!(lab.holders(&api), ["lb03"]);

    // Every scenario on the active/standby pair.
    let (code, drills) = lab.drills(&[
        "--pair",
        "api_lb",
        "--scenario",
        "graceful,kill,link,drain,partition",
    ]);
    let scenarios: Vec<&str> = drills
        .iter()
        .filter_map(|d| d["scenario"].as_str())
        .collect();
    assert_eq!(
        scenarios,
        ["graceful", "kill", "link", "drain", "partition"]
    );
    for d in &drills {
        assert_eq!(d["ok"], true, "{d}");
        assert_eq!(
            (d["pair"].as_str(), d["instance"].as_str()),
            (Some("api_lb"), Some("api"))
        );
        assert_eq!(d["master_before"], "lb03", "{d}");
        assert_eq!(d["master_after"], "lb03", "preempt brings lb03 back: {d}");
        assert_eq!(d["restored"], true, "{d}");
    }
    assert_eq!(code, Some(0));
    assert_eq!(
        lab.holders(&api),
        ["lb03"],
        "the VIP on exactly one host after the drills"
    );
    for d in drills.iter().filter(|d| d["scenario"] != "partition") {
        assert_eq!(d["master_during"], "lb04", "{d}");
    }
    // Skew_Time for graceful, Master_Down_Interval for kill and link, from
    // the plan (priority 100, 0.2 s): the drill's bound must be the RFC's.
    let bounds = [
        ("graceful", 120),
        ("kill", 720),
        ("link", 720),
        ("drain", 120),
    ];
    for (scenario, bound) in bounds {
        let d = drills.iter().find(|d| d["scenario"] == scenario).unwrap();
        assert_eq!(ms(d, "bound_ms"), bound, "{d}");
        if scenario != "drain" {
            let takeover = ms(d, "takeover_ms");
            assert!(takeover <= bound + ms(d, "margin_ms"), "{d}");
        }
    }
    let drain = drills.iter().find(|d| d["scenario"] == "drain").unwrap();
    assert!(ms(drain, "probes_lost") <= 1, "drain: {drain}");
    assert!(ms(drain, "probes_sent") > 0, "the prober ran: {drain}");
    let partition = drills
        .iter()
        .find(|d| d["scenario"] == "partition")
        .unwrap();
    assert_eq!(partition["split_brain_seen"], true, "{partition}");
    assert_eq!(partition["master_during"], "lb03+lb04", "{partition}");
    // The audit's judgement agreed with the interfaces while it lasted.
    assert_eq!(
        partition["audit_split_brain"],
        serde_json::json!(["lb03", "lb04"]),
        "{partition}"
    );

    // A failing track_script moves www off lb01; recovery moves it back.
    let (code, drills) = lab.drills(&[
        "--pair",
        "web_lb",
        "--instance",
        "www",
        "--scenario",
        "check",
    ]);
    assert_eq!(code, Some(0), "{drills:?}");
    assert_eq!(drills[0]["master_during"], "lb02", "{drills:?}");
    assert_eq!(lab.holders(&www), ["lb01"]);
    lab.exec("lb01", "test ! -e /run/hactl/fail-check_web");

    // An inventory not marked as a lab: refused before anything is
    // touched (the same hosts, under a name no lab was built for).
    let pids: Vec<String> = ["lb03", "lb04"].iter().map(|h| lab.agent_pid(h)).collect();
    let other = lab.dir.join("production.yaml");
    fs::copy(&lab.inventory, &other).unwrap();
    let out = lab.hactl_on(
        &other,
        &["failover-test", "--pair", "api_lb"],
        &["--scenario", "kill"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text_of(&out.stderr));
    assert!(
        text_of(&out.stderr).contains("--yes"),
        "{}",
        text_of(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let again: Vec<String> = ["lb03", "lb04"].iter().map(|h| lab.agent_pid(h)).collect();
    assert_eq!(pids, again, "no agent was touched");
    assert_eq!(lab.holders(&api), ["lb03"]);

    // A scenario that does not apply is reported, not run.
    let (code, drills) = lab.drills(&["--pair", "api_lb", "--scenario", "check"]);
    assert_eq!(code, Some(1), "nothing ran: {drills:?}");
    assert_eq!(drills[0]["verdict"], "n/a", "{drills:?}");

    // An unknown scenario is bad input.
    let out = lab.hactl(&["failover-test"], &["--scenario", "reboot"]);
    assert_eq!(out.status.code(), Some(2));

    // An unhealthy pair (its backup's agent stopped) is left alone.
    lab.exec("lb04", "kill -TERM $(cat /run/hactl/agent.pid)");
    let (code, drills) = lab.drills(&["--pair", "api_lb", "--scenario", "graceful"]);
    assert_eq!(code, Some(1));
    assert_eq!(drills[0]["verdict"], "skipped", "{drills:?}");
    assert_eq!(drills[0]["ok"], false);
    assert!(
        drills[0]["reason"].as_str().unwrap_or("").contains("lb04"),
        "{drills:?}"
    );
    assert_eq!(lab.agent_pid("lb03"), pids[0], "the master was not touched");
    assert_eq!(lab.holders(&api), ["lb03"]);
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
