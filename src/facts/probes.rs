//! Active probes: what only packets can tell, checked between the hosts of
//! a pair in one exchange ([`probe_pair`]).
//!
//! **VRRP reachability.** Every host of the pair opens a raw IP socket for
//! protocol 112 joined to the pair's multicast group on its interface; a
//! raw socket sees a packet only after the host's firewall input hooks
//! (unlike a capture), so a rule that drops VRRP shows as "not received".
//! Each host sends a few protocol-112 packets to the group, TTL 255 (RFC
//! 5798 5.1.1.3), with VRRP version 0 so every VRRP receiver discards them
//! (RFC 5798 7.1); a running keepalived or agent ignores them, and their
//! real adverts count as heard too.
//!
//! **Duplicate address.** The host that will master an instance sends ARP
//! requests for each of its VIPs on its interface; an answer means a host
//! on the segment holds the address (its MAC is reported; whether it is a
//! host of the pair is the caller's judgement). A VIP the host holds itself
//! is the caller's to exclude (its interfaces say so).
//!
//! The exchange tells the truth under load: no fixed sleep stands in for
//! readiness.
//!
//! ```text
//!  controller                 host A (python3)        host B (python3)
//!   spawn both ─────────────> sockets open            sockets open
//!   wait for both <────────── "ready"                 "ready"
//!   "go" to both ───────────> send 5 x over 0.8 s     send 5 x over 0.8 s
//!   <─ "heard B" / "arp VIP MAC" as they come ─────── "heard A"
//!   <─ "sent N" (sending done) ───────────────────── "sent N"
//!   every sender done + grace, or all heard ─> "stop" ─> "done"
//! ```
//!
//! A packet "not received" is a verdict only when both ends were ready, the
//! sender sent without error and the receiver listened until the grace
//! after the last packet; anything else (python3 missing, a host not ready
//! in time, a broken session) is [`VrrpReachability::CouldNotRun`] with the
//! host and the stage, never a firewall verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ssh::{HostSession, RemoteCommand};

/// The IPv4 multicast group of VRRP (RFC 5798 5.1.1.2).
pub const VRRP_MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// One end of the probe: argv LOCAL IFACE GROUP PEERS ARP_TARGETS WINDOW
/// LIMIT. Lines out: `ready`, then `heard ADDR`, `arp ADDR MAC`, `sent N
/// [ERROR]`, `done`; `error STAGE: WHY` (exit 2) when a socket cannot be
/// opened. Reads `go`, later `stop`, on stdin.
const PROBE: &str = r#"import select, socket, struct, sys, time
local, iface, group, peers, targets = sys.argv[1:6]
window, limit = float(sys.argv[6]), float(sys.argv[7])
peers = set(p for p in peers.split(",") if p)
targets = [t for t in targets.split(",") if t]
def out(*words):
    print(*words, flush=True)
try:
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(local))
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    tx.bind((local, 0))
    socks = [rx, sys.stdin]
    arp = None
    if targets:
        arp = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        arp.bind((iface, 0x0806))
        mac = arp.getsockname()[4]
        socks.append(arp)
except OSError as e:
    out("error sockets:", e)
    sys.exit(2)
def request(target):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(local), b"\0" * 6, socket.inet_aton(target))
    return b"\xff" * 6 + mac + b"\x08\x06" + body + b"\0" * 18
out("ready")
if sys.stdin.readline().strip() != "go":
    sys.exit(0)
