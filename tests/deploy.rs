//! `hactl preflight`, `deploy` and `status` against a real lab (issue 6),
//! as root. Each test copies inventories/lab.yaml, moves it to its own
//! subnet (10.214.N.0/24: the lab and ssh tests use 10.213.x) and lab
//! name, keeps the lab state in a temporary `HACTL_LAB_DIR`, and a guard
//! runs `hactl lab down` even when the test panics.

use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::Value;

mod support;

use support::{HACTL, Pinger, TestLab, text_of};

static NEXT_LAB: AtomicU8 = AtomicU8::new(0);

/// Labs per run of this binary; each gets one subnet.
const LABS_PER_RUN: u8 = 8;

/// A lab of this binary: subnet 10.214.N.0/24, N from the PID and a
/// counter, so parallel runs do not collide.
#[track_caller]
fn lab_up(edit: impl FnOnce(String, &str) -> String) -> TestLab {
    let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
    assert!(n < LABS_PER_RUN, "out of test subnets");
    let pid = std::process::id();
    let third = u8::try_from(pid % 30).unwrap() * LABS_PER_RUN + n;
    TestLab::up(&format!("d{pid:x}x{n}"), &format!("10.214.{third}"), edit)
}

/// `deploy --json` with `extra`: success, the report, stderr.
#[track_caller]
fn deploy_json(lab: &TestLab, extra: &[&str]) -> (bool, Value, String) {
    let out = lab.hactl(&["deploy", "--json"], extra);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("deploy --json: {e}: {}", text_of(&out.stderr)));
    (out.status.success(), json, text_of(&out.stderr))
}

fn host<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

/// Masters hold their VIPs, backups none.
#[track_caller]
fn assert_vips_as_planned(lab: &TestLab) {
    let placement = [
        ("lb01", vec![100]),
        ("lb02", vec![101]),
        ("lb03", vec![110, 111]),
        ("lb04", vec![]),
    ];
    for (h, vips) in placement {
        let held = lab.addresses(h);
        for last in [100, 101, 110, 111] {
            let vip = lab.vip(last);
            assert_eq!(
                held.contains(&vip),
                vips.contains(&last),
                "{h} holds {held:?}; {vip}"
            );
        }
    }
}

