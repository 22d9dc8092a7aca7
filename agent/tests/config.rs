//! The keepalived.conf parser and `hactl-agent check`, from the outside.
//!
//! Table-driven cases for the grammar (comments, quotes, braces, includes)
//! and the keyword rules, each naming the line it expects; the model values
//! a valid config must produce; the redaction of auth_pass; and the
//! `check` binary itself: exit codes, `FILE:LINE` messages on stderr and a
//! golden `--json` report (regenerate with `HACTL_UPDATE_GOLDEN=1`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hactl_agent::config::lexer::{TokenKind, lex_line};
use hactl_agent::config::{
    self, Config, ConfigError, Diagnostic, Family, InitialState, Loaded, Secret, Severity,
};

// ===== helpers =====

fn parse(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    config::parse_str(text, Path::new("test.conf")).map_err(|e| match e {
        ConfigError::Invalid { diagnostics, .. } => diagnostics,
        other => panic!("unexpected error {other}"),
    })
}

#[track_caller]
fn parse_ok(text: &str) -> Loaded {
    parse(text).unwrap_or_else(|d| panic!("expected a valid config, got {d:#?}"))
}

/// The errors as `LINE: message`.
#[track_caller]
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(diags) => diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{}: {}", d.origin.line, d.message))
            .collect(),
    }
}

const HEADER: &str = "global_defs {\n  script_user root\n  enable_script_security\n}\n";

