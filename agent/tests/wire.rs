//! The agent's host-side I/O against a real kernel: VIPs added and removed
//! over rtnetlink, gratuitous ARP and unsolicited neighbour advertisements
//! moving a neighbour's cache entry, link events for `track_interface`.
//!
//! Every test builds its own segment of network namespaces
//! (`support::netns`) and checks the outcome with iproute2, the way an
//! operator would (`ip addr`, `ip neigh`). Runs as root.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::Duration;

use futures::{Stream, StreamExt};
use hactl_agent::gratuitous::{Announcer, ArpOperation};
use hactl_agent::netlink::{
    Change, Link, LinkEvent, LinkEvents, LinkStates, Netlink, NetlinkError, OperState, Scope, Vip,
};
use support::netns::{Host, Segment, format_mac, wait_until};

const DEADLINE: Duration = Duration::from_secs(5);
const PORT: u16 = 7099;

#[track_caller]
fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the wire tests build network namespaces: run them as root"
    );
}

/// Adds `vip` to `host`'s eth0 through the agent's netlink module.
#[track_caller]
fn add_vip(host: &Host, vip: &Vip) -> Change {
    host.block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        netlink.add_address("eth0", vip).await.expect("add VIP")
    })
}

#[track_caller]
fn remove_vip(host: &Host, vip: &Vip) -> Change {
    host.block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        netlink
            .remove_address("eth0", vip)
            .await
            .expect("remove VIP")
    })
}

/// Sends one datagram from `from` to `to`, which makes `from` resolve `to`
/// in its neighbour table.
#[track_caller]
fn send_datagram(from: &Host, to: IpAddr) {
    from.in_netns(|| {
        let any: IpAddr = if to.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind((any, 0)).expect("bind UDP");
        // The first datagram may wait in the neighbour queue: that is fine.
        let _ = socket.send_to(b"hactl", (to, PORT));
    });
}

/// A UDP socket bound to `address:PORT` in `host`'s namespace.
#[track_caller]
fn listen(host: &Host, address: IpAddr) -> UdpSocket {
    host.in_netns(|| {
        let socket = UdpSocket::bind((address, PORT)).expect("bind UDP on the VIP");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        socket
    })
}

/// Whether a datagram from `from` to `vip` reaches `listener` (resent
/// until it does or the deadline passes).
#[track_caller]
fn datagram_reaches(from: &Host, vip: IpAddr, listener: &UdpSocket) {
    wait_until(DEADLINE, &format!("a datagram to {vip} to arrive"), || {
        send_datagram(from, vip);
        let mut buffer = [0u8; 16];
        matches!(listener.recv_from(&mut buffer), Ok((5, _)) if &buffer[..5] == b"hactl")
    });
}

#[test]
fn link_lookup_reports_index_mac_and_state() {
    require_root();
    let segment = Segment::new(1);
    let host = segment.host(0);
    let (eth0, missing) = host.block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        (
            netlink.link("eth0").await.expect("eth0"),
            netlink.link("nosuch0").await,
        )
    });
    let index: u32 = host
        .run(&["cat", "/sys/class/net/eth0/ifindex"])
        .trim()
        .parse()
        .expect("ifindex");
    assert_eq!(eth0.index, index);
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.mac, Some(host.mac("eth0")));
    assert!(eth0.is_up(), "{eth0:?}");
    match missing {
        Err(error @ NetlinkError::NoSuchInterface { .. }) => {
            assert_eq!(error.to_string(), "interface nosuch0 does not exist");
        }
        other => panic!("expected NoSuchInterface, got {other:?}"),
    }
}

#[test]
fn ipv4_vip_add_and_remove_are_idempotent() {
    require_root();
    let segment = Segment::new(1);
    let host = segment.host(0);
    let address = IpAddr::V4(Segment::ipv4(100));
    let vip = Vip {
        label: Some("eth0:vip".into()),
        ..Vip::new(address)
    };
    let count = |host: &Host| {
        host.addresses("eth0")
            .iter()
            .filter(|entry| **entry == (address, 32))
            .count()
    };

    assert_eq!(add_vip(host, &vip), Change::Done);
    assert_eq!(count(host), 1, "ip addr: {:?}", host.addresses("eth0"));
    assert_eq!(add_vip(host, &vip), Change::Unchanged);
    assert_eq!(count(host), 1, "added twice: {:?}", host.addresses("eth0"));

    let (listed, held) = host.block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        (
            netlink.addresses("eth0").await.expect("list"),
            netlink.has_address("eth0", address).await.expect("has"),
        )
    });
    assert!(held);
    let entry = listed
        .iter()
        .find(|entry| entry.address == address)
        .expect("VIP listed");
    assert_eq!(entry.prefix_len, 32);
    assert_eq!(entry.label.as_deref(), Some("eth0:vip"));
    assert_eq!(entry.scope, Some(Scope::Global));
    // The host's own address is listed beside it.
    assert!(
        listed
            .iter()
            .any(|entry| entry.address == IpAddr::V4(host.ipv4()))
    );

    assert_eq!(remove_vip(host, &vip), Change::Done);
    assert_eq!(count(host), 0, "still there: {:?}", host.addresses("eth0"));
    assert_eq!(remove_vip(host, &vip), Change::Unchanged);
    // The host's own address is untouched.
    assert!(
        host.addresses("eth0")
            .contains(&(IpAddr::V4(host.ipv4()), 24))
    );
}