start = time.monotonic()
rounds, sent, errors = 5, 0, []
found = set()
settle = None
while True:
    now = time.monotonic()
    if now - start > limit:
        break
    if rounds > 0 and now >= start + (5 - rounds) * window / 5:
        rounds -= 1
        try:
            tx.sendto(b"\x00\x00\x00\x00hactl-probe", (group, 0))
            sent += 1
        except OSError as e:
            errors.append(str(e))
        for t in targets:
            if t not in found:
                try:
                    arp.send(request(t))
                except OSError as e:
                    errors.append("arp: " + str(e))
        if rounds == 0:
            settle = now + 0.3
    if rounds == 0 and settle is not None and now >= settle:
        # ARP answers on a segment take milliseconds: those that come at
        # all have come, and are printed, before "sent".
        settle = None
        out("sent", sent, *(["error"] + errors[:1] if errors else []))
    wait = window / 5 if rounds > 0 else (0.05 if settle is not None else 0.5)
    ready = select.select(socks, [], [], wait)[0]
    if rx in ready:
        data, (addr, _) = rx.recvfrom(4096)
        if addr in peers:
            peers.discard(addr)
            out("heard", addr)
    if arp is not None and arp in ready:
        frame = arp.recv(128)
        if len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02":
            spa = socket.inet_ntoa(frame[28:32])
            if spa in targets and spa not in found:
                found.add(spa)
                out("arp", spa, ":".join("%02x" % b for b in frame[22:28]))
    if sys.stdin in ready:
        if sys.stdin.readline().strip() in ("stop", ""):
            break
out("done")
"#;

/// How long every end may take to open its sockets.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How long sending lasts (five rounds over it); each end then listens
/// 0.3 s more for ARP answers before it reports `sent`.
const WINDOW: Duration = Duration::from_millis(800);
/// How long receivers keep listening after the last sender is done.
const GRACE: Duration = Duration::from_millis(1500);
/// How long a sender may take to report its last round.
const SEND_LIMIT: Duration = Duration::from_secs(15);

/// One host of the pair, as the probe needs it.
#[derive(Debug, Clone)]
pub struct ProbeHost<'a> {
    pub session: &'a HostSession,
    /// The host's address on the VRRP interface (the packets' source).
    pub address: Ipv4Addr,
    pub interface: String,
    /// Addresses this host checks with ARP (VIPs it will master and does
    /// not hold itself).
    pub arp_targets: Vec<Ipv4Addr>,
}

/// What a receiver saw from one sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum VrrpReachability {
    Received,
    /// Both ends ran and nothing arrived; `sender_error` says why the
    /// sender failed, if it did (an output firewall rule makes `sendto`
    /// fail).
    NotReceived {
        sender_error: Option<String>,
    },
    /// The probe could not tell: which host, which stage, why.
    CouldNotRun {
        why: String,
    },
}

/// Whether an address is in use on a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AddressUse {
    Free,
    /// Another host answered for it; its MAC when known.
    InUse {
        mac: Option<String>,
    },
    /// The probing host has it on one of its interfaces.
    HeldLocally,
}

/// The verdicts of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairProbeReport {
    /// (sender, receiver) inventory names -> what the receiver saw.
    pub vrrp: BTreeMap<(String, String), VrrpReachability>,
    /// (host, address) -> whether it answered ARP, or why it could not be
    /// told.
    pub arp: BTreeMap<(String, Ipv4Addr), Result<AddressUse, String>>,
}

/// What one end printed, as events.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Ready,
    Heard(Ipv4Addr),
    Arp(Ipv4Addr, String),
    Sent {
        count: u32,
        error: Option<String>,
    },
    Done,
    /// The end failed: the stage and why.
    Failed(String),
}

/// Reads one line of the probe's output (pure).
fn parse_line(line: &str) -> Option<Event> {
    let mut words = line.split_whitespace();
    match words.next()? {
        "ready" => Some(Event::Ready),
        "heard" => words.next()?.parse().ok().map(Event::Heard),
        "arp" => {
            let address = words.next()?.parse().ok()?;
            Some(Event::Arp(address, words.next()?.to_ascii_lowercase()))
        }
        "sent" => {
            let count = words.next()?.parse().ok()?;
            let error = match words.next() {
                Some("error") => Some(words.collect::<Vec<_>>().join(" ")),
                _ => None,
            };
            Some(Event::Sent { count, error })
        }
        "done" => Some(Event::Done),
        "error" => Some(Event::Failed(words.collect::<Vec<_>>().join(" "))),
        _ => None,
    }
}

