//! The Ansible collection (`ansible/`, hactl.vrrp) driven by a real
//! `ansible-playbook` (ansible-core 2.19 from `scripts/ansible-venv`)
//! against a lab of inventories/lab.yaml on 10.216.N.0/24, as root (issue
//! 12). The collection is built and installed with `ansible-galaxy`, hactl
//! is found on the PATH, and every step is one play on localhost whose
//! registered result is read back: deploy (changed, VIPs on their
//! masters), again with the password vault-encrypted in group_vars
//! (decrypted by Ansible, never shown; unchanged, agent PIDs kept), check
//! and diff mode after a priority change (changed reported, nothing
//! changed on any host, the priority line shown, no password), audit (ok),
//! audit during an nftables partition (the task fails with the split-brain
//! finding), one `failover_test` drill (ok, the VIP back on its master),
//! a missing hactl binary, and the collection's example playbook.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::{HACTL, LAB_HOSTS, TestLab, text_of};

/// The lab's VRRP password (inventories/lab.yaml).
const PASSWORD: &str = "labpass";

/// The venv, the installed collection and a home of their own.
struct Ansible {
    venv: PathBuf,
    home: PathBuf,
}

/// One play's outcome: its exit code, the task's registered result and
/// what ansible-playbook printed.
struct Play {
    code: i32,
    result: Value,
    output: String,
}