#[test]
fn ipv6_vip_add_and_remove_are_idempotent_and_skip_dad() {
    require_root();
    let segment = Segment::new(1);
    let host = segment.host(0);
    let address = IpAddr::V6(Segment::ipv6(0x100));
    let vip = Vip::with_prefix(address, 64);

    assert_eq!(add_vip(host, &vip), Change::Done);
    assert!(host.addresses("eth0").contains(&(address, 64)));
    assert_eq!(add_vip(host, &vip), Change::Unchanged);
    let listed = host.block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        netlink.addresses("eth0").await.expect("list")
    });
    let entry = listed
        .iter()
        .find(|entry| entry.address == address)
        .expect("VIP listed");
    assert!(!entry.tentative, "a VIP must be usable at once: {entry:?}");
    let shown = host.run(&["ip", "-6", "addr", "show", "dev", "eth0"]);
    let line = shown
        .lines()
        .find(|line| line.contains(&format!("{address}/64")))
        .expect("VIP shown by ip");
    assert!(!line.contains("tentative"), "{shown}");

    assert_eq!(remove_vip(host, &vip), Change::Done);
    assert!(!host.addresses("eth0").contains(&(address, 64)));
    assert_eq!(remove_vip(host, &vip), Change::Unchanged);
}

#[test]
fn vip_on_a_missing_interface_names_it() {
    require_root();
    let segment = Segment::new(1);
    let error = segment.host(0).block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        netlink
            .add_address("nosuch0", &Vip::new(IpAddr::V4(Segment::ipv4(100))))
            .await
            .expect_err("no such interface")
    });
    assert_eq!(error.to_string(), "interface nosuch0 does not exist");
}

#[test]
fn gratuitous_arp_moves_the_neighbour_entry() {
    require_root();
    let segment = Segment::new(3);
    let (a, b, c) = (segment.host(0), segment.host(1), segment.host(2));
    // Linux creates an entry from a gratuitous ARP only with arp_accept.
    c.sysctl("net.ipv4.conf.all.arp_accept", "1");
    let address = Segment::ipv4(100);
    let vip = Vip::new(IpAddr::V4(address));
    let (mac_a, mac_b) = (a.mac("eth0"), b.mac("eth0"));
    assert_eq!(c.neighbour(address.into()), None);

    assert_eq!(add_vip(a, &vip), Change::Done);
    a.in_netns(|| {
        let announcer = Announcer::open("eth0").expect("packet socket on A");
        assert_eq!(announcer.mac(), mac_a);
        wait_until(DEADLINE, "C to learn the VIP at A's MAC", || {
            announcer.announce(address.into()).expect("announce from A");
            c.neighbour(address.into()) == Some(mac_a)
        });
    });

    // Failover: A lets go, B takes over and announces with a reply this time.
    assert_eq!(remove_vip(a, &vip), Change::Done);
    assert_eq!(add_vip(b, &vip), Change::Done);
    assert_eq!(
        c.neighbour(address.into()),
        Some(mac_a),
        "moved before B announced"
    );
    b.in_netns(|| {
        let announcer = Announcer::open("eth0").expect("packet socket on B");
        wait_until(
            DEADLINE,
            &format!("C to move the VIP to B's MAC {}", format_mac(mac_b)),
            || {
                announcer
                    .send_arp(address, ArpOperation::Reply)
                    .expect("announce from B");
                c.neighbour(address.into()) == Some(mac_b)
            },
        );
    });

    let listener = listen(b, address.into());
    datagram_reaches(c, address.into(), &listener);
}