/// A minimal valid instance with `body` inserted before its VIPs; the
/// instance keyword is on line 5, `body` starts on line 9.
fn instance(body: &str) -> String {
    format!(
        "{HEADER}vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority 100\n{body}  virtual_ipaddress {{\n    10.0.0.50/24\n  }}\n}}\n"
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hactl-config-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn words(tokens: &[TokenKind]) -> Vec<String> {
    tokens
        .iter()
        .map(|t| match t {
            TokenKind::Word(w) => w.clone(),
            TokenKind::Open => "{".to_string(),
            TokenKind::Close => "}".to_string(),
        })
        .collect()
}

// ===== lexer =====

#[test]
fn lexer_lines() {
    let table: &[(&str, &[&str])] = &[
        ("priority 100", &["priority", "100"]),
        ("  priority\t100  ", &["priority", "100"]),
        ("! a comment", &[]),
        ("# a comment", &[]),
        ("priority 100 # trailing", &["priority", "100"]),
        ("priority 100 ! trailing", &["priority", "100"]),
        ("script \"/bin/check a  b\"", &["script", "/bin/check a  b"]),
        (
            "script \"/bin/x # not a comment\"",
            &["script", "/bin/x # not a comment"],
        ),
        ("vrrp_instance VI_1 {", &["vrrp_instance", "VI_1", "{"]),
        (
            "virtual_ipaddress {10.0.0.1}",
            &["virtual_ipaddress", "{", "10.0.0.1", "}"],
        ),
        ("}", &["}"]),
        (
            "priority 100#no blank before the comment",
            &["priority", "100"],
        ),
        ("nopreempt!x", &["nopreempt"]),
        ("", &[]),
    ];
    for (line, want) in table {
        let got = lex_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(words(&got), *want, "{line:?}");
    }
    assert!(lex_line("notify \"/bin/true").is_err());
}

// ===== grammar and keyword rules, table-driven =====

/// (name, config, expected errors as "LINE: substring").
fn error_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "unknown keyword with did-you-mean",
            instance("  prioritty 100\n"),
            vec!["9: unknown keyword 'prioritty' in vrrp_instance; did you mean 'priority'?"],
        ),
        (
            "keyword of another block says where it belongs",
            instance("  lb_algo rr\n"),
            vec![
                "9: unknown keyword 'lb_algo' in vrrp_instance ('lb_algo' belongs in virtual_server)",
            ],
        ),
        (
            "unclosed block names the line that opened it",
            format!("{HEADER}vrrp_instance VI_1 {{\n  interface eth0\n"),
            vec!["5: block 'vrrp_instance' opened here is never closed"],
        ),
        (
            "extra close brace names its line",
            format!("{HEADER}}}\n"),
            vec!["5: '}' without a matching '{'"],
        ),
        (
            "brace without keyword",
            format!("{HEADER}{{\n}}\n"),
            vec!["5: '{' without a keyword"],
        ),
        (
            "unterminated quote",
            instance("  notify \"/bin/true\n"),
            vec!["9: unterminated quoted string"],
        ),
        (
            "missing argument",
            instance("  advert_int\n"),
            vec!["9: 'advert_int' takes 1 argument, got 0"],
        ),
        (
            "too many arguments",
            instance("  advert_int 1 2\n"),
            vec!["9: 'advert_int' takes 1 argument, got 2"],
        ),
        (
            "flag with an argument",
            instance("  nopreempt yes\n"),
            vec!["9: 'nopreempt' takes 0 arguments, got 1"],
        ),
        (
            "block where a value is expected",
            instance("  priority {\n  }\n"),
            vec!["9: 'priority' does not take a { } block"],
        ),
        (
            "VRID 0",
            instance("").replace("virtual_router_id 51", "virtual_router_id 0"),
            vec!["7: virtual_router_id 0 is out of range 1..255"],
        ),
        (
            "priority 0",
            instance("").replace("priority 100", "priority 0"),
            vec!["8: priority 0 is out of range 1..255"],
        ),
        (
            "v2 advert_int 0.5",
            instance("  advert_int 0.5\n"),
            vec!["9: advert_int 0.5 must be whole seconds with VRRPv2"],
        ),
        (
            "v2 advert_int 256",
            instance("  advert_int 256\n"),
            vec!["9: advert_int 256 is out of range 1..255 seconds for VRRPv2"],
        ),
        (
            "v3 advert_int 0.005",
            instance("  version 3\n  advert_int 0.005\n"),
            vec!["10: advert_int 0.005 must be a multiple of 0.01 seconds with VRRPv3"],
        ),
        (
            "v3 advert_int 40.96",
            instance("  version 3\n  advert_int 40.96\n"),
            vec!["10: advert_int 40.96 is out of range 0.01..40.95 seconds for VRRPv3"],
        ),
        (
            "track_script naming nothing",
            instance("  track_script {\n    chk\n  }\n"),
            vec!["10: track_script 'chk' names no vrrp_script"],
        ),
        (
            "every error is collected, not only the first",
            instance("  prioritty 1\n  advert_int x\n  state LEADER\n"),
            vec![
                "9: unknown keyword 'prioritty'",
                "10: advert_int 'x' is not a number of seconds",
                "11: state 'LEADER' is neither MASTER nor BACKUP",
            ],
        ),
        (
            "duplicate instance names",
            format!(
                "{}vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {{\n  10.0.0.60\n }}\n}}\n",
                instance("")
            ),
            vec!["13: vrrp_instance 'VI_1' is already defined at test.conf:5"],
        ),
        (
            "same VRID on one interface and family",
            format!(
                "{}vrrp_instance VI_2 {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n  10.0.0.60\n }}\n}}\n",
                instance("")
            ),
            vec![
                "15: VRID 51 on eth0 (IPv4) is already used by vrrp_instance 'VI_1' at test.conf:7",
            ],
        ),
        (
            "VIP families may not mix",
            instance("").replace("10.0.0.50/24", "10.0.0.50/24\n    2001:db8::1/64"),
            vec!["11: 2001:db8::1 is IPv6 but vrrp_instance 'VI_1' is IPv4"],
        ),
        (
            "unknown VIP option",
            instance("").replace("10.0.0.50/24", "10.0.0.50/24 device eth0"),
            vec!["10: unknown virtual address option 'device'"],
        ),
        (
            "a missing '}' nests the next instance",
            format!(
                "{HEADER}vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{\n  10.0.0.1\n}}\nvrrp_instance VI_2 {{\n}}\n"
            ),
            vec![
                "5: block 'vrrp_instance' opened here is never closed",
                "11: unknown keyword 'vrrp_instance' in vrrp_instance ('vrrp_instance' belongs in the top level; is a '}' missing above?)",
            ],
        ),
        (
            "misplaced real_server",
            format!("{HEADER}real_server 10.0.0.1 80 {{\n}}\n"),
            vec![
                "5: unknown keyword 'real_server' in the top level ('real_server' belongs in virtual_server)",
            ],
        ),
    ]
}