/// What the controller knows of one end.
#[derive(Debug, Default)]
struct End {
    ready: bool,
    heard: BTreeSet<Ipv4Addr>,
    arp: BTreeMap<Ipv4Addr, String>,
    sent: Option<(u32, Option<String>)>,
    /// Why this end stopped telling anything: host and stage.
    failed: Option<String>,
}

/// Runs the probe between every two hosts of a pair, and the ARP checks.
/// Needs python3 and root on every host.
pub async fn probe_pair(hosts: &[ProbeHost<'_>], group: Ipv4Addr) -> PairProbeReport {
    let (events_tx, mut events) = mpsc::unbounded_channel::<(usize, Event)>();
    let mut inputs = Vec::new();
    let mut ends: Vec<End> = hosts.iter().map(|_| End::default()).collect();
    let limit = READY_LIMIT + SEND_LIMIT + GRACE + WINDOW;
    for (index, host) in hosts.iter().enumerate() {
        let peers: Vec<String> = hosts
            .iter()
            .filter(|h| h.address != host.address)
            .map(|h| h.address.to_string())
            .collect();
        let targets: Vec<String> = host.arp_targets.iter().map(|a| a.to_string()).collect();
        let command = RemoteCommand::new(&[
            "python3".to_string(),
            "-c".into(),
            PROBE.into(),
            host.address.to_string(),
            host.interface.clone(),
            group.to_string(),
            peers.join(","),
            targets.join(","),
            format!("{:.3}", WINDOW.as_secs_f64()),
            format!("{:.3}", limit.as_secs_f64()),
        ])
        .become_(true)
        .named("vrrp probe");
        match host.session.spawn_interactive(&command).await {
            Ok((input, mut lines)) => {
                inputs.push(Some(input));
                let tx = events_tx.clone();
                let name = host.session.host().to_string();
                tokio::spawn(async move {
                    let mut last = Vec::new();
                    while let Some(line) = lines.next_line().await {
                        match parse_line(&line) {
                            Some(event) => {
                                let _ = tx.send((index, event));
                            }
                            None => last.push(line),
                        }
                    }
                    let status = lines.finish().await;
                    let why = match status {
                        Ok((Some(0), _)) => None,
                        Ok((status, stderr)) => Some(format!(
                            "{name}: the probe ended ({}){}",
                            match status {
                                Some(code) => format!("exit status {code}"),
                                None => "killed by a signal".into(),
                            },
                            if stderr.is_empty() {
                                String::new()
                            } else {
                                format!(": {stderr}")
                            }
                        )),
                        Err(e) => Some(e.to_string()),
                    };
                    let _ = tx.send((index, why.map_or(Event::Done, Event::Failed)));
                });
            }
            Err(e) => {
                inputs.push(None);
                ends[index].failed = Some(format!(
                    "{}: cannot start the probe: {e}",
                    host.session.host()
                ));
            }
        }
    }
    drop(events_tx);

    // Stage 1: every end ready.
    let deadline = Instant::now() + READY_LIMIT;
    while ends.iter().any(|e| !e.ready && e.failed.is_none()) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some((i, event))) => apply(&mut ends[i], hosts[i].session.host(), event, "start"),
            Ok(None) => break,
            Err(_) => {
                for (i, end) in ends.iter_mut().enumerate() {
                    if !end.ready && end.failed.is_none() {
                        end.failed = Some(format!(
                            "{}: not ready within {}s",
                            hosts[i].session.host(),
                            READY_LIMIT.as_secs()
                        ));
                    }
                }
            }
        }
    }
    // Stage 2: go, then listen until every sender is done and the grace
    // after the last one has passed, or everything has been heard.
    for (i, input) in inputs.iter_mut().enumerate() {
        if ends[i].ready
            && ends[i].failed.is_none()
            && let Some(input) = input
            && let Err(e) = input.send_line("go").await
        {
            ends[i].failed = Some(format!("{}: go: {e}", hosts[i].session.host()));
        }
    }
    let send_deadline = Instant::now() + SEND_LIMIT;
    let mut all_sent_at: Option<Instant> = None;
    loop {
        let running: Vec<usize> = (0..ends.len())
            .filter(|&i| ends[i].ready && ends[i].failed.is_none())
            .collect();
        let senders_done = running.iter().all(|&i| ends[i].sent.is_some());
        if senders_done && all_sent_at.is_none() {
            all_sent_at = Some(Instant::now());
        }
        // ARP answers are final once an end reports `sent` (it listens
        // for them before it does); only VRRP packets get the grace.
        let everything_heard = running.iter().all(|&i| {
            let end = &ends[i];
            hosts
                .iter()
                .filter(|h| h.address != hosts[i].address)
                .all(|h| end.heard.contains(&h.address))
        });
        if running.is_empty() || (everything_heard && senders_done) {
            break;
        }
        let wake = match all_sent_at {
            Some(at) => at + GRACE,
            None => send_deadline,
        };
        match tokio::time::timeout_at(wake, events.recv()).await {
            Ok(Some((i, event))) => apply(&mut ends[i], hosts[i].session.host(), event, "send"),
            Ok(None) => break,
            Err(_) if all_sent_at.is_some() => break,
            Err(_) => {
                for &i in &running {
                    if ends[i].sent.is_none() {
                        ends[i].failed = Some(format!(
                            "{}: did not finish sending within {}s",
                            hosts[i].session.host(),
                            SEND_LIMIT.as_secs()
                        ));
                    }
                }
            }
        }
    }
    for input in inputs.iter_mut().flatten() {
        let _ = input.send_line("stop").await;
        input.close().await;
    }
    let names: Vec<Member> = hosts
        .iter()
        .map(|h| Member {
            name: h.session.host().to_string(),
            address: h.address,
            arp_targets: h.arp_targets.clone(),
        })
        .collect();
    verdicts(&names, &ends)
}

