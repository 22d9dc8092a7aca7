//! Differential test: for every inventory of the corpus
//! (tests/corpus/inventories/*/inventory.yml) and the example inventories
//! (inventories/*.yaml), `hactl inventory --list` must print the same groups,
//! members and merged host variables as the real `ansible-inventory --list`.
//! Lists (group members, children) are compared in order. And the other way
//! round: that JSON (and `--list --export`'s) fed to `hactl -i -` gives the
//! same inventory and the same plan as the file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus() -> Vec<PathBuf> {
    let dir = root().join("tests/corpus/inventories");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path().join("inventory.yml"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    for example in ["lab.yaml", "prod.yaml"] {
        let p = root().join("inventories").join(example);
        if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// Run `f` over `items` on a few threads (Ansible takes ~0.3 s a run; the
/// machine is shared), results in input order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(i, item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs `ansible-inventory --list` with no user configuration.
fn ansible_list(inv: &Path, home: &Path) -> serde_json::Value {
    ansible_inventory(inv, home, &[])
}

/// Runs `ansible-inventory --list EXTRA` with no user configuration.
fn ansible_inventory(inv: &Path, home: &Path, extra: &[&str]) -> serde_json::Value {
    std::fs::create_dir_all(home.join("tmp")).unwrap();
    let cfg = home.join("ansible.cfg");
    std::fs::write(&cfg, "").unwrap();
    let out = Command::new("ansible-inventory")
        .arg("-i")
        .arg(inv)
        .arg("--list")
        .args(extra)
        // An empty working directory: no playbook-level group_vars.
        .current_dir(home)
        .env("HOME", home)
        .env("ANSIBLE_CONFIG", &cfg)
        .env("ANSIBLE_INVENTORY_ENABLED", "yaml")
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .output()
        .unwrap_or_else(|e| {
            panic!("ansible-inventory is needed for this test (apt-get install ansible-core): {e}")
        });
    assert!(
        out.status.success(),
        "ansible-inventory failed on {}: {}",
        inv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ansible-inventory printed bad JSON for {}: {e}",
            inv.display()
        )
    });
    // ansible-core 2.19 names its output format (`"profile":
    // "inventory_legacy"`); 2.14 does not.
    if let Some(meta) = json.get_mut("_meta").and_then(|m| m.as_object_mut()) {
        meta.remove("profile");
    }
    json
}