#[test]
fn grammar_and_keyword_errors() {
    for (name, text, want) in error_cases() {
        let got = errors(&text);
        for w in &want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "{name}: expected an error starting with {w:?}, got {got:#?}"
            );
        }
    }
}

/// (name, config, check of the model).
type ModelCase = (&'static str, String, fn(&Config));

fn model_cases() -> Vec<ModelCase> {
    vec![
        (
            "comments, quotes and a brace on the next line",
            format!(
                "! bang\n# hash\n{HEADER}vrrp_instance VI_1\n{{\n  interface eth0 # why\n  virtual_router_id 51 ! why\n  notify_master \"/bin/true a  b\"\n  virtual_ipaddress\n  {{\n    10.0.0.50/24\n  }}\n}}\n"
            ),
            |c| {
                let i = &c.vrrp_instances[0];
                assert_eq!(i.interface, "eth0");
                assert_eq!(i.virtual_router_id, 51);
                assert_eq!(i.notify_master.as_deref(), Some("/bin/true a  b"));
                assert_eq!(i.virtual_ipaddress[0].address.to_string(), "10.0.0.50/24");
            },
        ),
        (
            "inline block",
            format!(
                "{HEADER}vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {{ 10.0.0.50 }}\n}}\n"
            ),
            |c| {
                let vip = &c.vrrp_instances[0].virtual_ipaddress[0];
                assert_eq!(vip.address.to_string(), "10.0.0.50/32");
            },
        ),
        ("defaults", instance(""), |c| {
            let i = &c.vrrp_instances[0];
            assert_eq!(i.state, InitialState::Backup);
            assert_eq!(i.version, 2);
            assert_eq!(i.advert_int, Duration::from_secs(1));
            assert_eq!(i.family, Family::Ipv4);
            assert!(!i.nopreempt);
        }),
        (
            "v3 from global_defs with centisecond adverts",
            instance("  advert_int 0.1\n").replace(
                "enable_script_security\n",
                "enable_script_security\n  vrrp_version 3\n",
            ),
            |c| {
                let i = &c.vrrp_instances[0];
                assert_eq!(i.version, 3);
                assert_eq!(i.advert_int, Duration::from_millis(100));
            },
        ),
        (
            "IPv6 instances speak VRRPv3",
            instance("").replace("10.0.0.50/24", "2001:db8::50/64 dev eth0"),
            |c| {
                let i = &c.vrrp_instances[0];
                assert_eq!(i.family, Family::Ipv6);
                assert_eq!(i.version, 3);
                assert_eq!(i.virtual_ipaddress[0].dev.as_deref(), Some("eth0"));
            },
        ),
        (
            "one VRID for IPv4 and IPv6 on one interface is two routers",
            format!(
                "{}vrrp_instance VI_6 {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n  2001:db8::1/64\n }}\n}}\n",
                instance("")
            ),
            |c| assert_eq!(c.vrrp_instances.len(), 2),
        ),
        (
            "track_script with its weight and the script's own",
            format!(
                "{HEADER}vrrp_script chk {{\n  script /bin/true\n  interval 3\n  weight -20\n  fall 2\n}}\n{}",
                instance("  track_script {\n    chk weight -5\n  }\n").replacen(HEADER, "", 1)
            ),
            |c| {
                let s = &c.vrrp_scripts[0];
                assert_eq!(
                    (s.interval, s.weight, s.fall, s.rise),
                    (Duration::from_secs(3), -20, 2, 1)
                );
                assert_eq!(c.vrrp_instances[0].track_script[0].weight, Some(-5));
            },
        ),
        (
            "priority 255 is accepted (address owner)",
            instance("").replace("priority 100", "priority 255"),
            |c| assert_eq!(c.vrrp_instances[0].priority, 255),
        ),
    ]
}

#[test]
fn model_values() {
    for (name, text, check) in model_cases() {
        let loaded = parse(&text).unwrap_or_else(|d| panic!("{name}: {d:#?}"));
        check(&loaded.config);
    }
}

// ===== secrets =====

#[test]
fn auth_pass_is_truncated_with_a_warning_and_never_printed() {
    let text =
        instance("  authentication {\n    auth_type PASS\n    auth_pass hunter2-and-more\n  }\n");
    let loaded = parse_ok(&text);
    let auth = loaded.config.vrrp_instances[0]
        .authentication
        .as_ref()
        .expect("authentication");
    // RFC 3768 5.3.11: 8 octets, as keepalived truncates.
    assert_eq!(auth.auth_pass.expose(), "hunter2-");
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].origin.line, 11);
    let shown = format!(
        "{} {:?} {}",
        loaded.warnings[0],
        loaded.config,
        serde_json::to_string(&loaded.config).expect("json")
    );
    assert!(!shown.contains("hunter2"), "secret leaked: {shown}");
    assert!(shown.contains("<redacted>"));
    assert_eq!(format!("{:?}", Secret::new("x")), "<redacted>");
}

