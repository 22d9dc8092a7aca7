//! Differential test: our keepalived.conf parser against keepalived 2.2.7.
//!
//! For every config in `tests/corpus/{valid,invalid}/` both `keepalived -t`
//! and [`hactl_agent::config::load`] judge the file, and they must agree:
//! accepted by both or rejected by both. keepalived exits 5 on warnings and
//! errors alike (and 0 on a missing file), so its verdict is read from its
//! messages: the file is rejected when it prints anything that is not one of
//! the benign warnings in `config::keepalived_test::BENIGN_WARNINGS`. Files where we knowingly differ are
//! listed in [`DIFFERENCES`] with the reason (also in
//! `notes/config-readme.md`); for those the test asserts that we do differ,
//! so the list stays true.
//!
//! keepalived checks that interfaces exist, so it runs in a network
//! namespace of this test with a veth pair named eth0/eth1. Needs root and
//! keepalived installed (CI installs it); without them the test fails and
//! says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use hactl_agent::config::keepalived_test::judge_config_test;
use hactl_agent::config::{self, ConfigError, Severity};

/// Files where we knowingly judge differently from keepalived 2.2.7:
/// (corpus path, reason).
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "valid/nb-get-retry.conf",
        "nb_get_retry is the keepalived 1.x name of retry; keepalived 2.2.7 rejects it as an \
         unknown keyword, we accept it as retry so older configs keep working",
    ),
    (
        "invalid/extra-arguments.conf",
        "keepalived silently ignores extra arguments after a keyword (`interface eth0 eth1`); \
         we reject them, since a dropped word is usually a mistake",
    ),
    (
        "invalid/vs-group-unknown.conf",
        "keepalived 2.2.7 accepts `virtual_server group NAME` for a group that is not \
         defined and programs nothing for it; we reject the file naming the line, with a \
         did-you-mean",
    ),
    (
        "invalid/vs-granularity.conf",
        "keepalived 2.2.7 takes any dotted value as persistence_granularity; we take a \
         netmask without holes (a prefix), the granularity ipvsadm(8) documents",
    ),
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth pair eth0/eth1, removed on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        let name = format!(
            "hko{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        run(&[
            "ip", "-n", &ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ]);
        for dev in ["lo", "eth0", "eth1"] {
            run(&["ip", "-n", &ns.name, "link", "set", dev, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[track_caller]
fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The top-level `.conf` files of `valid/` and `invalid/` (fragments that
/// they include live in subdirectories).
fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["valid", "invalid"] {
        let entries = std::fs::read_dir(corpus().join(dir))
            .unwrap_or_else(|e| panic!("cannot list corpus/{dir}: {e}"));
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            if path.extension().is_some_and(|e| e == "conf") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn rel(path: &Path) -> String {
    path.strip_prefix(corpus())
        .unwrap_or(path)
        .display()
        .to_string()
}

struct KeepalivedVerdict {
    rejected: bool,
    messages: Vec<String>,
}

fn keepalived_check(ns: &Netns, path: &Path) -> KeepalivedVerdict {
    let dir = path.parent().expect("corpus file has a directory");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "keepalived", "-t", "-f"])
        .arg(path)
        .current_dir(dir)
        .output()
        .expect("run keepalived -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let messages: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let verdict = judge_config_test(out.status.code(), &text);
    KeepalivedVerdict {
        rejected: !verdict.accepted,
        messages,
    }
}

fn keepalived_installed() -> bool {
    Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stderr).contains("Keepalived v") || o.status.success()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn parser_agrees_with_keepalived() {
    assert!(
        keepalived_installed(),
        "keepalived is not installed: this differential test needs it (apt-get install keepalived)"
    );
    assert!(
        is_root(),
        "this test runs keepalived in a network namespace and needs root"
    );
    let ns = Netns::new();
    let files = corpus_files();
    assert!(files.len() >= 40, "corpus shrank to {} files", files.len());

    let mut agree = 0;
    let mut documented = 0;
    let mut failures = Vec::new();
    for path in &files {
        let name = rel(path);
        let ka = keepalived_check(&ns, path);
        let ours = config::load(path);
        let we_reject = ours.is_err();
        let documented_reason = DIFFERENCES.iter().find(|(f, _)| *f == name);
        match (we_reject == ka.rejected, documented_reason) {
            (true, None) => agree += 1,
            (false, Some(_)) => documented += 1,
            (true, Some((_, reason))) => failures.push(format!(
                "{name}: listed as a difference ({reason}) but both now judge it alike"
            )),
            (false, None) => failures.push(format!(
                "{name}: keepalived {} it, we {} it\n  keepalived said: {:?}\n  we said: {}",
                if ka.rejected { "rejects" } else { "accepts" },
                if we_reject { "reject" } else { "accept" },
                ka.messages,
                match &ours {
                    Err(ConfigError::Invalid { diagnostics, .. }) => diagnostics
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" | "),
                    Err(e) => e.to_string(),
                    Ok(loaded) => format!("ok, {} warning(s)", loaded.warnings.len()),
                }
            )),
        }
    }
    eprintln!(
        "keepalived oracle: {} files, {agree} agree, {documented} documented differences",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(agree + documented, files.len());
    assert_eq!(
        documented,
        DIFFERENCES.len(),
        "every listed difference is in the corpus"
    );
}

/// The directory decides what we must say: `valid/` parses, `invalid/` is
/// rejected with an error on each line its `# expect:` header names.
#[test]
fn corpus_verdicts_and_lines() {
    for path in corpus_files() {
        let name = rel(&path);
        let text = std::fs::read_to_string(&path).expect("read corpus file");
        let expects: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| {
                let (place, substring) = e
                    .rsplit_once(": ")
                    .map(|(p, s)| (p.to_string(), s.to_string()))
                    .unwrap_or_else(|| panic!("{name}: malformed expect line {e:?}"));
                (place, substring)
            })
            .collect();
        match config::load(&path) {
            Ok(_) => assert!(
                name.starts_with("valid/"),
                "{name}: invalid config was accepted"
            ),
            Err(ConfigError::Invalid { diagnostics, .. }) => {
                assert!(
                    name.starts_with("invalid/"),
                    "{name}: rejected: {diagnostics:?}"
                );
                assert!(!expects.is_empty(), "{name}: no '# expect:' header");
                for (place, substring) in &expects {
                    // `LINE` means this file; `FILE:LINE` an included one.
                    let (file, line) = match place.rsplit_once(':') {
                        Some((f, l)) => (path.parent().expect("dir").join(f), l),
                        None => (path.clone(), place.as_str()),
                    };
                    let line: u32 = line.parse().expect("expect line number");
                    assert!(
                        diagnostics.iter().any(|d| d.severity == Severity::Error
                            && d.origin.file == file
                            && d.origin.line == line
                            && d.message.contains(substring.as_str())),
                        "{name}: no error '{substring}' at {}:{line}; got:\n{}",
                        file.display(),
                        diagnostics
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}