/// A host of the exchange, by name.
struct Member {
    name: String,
    address: Ipv4Addr,
    arp_targets: Vec<Ipv4Addr>,
}

/// Files one event of end `host`.
fn apply(end: &mut End, host: &str, event: Event, stage: &str) {
    match event {
        Event::Ready => end.ready = true,
        Event::Heard(a) => {
            end.heard.insert(a);
        }
        Event::Arp(a, mac) => {
            end.arp.insert(a, mac);
        }
        Event::Sent { count, error } => end.sent = Some((count, error)),
        // An end that is done before it sent never took part.
        Event::Done if end.sent.is_none() && end.failed.is_none() => {
            end.failed = Some(format!("{host}: the probe ended during {stage}"));
        }
        Event::Done => {}
        Event::Failed(why) if end.failed.is_none() => {
            end.failed = Some(if why.starts_with(host) {
                why
            } else {
                format!("{host}: {stage}: {why}")
            });
        }
        Event::Failed(_) => {}
    }
}

/// The verdicts from what every end reported (pure).
fn verdicts(hosts: &[Member], ends: &[End]) -> PairProbeReport {
    let mut report = PairProbeReport::default();
    for (s, sender) in hosts.iter().enumerate() {
        for (r, receiver) in hosts.iter().enumerate() {
            if s == r {
                continue;
            }
            let (se, re) = (&ends[s], &ends[r]);
            let verdict = if re.heard.contains(&sender.address) {
                VrrpReachability::Received
            } else if let Some(why) = re.failed.as_ref().or(se.failed.as_ref()) {
                VrrpReachability::CouldNotRun { why: why.clone() }
            } else {
                match &se.sent {
                    Some((count, error)) if *count > 0 || error.is_some() => {
                        VrrpReachability::NotReceived {
                            sender_error: error.clone(),
                        }
                    }
                    _ => VrrpReachability::CouldNotRun {
                        why: format!("{}: sent nothing", sender.name),
                    },
                }
            };
            report
                .vrrp
                .insert((sender.name.clone(), receiver.name.clone()), verdict);
        }
        for target in &sender.arp_targets {
            let end = &ends[s];
            let verdict = match (end.arp.get(target), &end.failed, &end.sent) {
                (Some(mac), _, _) => Ok(AddressUse::InUse {
                    mac: Some(mac.clone()),
                }),
                (None, Some(why), _) => Err(why.clone()),
                (None, None, Some((_, None))) => Ok(AddressUse::Free),
                (None, None, Some((_, Some(e)))) => Err(format!("{}: arp: {e}", sender.name)),
                (None, None, None) => Err(format!("{}: sent nothing", sender.name)),
            };
            report.arp.insert((sender.name.clone(), *target), verdict);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines() {
        assert_eq!(parse_line("ready"), Some(Event::Ready));
        assert_eq!(
            parse_line("heard 10.0.0.2"),
            Some(Event::Heard(Ipv4Addr::new(10, 0, 0, 2)))
        );
        assert_eq!(
            parse_line("arp 10.0.0.50 AA:bb:cc:00:11:22"),
            Some(Event::Arp(
                Ipv4Addr::new(10, 0, 0, 50),
                "aa:bb:cc:00:11:22".into()
            ))
        );
        assert_eq!(
            parse_line("sent 5"),
            Some(Event::Sent {
                count: 5,
                error: None
            })
        );
        assert_eq!(
            parse_line("sent 0 error [Errno 1] Operation not permitted"),
            Some(Event::Sent {
                count: 0,
                error: Some("[Errno 1] Operation not permitted".into())
            })
        );
        assert_eq!(
            parse_line("error sockets: [Errno 1] Operation not permitted"),
            Some(Event::Failed(
                "sockets: [Errno 1] Operation not permitted".into()
            ))
        );
        assert_eq!(parse_line("heard nonsense"), None);
        assert_eq!(parse_line("Traceback (most recent call last):"), None);
    }

    #[test]
    fn a_missing_packet_is_a_verdict_only_when_both_ends_ran() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let vip = Ipv4Addr::new(10, 0, 0, 50);
        let end = |heard: &[Ipv4Addr], sent: Option<u32>, failed: Option<&str>| End {
            ready: failed.is_none(),
            heard: heard.iter().copied().collect(),
            arp: BTreeMap::new(),
            sent: sent.map(|n| (n, None)),
            failed: failed.map(str::to_string),
        };
        let members = [
            Member {
                name: "a".into(),
                address: a,
                arp_targets: vec![vip],
            },
            Member {
                name: "b".into(),
                address: b,
                arp_targets: vec![],
            },
        ];
        let judge = |ends: [End; 2]| {
            let report = verdicts(&members, &ends);
            let vrrp: Vec<(String, VrrpReachability)> = report
                .vrrp
                .into_iter()
                .map(|((s, r), v)| (format!("{s}->{r}"), v))
                .collect();
            (vrrp, report.arp.into_values().next())
        };
        let received = VrrpReachability::Received;
        let (vrrp, arp) = judge([end(&[b], Some(5), None), end(&[a], Some(5), None)]);
        assert_eq!(
            vrrp,
            [
                ("a->b".into(), received.clone()),
                ("b->a".into(), received.clone())
            ]
        );
        assert_eq!(arp, Some(Ok(AddressUse::Free)));
        let (vrrp, _) = judge([end(&[], Some(5), None), end(&[a], Some(5), None)]);
        assert_eq!(
            vrrp[1],
            (
                "b->a".into(),
                VrrpReachability::NotReceived { sender_error: None }
            )
        );
        let why = "b: not ready within 20s";
        let (vrrp, arp) = judge([end(&[], Some(5), None), end(&[], None, Some(why))]);
        let could_not = VrrpReachability::CouldNotRun { why: why.into() };
        assert_eq!(
            vrrp,
            [
                ("a->b".into(), could_not.clone()),
                ("b->a".into(), could_not)
            ]
        );
        assert_eq!(arp, Some(Ok(AddressUse::Free)), "a itself ran");
        let (vrrp, arp) = judge([
            end(&[], None, Some("a: start: python3: not found")),
            end(&[], Some(5), None),
        ]);
        assert!(
            matches!(&vrrp[0].1, VrrpReachability::CouldNotRun { why } if why.contains("python3"))
        );
        assert!(matches!(arp, Some(Err(why)) if why.contains("python3")));
    }
}