#[test]
fn bad_auth_pass_line_does_not_echo_the_secret() {
    let text =
        instance("  authentication {\n    auth_type PASS\n    auth_pass hunter2 extra\n  }\n");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("11: 'auth_pass' takes 1 argument"))
    );
    assert!(errs.iter().all(|e| !e.contains("hunter2")), "{errs:?}");
}

// ===== includes =====

#[test]
fn include_globs_relative_to_the_including_file() {
    let dir = Scratch::new();
    let main = dir.write("main.conf", &format!("{HEADER}include conf.d/*.conf\n"));
    // conf.d/b.conf includes a file relative to conf.d/, not to main.conf.
    dir.write(
        "conf.d/b.conf",
        "vrrp_instance VI_B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\ninclude ../extra/c.inc\n",
    );
    dir.write(
        "conf.d/a.conf",
        "vrrp_instance VI_A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
    );
    dir.write(
        "extra/c.inc",
        "vrrp_instance VI_C {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n  10.0.0.3\n }\n}\n",
    );
    let loaded = config::load(&main).expect("valid");
    let names: Vec<&str> = loaded
        .config
        .vrrp_instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["VI_A", "VI_B", "VI_C"],
        "glob order, then nested include"
    );
}

#[test]
fn include_errors_name_the_included_file_and_line() {
    let dir = Scratch::new();
    let main = dir.write("main.conf", &format!("{HEADER}include conf.d/*.conf\n"));
    dir.write(
        "conf.d/web.conf",
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n  advert_intt 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
    );
    let Err(ConfigError::Invalid { diagnostics, .. }) = config::load(&main) else {
        panic!("expected an invalid config");
    };
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0].origin.file, dir.0.join("conf.d/web.conf"));
    assert_eq!(diagnostics[0].origin.line, 4);
    assert!(diagnostics[0].message.contains("did you mean 'advert_int'"));
}

#[test]
fn include_loops_and_unmatched_patterns() {
    let dir = Scratch::new();
    let main = dir.write(
        "main.conf",
        &format!("{HEADER}include loop.conf\ninclude none/*.conf\n"),
    );
    dir.write("loop.conf", "include loop.conf\n");
    let Err(ConfigError::Invalid { diagnostics, .. }) = config::load(&main) else {
        panic!("expected an invalid config");
    };
    let loop_error = diagnostics
        .iter()
        .find(|d| d.message.starts_with("include loop"))
        .expect("include loop error");
    assert_eq!(loop_error.origin.file, dir.0.join("loop.conf"));
    assert_eq!(loop_error.origin.line, 1);
    let unmatched = diagnostics
        .iter()
        .find(|d| d.message.contains("matches no file"))
        .expect("warning for an unmatched include");
    assert_eq!(
        (unmatched.severity, unmatched.origin.line),
        (Severity::Warning, 6)
    );
}

