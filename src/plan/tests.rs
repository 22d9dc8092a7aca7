//! Table-driven tests of plan resolution: roles and priorities, allocation,
//! and one case per validation error class.

use std::path::Path;

use super::*;
use crate::inventory::{Inventory, yaml};

fn load(text: &str) -> Inventory {
    let node = yaml::load_str(text, Path::new("t.yml")).unwrap();
    Inventory::from_node(Path::new("t.yml"), &node).unwrap()
}

fn plan(text: &str) -> Result<ClusterPlan, PlanErrors> {
    resolve(&load(text), &|k| {
        (k == "VRRP_PASS").then(|| "envpass".to_string())
    })
}

/// A pair `web` with hosts lb01/lb02 on 10.0.0.0/24 and the given extra
/// lines under the pair's `vars:` (indented by 10).
fn web(extra: &str) -> String {
    format!(
        "all:\n  children:\n    hactl_pairs:\n      children:\n        web:\n          vars:\n            hactl_interface: eth0\n{extra}          hosts:\n            lb01: {{ansible_host: 10.0.0.51}}\n            lb02: {{ansible_host: 10.0.0.52}}\n"
    )
}

const WWW: &str = "            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb02}\n";

#[test]
fn roles_and_default_priorities() {
    let p = plan(&web(WWW)).unwrap();
    let inst = &p.pairs[0].instances[0];
    let got: Vec<(String, State, u8)> = inst
        .roles
        .iter()
        .map(|r| (r.host.clone(), r.state, r.priority))
        .collect();
    assert_eq!(
        got,
        vec![
            ("lb02".into(), State::Master, 150),
            ("lb01".into(), State::Backup, 100)
        ]
    );
    assert!((1..=255).contains(&inst.vrid));
    assert!(allocate::mcast_pool().contains(&p.pairs[0].mcast_group));
    assert_eq!(p.pairs[0].segment, "10.0.0.0/24@eth0");
}

#[test]
fn explicit_values_are_respected() {
    let extra = "            hactl_mcast_group: 224.0.0.200\n            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01, vrid: 42, priority: {lb01: 200, lb02: 10}}\n";
    let p = plan(&web(extra)).unwrap();
    let inst = &p.pairs[0].instances[0];
    assert_eq!(inst.vrid, 42);
    assert_eq!(p.pairs[0].mcast_group, Ipv4Addr::new(224, 0, 0, 200));
    let prios: Vec<u8> = inst.roles.iter().map(|r| r.priority).collect();
    assert_eq!(prios, vec![200, 10]);
}

#[test]
fn allocation_is_deterministic_and_unique_per_segment() {
    let two = concat!(
        "all:\n  vars: {hactl_interface: eth0}\n  children:\n    hactl_pairs:\n      children:\n",
        "        b:\n          vars:\n            hactl_instances:\n",
        "              - {name: x, vips: [10.0.0.60/24], master: lb03}\n",
        "              - {name: y, vips: [10.0.0.61/24], master: lb04}\n",
        "          hosts: {lb03: {ansible_host: 10.0.0.13}, lb04: {ansible_host: 10.0.0.14}}\n",
        "        a:\n          vars:\n            hactl_instances:\n",
        "              - {name: x, vips: [10.0.0.50/24], master: lb01}\n",
        "          hosts: {lb01: {ansible_host: 10.0.0.11}, lb02: {ansible_host: 10.0.0.12}}\n",
    );
    let p1 = plan(two).unwrap();
    let p2 = plan(two).unwrap();
    let vrids = |p: &ClusterPlan| -> Vec<u8> {
        p.pairs
            .iter()
            .flat_map(|x| x.instances.iter().map(|i| i.vrid))
            .collect()
    };
    let groups =
        |p: &ClusterPlan| -> Vec<Ipv4Addr> { p.pairs.iter().map(|x| x.mcast_group).collect() };
    assert_eq!(vrids(&p1), vrids(&p2));
    assert_eq!(groups(&p1), groups(&p2));
    let mut v = vrids(&p1);
    v.sort();
    v.dedup();
    assert_eq!(v.len(), 3, "VRIDs unique on the segment");
    assert_ne!(p1.pairs[0].mcast_group, p1.pairs[1].mcast_group);
    // The same instance name in two pairs gets independent numbers.
    assert_eq!(p1.pairs[0].segment, p1.pairs[1].segment);
}

