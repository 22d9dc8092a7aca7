//! The audit's judgement and report shapes on hand-built observations:
//! one table of scenarios (who holds which address, what the agents say,
//! what the running configs hold) against the findings they must give.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::judge::{
    AgentInstance, AgentState, ConfigState, HostFacts, HostObservation, Kind, Observations,
    Severity, judge,
};
use super::report;
use super::running::{AuthDigest, DEFAULT_MCAST_GROUP, RunningConfig, RunningInstance};
use crate::inventory::{Inventory, yaml};
use crate::plan::{self, ClusterPlan};

/// Two pairs on one segment: web (lb01, lb02; www .100 master lb01) and
/// api (lb03, lb04; api .110 + .111 master lb03).
const INVENTORY: &str = "all:
  vars: {hactl_interface: eth0}
  children:
    hactl_pairs:
      children:
        web:
          vars:
            hactl_instances:
              - {name: www, vips: [10.9.0.100/24], master: lb01, vrid: 51}
          hosts:
            lb01: {ansible_host: 10.9.0.11}
            lb02: {ansible_host: 10.9.0.12}
        api:
          vars:
            hactl_instances:
              - {name: api, vips: [10.9.0.110/24, 10.9.0.111/24], master: lb03, vrid: 52}
          hosts:
            lb03: {ansible_host: 10.9.0.13}
            lb04: {ansible_host: 10.9.0.14}
";

fn plan() -> ClusterPlan {
    let path = Path::new("inv.yaml");
    let root = yaml::load_str(INVENTORY, path).expect("yaml");
    let inv = Inventory::from_node(path, &root).expect("inventory");
    plan::resolve(&inv, &|_| None).expect("plan")
}

fn ip(a: &str) -> IpAddr {
    a.parse().expect("address")
}

fn running(name: &str, vrid: u8, vips: &[&str]) -> RunningInstance {
    RunningInstance {
        name: name.into(),
        interface: "eth0".into(),
        vrid,
        version: 2,
        advert_int: Duration::from_secs(1),
        mcast_group: Some(IpAddr::V4(DEFAULT_MCAST_GROUP)),
        auth: AuthDigest::of("PASS", "pw"),
        vips: vips.iter().map(|v| v.to_string()).collect(),
    }
}

/// A healthy cluster: lb01 and lb03 masters holding their VIPs, every
/// config alike within a pair, groups apart.
fn healthy() -> Observations {
    let mut hosts = BTreeMap::new();
    for (host, own, state) in [
        ("lb01", "10.9.0.11", "MASTER"),
        ("lb02", "10.9.0.12", "BACKUP"),
        ("lb03", "10.9.0.13", "MASTER"),
        ("lb04", "10.9.0.14", "BACKUP"),
    ] {
        let web = host == "lb01" || host == "lb02";
        let mut addresses = vec![ip("127.0.0.1"), ip(own)];
        let (name, mut inst) = if web {
            ("www", running("www", 51, &["10.9.0.100/24"]))
        } else {
            (
                "api",
                running("api", 52, &["10.9.0.110/24", "10.9.0.111/24"]),
            )
        };
        inst.mcast_group = Some(ip(if web { "224.0.0.160" } else { "224.0.0.161" }));
        if state == "MASTER" {
            addresses.extend(
                inst.vips
                    .iter()
                    .map(|v| ip(v.split('/').next().unwrap_or_default())),
            );
        }
        hosts.insert(
            host.to_string(),
            HostObservation::Reached(HostFacts {
                addresses,
                agent: AgentState::Up(BTreeMap::from([(
                    name.to_string(),
                    AgentInstance {
                        state: state.to_string(),
                        vrid: Some(if web { 51 } else { 52 }),
                        version: Some(2),
                    },
                )])),
                config: ConfigState::Parsed(RunningConfig {
                    instances: vec![inst],
                }),
                ledger: Vec::new(),
                virtual_servers: BTreeMap::new(),
            }),
        );
    }
    Observations { hosts }
}

