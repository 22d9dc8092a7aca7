//! The `hactl` binary's commands and exit codes: each class of broken
//! inventory exits 2 and names FILE:LINE and the key on stderr; the plan
//! table and JSON match golden files (HACTL_UPDATE_GOLDEN=1 regenerates);
//! `--limit`, the inventory lookup order, completions, the man page and the
//! version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small fluent runner for the binary.
struct Test {
    cmd: Command,
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Test {
    fn new() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hactl"));
        cmd.env_remove("HACTL_INVENTORY").env("NO_COLOR", "1");
        Self { cmd }
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.cmd.args(args);
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    fn cwd(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    #[track_caller]
    fn run(mut self) -> Outcome {
        let out = self.cmd.output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl Outcome {
    #[track_caller]
    fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hactl-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("HACTL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing golden {} ({e}); run with HACTL_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, want, "golden {name} differs");
}

const GOOD_PAIR: &str = "\
all:
  vars:
    hactl_interface: eth0
  children:
    hactl_pairs:
      children:
        web:
          vars:
            hactl_instances:
              - {name: www, vips: [10.0.0.50/24], master: lb01}
          hosts:
            lb01: {ansible_host: 10.0.0.11}
            lb02: {ansible_host: 10.0.0.12}
";

#[test]
fn broken_inventories_exit_2_naming_file_line_and_key() {
    let cases: &[(&str, String, usize, &str)] = &[
        ("bad_yaml", GOOD_PAIR.replace("hactl_interface: eth0", "hactl_interface: eth0: eth1"), 3, "invalid YAML"),
        ("unknown_var", GOOD_PAIR.replace("hactl_interface", "hactl_interfce"), 3, "hactl_interfce: unknown hactl variable (did you mean `hactl_interface`?)"),
        (
            "vrid_clash",
            GOOD_PAIR.replace(
                "master: lb01}",
                "master: lb01, vrid: 5}\n              - {name: blog, vips: [10.0.0.60/24], master: lb02, vrid: 5}",
            ),
            11,
            "hactl_instances: VRID 5 of `web/blog` is already used by `web/www`",
        ),
        ("vip_outside", GOOD_PAIR.replace("10.0.0.50/24", "10.1.0.50/24"), 10, "hactl_instances: instance `www`: VIP 10.1.0.50/24 is outside the subnet"),
        ("one_host_pair", GOOD_PAIR.replace("            lb02: {ansible_host: 10.0.0.12}\n", ""), 7, "web: pair `web` has 1 host(s)"),
        // Issue 14: keepalived.conf syntax through names and values.
        (
            "evil_pair_name",
            GOOD_PAIR.replace("        web:\n", "        \"web)\\nvrrp_script evil {\\n script \\\"/bin/sh -c id\\\"\\n user root\\n}\\n#\":\n"),
            7,
            "hactl_pairs: pair \"web)\\nvrrp_script evil",
        ),
        ("interface_brace", GOOD_PAIR.replace("hactl_interface: eth0", "hactl_interface: \"eth0 }\""), 3, "hactl_interface: must be an interface name"),
        ("include_check", GOOD_PAIR.replace("          vars:\n", "          vars:\n            hactl_checks: {include: {script: /bin/true}}\n"), 9, "check name \"include\""),
        ("quoted_script", GOOD_PAIR.replace("          vars:\n", "          vars:\n            hactl_checks: {c: {script: \"/bin/true\\\"\\n}\"}}\n"), 9, "script must be a command line"),
        ("content_outside", GOOD_PAIR.replace("          vars:\n", "          vars:\n            hactl_checks: {c: {script: /usr/bin/sudo, content: \"#!/bin/sh\"}}\n"), 9, "content needs an absolute script path directly in /etc/hactl/checks/"),
        ("octal_password", GOOD_PAIR.replace("          vars:\n", "          vars:\n            hactl_auth_pass: 0644\n"), 9, "YAML reads this password as an integer"),
        ("option_host", GOOD_PAIR.replace("ansible_host: 10.0.0.11", "ansible_host: \"-oProxyCommand=id\""), 12, "ansible_host: host lb01: must not be empty, start with -"),
    ];
    let dir = scratch();
    for (name, text, line, needle) in cases {
        let file = dir.join(format!("{name}.yml"));
        std::fs::write(&file, text).unwrap();
        let f = file.to_str().unwrap();
        let out = Test::new()
            .args(&["-i", f, "inventory", "--validate"])
            .run()
            .code(2);
        let want = format!("{f}:{line}: ");
        let hit = out
            .stderr
            .lines()
            .any(|l| l.contains(&want) && l.contains(needle));
        assert!(
            hit,
            "{name}: want `{want}` and `{needle}` in:\n{}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{name}: stdout: {}", out.stdout);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn all_problems_are_reported_at_once() {
    let dir = scratch();
    let text = GOOD_PAIR
        .replace("hactl_interface", "hactl_interfce")
        .replace("10.0.0.50/24", "10.1.0.50/24");
    let file = dir.join("two.yml");
    std::fs::write(&file, text).unwrap();
    let out = Test::new()
        .args(&["-i", file.to_str().unwrap(), "inventory"])
        .run()
        .code(2);
    assert!(out.stderr.contains("hactl_interfce"), "{}", out.stderr);
    assert!(out.stderr.contains("outside the subnet"), "{}", out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_plan_table_and_json_match_golden() {
    let lab = root().join("inventories/lab.yaml");
    let lab = lab.to_str().unwrap();
    let table = Test::new().args(&["-i", lab, "inventory"]).run().code(0);
    golden("lab/inventory.txt", &table.stdout);
    let json = Test::new()
        .args(&["-i", lab, "inventory", "--json"])
        .run()
        .code(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["pairs"][0]["auth_pass"], "<redacted>");
    golden("lab/inventory.json", &json.stdout);
    let valid = Test::new()
        .args(&["-i", lab, "inventory", "--validate"])
        .run()
        .code(0);
    assert_eq!(valid.stdout, "");
}

#[test]
fn limit_selects_hosts_with_ansible_patterns() {
    let lab = root().join("inventories/lab.yaml");
    let lab = lab.to_str().unwrap();
    let hosts_of = |limit: &str| -> Vec<String> {
        let out = Test::new()
            .args(&["-i", lab, "--limit", limit, "--json", "inventory"])
            .run()
            .code(0);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let mut hosts: Vec<String> = v["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                p["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["name"].as_str().unwrap().to_string())
            })
            .collect();
        hosts.sort();
        hosts
    };
    let cases: &[(&str, &[&str])] = &[
        ("lb01,lb03", &["lb01", "lb03"]),
        ("web_lb:!lb02", &["lb01"]),
        ("hactl_pairs:&lb0[!12]", &["lb03", "lb04"]),
        ("lb*", &["lb01", "lb02", "lb03", "lb04"]),
    ];
    for (limit, want) in cases {
        assert_eq!(hosts_of(limit), *want, "--limit {limit}");
    }
    let none = Test::new()
        .args(&["-i", lab, "--limit", "nosuch", "inventory"])
        .run()
        .code(2);
    assert!(
        none.stderr.contains("--limit `nosuch` matches no host"),
        "{}",
        none.stderr
    );
    let table = Test::new()
        .args(&["-i", lab, "--limit", "lb04", "inventory"])
        .run()
        .code(0);
    assert!(
        table.stdout.contains("lb04") && !table.stdout.contains("lb03"),
        "{}",
        table.stdout
    );
}

#[test]
fn inventory_comes_from_flag_env_or_ansible_cfg() {
    let dir = scratch();
    std::fs::create_dir_all(dir.join("inv")).unwrap();
    std::fs::write(dir.join("inv/a.yml"), GOOD_PAIR).unwrap();
    std::fs::write(
        dir.join("inv/b.yml"),
        GOOD_PAIR
            .replace("web:", "from_env:")
            .replace("web\n", "from_env\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("ansible.cfg"),
        "[defaults]\ninventory = inv/a.yml\n",
    )
    .unwrap();
    let pair_of = |t: Test| -> String {
        let out = t.args(&["--json", "inventory"]).run().code(0);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["pairs"][0]["name"].as_str().unwrap().to_string()
    };
    let b = dir.join("inv/b.yml");
    let b = b.to_str().unwrap();
    assert_eq!(pair_of(Test::new().cwd(&dir)), "web", "from ansible.cfg");
    assert_eq!(
        pair_of(Test::new().cwd(&dir).env("HACTL_INVENTORY", b)),
        "from_env"
    );
    let a = dir.join("inv/a.yml");
    let flag = Test::new()
        .cwd(&dir)
        .env("HACTL_INVENTORY", b)
        .args(&["-i", a.to_str().unwrap()]);
    assert_eq!(pair_of(flag), "web", "the flag wins");
    std::fs::remove_file(dir.join("ansible.cfg")).unwrap();
    let none = Test::new().cwd(&dir).args(&["inventory"]).run().code(2);
    assert!(none.stderr.contains("no inventory"), "{}", none.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn render_of_an_unknown_host_exits_2() {
    let lab = root().join("inventories/lab.yaml");
    let out = Test::new()
        .args(&["-i", lab.to_str().unwrap(), "render", "--host", "nosuch"])
        .run()
        .code(2);
    assert!(
        out.stderr
            .contains("host `nosuch` is not in any hactl pair"),
        "{}",
        out.stderr
    );
}

#[test]
fn completions_and_man_page() {
    let bash = Test::new().args(&["completions", "bash"]).run().code(0);
    for word in ["_hactl", "inventory", "render", "--limit"] {
        assert!(bash.stdout.contains(word), "bash completion lacks {word}");
    }
    let man = Test::new().args(&["man"]).run().code(0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH hactl"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(man.stdout.contains("inventory"));
}

/// The Ansible collection reads the version as JSON (issue 12).
#[test]
fn version_for_people_and_for_scripts() {
    let version = env!("CARGO_PKG_VERSION");
    let json = Test::new().args(&["version", "--json"]).run().code(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"name": "hactl", "version": version})
    );
    let text = Test::new().args(&["version"]).run().code(0);
    assert_eq!(text.stdout, format!("hactl {version}\n"));
}