/// Two pairs on 10.0.0.0/24; placeholders VRID_A/VRID_B (instance keys)
/// and GROUP_A/GROUP_B (pair variables) are replaced by each case.
const TWO_PAIRS: &str = concat!(
    "all:\n  vars: {hactl_interface: eth0}\n  children:\n    hactl_pairs:\n      children:\n",
    "        a:\n          vars:\n            GROUP_A\n            hactl_instances:\n",
    "              - {name: x, vips: [10.0.0.50/24], master: lb01, VRID_A}\n",
    "          hosts: {lb01: {ansible_host: 10.0.0.11}, lb02: {ansible_host: 10.0.0.12}}\n",
    "        b:\n          vars:\n            GROUP_B\n            hactl_instances:\n",
    "              - {name: y, vips: [10.0.0.60/24], master: lb03, VRID_B}\n",
    "          hosts: {lb03: {ansible_host: 10.0.0.13}, lb04: {ansible_host: 10.0.0.14}}\n",
);

/// Fill the placeholders a case left alone with neutral values.
fn two(text: String) -> String {
    text.replace("VRID_A", "preempt: true")
        .replace("VRID_B", "preempt: true")
        .replace("GROUP_A", "# -")
        .replace("GROUP_B", "# -")
}

#[test]
fn each_error_class_names_line_and_key() {
    let pair = |body: &str| web(body);
    let cases: Vec<(String, &str, usize, &str)> = vec![
        (pair("            hactl_intrface: eth1\n"), "hactl_intrface", 8, "did you mean `hactl_interface`"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.9.0.50/24], master: lb01}\n"), "hactl_instances", 9, "outside the subnet 10.0.0.0/24"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.0.0.51/24], master: lb01}\n"), "hactl_instances", 9, "is the address of host `lb01`"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01, priority: {lb02: 255}}\n"), "hactl_instances", 9, "must be from 1 to 254"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01, priority: {lb02: 180}}\n"), "hactl_instances", 9, "must be below 150"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb09}\n"), "hactl_instances", 9, "not a host of the pair"),
        (pair("            hactl_auth_pass: longerthan8\n            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01}\n"), "hactl_auth_pass", 8, "at most 8"),
        (pair("            hactl_vrrp_version: 3\n            hactl_auth_pass: short\n            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01}\n"), "hactl_auth_pass", 9, "VRRPv3 has no authentication"),
        (pair("            hactl_instances:\n              - {name: a, vips: [10.0.0.50/24], master: lb01, vrid: 7}\n              - {name: b, vips: [10.0.0.60/24], master: lb01, vrid: 7}\n"), "hactl_instances", 10, "VRID 7"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01, track: [nginx]}\n"), "hactl_instances", 9, "not in hactl_checks"),
        (pair("            hactl_instances:\n              - {name: www, vips: [10.0.0.50/24], master: lb01, vipz: []}\n"), "hactl_instances", 9, "did you mean `vips`"),
        ("all:\n  children:\n    hactl_pairs:\n      children:\n        web:\n          vars:\n            hactl_interface: eth0\n            hactl_instances:\n              - {name: www, vips: [10.0.0.200/24], master: lb01}\n          hosts:\n            lb01: {ansible_host: 192.168.1.1, hactl_address: 10.0.0.51/25}\n            lb02: {ansible_host: 192.168.1.2, hactl_address: 10.0.0.52/25}\n".to_string(), "hactl_instances", 9, "outside the subnet 10.0.0.0/25"),
        (two(TWO_PAIRS.replace("VRID_A", "vrid: 9").replace("VRID_B", "vrid: 9")), "hactl_instances", 16, "VRID 9 of `b/y` is already used by `a/x`"),
        (two(TWO_PAIRS.replace("GROUP_A", "hactl_mcast_group: 224.0.0.160").replace("GROUP_B", "hactl_mcast_group: 224.0.0.160")), "hactl_mcast_group", 14, "already used by pair `a`"),
        (two(TWO_PAIRS.replace("10.0.0.13", "10.0.1.13")), "hactl_address", 12, "different subnets"),
        (two(TWO_PAIRS.replace("10.0.0.60/24", "10.0.0.50/24")), "hactl_instances", 16, "VIP 10.0.0.50 of `b/y` is already used by `a/x` (t.yml:10)"),
        ("all:\n  children:\n    hactl_pairs:\n      hosts:\n        stray:\n".to_string(), "hactl_pairs", 5, "sits directly in `hactl_pairs`"),
        ("all:\n  children:\n    hactl_pairs:\n      children:\n        solo:\n          hosts: {lb01: }\n".to_string(), "solo", 5, "a pair needs 2 or more"),
    ];
    for (text, key, line, needle) in cases {
        let errs = plan(&text).expect_err(&text).0;
        let hit = errs
            .iter()
            .find(|e| e.key == key && e.message.contains(needle));
        let Some(e) = hit else {
            panic!("no `{key}` error containing `{needle}` in {errs:?}\n{text}");
        };
        assert_eq!(e.origin.as_ref().map(|o| o.line), Some(line), "{e}\n{text}");
        assert!(
            e.to_string().starts_with(&format!("t.yml:{line}: {key}: ")),
            "{e}"
        );
    }
}