// ===== the check binary =====

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hactl-agent"))
}

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(rel)
}

#[test]
fn check_summarizes_a_valid_file() {
    let out = agent()
        .args(["check", "-f"])
        .arg(corpus("valid/rich.conf"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "(3 vrrp_instances, 1 vrrp_script, 1 vrrp_sync_group, 1 virtual_server)",
        "vrrp_instance VI_WWW: VRID 51 on eth0, VRRPv2 IPv4, advert 1s, state MASTER, priority 150",
        "vrrp_instance VI_V6: VRID 60 on eth0, VRRPv3 IPv6, advert 0.1s, state BACKUP, priority 120",
        "  vips: 10.0.0.50/24 dev eth0, 10.0.0.51/32",
        "vrrp_script chk_nginx: \"/bin/true nginx\" every 2s, weight -30, rise 1, fall 2",
        "vrrp_sync_group G_EDGE: VI_WWW, VI_DB",
        "virtual_server 10.0.0.50 80: TCP wrr DR, 2 real_servers",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rich.conf:43: warning: auth_pass is longer than 8 bytes"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains("topsecret"));
}

#[test]
fn check_rejects_with_file_line_messages() {
    let path = corpus("invalid/unknown-keyword.conf");
    let out = agent()
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{}:12: unknown keyword 'prioritty' in vrrp_instance; did you mean 'priority'?",
            path.display()
        )
    );
}