/// An agent that runs one instance in `state`.
fn up(name: &str, state: &str) -> AgentState {
    AgentState::Up(BTreeMap::from([(
        name.to_string(),
        AgentInstance::new(state),
    )]))
}

fn host<'a>(obs: &'a mut Observations, name: &str) -> &'a mut HostFacts {
    match obs.hosts.get_mut(name) {
        Some(HostObservation::Reached(f)) => f,
        _ => panic!("{name} not reached"),
    }
}

fn config<'a>(obs: &'a mut Observations, name: &str) -> &'a mut RunningInstance {
    match &mut host(obs, name).config {
        ConfigState::Parsed(c) => &mut c.instances[0],
        _ => panic!("{name} has no config"),
    }
}

type Change = fn(&mut Observations);

/// (scenario, change to the healthy cluster, overall status, findings as
/// (severity, kind, pair, hosts)).
#[allow(clippy::type_complexity)]
fn scenarios() -> Vec<(
    &'static str,
    Change,
    Severity,
    Vec<(Severity, Kind, &'static str, Vec<&'static str>)>,
)> {
    vec![
        ("healthy", |_| {}, Severity::Ok, vec![]),
        (
            "partition: both hold the VIP and say MASTER",
            |o| {
                host(o, "lb02").addresses.push(ip("10.9.0.100"));
                host(o, "lb02").agent = up("www", "MASTER");
            },
            Severity::Critical,
            vec![(
                Severity::Critical,
                Kind::SplitBrain,
                "web",
                vec!["lb01", "lb02"],
            )],
        ),
        (
            "two holders while the agents claim one master (interfaces win)",
            |o| host(o, "lb02").addresses.push(ip("10.9.0.100")),
            Severity::Critical,
            vec![(
                Severity::Critical,
                Kind::SplitBrain,
                "web",
                vec!["lb01", "lb02"],
            )],
        ),
        (
            "two masters, one holder",
            |o| host(o, "lb04").agent = up("api", "MASTER"),
            Severity::Critical,
            vec![(
                Severity::Critical,
                Kind::SplitBrain,
                "api",
                vec!["lb03", "lb04"],
            )],
        ),
        (
            "VIPs of one instance spread over two hosts",
            |o| {
                host(o, "lb03").addresses.retain(|a| *a != ip("10.9.0.111"));
                host(o, "lb04").addresses.push(ip("10.9.0.111"));
            },
            Severity::Critical,
            vec![(
                Severity::Critical,
                Kind::SplitBrain,
                "api",
                vec!["lb03", "lb04"],
            )],
        ),
        (
            "nobody holds the VIP",
            |o| host(o, "lb01").addresses.retain(|a| *a != ip("10.9.0.100")),
            Severity::Critical,
            vec![(
                Severity::Critical,
                Kind::NoHolder,
                "web",
                vec!["lb01", "lb02"],
            )],
        ),
        (
            "backup agent down, VIP still served",
            |o| host(o, "lb02").agent = AgentState::Down("socket gone".into()),
            Severity::Warning,
            vec![(Severity::Warning, Kind::AgentDown, "web", vec!["lb02"])],
        ),
        (
            "agent runs without the instance",
            |o| host(o, "lb02").agent = AgentState::Up(BTreeMap::new()),
            Severity::Warning,
            vec![(Severity::Warning, Kind::AgentDown, "web", vec!["lb02"])],
        ),
        (
            "instance in FAULT",
            |o| host(o, "lb02").agent = up("www", "FAULT"),
            Severity::Warning,
            vec![(Severity::Warning, Kind::Fault, "web", vec!["lb02"])],
        ),
        (
            "advert_int drift",
            |o| config(o, "lb02").advert_int = Duration::from_secs(3),
            Severity::Warning,
            vec![(Severity::Warning, Kind::Drift, "web", vec!["lb01", "lb02"])],
        ),
        (
            "an agent that has not reloaded its edited file",
            |o| config(o, "lb02").vrid = 61,
            Severity::Warning,
            vec![(Severity::Warning, Kind::Drift, "web", vec!["lb01", "lb02"])],
        ),
        (
            "auth drift",
            |o| config(o, "lb02").auth = AuthDigest::of("PASS", "other"),
            Severity::Warning,
            vec![(Severity::Warning, Kind::Drift, "web", vec!["lb01", "lb02"])],
        ),
        (
            "a peer's config lacks the instance",
            |o| host(o, "lb04").config = ConfigState::Parsed(RunningConfig::default()),
            Severity::Warning,
            vec![(Severity::Warning, Kind::Drift, "api", vec!["lb04"])],
        ),
        (
            "config file missing",
            |o| host(o, "lb04").config = ConfigState::Missing,
            Severity::Warning,
            vec![(Severity::Warning, Kind::Config, "api", vec!["lb04"])],
        ),
        (
            "two pairs share a VRID and a group",
            |o| {
                for h in ["lb03", "lb04"] {
                    let c = config(o, h);
                    c.vrid = 51;
                    c.mcast_group = Some(ip("224.0.0.160"));
                }
            },
            Severity::Warning,
            vec![
                // The agents still run the old VRID.
                (Severity::Warning, Kind::Drift, "api", vec!["lb03", "lb04"]),
                (
                    Severity::Warning,
                    Kind::Collision,
                    "web",
                    vec!["lb01", "lb02", "lb03", "lb04"],
                ),
            ],
        ),
        (
            "another pair's VIP on a host",
            |o| host(o, "lb04").addresses.push(ip("10.9.0.100")),
            Severity::Warning,
            vec![(Severity::Warning, Kind::StaleVip, "api", vec!["lb04"])],
        ),
        (
            "a ledger address nothing wants",
            |o| {
                let f = host(o, "lb02");
                f.addresses.push(ip("10.9.0.199"));
                f.ledger.push(ip("10.9.0.199"));
            },
            Severity::Warning,
            vec![(Severity::Warning, Kind::StaleVip, "web", vec!["lb02"])],
        ),
        (
            "an unreachable backup: its instance UNKNOWN, the other pair judged",
            |o| {
                o.hosts.insert(
                    "lb02".into(),
                    HostObservation::Unreachable("connection refused".into()),
                );
            },
            Severity::Unknown,
            vec![(Severity::Unknown, Kind::Unreachable, "web", vec!["lb02"])],
        ),
        (
            "an unreachable master: no reachable holder is UNKNOWN, not CRITICAL",
            |o| {
                o.hosts.insert(
                    "lb01".into(),
                    HostObservation::Unreachable("timeout".into()),
                );
            },
            Severity::Unknown,
            vec![
                (
                    Severity::Unknown,
                    Kind::NoHolder,
                    "web",
                    vec!["lb01", "lb02"],
                ),
                (Severity::Unknown, Kind::Unreachable, "web", vec!["lb01"]),
            ],
        ),
        (
            "a pair with no host reached: unreachable only",
            |o| {
                for h in ["lb03", "lb04"] {
                    o.hosts.insert(
                        h.into(),
                        HostObservation::Unreachable(format!("{h}: unreachable: refused")),
                    );
                }
            },
            Severity::Unknown,
            vec![
                (Severity::Unknown, Kind::Unreachable, "api", vec!["lb03"]),
                (Severity::Unknown, Kind::Unreachable, "api", vec!["lb04"]),
            ],
        ),
        (
            "unreachable host does not hide a split-brain elsewhere",
            |o| {
                o.hosts
                    .insert("lb02".into(), HostObservation::Unreachable("down".into()));
                host(o, "lb04").addresses.push(ip("10.9.0.110"));
                host(o, "lb04").addresses.push(ip("10.9.0.111"));
            },
            Severity::Critical,
            vec![
                (
                    Severity::Critical,
                    Kind::SplitBrain,
                    "api",
                    vec!["lb03", "lb04"],
                ),
                (Severity::Unknown, Kind::Unreachable, "web", vec!["lb02"]),
            ],
        ),
    ]
}