impl Ansible {
    /// The venv (made by scripts/ansible-venv if missing) and the
    /// collection built and installed under the lab's directory.
    #[track_caller]
    fn new(lab: &TestLab) -> Ansible {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/ansible-venv"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/ansible-venv: {}",
            text_of(&out.stderr)
        );
        let venv = PathBuf::from(text_of(&out.stdout).trim());
        let home = lab.dir.join("ansible");
        fs::create_dir_all(home.join("tmp")).unwrap();
        fs::write(home.join("ansible.cfg"), "").unwrap();
        let ansible = Ansible { venv, home };
        let built = ansible.home.join("built");
        ansible.galaxy(&[
            "collection",
            "build",
            root.join("ansible").to_str().unwrap(),
            "--output-path",
            built.to_str().unwrap(),
        ]);
        let tarball = built.join("hactl-vrrp-0.1.0.tar.gz");
        ansible.galaxy(&[
            "collection",
            "install",
            tarball.to_str().unwrap(),
            "-p",
            ansible.home.join("collections").to_str().unwrap(),
        ]);
        ansible
    }

    #[track_caller]
    fn galaxy(&self, args: &[&str]) {
        let out = self.command("ansible-galaxy").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ansible-galaxy {args:?}: {}{}",
            text_of(&out.stdout),
            text_of(&out.stderr)
        );
    }

    /// A venv command with no user configuration, hactl (target/debug)
    /// first on the PATH.
    fn command(&self, program: &str) -> Command {
        let hactl_dir = Path::new(HACTL).parent().unwrap();
        let path = format!(
            "{}:{}:{}",
            hactl_dir.display(),
            self.venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(self.venv.join("bin").join(program));
        cmd.current_dir(&self.home)
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("ANSIBLE_CONFIG", self.home.join("ansible.cfg"))
            .env("ANSIBLE_COLLECTIONS_PATH", self.home.join("collections"))
            .env("ANSIBLE_LOCAL_TEMP", self.home.join("tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
            .env_remove("HACTL_INVENTORY");
        cmd
    }

    /// Runs `task` (one task's YAML, its lines indented by 8) in a play on
    /// localhost with `inventory`, passing `flags` to ansible-playbook.
    #[track_caller]
    fn play(&self, lab: &TestLab, inventory: &Path, task: &str, flags: &[&str]) -> Play {
        let result_file = self.home.join("result.json");
        let _ = fs::remove_file(&result_file);
        let playbook = self.home.join("step.yml");
        fs::write(
            &playbook,
            format!(
                "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - block:\n        - name: the step\n{task}\n          register: step\n      always:\n        - name: keep the result\n          ansible.builtin.copy:\n            content: \"{{{{ step | to_json }}}}\"\n            dest: {}\n          check_mode: false\n          diff: false\n          changed_when: false\n",
                result_file.display()
            ),
        )
        .unwrap();
        let out = self
            .command("ansible-playbook")
            .arg("-i")
            .arg(inventory)
            .args(flags)
            .arg(&playbook)
            .env("HACTL_LAB_DIR", lab.dir.join("labs"))
            .output()
            .unwrap();
        let output = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
        let text = fs::read_to_string(&result_file)
            .unwrap_or_else(|e| panic!("no result ({e}): {output}"));
        Play {
            code: out.status.code().unwrap_or(-1),
            result: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
            output,
        }
    }
}

impl Play {
    #[track_caller]
    fn ok(self) -> Play {
        assert_eq!(self.code, 0, "{}\n{}", self.result, self.output);
        assert_ne!(self.result["failed"], true, "{}", self.result);
        self
    }

    #[track_caller]
    fn failed(self) -> Play {
        assert_eq!(self.code, 2, "{}\n{}", self.result, self.output);
        assert_eq!(self.result["failed"], true, "{}", self.result);
        self
    }

    /// Neither the result nor anything printed holds `secret`.
    #[track_caller]
    fn never_shows(self, secret: &str) -> Play {
        let result = self.result.to_string();
        assert!(!result.contains(secret), "{result}");
        assert!(!self.output.contains(secret), "{}", self.output);
        self
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.result[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}

/// Every lab host's agent PID and config hash.
fn host_state(lab: &TestLab) -> Vec<String> {
    LAB_HOSTS
        .iter()
        .map(|h| {
            lab.exec(
                h,
                "cat /run/hactl/agent.pid; sha256sum /etc/hactl/keepalived.conf",
            )
        })
        .collect()
}

/// Masters hold their VIPs on their interfaces, nobody else does.
#[track_caller]
fn assert_vips_on_masters(lab: &TestLab) {
    for (vip, master) in [(100, "lb01"), (101, "lb02"), (110, "lb03"), (111, "lb03")] {
        assert_eq!(lab.holders(&lab.vip(vip)), [master], "VIP .{vip}");
    }
}

/// Polls until the hosts holding `vip` are `want`.
#[track_caller]
fn wait_for_holders(lab: &TestLab, vip: &str, want: &[&str], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = lab.holders(vip);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{vip}: holders {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_collection_deploys_audits_and_drills_a_lab() {
    let name = format!("ans{:x}", std::process::id());
    // 10.216.N.0/24 is this binary's (deploy has 10.214, fleet 10.215).
    let subnet = format!("10.216.{}", std::process::id() % 250);
    let lab = TestLab::up(&name, &subnet, |text, _| text);
    let ansible = Ansible::new(&lab);
    let inventory = lab.inventory.clone();
    let original = fs::read_to_string(&inventory).unwrap();

    // A missing binary is a clear error, before anything is touched.
    let missing = ansible
        .play(
            &lab,
            &inventory,
            "          hactl.vrrp.status:\n            hactl_path: /nonexistent/hactl",
            &[],
        )
        .failed();
    assert!(
        missing.result["msg"]
            .as_str()
            .unwrap()
            .starts_with("hactl not found: hactl_path /nonexistent/hactl"),
        "{}",
        missing.result
    );

    // First deploy: every host changes, the masters hold their VIPs.
    let first = ansible
        .play(&lab, &inventory, "          hactl.vrrp.deploy:", &[])
        .ok()
        .never_shows(PASSWORD);
    assert_eq!(first.result["changed"], true);
    let mut changed = first.strings("changed_hosts");
    changed.sort();
    assert_eq!(changed, LAB_HOSTS);
    assert!(
        first.output.contains("changed: [localhost]"),
        "{}",
        first.output
    );
    assert_vips_on_masters(&lab);
    let deployed = host_state(&lab);

    // Again, through the same inventory with the password in a vaulted
    // group_vars file beside it (the same file name, so the same lab):
    // Ansible decrypts it, hactl renders the very configs deployed, so
    // nothing changes and no agent is restarted; the password is never
    // shown.
    let vaulted_dir = lab.dir.join("vaulted");
    fs::create_dir_all(vaulted_dir.join("group_vars")).unwrap();
    let vaulted = vaulted_dir.join(inventory.file_name().unwrap());
    let without = original.replace(&format!("            hactl_auth_pass: {PASSWORD}\n"), "");
    assert_ne!(without, original, "the lab inventory sets hactl_auth_pass");
    fs::write(&vaulted, without).unwrap();
    let secret_file = vaulted_dir.join("group_vars/web_lb.yml");
    fs::write(&secret_file, format!("hactl_auth_pass: {PASSWORD}\n")).unwrap();
    let vault_pass = lab.dir.join("vault-pass");
    fs::write(&vault_pass, "not-the-vrrp-password\n").unwrap();
    let out = ansible
        .command("ansible-vault")
        .args(["encrypt", "--vault-password-file"])
        .arg(&vault_pass)
        .arg(&secret_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    assert!(!fs::read_to_string(&secret_file).unwrap().contains(PASSWORD));
    let again = ansible
        .play(
            &lab,
            &vaulted,
            "          hactl.vrrp.deploy:",
            &["--vault-password-file", vault_pass.to_str().unwrap()],
        )
        .ok()
        .never_shows(PASSWORD);
    assert_eq!(again.result["changed"], false, "{}", again.result);
    assert_eq!(host_state(&lab), deployed, "agent PIDs and configs kept");
    assert!(
        lab.exec("lb01", "cat /etc/hactl/keepalived.conf")
            .contains(&format!("auth_pass {PASSWORD}")),
        "the configs compared carry the password"
    );

    // A priority change in check and diff mode: reported, shown with the
    // password redacted, and nothing changes on any host.
    fs::write(
        &inventory,
        original.replace(
            "                master: lb01\n",
            "                master: lb01\n                priority: {lb01: 200, lb02: 90}\n",
        ),
    )
    .unwrap();
    let check = ansible
        .play(
            &lab,
            &inventory,
            "          hactl.vrrp.deploy:",
            &["--check", "--diff"],
        )
        .ok()
        .never_shows(PASSWORD);
    assert_eq!(check.result["changed"], true, "{}", check.result);
    assert_eq!(check.result["check"], true);
    let mut would = check.strings("changed_hosts");
    would.sort();
    assert_eq!(would, ["lb01", "lb02"]);
    for line in ["-    priority 100", "+    priority 90", "+    priority 200"] {
        assert!(check.output.contains(line), "{line}: {}", check.output);
    }
    let diff = check.result["diff"].as_array().unwrap();
    assert_eq!(diff.len(), 2, "{diff:?}");
    assert!(diff.iter().all(|d| {
        d["after"]
            .as_str()
            .unwrap()
            .contains("auth_pass <redacted>")
    }));
    assert_eq!(host_state(&lab), deployed, "check mode changed a host");
    assert_vips_on_masters(&lab);
    fs::write(&inventory, &original).unwrap();

    // The audit of a healthy lab passes.
    let audit = ansible
        .play(&lab, &inventory, "          hactl.vrrp.audit:", &[])
        .ok();
    assert_eq!(audit.result["status"], "OK", "{}", audit.result);
    assert_eq!(audit.result["changed"], false);

    // VRRP dropped on lb02's input: both hold www's VIP, and the audit task
    // fails with the split-brain finding in its result.
    lab.exec(
        "lb02",
        "nft add table inet ansible_test && nft add chain inet ansible_test input '{ type filter hook input priority 0; }' && nft add rule inet ansible_test input ip protocol vrrp drop",
    );
    wait_for_holders(
        &lab,
        &lab.vip(100),
        &["lb01", "lb02"],
        Duration::from_secs(15),
    );
    let split = ansible
        .play(&lab, &inventory, "          hactl.vrrp.audit:", &[])
        .failed();
    lab.exec("lb02", "nft delete table inet ansible_test");
    assert_eq!(split.result["status"], "CRITICAL", "{}", split.result);
    let findings = split.result["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "split_brain"
            && f["pair"] == "web_lb"
            && f["instance"] == "www"
            && f["hosts"] == serde_json::json!(["lb01", "lb02"])),
        "{findings:?}"
    );
    assert!(
        split.result["msg"]
            .as_str()
            .unwrap()
            .contains("split_brain web_lb/www"),
        "{}",
        split.result
    );
    wait_for_holders(&lab, &lab.vip(100), &["lb01"], Duration::from_secs(15));

    // One drill: the master's daemon stopped, the backup takes over, the
    // pair is put back.
    let drill = ansible
        .play(
            &lab,
            &inventory,
            "          hactl.vrrp.failover_test:\n            pair: api_lb\n            scenarios: [graceful]",
            &[],
        )
        .ok();
    let row = &drill.result["drills"][0];
    assert_eq!(row["verdict"], "ok", "{}", drill.result);
    assert_eq!(row["master_before"], "lb03");
    assert_eq!(row["master_during"], "lb04");
    assert_eq!(row["master_after"], "lb03");
    assert_eq!(drill.result["changed"], false);
    wait_for_holders(&lab, &lab.vip(110), &["lb03"], Duration::from_secs(10));

    // The collection's example playbook (scripts/demo runs it): preflight,
    // deploy, status with every planned master, audit; nothing changes.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/examples/lab.yml");
    let out = ansible
        .command("ansible-playbook")
        .arg("-i")
        .arg(&inventory)
        .arg(&example)
        .env("HACTL_LAB_DIR", lab.dir.join("labs"))
        .output()
        .unwrap();
    let printed = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("ok=5    changed=0"), "{printed}");
}