#[test]
fn auth_pass_sources_and_redaction() {
    let cases = [
        ("            hactl_auth_pass: s3cret\n", "s3cret"),
        ("            hactl_auth_pass: {env: VRRP_PASS}\n", "envpass"),
    ];
    for (line, want) in cases {
        let p = plan(&web(&format!("{line}{WWW}"))).unwrap();
        let s = p.pairs[0].auth_pass.as_ref().unwrap();
        assert_eq!(s.expose(), want);
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains(want), "{json}");
        assert!(!format!("{p:?}").contains(want));
    }
}

#[test]
fn centiseconds_format() {
    let cases = [
        (100, "1"),
        (50, "0.5"),
        (125, "1.25"),
        (10, "0.1"),
        (300, "3"),
    ];
    for (c, want) in cases {
        assert_eq!(format_centis(c), want);
    }
}

/// Issue 11: `hactl_virtual_servers`, read and checked with file and line.
#[test]
fn virtual_servers_are_read_and_checked() {
    let good = format!(
        "{WWW}            hactl_virtual_servers:\n              - {{address: 10.0.0.50, port: 80, lb_algo: rr, lb_kind: NAT, sorry_server: \"10.0.0.99:8080\", real_servers: [{{address: 10.0.0.11, weight: 3, check: {{type: HTTP_GET, path: /, digest: 9B3A0C85A887A256D6939DA88AABD8CD}}}}]}}\n              - {{fwmark: 7, lb_algo: wlc, lb_kind: DR, real_servers: [{{address: 10.0.0.12}}]}}\n"
    );
    let p = plan(&web(&good)).unwrap();
    let vs = &p.pairs[0].virtual_servers;
    assert_eq!(vs[0].target, "10.0.0.50 80");
    assert_eq!(vs[0].sorry_server.as_deref(), Some("10.0.0.99 8080"));
    assert!(vs[0].is_nat());
    let check = vs[0].real_servers[0].check.as_ref().unwrap();
    assert_eq!(check.kind, "HTTP_GET");
    assert_eq!(
        check.digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert_eq!(vs[1].target, "fwmark 7");

    let cases: &[(&str, &str)] = &[
        (
            "              - {address: 10.0.0.50, port: 80, lb_algo: rrr, lb_kind: NAT, real_servers: [{address: 10.0.0.11}]}\n",
            "lb_algo must be one of rr, wrr",
        ),
        (
            "              - {address: 10.0.0.50, port: 80, lb_algo: rr, lb_kind: NAT, real_server: [{address: 10.0.0.11}]}\n",
            "unknown key `real_server` (did you mean `real_servers`?)",
        ),
        (
            "              - {address: 10.0.0.50, port: 80, lb_algo: rr, real_servers: [{address: 10.0.0.11}]}\n",
            "virtual server 10.0.0.50 80 needs lb_kind",
        ),
        (
            "              - {address: 10.0.0.50, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.11}]}\n",
            "has `address` and `port`, or `fwmark`",
        ),
        (
            "              - {address: 10.0.0.50, port: 80, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.11, check: {type: HTTP_GET}}]}\n",
            "HTTP_GET needs a path",
        ),
        (
            "              - {address: 10.0.0.50, port: 80, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.11, check: {type: TCP_CHECK, retries: 2}}]}\n",
            "unknown key `retries` (did you mean `retry`?)",
        ),
        (
            // The implicit port is the virtual server's: the same real server.
            "              - {address: 10.0.0.50, port: 80, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.11}, {address: 10.0.0.11, port: 80}]}\n",
            "virtual server 10.0.0.50 80: real server 10.0.0.11 80 is already listed at t.yml:11",
        ),
        (
            // A firewall mark's real servers are rendered without a port.
            "              - {fwmark: 7, lb_algo: rr, lb_kind: DR, real_servers: [{address: 10.0.0.11, port: 80}, {address: 10.0.0.11, port: 81}]}\n",
            "virtual server fwmark 7: real server 10.0.0.11 is already listed at t.yml:11",
        ),
    ];
    for (line, want) in cases {
        let text = web(&format!("{WWW}            hactl_virtual_servers:\n{line}"));
        let errors = plan(&text).expect_err(want).0;
        let hit = errors
            .iter()
            .find(|e| e.key == "hactl_virtual_servers" && e.message.contains(want));
        let hit = hit.unwrap_or_else(|| panic!("{want:?} not in {errors:?}"));
        // The pair's vars: the virtual server is on line 11 of t.yml.
        assert_eq!(hit.origin.as_ref().map(|o| o.line), Some(11), "{hit}");
    }

    // One service twice is refused at the second; UDP beside TCP is another.
    let dns = |second: &str| {
        web(&format!(
            "{WWW}            hactl_virtual_servers:\n              - {{address: 10.0.0.53, port: 53, protocol: UDP, lb_algo: rr, lb_kind: DR, real_servers: [{{address: 10.0.0.11}}]}}\n              - {{address: 10.0.0.53, port: 53, protocol: {second}, lb_algo: rr, lb_kind: DR, real_servers: [{{address: 10.0.0.12}}]}}\n"
        ))
    };
    let errors = plan(&dns("UDP")).expect_err("a duplicate service").0;
    let hit = errors
        .iter()
        .find(|e| {
            e.message
                .contains("virtual server 10.0.0.53 53 UDP is already defined at t.yml:11")
        })
        .unwrap_or_else(|| panic!("no duplicate error in {errors:?}"));
    assert_eq!(hit.origin.as_ref().map(|o| o.line), Some(12), "{hit}");
    let both = plan(&dns("TCP")).unwrap();
    assert_eq!(both.pairs[0].virtual_servers.len(), 2);
}

// ===== issue 14: hostile values =====

/// The inventory of the hostile-value tests: every string field is a
/// placeholder, written as a YAML double-quoted scalar (JSON's escapes).
const HOSTILE: &str = "all:
  children:
    hactl_pairs:
      children:
        @PAIR@:
          vars:
            hactl_interface: @IFACE@
            hactl_script_user: @SUSER@
            hactl_auth_pass: @PASS@
            hactl_segment: @SEGMENT@
            hactl_checks:
              @CHECK@: {script: @SCRIPT@, user: @CUSER@}
            hactl_instances:
              - {name: @INST@, vips: [10.0.0.50/24], master: @HOST@, track: [@CHECK@]}
          hosts:
            @HOST@: {ansible_host: @AHOST@, ansible_user: @AUSER@, ansible_ssh_common_args: @ARGS@}
            lb02: {ansible_host: 10.0.0.52}
";

const FIELDS: &[(&str, &str)] = &[
    ("PAIR", "web"),
    ("IFACE", "eth0"),
    ("SUSER", "nobody"),
    ("PASS", "s3cret"),
    ("SEGMENT", "lan1"),
    ("CHECK", "chk"),
    ("SCRIPT", "/bin/true"),
    ("CUSER", "nobody"),
    ("INST", "www"),
    ("HOST", "lb01"),
    ("AHOST", "10.0.0.51"),
    ("AUSER", "root"),
    ("ARGS", "-o StrictHostKeyChecking=yes"),
];

/// keepalived.conf syntax and shell syntax, as values.
const HOSTILE_VALUES: &[&str] = &[
    "}",
    "x }\nvrrp_script evil {\n script \"/bin/sh -c id\"\n user root\n}",
    "include /etc/passwd",
    "include",
    "\"quoted\"",
    "a\"b",
    "a\nb",
    "a\rb",
    "$(reboot)",
    "a;reboot",
    "`id`",
    "a b",
    "a#b",
    "a!b",
    "{",
    "-oProxyCommand=touch /tmp/x",
    "a\\b",
    "",
];

fn hostile_inventory(field: &str, value: &str) -> String {
    let mut text = HOSTILE.to_string();
    for (name, default) in FIELDS {
        let v = if *name == field { value } else { default };
        text = text.replace(&format!("@{name}@"), &serde_json::to_string(v).unwrap());
    }
    text
}

/// Issue 14: every string of the inventory that reaches the rendered
/// keepalived.conf or a remote command, given keepalived.conf syntax
/// (`}`, `include`, quotes, newlines) or shell syntax. A name is refused
/// at plan time with file:line and its key, never rendered; a value that
/// may hold such characters as data (a check's command line, a password, an
/// address ssh gets as one argument) renders to a file that parses to
/// exactly the plan, so the characters stayed data.
#[test]
fn hostile_values_are_refused_with_file_and_line_or_stay_data() {
    // Fields that are names: every hostile value is refused.
    let names = ["PAIR", "IFACE", "SUSER", "CHECK", "CUSER", "INST", "HOST"];
    let mut refused = 0;
    for (field, _) in FIELDS {
        for value in HOSTILE_VALUES {
            let text = hostile_inventory(field, value);
            match plan(&text) {
                Err(errors) => {
                    refused += 1;
                    for e in &errors.0 {
                        let line = e.origin.as_ref().map_or(0, |o| o.line);
                        assert!(
                            line > 0 && e.to_string().starts_with("t.yml:"),
                            "{field}={value:?}: no file:line in {e}"
                        );
                        if *field == "PASS" {
                            assert!(value.len() < 3 || !e.to_string().contains(value), "{e}");
                        }
                    }
                }
                Ok(p) => {
                    assert!(
                        !names.contains(field),
                        "{field}={value:?} was accepted as a name"
                    );
                    for host in ["lb01", "lb02"] {
                        let host = if *field == "HOST" { value } else { host };
                        crate::render::render_host(&p, host, None, crate::render::Secrets::Reveal)
                            .unwrap_or_else(|e| {
                                panic!("{field}={value:?}: {}", crate::error_chain(&e))
                            });
                    }
                }
            }
        }
    }
    assert!(refused > names.len() * HOSTILE_VALUES.len(), "{refused}");
    // What must be refused in the data fields too: what would end or
    // change a line of the file, or make an ssh argument an option.
    let must_refuse: &[(&str, &[&str])] = &[
        (
            "PASS",
            &["}", "a\"b", "a\nb", "a#b", "a!b", "{", "a b", "a\\b", ""],
        ),
        ("SCRIPT", &["\"quoted\"", "a\nb", "a\rb", "a\\b", ""]),
        ("SEGMENT", &["a\nb", "a\rb"]),
        ("AHOST", &["a\nb", "a b", "-oProxyCommand=touch /tmp/x", ""]),
        ("AUSER", &["a\nb", "a b", "-oProxyCommand=touch /tmp/x"]),
        ("ARGS", &["a\nb", "a\rb"]),
    ];
    for (field, values) in must_refuse {
        for value in *values {
            assert!(
                plan(&hostile_inventory(field, value)).is_err(),
                "{field}={value:?} was accepted"
            );
        }
    }
}

/// Issue 14: the pair named with an embedded `vrrp_script evil { ... user
/// root }` is refused, with the line of the group.
#[test]
fn a_pair_name_with_an_embedded_vrrp_script_is_refused() {
    let evil = "web }\nvrrp_script evil {\n script \"/bin/sh -c id\"\n user root\n}\n#";
    let errors = plan(&hostile_inventory("PAIR", evil)).unwrap_err().0;
    let e = errors
        .iter()
        .find(|e| e.key == PAIRS_GROUP && e.message.contains("pair (group) name"))
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert_eq!(e.origin.as_ref().map(|o| o.line), Some(5), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// Issue 14: `content:` scripts are written as root: only directly in the
/// checks directory.
#[test]
fn content_scripts_stay_in_the_checks_directory() {
    for script in [
        "/usr/bin/sudo",
        "/etc/hactl/checks/../../../usr/bin/sudo",
        "/etc/hactl/checks/sub/x.sh",
        "/etc/hactl/checks/x.sh --arg",
        "/etc/hactl/checksx/x.sh",
        "relative.sh",
    ] {
        let extra = format!(
            "            hactl_checks:\n              c: {{script: {}, content: \"#!/bin/sh\\nexit 0\\n\"}}\n{WWW}",
            serde_json::to_string(script).unwrap()
        );
        let errors = plan(&web(&extra)).expect_err(script).0;
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("/etc/hactl/checks/")
                    && e.origin.as_ref().map(|o| o.line) == Some(9)),
            "{script}: {errors:?}"
        );
    }
    let extra = format!(
        "            hactl_checks:\n              c: {{script: /etc/hactl/checks/c.sh, content: \"exit 0\"}}\n{WWW}"
    );
    assert!(plan(&web(&extra)).is_ok());
}

/// Issue 14: YAML changes some passwords as it reads them (`0644` is 420
/// in YAML 1.1, `yes` is true, ` #` starts a comment): refused with the
/// line, the value never quoted.
#[test]
fn passwords_yaml_would_change_are_refused() {
    for (value, want) in [
        ("0644", "as an integer"),
        ("3.14", "as a float"),
        ("yes", "as a boolean"),
        ("12345", "as an integer"),
    ] {
        let errors = plan(&web(&format!(
            "            hactl_auth_pass: {value}\n{WWW}"
        )))
        .expect_err(value)
        .0;
        let e = errors
            .iter()
            .find(|e| e.key == "hactl_auth_pass")
            .unwrap_or_else(|| panic!("{value}: {errors:?}"));
        assert!(e.message.contains(want), "{e}");
        assert_eq!(e.origin.as_ref().map(|o| o.line), Some(8), "{e}");
    }
    // Quoted, the same values are kept as written.
    let p = plan(&web(&format!(
        "            hactl_auth_pass: \"0644\"\n{WWW}"
    )))
    .unwrap();
    assert_eq!(p.pairs[0].auth_pass.as_ref().unwrap().expose(), "0644");
    // `ab #cdefg`: the YAML comment is seen on the file's line.
    let dir = std::env::temp_dir().join(format!("hactl-plan-14-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("inv.yml");
    let mut found = Vec::new();
    for written in ["ab #cdefg", "pass #word", "\"pass\" # a comment"] {
        std::fs::write(
            &path,
            web(&format!("            hactl_auth_pass: {written}\n{WWW}")),
        )
        .unwrap();
        let inv = Inventory::load(&path).unwrap();
        found.push(resolve(&inv, &|_| None).map(|_| ()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        found[1].is_err(),
        "a password that is part of the key's name"
    );
    assert!(
        found[2].is_ok(),
        "a quoted password before a comment is whole"
    );
    let errors = found.remove(0).unwrap_err().0;
    let e = errors
        .iter()
        .find(|e| e.key == "hactl_auth_pass")
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert!(
        e.message.contains("YAML comment") && !e.to_string().contains("cdefg"),
        "{e}"
    );
    assert!(e.to_string().contains("inv.yml:8"), "{e}");
}

/// A pair `web` whose `hosts:` are the given lines (indented by 12).
fn web_hosts(lines: &str) -> String {
    format!(
        "all:\n  children:\n    hactl_pairs:\n      children:\n        web:\n          hosts:\n{lines}"
    )
}

/// The errors whose message passes `keep`.
fn errors_where(errors: &[PlanError], keep: impl Fn(&str) -> bool) -> Vec<&PlanError> {
    errors.iter().filter(|e| keep(&e.message)).collect()
}

#[test]
fn thousands_of_bad_host_names_make_ten_errors_and_a_count() {
    let errors = plan(&web_hosts("            lb[0000:1999]+x:\n"))
        .unwrap_err()
        .0;
    let named = errors_where(&errors, |m| m.starts_with("host \"lb"));
    assert_eq!(named.len(), 10, "{errors:?}");
    assert!(
        named
            .iter()
            .all(|e| e.origin.as_ref().is_some_and(|o| o.line == 7))
    );
    let rest = errors_where(&errors, |m| m.contains("1990 more host(s)"));
    assert_eq!(rest.len(), 1, "{errors:?}");
    assert_eq!(rest[0].origin.as_ref().map(|o| o.line), Some(5));
}

#[test]
fn did_you_mean_skips_candidates_too_far_in_length() {
    assert_eq!(
        parse::did_you_mean("hactl_intrface", KNOWN_VARS),
        " (did you mean `hactl_interface`?)"
    );
    // A long mistyped value is no candidate's typo (and is not compared
    // letter by letter with each).
    assert_eq!(parse::did_you_mean(&"x".repeat(5000), KNOWN_VARS), "");
    assert_eq!(
        parse::did_you_mean("ab", &["abcdefgh", "abc"]),
        " (did you mean `abc`?)"
    );
}

#[test]
fn an_unknown_variable_on_a_range_of_hosts_is_one_error() {
    let hosts = "            lb[0000:4999]:\n              hactl_intrface: eth0\n";
    let errors = plan(&web_hosts(hosts)).unwrap_err().0;
    let unknown = errors_where(&errors, |m| m.starts_with("unknown hactl variable"));
    assert_eq!(unknown.len(), 1, "{errors:?}");
    assert_eq!(unknown[0].key, "hactl_intrface");
    assert!(
        unknown[0]
            .message
            .contains("did you mean `hactl_interface`")
    );
    assert_eq!(unknown[0].origin.as_ref().map(|o| o.line), Some(8));
}