#[test]
fn scenarios_give_their_findings() {
    let plan = plan();
    for (name, change, status, want) in scenarios() {
        let mut obs = healthy();
        change(&mut obs);
        let report = judge(&plan, &obs);
        let got: Vec<(Severity, Kind, &str, Vec<&str>)> = report
            .findings
            .iter()
            .map(|f| {
                (
                    f.severity,
                    f.kind,
                    f.pair.as_str(),
                    f.hosts.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}: {:#?}", report.findings);
        assert_eq!(report.status, status, "{name}");
    }
}

#[test]
fn instance_reports_count_holders_and_masters() {
    let mut obs = healthy();
    host(&mut obs, "lb02").addresses.push(ip("10.9.0.100"));
    let report = judge(&plan(), &obs);
    let www = &report.instances[0];
    assert_eq!(www.holders, ["lb01", "lb02"]);
    assert_eq!(www.masters, ["lb01"]);
    assert_eq!(www.status, Severity::Critical);
    assert_eq!(report.instances[1].status, Severity::Ok);
}

#[test]
fn exit_codes_follow_nagios() {
    let codes: Vec<i32> = [
        Severity::Ok,
        Severity::Warning,
        Severity::Critical,
        Severity::Unknown,
    ]
    .iter()
    .map(|s| s.exit_code())
    .collect();
    assert_eq!(codes, [0, 1, 2, 3]);
}

/// The report shapes, checked against golden files in
/// `src/audit/testdata/` (`HACTL_UPDATE_GOLDEN=1` rewrites them).
#[test]
fn report_shapes_match_their_goldens() {
    let mut obs = healthy();
    host(&mut obs, "lb02").addresses.push(ip("10.9.0.100"));
    host(&mut obs, "lb02").agent = up("www", "MASTER");
    config(&mut obs, "lb04").advert_int = Duration::from_secs(2);
    let report = judge(&plan(), &obs);
    let run = report::RunInfo {
        finished: 1_790_000_000.5,
        duration_secs: 1.25,
    };
    let json = serde_json::to_string_pretty(&report::json(&report)).expect("json") + "\n";
    let cases = [
        ("nagios.txt", report::nagios(&report)),
        ("report.prom", report::prometheus(&report, run)),
        ("table.txt", report::table(&report)),
        ("report.json", json),
        ("nagios_ok.txt", report::nagios(&judge(&plan(), &healthy()))),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/audit/testdata");
    for (file, text) in cases {
        let path = dir.join(file);
        if std::env::var_os("HACTL_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&dir).expect("testdata dir");
            std::fs::write(&path, &text).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path).expect("golden exists");
        assert_eq!(text, want, "{file} differs from its golden");
    }
}

#[test]
fn nagios_line_shape() {
    let mut obs = healthy();
    host(&mut obs, "lb02").addresses.push(ip("10.9.0.100"));
    let text = report::nagios(&judge(&plan(), &obs));
    let first = text.lines().next().expect("a line");
    let (status, perf) = first.split_once(" | ").expect("perfdata after ' | '");
    assert!(
        status.starts_with("HACTL AUDIT CRITICAL - 1 split-brain"),
        "{status}"
    );
    for item in perf
        .split(' ')
        .filter(|p| !p.starts_with('\'') && !p.ends_with('\''))
    {
        let (label, rest) = item.split_once('=').expect("label=value");
        assert!(!label.is_empty());
        let value = rest.split(';').next().expect("value");
        assert!(
            value.parse::<f64>().is_ok() || label.ends_with('\''),
            "{item}"
        );
    }
    assert!(
        perf.contains("masters=1;;;0") && perf.contains("holders=2;;;0"),
        "{perf}"
    );
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("CRITICAL split_brain web/www [lb01,lb02]")),
        "{text}"
    );
}

#[test]
fn prometheus_textfile_is_well_formed() {
    let text = report::prometheus(
        &judge(&plan(), &healthy()),
        report::RunInfo {
            finished: 1.0,
            duration_secs: 0.5,
        },
    );
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap_or_default().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let name = series.split('{').next().unwrap_or_default();
        assert!(typed.iter().any(|t| t == name), "{name} has no TYPE line");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(text.contains("hactl_audit_instance_holders{pair=\"web\",instance=\"www\"} 1\n"));
    assert!(text.contains("hactl_audit_findings{kind=\"split_brain\"} 0\n"));
    assert!(text.contains("hactl_audit_status 0\n"));
}

/// Issue 11: virtual servers judged from the agents' status.
#[test]
fn virtual_servers_without_real_servers_below_quorum_or_drifting() {
    let text = INVENTORY.replace(
        "              - {name: www, vips: [10.9.0.100/24], master: lb01, vrid: 51}\n",
        "              - {name: www, vips: [10.9.0.100/24], master: lb01, vrid: 51}\n            hactl_virtual_servers:\n              - {address: 10.9.0.100, port: 80, lb_algo: rr, lb_kind: DR, quorum: 2, real_servers: [{address: 10.9.1.1}, {address: 10.9.1.2}]}\n",
    );
    let path = Path::new("inv.yaml");
    let root = yaml::load_str(&text, path).expect("yaml");
    let inv = Inventory::from_node(path, &root).expect("inventory");
    let plan = plan::resolve(&inv, &|_| None).expect("plan");
    let vs = |up: usize, table: &[&str]| super::judge::VirtualServerSeen {
        real_servers: 2,
        real_servers_up: up,
        alive_weight: up as u64,
        quorum: 2,
        quorum_up: up >= 2,
        table: table.iter().map(|t| t.to_string()).collect(),
    };
    let both = ["10.9.1.1:80=1", "10.9.1.2:80=1"];
    let with = |lb01: Option<super::judge::VirtualServerSeen>,
                lb02: Option<super::judge::VirtualServerSeen>| {
        let mut obs = healthy();
        for (h, v) in [("lb01", lb01), ("lb02", lb02)] {
            host(&mut obs, h).virtual_servers = v
                .map(|v| BTreeMap::from([("10.9.0.100 80 TCP".to_string(), v)]))
                .unwrap_or_default();
        }
        judge(&plan, &obs)
    };
    let vs_findings = |r: &super::judge::Report| -> Vec<(Kind, Severity, Vec<String>)> {
        r.findings
            .iter()
            .filter(|f| f.instance.is_none())
            .map(|f| (f.kind, f.severity, f.hosts.clone()))
            .collect()
    };

    let healthy_lvs = with(Some(vs(2, &both)), Some(vs(2, &both)));
    assert!(
        vs_findings(&healthy_lvs).is_empty(),
        "{:?}",
        healthy_lvs.findings
    );

    let r = with(Some(vs(0, &[])), Some(vs(0, &[])));
    assert_eq!(r.status, Severity::Critical);
    assert_eq!(r.count(Kind::NoRealServer), 2, "{:?}", r.findings);

    let r = with(Some(vs(1, &both[..1])), Some(vs(1, &both[..1])));
    assert_eq!(
        vs_findings(&r),
        [
            (
                Kind::BelowQuorum,
                Severity::Warning,
                vec!["lb01".to_string()]
            ),
            (
                Kind::BelowQuorum,
                Severity::Warning,
                vec!["lb02".to_string()]
            ),
        ]
    );

    // lb01 holds the VIP; lb02's table lacks a destination.
    let r = with(Some(vs(2, &both)), Some(vs(2, &both[..1])));
    let drift: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Drift)
        .collect();
    assert_eq!(drift.len(), 1, "{:?}", r.findings);
    assert_eq!(drift[0].hosts, ["lb01", "lb02"]);
    assert!(
        drift[0].detail.contains("lb01 (holds the VIP)"),
        "{}",
        drift[0].detail
    );

    let r = with(Some(vs(2, &both)), None);
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == Kind::Drift && f.detail.contains("lb02 runs no virtual server")),
        "{:?}",
        r.findings
    );
}