#[test]
fn unsolicited_na_moves_the_neighbour_entry() {
    require_root();
    let segment = Segment::new(3);
    let (a, b, c) = (segment.host(0), segment.host(1), segment.host(2));
    let address = Segment::ipv6(0x100);
    let vip = Vip::with_prefix(IpAddr::V6(address), 64);
    let (mac_a, mac_b) = (a.mac("eth0"), b.mac("eth0"));

    // RFC 4861 7.2.5: an unsolicited NA only updates an existing entry, so
    // C first talks to the VIP while A holds it.
    assert_eq!(add_vip(a, &vip), Change::Done);
    let on_a = listen(a, address.into());
    datagram_reaches(c, address.into(), &on_a);
    assert_eq!(c.neighbour(address.into()), Some(mac_a));

    assert_eq!(remove_vip(a, &vip), Change::Done);
    assert_eq!(add_vip(b, &vip), Change::Done);
    assert_eq!(
        c.neighbour(address.into()),
        Some(mac_a),
        "moved before B announced"
    );
    b.in_netns(|| {
        let announcer = Announcer::open("eth0")
            .expect("packet socket on B")
            .with_router_flag(false);
        wait_until(
            DEADLINE,
            &format!("C to move the VIP to B's MAC {}", format_mac(mac_b)),
            || {
                announcer.announce(address.into()).expect("announce from B");
                c.neighbour(address.into()) == Some(mac_b)
            },
        );
    });

    let on_b = listen(b, address.into());
    datagram_reaches(c, address.into(), &on_b);
}

/// The next transition of eth0, which must say the link is `up` (or not):
/// transitions carry no repeats, so anything else is a wrong report.
async fn eth0_becomes(events: &mut (impl Stream<Item = LinkEvent> + Unpin), up: bool) -> Link {
    let state = if up { "up" } else { "down" };
    let wait = async {
        loop {
            match events.next().await {
                Some(LinkEvent::Changed(link)) if link.name == "eth0" => return link,
                Some(other) if other.name() == "eth0" => panic!("eth0 removed: {other:?}"),
                Some(_) => {}
                None => panic!("link event stream ended"),
            }
        }
    };
    let link = tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no event saying eth0 is {state}"));
    assert_eq!(link.is_up(), up, "expected eth0 {state}: {link:?}");
    link
}

#[test]
fn link_transitions_follow_admin_and_carrier_changes() {
    require_root();
    let segment = Segment::new(1);
    let host = segment.host(0);
    host.block_on(|| async {
        let netlink = Netlink::open().expect("netlink socket");
        let eth0 = netlink.link("eth0").await.expect("eth0");
        assert!(eth0.is_up());
        let mut events = LinkEvents::open()
            .expect("link events")
            .transitions(LinkStates::with_links([&eth0]));

        host.link_set(false);
        let down = eth0_becomes(&mut events, false).await;
        assert!(!down.admin_up, "{down:?}");

        host.link_set(true);
        let up = eth0_becomes(&mut events, true).await;
        assert!(up.admin_up && up.running, "{up:?}");

        // Cable pulled: the bridge side goes down, eth0 stays admin up.
        segment.port_set(0, false);
        let unplugged = eth0_becomes(&mut events, false).await;
        assert!(unplugged.admin_up && !unplugged.running, "{unplugged:?}");
        // Down or lower layer down, depending on whether the peer's index
        // happens to equal eth0's (the kernel compares the two).
        assert!(
            matches!(
                unplugged.oper_state,
                OperState::Down | OperState::LowerLayerDown
            ),
            "{unplugged:?}"
        );

        segment.port_set(0, true);
        eth0_becomes(&mut events, true).await;
    });
}

#[test]
fn segment_is_removed_with_its_processes_when_a_test_panics() {
    require_root();
    let mut names = Vec::new();
    let mut pids = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let segment = Segment::new(2);
        names.extend(
            segment
                .hosts()
                .iter()
                .map(|host| host.namespace().to_owned()),
        );
        let host = segment.host(1);
        let spawned = host.spawn(&["sleep", "60"]);
        pids.push(spawned.pid());
        // A process the test did not keep a handle on: only the segment's
        // guard knows it, through the namespace.
        let orphan = host.run(&["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"]);
        pids.push(orphan.trim().parse().expect("orphan PID"));
        let listed = std::process::Command::new("ip")
            .args(["netns", "pids", host.namespace()])
            .output()
            .expect("ip netns pids");
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        for pid in &pids {
            assert!(
                listed.split_whitespace().any(|p| p == pid.to_string()),
                "{pid} not in {listed}"
            );
        }
        panic!("test failure inside a segment");
    }));
    assert!(outcome.is_err());
    assert_eq!(names.len(), 2);
    let left = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned();
    for name in &names {
        assert!(
            !left.split_whitespace().any(|word| word == name),
            "{name} left behind: {left}"
        );
    }
    for pid in pids {
        wait_until(DEADLINE, &format!("process {pid} to end"), || {
            // Gone, or a zombie waiting for init to reap it.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    stat.rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(true)
        });
    }
}