fn hactl_list(inv: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args(["inventory", "--list", "--show-secrets", "-i"])
        .arg(inv)
        .env_remove("HACTL_INVENTORY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hactl failed on {}: {}",
        inv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Numbers compare as numbers (Python prints 1500.0, Rust may print 1500.0
/// or 1500 depending on the path).
fn normalize(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) if n.is_f64() => J::from(n.as_f64().unwrap_or(f64::NAN).to_string()),
        J::Number(n) => J::from(n.to_string()),
        J::Array(a) => J::Array(a.into_iter().map(normalize).collect()),
        J::Object(o) => J::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

#[test]
fn hactl_lists_what_ansible_inventory_lists_and_reads_it_back() {
    let invs = corpus();
    assert!(invs.len() >= 15, "corpus too small: {}", invs.len());
    let base = std::env::temp_dir().join(format!("hactl-ansible-{}", std::process::id()));
    let results = parallel(&invs, |i, inv| {
        let home = base.join(i.to_string());
        let list = ansible_list(inv, &home);
        let export = ansible_inventory(inv, &home, &["--export"]);
        let show = ["-i", "-", "inventory", "--list", "--show-secrets"];
        let from_list = hactl_stdin(&show, &list);
        let from_export = hactl_stdin(&show, &export);
        (inv.clone(), list, hactl_list(inv), from_list, from_export)
    });
    let _ = std::fs::remove_dir_all(&base);
    let mut failures = Vec::new();
    for (inv, want, from_file, from_list, from_export) in results {
        // `--export` folds `group_vars/all` into `all`'s vars, below every
        // child group's inventory vars, where Ansible ranks it above them:
        // the two inventories that test that precedence lose it (Ansible
        // reading the export back would too).
        let lossy = ["gv_files", "gv_precedence"]
            .iter()
            .any(|n| inv.parent().is_some_and(|d| d.ends_with(n)));
        let mut forms = vec![("the file", from_file), ("--list on stdin", from_list)];
        if !lossy {
            forms.push(("--list --export on stdin", from_export));
        }
        for (form, got) in forms {
            let what = format!("{} ({form})", inv.display());
            compare(&mut failures, what, want.clone(), got);
        }
    }
    assert_none_differ(&failures);
}

/// Records `what` when `want` and `got` differ (numbers as numbers).
fn compare(
    failures: &mut Vec<String>,
    what: String,
    want: serde_json::Value,
    got: serde_json::Value,
) {
    let (want, got) = (normalize(want), normalize(got));
    if want != got {
        failures.push(format!(
            "{what}:\nansible: {}\nhactl:   {}",
            serde_json::to_string(&want).unwrap(),
            serde_json::to_string(&got).unwrap()
        ));
    }
}

#[track_caller]
fn assert_none_differ(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The hosts `ansible PATTERN --list-hosts` selects.
fn ansible_hosts(inv: &Path, pattern: &str, home: &Path) -> Vec<String> {
    std::fs::create_dir_all(home.join("tmp")).unwrap();
    let cfg = home.join("ansible.cfg");
    std::fs::write(&cfg, "").unwrap();
    let out = Command::new("ansible")
        .arg("-i")
        .arg(inv)
        .args([pattern, "--list-hosts"])
        .current_dir(home)
        .env("HOME", home)
        .env("ANSIBLE_CONFIG", &cfg)
        .env("ANSIBLE_INVENTORY_ENABLED", "yaml")
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("ansible is needed for this test (apt-get install ansible-core): {e}")
        });
    assert!(
        out.status.success(),
        "ansible {pattern}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut hosts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim_start().starts_with("hosts ("))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    hosts.sort();
    hosts
}

/// The hosts `hactl --limit PATTERN` keeps (empty when none).
fn hactl_hosts(inv: &Path, pattern: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args(["--limit", pattern, "inventory", "--list", "-i"])
        .arg(inv)
        .output()
        .unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("matches no host"),
            "hactl --limit {pattern}: {stderr}"
        );
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut hosts: Vec<String> = v
        .as_object()
        .unwrap()
        .values()
        .filter_map(|g| g.get("hosts"))
        .flat_map(|h| {
            h.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

#[test]
fn limit_selects_what_ansible_selects() {
    let lab = root().join("inventories/lab.yaml");
    let multi = root().join("tests/corpus/inventories/multi_parent/inventory.yml");
    let cases: Vec<(&Path, &str)> = vec![
        (&lab, "all"),
        (&lab, "*"),
        (&lab, "web_lb"),
        (&lab, "lb01"),
        (&lab, "web_lb:api_lb"),
        (&lab, "web_lb,lb03"),
        (&lab, "web_lb:!lb02"),
        (&lab, "hactl_pairs:&lb0[!12]"),
        (&lab, "lb*"),
        (&lab, "lb0?"),
        (&lab, "!web_lb"),
        (&lab, "api_lb[0]"),
        (&lab, "api_lb[-1]"),
        (&lab, "web_lb[1:]"),
        (&lab, "web_lb:&api_lb"),
        (&lab, "*_lb:!lb01:!lb04"),
        (&lab, "nosuch"),
        (&multi, "shared"),
        (&multi, "east:&west"),
        (&multi, "shared:!s3"),
        (&multi, "s*"),
        (&multi, "west[0:1]"),
        (&multi, "east,west,!s1"),
    ];
    let base = std::env::temp_dir().join(format!("hactl-limit-{}", std::process::id()));
    let results = parallel(&cases, |i, (inv, pattern)| {
        let home = base.join(i.to_string());
        (
            pattern.to_string(),
            ansible_hosts(inv, pattern, &home),
            hactl_hosts(inv, pattern),
        )
    });
    let _ = std::fs::remove_dir_all(&base);
    let failures: Vec<String> = results
        .into_iter()
        .filter(|(_, a, h)| a != h)
        .map(|(p, a, h)| format!("{p}: ansible {a:?}, hactl {h:?}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The secret inventories/prod.yaml reads from the environment.
const PROD_PASS: &str = "pr0d";

/// `hactl ARGS` with `input` on stdin; its stdout as JSON.
fn hactl_stdin(args: &[&str], input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args(args)
        .env_remove("HACTL_INVENTORY")
        .env("HACTL_VRRP_PASS_INTERNAL", PROD_PASS)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = serde_json::to_vec(input).unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "hactl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The example inventories resolve to the same plan either way.
#[test]
fn the_plan_from_stdin_is_the_plan_of_the_file() {
    let base = std::env::temp_dir().join(format!("hactl-stdin-{}", std::process::id()));
    for example in ["lab.yaml", "prod.yaml"] {
        let file = root().join("inventories").join(example);
        let home = base.join(example);
        let list = ansible_list(&file, &home);
        let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
            .args(["inventory", "--json", "-i"])
            .arg(&file)
            .env("HACTL_VRRP_PASS_INTERNAL", PROD_PASS)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = hactl_stdin(&["-i", "-", "inventory", "--json"], &list);
        assert_eq!(got, want, "{example}: the plan from stdin");
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// Issue 14: `hactl inventory --list` redacts `hactl_auth_pass` unless
/// `--show-secrets` asks for it (the dynamic-inventory use); a `{env: VAR}`
/// reference is not a password and shows.
#[test]
fn list_redacts_the_password_unless_asked() {
    let lab = root().join("inventories/lab.yaml");
    let list = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
            .args(["inventory", "--list"])
            .args(extra)
            .arg("-i")
            .arg(&lab)
            .env_remove("HACTL_INVENTORY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let redacted = list(&[]);
    assert!(!redacted.contains("labpass"), "{redacted}");
    let v: serde_json::Value = serde_json::from_str(&redacted).unwrap();
    assert_eq!(
        v["_meta"]["hostvars"]["lb01"]["hactl_auth_pass"],
        "<redacted>"
    );
    let shown: serde_json::Value = serde_json::from_str(&list(&["--show-secrets"])).unwrap();
    assert_eq!(
        shown["_meta"]["hostvars"]["lb01"]["hactl_auth_pass"],
        "labpass"
    );
    let prod = hactl_list(&root().join("inventories/prod.yaml"));
    let vars = prod["_meta"]["hostvars"].as_object().unwrap();
    assert!(
        vars.values()
            .any(|h| h["hactl_auth_pass"].get("env").is_some()),
        "{prod}"
    );
}
