//! Issue 14: the VRRP password never leaves the files that need it. A lab
//! of inventories/lab.yaml (moved to 10.218.N.0/24, this binary's range)
//! with a known `hactl_auth_pass` is deployed, and every output of every
//! command is searched for it: tables, `--json`, `--diff`, errors, the
//! agents' logs and status JSON, the audit's table, JSON, Nagios and
//! Prometheus output. Meanwhile a watcher reads every process's argv
//! (`/proc/*/cmdline`) many times a second: the password must never be an
//! argument (deploy sends files on stdin). On the hosts, every file that
//! holds it is mode 0600. As root; the lab is removed when the test ends,
//! also when it fails.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod support;

use support::{TestLab, text_of};

/// The known password (8 bytes, as VRRPv2 allows).
const PASSWORD: &str = "Xk9-Pw2q";

/// Reads every process's argv until told to stop; returns the argvs that
/// held the password, and how many scans were made.
fn watch_argv(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<String>, u64)> {
    std::thread::spawn(move || {
        let mut hits = Vec::new();
        let mut scans = 0;
        while !stop.load(Ordering::SeqCst) {
            scans += 1;
            let Ok(dir) = fs::read_dir("/proc") else {
                break;
            };
            for entry in dir.flatten() {
                let Ok(argv) = fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                if argv
                    .windows(PASSWORD.len())
                    .any(|w| w == PASSWORD.as_bytes())
                {
                    hits.push(String::from_utf8_lossy(&argv).replace('\0', " "));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        (hits, scans)
    })
}

#[test]
fn the_password_shows_in_no_output_no_argv_and_only_in_0600_files() {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_argv(stop.clone());
    let subnet = format!("10.218.{}", std::process::id() % 250);
    let lab = TestLab::up(
        &format!("sec{:x}", std::process::id()),
        &subnet,
        |text, _| {
            text.replace(
                "hactl_auth_pass: labpass",
                &format!("hactl_auth_pass: {PASSWORD}"),
            )
        },
    );
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |what: &str, args: &[&str], extra: &[&str]| -> (bool, String) {
        let out = lab.hactl(args, extra);
        let text = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
        outputs.push((what.to_string(), text.clone()));
        (out.status.success(), text)
    };
    let lock = lab.dir.join("audit.lock");
    let lock = lock.to_str().unwrap();
    // Plan and render.
    for args in [
        &["inventory", "-i"][..],
        &["--json", "inventory", "-i"],
        &["inventory", "--list", "-i"],
        &["inventory", "--validate", "-i"],
        &["render", "--host", "lb01", "-i"],
        &["--json", "render", "--host", "lb02", "-i"],
    ] {
        let (ok, text) = run(&args.join(" "), args, &[]);
        assert!(ok, "{args:?}: {text}");
    }
    // Hosts.
    for (args, must) in [
        (&["preflight", "-i"][..], true),
        (&["--json", "preflight", "-i"], true),
        (&["--json", "deploy", "-i"], true),
        (&["deploy", "-i"], true),
        (&["status", "-i"], true),
        (&["--json", "status", "-i"], true),
    ] {
        let (ok, text) = run(&args.join(" "), args, &[]);
        assert!(ok || !must, "{args:?}: {text}");
    }
    for format in ["table", "json", "nagios", "prometheus"] {
        let args = ["audit", "--format", format, "--lock", lock, "-i"];
        let (ok, text) = run(&format!("audit --format {format}"), &args, &[]);
        assert!(ok, "audit {format}: {text}");
    }
    // A change to the pair with the password (the `--json` diff carries
    // both configs whole, authentication block included).
    let text = fs::read_to_string(&lab.inventory).unwrap().replace(
        "                master: lb01\n",
        "                master: lb01\n                priority: {lb01: 200, lb02: 90}\n",
    );
    fs::write(&lab.inventory, &text).unwrap();
    for args in [
        &["deploy", "--check", "--diff", "-i"][..],
        &["--json", "deploy", "--check", "--diff", "-i"],
        &["deploy", "--diff", "-i"],
    ] {
        let (ok, out) = run(&args.join(" "), args, &[]);
        assert!(ok, "{args:?}: {out}");
        assert!(
            out.contains("priority 200"),
            "{args:?} shows the change: {out}"
        );
    }
    assert!(
        outputs
            .iter()
            .any(|(_, o)| o.contains("auth_pass <redacted>")),
        "a diff or render shows where the password is"
    );
    // Errors that are about the password itself.
    for (bad, what) in [
        (format!("{PASSWORD}{PASSWORD}"), "too long"),
        (format!("{PASSWORD}#x"), "a comment sign"),
        (format!("\"{PASSWORD} x\""), "a blank"),
    ] {
        let path = lab.dir.join("bad.yaml");
        fs::write(
            &path,
            text.replace(
                &format!("hactl_auth_pass: {PASSWORD}\n"),
                &format!("hactl_auth_pass: {bad}\n"),
            ),
        )
        .unwrap();
        for args in [
            &["inventory", "-i"][..],
            &["deploy", "-i"],
            &["--json", "render", "--host", "lb01", "-i"],
        ] {
            let out = lab.hactl_on(&path, args, &[]);
            let text = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
            assert!(!out.status.success(), "{what}: {args:?} passed: {text}");
            assert!(text.contains("hactl_auth_pass"), "{what}: {text}");
            outputs.push((format!("{args:?} with a password {what}"), text));
        }
    }
    // The hosts: the agents' status JSON and logs; every file under
    // hactl's directories, with its mode.
    let mut files_with_password = 0;
    for host in support::LAB_HOSTS {
        let status = lab.exec(host, "/usr/local/lib/hactl/hactl-agent status --json");
        assert!(status.contains("\"instances\""), "{host}: {status}");
        outputs.push((format!("{host}: hactl-agent status --json"), status));
        let listing = lab.exec(
            host,
            "find /etc/hactl /var/lib/hactl /run/hactl -type f 2>/dev/null | while read -r f; do printf '\\n==> %s %s\\n' \"$(stat -c %a \"$f\")\" \"$f\"; cat \"$f\"; done",
        );
        for file in listing.split("\n==> ").skip(1) {
            let (head, content) = file.split_once('\n').unwrap_or((file, ""));
            let (mode, path) = head.split_once(' ').unwrap_or(("", head));
            if path.ends_with(".log") {
                outputs.push((format!("{host}:{path}"), content.to_string()));
            } else if content.contains(PASSWORD) {
                files_with_password += 1;
                assert_eq!(mode, "600", "{host}:{path} holds the password");
            }
        }
    }
    assert!(
        files_with_password >= 2,
        "the web_lb hosts' configs hold it"
    );
    stop.store(true, Ordering::SeqCst);
    let (argv_hits, scans) = watcher.join().unwrap();
    assert!(argv_hits.is_empty(), "in argv: {argv_hits:?}");
    assert!(scans > 100, "the argv watcher ran ({scans} scans)");
    let leaks: Vec<&(String, String)> = outputs
        .iter()
        .filter(|(_, o)| o.contains(PASSWORD))
        .collect();
    assert!(leaks.is_empty(), "the password shows in: {leaks:#?}");
    eprintln!(
        "issue 14: {} outputs and {scans} argv scans searched, {files_with_password} files hold the password (all 0600)",
        outputs.len()
    );
}
