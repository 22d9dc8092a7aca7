//! hactl at fleet size (issue 10), as root against a real lab: 20 pairs
//! (40 hosts) deploy under `--forks 20` with every host ok and no false
//! preflight failure, pairs side by side and each still rolled backups
//! first; a client pinging a VIP through a rolling restart of every pair
//! loses at most one advert interval; a host whose VRRP really is dropped
//! is still caught and the rule named; a probe that cannot run says so
//! instead of blaming a firewall.

use std::fs;

use serde_json::Value;

mod support;

use support::{Pinger, TestLab, text_of};

/// The lab subnets of this binary: 10.215.N.0/24.
fn subnet(n: u32) -> String {
    format!("10.215.{}", (std::process::id() % 60) * 4 + n)
}

/// An inventory of `pairs` pairs on one /24, one instance and one tracked
/// check each, and a client outside the pairs.
fn inventory(pairs: u32, net: &str) -> String {
    let mut t = String::from(
        "all:\n  vars:\n    ansible_user: root\n    hactl_interface: eth0\n  children:\n    hactl_pairs:\n      children:\n",
    );
    for p in 0..pairs {
        t += &format!(
            "        pair{p:02}:\n          vars:\n            hactl_checks:\n              chk:\n                script: /etc/hactl/checks/chk.sh\n                content: \"#!/bin/sh\\nexit 0\\n\"\n                interval: 2\n                weight: -30\n                fall: 2\n                rise: 1\n            hactl_instances:\n              - {{name: vip, vips: [{net}.{vip}/24], master: p{p:02}a, track: [chk]}}\n          hosts:\n            p{p:02}a: {{ansible_host: {net}.{a}}}\n            p{p:02}b: {{ansible_host: {net}.{b}}}\n",
            vip = 150 + p,
            a = 10 + 2 * p,
            b = 11 + 2 * p,
        );
    }
    t += &format!("  hosts:\n    client:\n      ansible_host: {net}.250\n");
    t
}

/// `hactl --forks 20 VERB --json INVENTORY`: exit code and report.
#[track_caller]
fn run_json(lab: &TestLab, verb: &str, extra: &[&str]) -> (i32, Value, String) {
    let out = lab.hactl(&["--forks", "20", verb, "--json"], extra);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{verb} --json: {e}: {}", text_of(&out.stderr)));
    (out.status.code().unwrap_or(-1), json, text_of(&out.stderr))
}