#[test]
fn deploy_places_vips_then_changes_nothing_then_reloads_one_pair() {
    // The client sits outside the pairs: it pings a VIP during a deploy.
    let lab = lab_up(|t, subnet| {
        t + &format!("  hosts:\n    client:\n      ansible_host: {subnet}.50\n")
    });
    let (ok, report, stderr) = deploy_json(&lab, &[]);
    assert!(ok, "{report} {stderr}");
    for h in ["lb01", "lb02", "lb03", "lb04"] {
        assert_eq!(host(&report, h)["changed"], true, "{report}");
    }
    assert_vips_as_planned(&lab);
    let pids: Vec<String> = ["lb01", "lb02", "lb03", "lb04"]
        .iter()
        .map(|h| lab.agent_pid(h))
        .collect();

    // Second run: nothing changes, nothing restarts.
    let (ok, report, stderr) = deploy_json(&lab, &[]);
    assert!(ok, "{stderr}");
    for h in ["lb01", "lb02", "lb03", "lb04"] {
        assert_eq!(host(&report, h)["changed"], false, "{report}");
    }
    let again: Vec<String> = ["lb01", "lb02", "lb03", "lb04"]
        .iter()
        .map(|h| lab.agent_pid(h))
        .collect();
    assert_eq!(pids, again);

    // The priorities of api change: --check --diff shows it, redacted,
    // and changes nothing.
    let text = fs::read_to_string(&lab.inventory).unwrap().replace(
        "                master: lb03\n",
        "                master: lb03\n                priority: {lb03: 200, lb04: 90}\n",
    );
    fs::write(&lab.inventory, text).unwrap();
    let out = lab.hactl(&["deploy", "--check", "--diff"], &[]);
    let shown = text_of(&out.stdout);
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    assert!(
        shown.contains("-    priority 100\n+    priority 90\n"),
        "{shown}"
    );
    assert!(shown.contains("+    priority 200\n"), "{shown}");
    assert!(shown.contains("reload hactl-agent (SIGHUP)"), "{shown}");
    assert!(!shown.contains("labpass"), "{shown}");
    assert!(
        !lab.exec("lb04", "cat /etc/hactl/keepalived.conf")
            .contains("priority 90")
    );

    // Deployed while a client pings the VIP every 10 ms: only api_lb's
    // hosts are touched, by reload, and at most one advert interval (1 s,
    // 100 pings) of replies goes missing.
    let pinger = Pinger::start(&lab, "client", &lab.vip(110));
    let (ok, report, stderr) = deploy_json(&lab, &[]);
    let (sent, received, worst) = pinger.finish();
    assert!(ok, "{stderr}");
    assert!(sent > 200 && received > 0, "{sent} {received}");
    assert!(
        worst <= 100,
        "lost {worst} pings in a row ({received}/{sent} answered)"
    );
    assert_eq!(host(&report, "lb01")["changed"], false, "{report}");
    assert_eq!(host(&report, "lb02")["changed"], false, "{report}");
    for h in ["lb03", "lb04"] {
        let line = host(&report, h);
        assert_eq!(line["changed"], true, "{report}");
        assert!(
            line["plan"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("reload")),
            "{line}"
        );
    }
    let after: Vec<String> = ["lb01", "lb02", "lb03", "lb04"]
        .iter()
        .map(|h| lab.agent_pid(h))
        .collect();
    assert_eq!(pids, after, "a reload keeps the agents");
    assert_vips_as_planned(&lab);

    // `hactl status` agrees, from the interfaces.
    let out = lab.hactl(&["status", "--json"], &[]);
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let api = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == "api")
        .unwrap();
    assert_eq!(api["masters"], serde_json::json!(["lb03"]));
    assert_eq!(
        api["vip_holders"][format!("{}/24", lab.vip(110))],
        serde_json::json!(["lb03"])
    );
    let lb04 = api["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "lb04")
        .unwrap();
    assert_eq!(lb04["priority"], 90);
    assert_eq!(lb04["agent_up"], true);
    let lb03 = api["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "lb03")
        .unwrap();
    assert_eq!(lb03["priority"], 200);
}

#[test]
fn a_rejected_config_changes_nothing_an_unhealthy_host_is_rolled_back_an_unreachable_host_fails_alone()
 {
    let lab = lab_up(|t, _| t);
    let (ok, _, stderr) = deploy_json(&lab, &[]);
    assert!(ok, "{stderr}");
    let pids: Vec<String> = ["lb01", "lb02", "lb03", "lb04"]
        .iter()
        .map(|h| lab.agent_pid(h))
        .collect();
    let broken = lab.dir.join("broken");
    fs::create_dir_all(&broken).unwrap();
    let template = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/keepalived.conf.j2"
    ))
    .unwrap();
    fs::write(
        broken.join("keepalived.conf.j2"),
        format!("{template}\nnot_a_keepalived_keyword 1\n"),
    )
    .unwrap();
    let out = lab.hactl(&["--templates", broken.to_str().unwrap(), "deploy"], &[]);
    let stderr = text_of(&out.stderr);
    assert!(!out.status.success());
    // The controller parses every rendered file before anything is
    // uploaded (issue 14): no host is touched.
    for h in ["lb01", "lb02", "lb03", "lb04"] {
        assert!(
            stderr.contains(&format!(
                "{h}: cannot render its files: host `{h}`: the rendered keepalived.conf does not match the plan"
            )),
            "{stderr}"
        );
    }
    assert!(stderr.contains("not_a_keepalived_keyword"), "{stderr}");
    assert_vips_as_planned(&lab);
    let after: Vec<String> = ["lb01", "lb02", "lb03", "lb04"]
        .iter()
        .map(|h| lab.agent_pid(h))
        .collect();
    assert_eq!(pids, after);
    let config = lab.exec("lb02", "cat /etc/hactl/keepalived.conf");
    assert!(!config.contains("not_a_keepalived_keyword"));

    // A config the agent accepts: lb02 (first) takes it and stays healthy,
    // lb01 (the master, last) would lose `www` with it. lb01 is rolled
    // back, and so is lb02: the pair is left as it was.
    let demoting = lab.dir.join("demoting");
    fs::create_dir_all(&demoting).unwrap();
    // (The plan's priorities are checked before upload, so lb01 loses `www`
    // by starting as a BACKUP that never preempts.)
    assert!(template.contains("    state {{ inst.state }}\n"));
    fs::write(
        demoting.join("keepalived.conf.j2"),
        template.replace(
            "    state {{ inst.state }}\n",
            "    state {{ \"BACKUP\" if host.name == \"lb01\" else inst.state }}\n\
             {% if host.name == \"lb01\" %}    nopreempt\n{% endif %}",
        ) + "# a harmless change\n",
    )
    .unwrap();
    let before: Vec<String> = ["lb01", "lb02"]
        .iter()
        .map(|h| lab.exec(h, "cat /etc/hactl/keepalived.conf"))
        .collect();
    let out = lab.hactl(
        &[
            "--templates",
            demoting.to_str().unwrap(),
            "--limit",
            "web_lb",
            "deploy",
            "--json",
        ],
        &[],
    );
    let stderr = text_of(&out.stderr);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        stderr.contains("lb01: not healthy after the change (instance www is BACKUP"),
        "{stderr}"
    );
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert_eq!(host(&report, "lb02")["rolled_back"], true, "{report}");
    assert!(
        host(&report, "lb02")["error"]
            .as_str()
            .unwrap()
            .contains("rolled back: lb01 of this pair failed"),
        "{report}"
    );
    let after: Vec<String> = ["lb01", "lb02"]
        .iter()
        .map(|h| lab.exec(h, "cat /etc/hactl/keepalived.conf"))
        .collect();
    assert_eq!(before, after);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !lab.addresses("lb01").contains(&lab.vip(100)) {
        assert!(
            std::time::Instant::now() < deadline,
            "lb01 did not take www back"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_vips_as_planned(&lab);

    // One host unreachable: the same inventory (so the same lab) plus lb05
    // in api_lb at an address with nothing behind it.
    let other = lab.dir.join("other");
    fs::create_dir_all(&other).unwrap();
    let with_lb05 = other.join(lab.inventory.file_name().unwrap());
    let text = fs::read_to_string(&lab.inventory).unwrap().replace(
        "            lb04:\n",
        &format!(
            "            lb05:\n              ansible_host: {}\n            lb04:\n",
            lab.vip(77)
        ),
    );
    fs::write(&with_lb05, text).unwrap();
    let out = Command::new(HACTL)
        .args(["deploy", "--json", with_lb05.to_str().unwrap()])
        .env("HACTL_LAB_DIR", lab.dir.join("labs"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = text_of(&out.stderr);
    assert_eq!(host(&report, "lb05")["ok"], false, "{report}");
    assert!(
        stderr.contains("lb05: preflight failed: ssh login"),
        "{stderr}"
    );
    for h in ["lb01", "lb02", "lb03", "lb04"] {
        assert_eq!(host(&report, h)["ok"], true, "{report}");
    }
    assert_vips_as_planned(&lab);
}

#[test]
fn host_keys_are_strict_unless_trust_on_first_use_is_asked_and_a_changed_key_is_refused() {
    let lab = lab_up(|t, _| t);
    let name = lab
        .inventory
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let known_hosts = lab.dir.join("labs").join(&name).join("known_hosts");
    let original = fs::read_to_string(&known_hosts).unwrap();
    let lb04 = lab.vip(14);
    let is_lb04 = |line: &str| {
        line.split_whitespace()
            .next()
            .is_some_and(|h| h == lb04 || h.starts_with(&format!("[{lb04}]")))
    };
    assert!(original.lines().any(is_lb04), "{original}");
    let without: String = original
        .lines()
        .filter(|l| !is_lb04(l))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&known_hosts, &without).unwrap();
    let out = lab.hactl(&["status"], &[]);
    let stderr = text_of(&out.stdout) + &text_of(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("lb04: host key is not in"), "{stderr}");
    let out = lab.hactl(&["status", "--accept-new-host-keys"], &[]);
    assert!(out.status.success(), "{}", text_of(&out.stdout));
    // ssh may hash the new entry: count lines instead of reading them.
    assert!(
        fs::read_to_string(&known_hosts).unwrap().lines().count() > without.lines().count(),
        "lb04's key was recorded"
    );

    // A different key recorded for lb04: refused, with the flag too.
    let key_dir = lab.dir.join("otherkey");
    fs::create_dir_all(&key_dir).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(key_dir.join("k"))
        .status()
        .unwrap();
    assert!(status.success());
    let public = fs::read_to_string(key_dir.join("k.pub")).unwrap();
    let mut words = public.split_whitespace();
    let (kind, key) = (words.next().unwrap(), words.next().unwrap());
    let changed: String = original
        .lines()
        .map(|l| {
            if is_lb04(l) {
                let host = l.split_whitespace().next().unwrap();
                format!("{host} {kind} {key}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(&known_hosts, changed).unwrap();
    for flags in [&[][..], &["--accept-new-host-keys"][..]] {
        let out = lab.hactl(&["status"], flags);
        let text = text_of(&out.stdout) + &text_of(&out.stderr);
        assert!(!out.status.success(), "{flags:?}");
        assert!(text.contains("lb04: HOST KEY CHANGED"), "{flags:?}: {text}");
    }
}

#[test]
fn the_keepalived_backend_deploys_and_fails_over() {
    // Both pairs: web_lb's tracked check runs as script_user nobody, which
    // makes keepalived's own config test end by SIGTERM (see
    // hactl_agent::config::keepalived_test); deploy must still accept it.
    let lab = lab_up(|t, _| t.replace("hactl_backend: agent", "hactl_backend: keepalived"));
    let (ok, report, stderr) = deploy_json(&lab, &[]);
    assert!(ok, "{report} {stderr}");
    assert_vips_as_planned(&lab);
    let conf = lab.exec("lb03", "cat /etc/keepalived/keepalived.conf");
    assert!(conf.contains("vrrp_instance api"), "{conf}");
    let pid = lab
        .exec("lb03", "cat /run/hactl/keepalived.pid")
        .trim()
        .to_string();
    assert!(
        lab.exec("lb03", &format!("cat /proc/{pid}/comm"))
            .starts_with("keepalived"),
        "the pid file names keepalived"
    );

    // The master's keepalived stops: lb04 takes the VIPs.
    lab.exec("lb03", &format!("kill -TERM {pid}"));
    let vips = [lab.vip(110), lab.vip(111)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !vips.iter().all(|v| lab.addresses("lb04").contains(v)) {
        assert!(
            std::time::Instant::now() < deadline,
            "lb04 did not take over"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(vips.iter().all(|v| !lab.addresses("lb03").contains(v)));
    // keepalived is gone (it exits a moment after its VIPs leave).
    let gone = format!(
        "case $(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1) in ''|Z|X) echo gone ;; *) echo running ;; esac"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lab.exec("lb03", &gone).trim() != "gone" {
        assert!(
            std::time::Instant::now() < deadline,
            "keepalived {pid} did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A deploy starts it again and the VIPs go home.
    let (ok, report, stderr) = deploy_json(&lab, &[]);
    assert!(ok, "{report} {stderr}");
    let lb03 = host(&report, "lb03");
    assert!(
        lb03["plan"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "start keepalived"),
        "{lb03}"
    );
    assert_vips_as_planned(&lab);
}

/// The failed checks of a preflight run, as (host, check).
#[track_caller]
fn preflight_failures(lab: &TestLab) -> (Vec<(String, String)>, Value) {
    let out = lab.hactl(&["preflight", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fails: Vec<(String, String)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .map(|c| {
            (
                c["host"].as_str().unwrap().to_string(),
                c["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        out.status.success(),
        fails.is_empty(),
        "preflight exit code and failures disagree: {report}"
    );
    (fails, report)
}

/// Each preflight fault in its own lab (issue 6): the healthy lab passes,
/// the fault fails exactly the check it should, on the host it is on.
#[track_caller]
fn assert_only_failure(lab: &TestLab, host: &str, check: &str) -> Value {
    let (fails, report) = preflight_failures(lab);
    assert_eq!(fails, [(host.to_string(), check.to_string())], "{report}");
    report
}

#[test]
fn preflight_catches_a_wrong_hostname_and_deploy_skips_that_host() {
    let lab = lab_up(|t, _| t);
    let (fails, report) = preflight_failures(&lab);
    assert!(fails.is_empty(), "a fresh lab passes preflight: {report}");
    lab.exec("lb02", "hostname other");
    assert_only_failure(&lab, "lb02", "hostname");
    // Deploy refuses the host that fails preflight and says which.
    let (ok, report, _) = deploy_json(&lab, &[]);
    assert!(!ok);
    assert_eq!(host(&report, "lb02")["ok"], false);
    assert!(
        host(&report, "lb02")["error"]
            .as_str()
            .unwrap()
            .contains("hostname"),
        "{report}"
    );
}

#[test]
fn preflight_catches_ip_nonlocal_bind_off() {
    let lab = lab_up(|t, _| {
        t.replace(
            "            lb01:\n",
            "            lb01:\n              hactl_nonlocal_bind: true\n",
        )
    });
    assert_only_failure(&lab, "lb01", "net.ipv4.ip_nonlocal_bind");
}

#[test]
fn preflight_catches_vrrp_dropped_by_nftables_and_names_the_rule() {
    let lab = lab_up(|t, _| t);
    lab.exec(
        "lb04",
        "nft add table inet hx && nft add chain inet hx input '{ type filter hook input priority 0; }' && nft add rule inet hx input ip protocol vrrp drop",
    );
    let report = assert_only_failure(&lab, "lb04", "vrrp from lb03");
    let vrrp = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["host"] == "lb04" && c["check"] == "vrrp from lb03")
        .unwrap();
    assert!(
        vrrp["detail"]
            .as_str()
            .unwrap()
            .contains("ip protocol vrrp drop"),
        "{vrrp}"
    );
    assert!(vrrp["fix"].as_str().is_some());
}

#[test]
fn preflight_catches_a_vip_already_in_use_on_the_segment() {
    // The client sits outside the pairs: a neighbour on the segment.
    let lab = lab_up(|t, subnet| {
        t + &format!("  hosts:\n    client:\n      ansible_host: {subnet}.50\n")
    });
    lab.exec(
        "client",
        &format!("ip addr add {}/24 dev eth0", lab.vip(110)),
    );
    assert_only_failure(&lab, "lb03", &format!("vip {} free", lab.vip(110)));
}