#[test]
fn check_reports_an_unreadable_file() {
    let out = agent()
        .args(["check", "-f", "/nonexistent/keepalived.conf"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/keepalived.conf: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn check_json_matches_golden() {
    let out = agent()
        .args(["check", "--json", "-f"])
        .arg(corpus("valid/rich.conf"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let got = String::from_utf8(out.stdout).expect("utf-8 json");
    assert!(!got.contains("topsecret"), "auth_pass leaked into --json");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/check-rich.json");
    if std::env::var_os("HACTL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden)
        .expect("golden file (create it with HACTL_UPDATE_GOLDEN=1)");
    assert_eq!(
        got, want,
        "--json output changed; HACTL_UPDATE_GOLDEN=1 regenerates it"
    );
}

#[test]
fn keepalived_defaults_are_filled_in() {
    let loaded = config::load(&corpus("valid/vs-defaults.conf")).expect("valid");
    let c = &loaded.config;
    assert_eq!(
        c.global_defs.notification_email,
        ["ops@example.com", "noc@example.com"]
    );
    assert_eq!(c.vrrp_instances[0].smtp_alert, Some(true));
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!(
        vs.real_servers[0].port, 8080,
        "real_server takes the service port"
    );
    let config::HealthCheck::Tcp(common) = &vs.real_servers[0].checks[0] else {
        panic!("expected TCP_CHECK");
    };
    assert_eq!(common.connect_timeout, Some(Duration::from_millis(2500)));
}

/// Every line-prefix of every corpus file (the shape of a half-written or
/// cut-off config) parses without panicking, and each diagnostic names a
/// line that exists in its file.
#[test]
fn truncated_configs_fail_cleanly() {
    let dir = Scratch::new();
    for sub in ["valid", "invalid"] {
        let entries = std::fs::read_dir(corpus(sub)).expect("list corpus");
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "conf") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let lines: Vec<&str> = text.lines().collect();
            for n in 0..lines.len() {
                let cut = lines[..n].join("\n");
                let file = dir.0.join("cut.conf");
                let result = config::parse_str(&cut, &file);
                let diagnostics = match result {
                    Ok(loaded) => loaded.warnings,
                    Err(ConfigError::Invalid { diagnostics, .. }) => diagnostics,
                    Err(e) => panic!("{}: {e}", path.display()),
                };
                for d in diagnostics.iter().filter(|d| d.origin.file == file) {
                    assert!(
                        d.origin.line >= 1 && d.origin.line as usize <= n.max(1),
                        "{} cut at {n} lines: {d} names a line past the end",
                        path.display()
                    );
                }
            }
        }
    }
}

/// Issue 11: the fwmark and group forms, quorum and checker keywords reach
/// the model with keepalived's meaning.
#[test]
fn ipvs_forms_reach_the_model() {
    let fwmark = config::load(&corpus("valid/vs-fwmark.conf")).expect("valid");
    let vs = &fwmark.config.virtual_servers[0];
    assert_eq!(vs.target, config::VsTarget::Fwmark { mark: 7 });
    assert_eq!(vs.persistence_granularity, Some(24));
    assert_eq!(
        vs.real_servers[0].port, 0,
        "a fwmark service forwards every port"
    );
    assert_eq!(
        fwmark.config.virtual_servers[1].ip_family,
        Some(config::Family::Ipv6)
    );

    let group = config::load(&corpus("valid/vs-group.conf")).expect("valid");
    let members = &group.config.virtual_server_groups[0].members;
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    assert_eq!(
        members,
        &[
            config::GroupMember::Inet {
                first: ip("10.0.0.50"),
                last: ip("10.0.0.50"),
                port: 80
            },
            config::GroupMember::Inet {
                first: ip("10.0.0.60"),
                last: ip("10.0.0.62"),
                port: 8080
            },
            config::GroupMember::Fwmark { mark: 3 },
        ]
    );

    let quorum = config::load(&corpus("valid/vs-quorum.conf")).expect("valid");
    let vs = &quorum.config.virtual_servers[0];
    assert_eq!((vs.quorum, vs.hysteresis), (3, 1));
    assert!(vs.alpha && vs.omega && vs.ops && vs.sorry_server_inhibit);
    assert_eq!(vs.quorum_down.as_deref(), Some("/bin/true down"));

    let misc = config::load(&corpus("valid/vs-misc-dynamic.conf")).expect("valid");
    let rs = &misc.config.virtual_servers[0].real_servers[0];
    assert_eq!(rs.lb_kind, Some(config::LbKind::Nat));
    assert_eq!((rs.uthreshold, rs.lthreshold), (Some(100), Some(10)));
    let config::HealthCheck::Misc { misc_dynamic, .. } = &rs.checks[0] else {
        panic!("expected MISC_CHECK");
    };
    assert!(misc_dynamic);

    let ssl = config::load(&corpus("valid/vs-ssl-get.conf")).expect("valid");
    let check = &ssl.config.virtual_servers[0].real_servers[0].checks[0];
    assert_eq!(check.kind(), "SSL_GET");
    assert_eq!(check.common().bind_port, Some(4000));
}

/// Issue 14: `check` judges scripts as the run time does under
/// enable_script_security: a symlink into a directory anyone may write is
/// refused with its file and line; a command without a path (`true`, like
/// `pidof haproxy`) is found in PATH and passes, as it runs.
#[test]
fn check_applies_script_security_like_the_run_time() {
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::temp_dir().join(format!("hxc{}-security", std::process::id()));
    let safe = base.join("safe");
    let open = base.join("open");
    std::fs::create_dir_all(&safe).expect("dir");
    std::fs::create_dir_all(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let target = open.join("check.sh");
    std::fs::write(&target, "#!/bin/sh\nexit 0\n").expect("script");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let link = safe.join("check.sh");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let conf = |script: &str| {
        format!(
            "vrrp_script chk {{\n  script \"{script}\"\n  interval 1\n}}\n{}",
            instance("  track_script {\n    chk\n  }\n")
        )
    };
    let check = |text: String| {
        let file = base.join("keepalived.conf");
        std::fs::write(&file, text).expect("conf");
        let out = agent()
            .args(["check", "-f"])
            .arg(&file)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(conf(link.to_str().expect("utf-8")));
    let (bare_code, bare_stderr) = check(conf("true"));
    let (missing_code, missing_stderr) = check(conf("no-such-program-hactl"));
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "keepalived.conf:1: vrrp_script 'chk' would be refused by enable_script_security"
        ) && stderr.contains("writable by non-root users"),
        "{stderr}"
    );
    assert_eq!(bare_code, Some(0), "{bare_stderr}");
    assert_eq!(missing_code, Some(1), "{missing_stderr}");
}

// ===== seeded mutations (issue 14) =====

/// xorshift64*: the same mutants on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// keepalived.conf syntax and values worth dropping into a file.
const DICTIONARY: &[&str] = &[
    "}",
    "{",
    "\"",
    "\n",
    " ",
    "!",
    "#",
    "vrrp_instance X {",
    "vrrp_script s {",
    "virtual_server 10.0.0.1 80 {",
    "real_server 10.0.0.2 80 {",
    "track_script {",
    "authentication {",
    "auth_pass",
    "priority",
    "255",
    "0",
    "-1",
    "4294967296",
    "10.0.0.50/33",
    "::1/129",
    "fe80::1",
    "virtual_router_id",
    "advert_int 0.001",
    "state",
    "MASTER",
    "interface",
    "eth0",
    "weight -254",
    "\u{0}",
    "\t",
    "é",
    "\r",
    "\"a b\"",
    "nopreempt",
    "use_vmac",
    "unicast_peer {",
    "vrrp_sync_group g {",
    "group {",
    "HTTP_GET {",
    "url {",
    "status_code 99",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(2) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                out.splice(at..at, word.iter().copied());
            }
            2 if !out.is_empty() => {
                let len = rng.below(24).min(out.len() - at.min(out.len()));
                out.drain(at..at + len);
            }
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(120).min(other.len() - from);
                out.splice(at..at, other[from..from + len].iter().copied());
            }
            _ => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                let end = (at + word.len()).min(out.len());
                out.splice(at..end, word.iter().copied());
            }
        }
    }
    out
}