fn rows<'a>(report: &'a Value, key: &str) -> &'a [Value] {
    report[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Each pair's backup finished before its master started, and some pairs
/// were worked on at the same time.
#[track_caller]
fn assert_rolled_by_pair(report: &Value, pairs: u32) {
    let hosts = rows(report, "hosts");
    let at = |name: &str, key: &str| {
        hosts
            .iter()
            .find(|h| h["host"] == name)
            .and_then(|h| h[key].as_f64())
            .unwrap_or_else(|| panic!("{name} {key} not in the report"))
    };
    for p in 0..pairs {
        let (a, b) = (format!("p{p:02}a"), format!("p{p:02}b"));
        assert!(
            at(&b, "finished") <= at(&a, "started"),
            "pair{p:02}: the master {a} started before the backup {b} was done"
        );
    }
    let overlapping = (1..pairs).any(|p| {
        let earlier = format!("p{:02}a", p - 1);
        let later = format!("p{p:02}b");
        at(&later, "started") < at(&earlier, "finished")
    });
    assert!(overlapping, "pairs were deployed one after the other");
}

/// Regression test for issue 10: 20 pairs under `--forks 20`.
#[test]
fn twenty_pairs_deploy_side_by_side_and_preflight_tells_the_truth() {
    const PAIRS: u32 = 20;
    let net = subnet(0);
    let lab = TestLab::of(
        &format!("f{:x}", std::process::id()),
        &net,
        &inventory(PAIRS, &net),
    );

    let (code, report, stderr) = run_json(&lab, "deploy", &[]);
    let failed: Vec<&Value> = rows(&report, "hosts")
        .iter()
        .filter(|h| h["ok"] != true)
        .collect();
    assert!(failed.is_empty(), "{failed:?} {stderr}");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows(&report, "hosts").len(), 2 * PAIRS as usize);
    let preflight_failures: Vec<&Value> = rows(&report["preflight"], "checks")
        .iter()
        .filter(|c| c["outcome"] != "pass")
        .filter(|c| c["check"] != "time sync")
        .collect();
    assert!(preflight_failures.is_empty(), "{preflight_failures:?}");
    assert_rolled_by_pair(&report, PAIRS);
    for p in 0..PAIRS {
        let vip = format!("{net}.{}", 150 + p);
        assert!(
            lab.exec(&format!("p{p:02}a"), "ip -4 -o addr show dev eth0")
                .contains(&vip),
            "p{p:02}a does not hold {vip}"
        );
    }

    // Nothing to change: every host says so, nothing restarts.
    let pid = lab.agent_pid("p05b");
    let (code, report, stderr) = run_json(&lab, "deploy", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        rows(&report, "hosts").iter().all(|h| h["changed"] == false),
        "{report}"
    );
    assert_eq!(lab.agent_pid("p05b"), pid);

    // A new agent binary rolls every pair (restart), pairs side by side,
    // while a client pings pair00's VIP: at most one advert interval (1 s,
    // 100 pings of 10 ms) is lost.
    let agent =
        fs::read(std::path::Path::new(support::HACTL).with_file_name("hactl-agent")).unwrap();
    let changed = lab.dir.join("hactl-agent");
    fs::write(&changed, [agent.as_slice(), b"\0hactl-fleet-test"].concat()).unwrap();
    let pinger = Pinger::start(&lab, "client", &format!("{net}.150"));
    let (code, report, stderr) =
        run_json(&lab, "deploy", &["--agent-bin", changed.to_str().unwrap()]);
    let (sent, answered, worst) = pinger.finish();
    assert_eq!(code, 0, "{report} {stderr}");
    assert!(
        rows(&report, "hosts")
            .iter()
            .all(|h| h["plan"].to_string().contains("restart hactl-agent")),
        "{report}"
    );
    assert_rolled_by_pair(&report, PAIRS);
    assert!(sent > 100 && answered > 0, "{sent} {answered}");
    assert!(
        worst <= 100,
        "lost {worst} pings in a row ({answered}/{sent} answered)"
    );

    // A host whose firewall really drops VRRP is caught, with the rule,
    // and nobody else fails.
    lab.exec(
        "p07b",
        "nft add table inet fleet && nft add chain inet fleet input '{ type filter hook input priority 0; }' && nft add rule inet fleet input ip protocol vrrp drop",
    );
    let (code, report, _) = run_json(&lab, "preflight", &[]);
    assert_eq!(code, 1);
    let failures: Vec<&Value> = rows(&report, "checks")
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["host"], "p07b");
    assert_eq!(failures[0]["check"], "vrrp from p07a");
    let detail = failures[0]["detail"].as_str().unwrap();
    assert!(detail.contains("ip protocol vrrp drop"), "{detail}");
}

/// A probe that cannot run (python3 missing on a host) is a warning that
/// says so, never a firewall verdict.
#[test]
fn a_probe_that_cannot_run_says_so() {
    let net = subnet(1);
    let lab = TestLab::of(
        &format!("g{:x}", std::process::id()),
        &net,
        &inventory(1, &net),
    );
    // Inside p00b only (its own mount namespace): python3 is gone.
    lab.exec(
        "p00b",
        "mount --bind /dev/null \"$(readlink -f /usr/bin/python3)\"",
    );
    let (code, report, stderr) = run_json(&lab, "preflight", &[]);
    let vrrp: Vec<&Value> = rows(&report, "checks")
        .iter()
        .filter(|c| {
            c["check"]
                .as_str()
                .is_some_and(|k| k.starts_with("vrrp from"))
        })
        .collect();
    assert_eq!(vrrp.len(), 2, "{report}");
    for check in &vrrp {
        assert_eq!(check["outcome"], "warn", "{check}");
        let detail = check["detail"].as_str().unwrap();
        assert!(detail.starts_with("could not run: p00b"), "{detail}");
        assert!(
            !detail.contains("import socket"),
            "the program is not printed: {detail}"
        );
        assert!(!detail.contains("firewall"), "{detail}");
    }
    assert!(
        !rows(&report, "checks")
            .iter()
            .any(|c| c["outcome"] == "fail"),
        "{report}"
    );
    assert_eq!(code, 0, "{stderr}");
}
