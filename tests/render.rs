//! Rendering through the binary: golden keepalived.conf files for
//! inventories/lab.yaml (regenerate with HACTL_UPDATE_GOLDEN=1), byte-identical
//! output across runs, secrets redacted on stdout but written in full (mode
//! 0600) with --out, user templates, `hactl-agent check` and `keepalived -t` accepting every
//! rendered file inside a network namespace whose interfaces match the
//! inventory's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const LAB_HOSTS: [&str; 4] = ["lb01", "lb02", "lb03", "lb04"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab() -> PathBuf {
    root().join("inventories/lab.yaml")
}

#[track_caller]
fn hactl(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args(args)
        .env_remove("HACTL_INVENTORY")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hactl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hactl-render-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn golden(path: &Path, actual: &str) {
    if std::env::var_os("HACTL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "missing golden {} ({e}); run with HACTL_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, want, "golden {} differs", path.display());
}

#[test]
fn lab_configs_match_golden_files_and_are_stable() {
    let inv = lab();
    let inv = inv.to_str().unwrap();
    for host in LAB_HOSTS {
        let first = hactl(&[
            "-i",
            inv,
            "render",
            "--host",
            host,
            "--file",
            "keepalived.conf",
        ])
        .stdout;
        let second = hactl(&[
            "-i",
            inv,
            "render",
            "--host",
            host,
            "--file",
            "keepalived.conf",
        ])
        .stdout;
        assert_eq!(first, second, "render of {host} is not byte-identical");
        let text = String::from_utf8(first).unwrap();
        golden(
            &root().join(format!("tests/golden/lab/{host}.keepalived.conf")),
            &text,
        );
    }
}

/// Issue 11: `hactl_virtual_servers` rendered as virtual_server blocks.
#[test]
fn lvs_example_renders_its_virtual_servers() {
    let inv = root().join("inventories/lvs.yaml");
    let text = String::from_utf8(
        hactl(&[
            "-i",
            inv.to_str().unwrap(),
            "render",
            "--host",
            "lvs01",
            "--file",
            "keepalived.conf",
        ])
        .stdout,
    )
    .unwrap();
    golden(
        &root().join("tests/golden/lvs/lvs01.keepalived.conf"),
        &text,
    );
}

#[test]
fn secrets_are_redacted_on_stdout_and_written_in_full_with_mode_0600() {
    let inv = lab();
    let inv = inv.to_str().unwrap();
    let shown = String::from_utf8(
        hactl(&[
            "-i",
            inv,
            "render",
            "--host",
            "lb01",
            "--file",
            "keepalived.conf",
        ])
        .stdout,
    )
    .unwrap();
    assert!(shown.contains("auth_pass <redacted>"), "{shown}");
    assert!(!shown.contains("labpass"));
    let json = String::from_utf8(hactl(&["-i", inv, "--json", "render", "--host", "lb01"]).stdout)
        .unwrap();
    assert!(!json.contains("labpass"), "{json}");
    let plan = String::from_utf8(hactl(&["-i", inv, "--json", "inventory"]).stdout).unwrap();
    assert!(!plan.contains("labpass"), "{plan}");
    assert!(plan.contains("<redacted>"), "{plan}");

    let dir = scratch("out");
    let out = dir.join("etc");
    hactl(&[
        "-i",
        inv,
        "render",
        "--host",
        "lb01",
        "--out",
        out.to_str().unwrap(),
    ]);
    let file = out.join("keepalived.conf");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("auth_pass labpass"), "{written}");
    assert_eq!(
        written.replace("auth_pass labpass", "auth_pass <redacted>"),
        shown
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn user_templates_replace_the_builtin_ones() {
    let dir = scratch("tmpl");
    std::fs::write(
        dir.join("keepalived.conf.j2"),
        // A user's template is checked like the built-in one (issue 14):
        // it must mean the plan's instances, scripts and addresses.
        concat!(
            "# {{ host.name }} {% for i in instances %}{{ i.name }}={{ i.state }}/{{ i.priority }} {% endfor %}\n\n",
            "global_defs {\n router_id {{ host.name }}\n script_user {{ host.script_user }}\n enable_script_security\n}\n",
            "{% for c in checks %}vrrp_script {{ c.name }} {\n script \"{{ c.script }}\"\n}\n{% endfor %}",
            "{% for i in instances %}vrrp_instance {{ i.name }} {\n interface {{ host.interface }}\n virtual_router_id {{ i.vrid }}\n priority {{ i.priority }}\n",
            "{% if auth_pass is not none %} authentication {\n auth_type PASS\n auth_pass {{ auth_pass }}\n }\n{% endif %}",
            " virtual_ipaddress {\n{% for v in i.vips %} {{ v }}\n{% endfor %} }\n track_script {\n{% for t in i.track %} {{ t }}\n{% endfor %} }\n}\n{% endfor %}",
        ),
    )
    .unwrap();
    let inv = lab();
    let out = hactl(&[
        "-i",
        inv.to_str().unwrap(),
        "--templates",
        dir.to_str().unwrap(),
        "render",
        "--host",
        "lb02",
        "--file",
        "keepalived.conf",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("# lb02 www=BACKUP/100 blog=MASTER/150 \n"),
        "{text}"
    );
    // A user's template that drops an instance is refused before use.
    std::fs::write(
        dir.join("keepalived.conf.j2"),
        "global_defs {\n router_id {{ host.name }}\n}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args([
            "-i",
            inv.to_str().unwrap(),
            "--templates",
            dir.to_str().unwrap(),
        ])
        .args(["render", "--host", "lb02"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not match the plan"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ===== keepalived -t in a namespace =====

/// A network namespace removed on drop, even when the test panics.
struct Netns(String);

impl Netns {
    fn new(interfaces: &[&str]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "hr{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Self(name);
        for (i, ifname) in interfaces.iter().enumerate() {
            let peer = format!("hrpeer{i}");
            run(&[
                "ip", "-n", &ns.0, "link", "add", ifname, "type", "veth", "peer", "name", &peer,
            ]);
            run(&["ip", "-n", &ns.0, "link", "set", ifname, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[track_caller]
fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keepalived_accepts_every_rendered_lab_config() {
    assert!(
        Command::new("keepalived").arg("--version").output().is_ok(),
        "keepalived is needed for this test (apt-get install keepalived)"
    );
    // The lab's check script only exists inside the lab, and keepalived's
    // config test (2.2.7) kills itself with SIGTERM when it checks a script
    // as a non-root script_user: test a copy with /bin/true run as root.
    let dir = scratch("kt");
    let text = std::fs::read_to_string(lab()).unwrap();
    // A script with content: lives in /etc/hactl/checks (issue 14), so the
    // copy runs /bin/true without content.
    let text = text
        .replace("script: /etc/hactl/checks/check_web.sh", "script: /bin/true")
        .replace(
            "                content: |\n                  #!/bin/sh\n                  test ! -e /run/hactl/fail-check_web\n",
            "",
        )
        .replace(
            "    hactl_interface: eth0\n",
            "    hactl_interface: eth0\n    hactl_script_user: root\n",
        );
    let inv = dir.join("lab.yaml");
    std::fs::write(&inv, text).unwrap();
    let v3 = root().join("tests/corpus/render/v3.yaml");
    // Issue 11: the LVS example's virtual servers, as root too.
    let lvs = dir.join("lvs.yaml");
    let text = std::fs::read_to_string(root().join("inventories/lvs.yaml")).unwrap();
    std::fs::write(
        &lvs,
        text.replace(
            "            hactl_interface: eth0\n",
            "            hactl_interface: eth0\n            hactl_script_user: root\n",
        ),
    )
    .unwrap();
    let cases: [(&Path, &[&str], &[&str]); 3] = [
        (&inv, &LAB_HOSTS, &["eth0"]),
        (&v3, &["t1", "t2", "t3"], &["bond0.120"]),
        (&lvs, &["lvs01", "lvs02"], &["eth0"]),
    ];
    for (inv, hosts, interfaces) in cases {
        let ns = Netns::new(interfaces);
        for host in hosts {
            let out = dir.join(host);
            hactl(&[
                "-i",
                inv.to_str().unwrap(),
                "render",
                "--host",
                host,
                "--out",
                out.to_str().unwrap(),
            ]);
            let conf = out.join("keepalived.conf");
            // The agent's own checker (what `hactl-agent check` runs) must
            // accept the file without a warning too.
            match hactl_agent::config::load(&conf) {
                Ok(loaded) => assert!(
                    loaded.warnings.is_empty(),
                    "{host}: hactl-agent check warns: {:?}",
                    loaded.warnings
                ),
                Err(e) => panic!("{host}: hactl-agent check rejects the file: {e}: {e:?}"),
            }
            let res = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns.0,
                    "setsid",
                    "-w",
                    "keepalived",
                    "-t",
                    "-f",
                ])
                .arg(&conf)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&res.stderr);
            let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains(": Line ")).collect();
            assert!(
                complaints.is_empty(),
                "{host}: keepalived complains:\n{stderr}"
            );
            assert!(
                res.status.success(),
                "{host}: keepalived -t exit {:?}:\n{stderr}",
                res.status.code()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 13: the unit deploy installs passes `systemd-analyze verify` (no
/// error, no warning such as an unknown or misspelt key), checked in a
/// scratch root that holds the distribution's units, the unit as
/// rendered (unchanged) and the agent binary where ExecStart names it.
#[test]
fn rendered_unit_passes_systemd_analyze_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    assert!(version.status.success(), "systemd-analyze --version");
    let dir = scratch("unit");
    let out = dir.join("out");
    hactl(&[
        "render",
        lab().to_str().unwrap(),
        "--host",
        "lb01",
        "--file",
        "hactl-agent.service",
        "--out",
        out.to_str().unwrap(),
    ]);
    let unit = std::fs::read_to_string(out.join("hactl-agent.service")).unwrap();
    let root = dir.join("root");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .and_then(|cmd| cmd.split_whitespace().next())
        .expect("ExecStart")
        .trim_start_matches('/');
    let agent = root.join(exec);
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    // Any executable will do for verify; the CLI stands in for the agent.
    std::fs::copy(env!("CARGO_BIN_EXE_hactl"), &agent).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/kill", root.join("bin/kill")).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::write(root.join("etc/systemd/system/hactl-agent.service"), &unit).unwrap();
    std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(root.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(copied.success(), "copy the distribution's units");
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg("/etc/systemd/system/hactl-agent.service")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        verify.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        verify.status
    );
}