/// Issue 14: thousands of seeded mutations of the corpus through the
/// lexer, parser and validation: no panic, every diagnostic with its file
/// and a line the file has, every valid file summarized and serialized.
#[test]
fn mutated_configs_keep_the_property() {
    use hactl_agent::config::fuzz::{Reached, check_config};
    let mut seeds = Vec::new();
    for dir in ["valid", "invalid"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(dir))
            .expect("corpus")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("seed");
            // Files with include lines are the lexer tests' (see the property).
            seeds.push(text.replace("include", "! inc-lude"));
        }
    }
    assert!(seeds.len() > 50, "{}", seeds.len());
    let valid: Vec<&String> = seeds
        .iter()
        .filter(|s| check_config(s) == Ok(Reached::Valid))
        .collect();
    eprintln!(
        "issue 14: {} of {} seeds are valid",
        valid.len(),
        seeds.len()
    );
    let mut rng = Rng(0x1405_c0f1_9000_0001);
    let mut reached = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    // HACTL_MUTATIONS=N runs more by hand (BENCHMARKS.md).
    let runs = std::env::var("HACTL_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8000);
    for i in 0..runs {
        // Three in four start from a valid file.
        let seed = if i % 4 == 3 {
            seeds[i % seeds.len()].as_bytes()
        } else {
            valid[rng.below(valid.len())].as_bytes()
        };
        let other = seeds[rng.below(seeds.len())].as_bytes();
        let text = String::from_utf8_lossy(&mutate(&mut rng, seed, other)).into_owned();
        match check_config(&text) {
            Ok(r) => *reached.entry(r).or_insert(0) += 1,
            Err(e) => failures.push(format!("{e}\n--- input:\n{text}")),
        }
    }
    eprintln!("issue 14: {runs} mutated configs: {reached:?}");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures[..failures.len().min(3)].join("\n=====\n")
    );
    assert!(
        reached.get(&Reached::Valid).copied().unwrap_or(0) > runs / 20,
        "{reached:?}"
    );
    assert!(
        reached.get(&Reached::Invalid).copied().unwrap_or(0) > runs / 4,
        "{reached:?}"
    );
}
