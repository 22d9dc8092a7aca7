//! The kernel accepts what [`hactl_agent::ipvs`] encodes, and what it dumps
//! back decodes to the same table; `ipvsadm -Ln` (the tool operators read)
//! agrees.

use hactl_agent::config::{Family, Protocol};
use hactl_agent::ipvs::{
    Destination, Forward, Ipvs, SVC_F_HASHED, SVC_F_PERSISTENT, Service, ServiceKey,
};

use crate::support::netns::{Host, Segment};

#[track_caller]
fn open(host: &Host) -> Ipvs {
    host.in_netns(|| Ipvs::open().unwrap_or_else(|e| panic!("open ipvs: {e}")))
}

/// Our services as the kernel dumps them, without the bit it sets itself.
fn services(ipvs: &mut Ipvs) -> Vec<Service> {
    let mut s = ipvs.services().expect("dump services");
    for svc in &mut s {
        svc.flags &= !SVC_F_HASHED;
    }
    s.sort_by_key(|s| s.key);
    s
}

/// `ipvsadm -Ln` with every run of blanks made one space.
fn ipvsadm(host: &Host) -> String {
    host.run(&["ipvsadm", "-Ln"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn service(key: ServiceKey, scheduler: &str) -> Service {
    Service {
        key,
        scheduler: scheduler.to_owned(),
        flags: 0,
        timeout: 0,
        netmask: match key.family() {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        },
        pe_name: None,
    }
}

fn dest(address: &str, port: u16, forward: Forward, weight: u32) -> Destination {
    Destination {
        address: address.parse().expect("address"),
        port,
        forward,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

pub fn info_and_family() {
    let segment = Segment::new(1);
    let host = segment.host(0);
    let mut ipvs = open(host);
    assert_ne!(ipvs.family_id(), 0, "the controller gave IPVS an id");
    let info = ipvs.info().expect("get info");
    assert!(info.version >= 0x01_02_00, "IPVS version {info}");
    assert!(info.connection_table_size > 0, "{info}");
    assert!(
        ipvsadm(host).contains(&format!(
            "IP Virtual Server version {}",
            info.to_string().split(' ').next().unwrap_or_default()
        )),
        "ipvsadm shows the version GET_INFO gave"
    );
    assert!(
        services(&mut ipvs).is_empty(),
        "a new namespace has an empty table"
    );
}

pub fn services_and_destinations() {
    let segment = Segment::new(1);
    let host = segment.host(0);
    let mut ipvs = open(host);
    let key = ServiceKey::Inet {
        protocol: Protocol::Tcp,
        address: "10.0.0.1".parse().expect("ip"),
        port: 80,
    };
    let svc = service(key, "wlc");
    ipvs.new_service(&svc).expect("new service");
    assert_eq!(services(&mut ipvs), std::slice::from_ref(&svc));
    let again = ipvs.new_service(&svc).expect_err("a duplicate is refused");
    assert_eq!(again.errno(), Some(17), "EEXIST: {again}");

    let dests = [
        dest("10.0.1.1", 80, Forward::Masq, 1),
        dest("10.0.1.2", 8080, Forward::Route, 3),
        dest("10.0.1.3", 80, Forward::Tunnel, 0),
    ];
    for d in &dests {
        ipvs.new_destination(&key, d).expect("new dest");
    }
    let mut got: Vec<Destination> = ipvs
        .destinations(&key)
        .expect("dump dests")
        .into_iter()
        .map(|e| e.destination)
        .collect();
    got.sort_by_key(Destination::endpoint);
    assert_eq!(got, dests);
    let text = ipvsadm(host);
    for line in [
        "TCP 10.0.0.1:80 wlc",
        "-> 10.0.1.1:80 Masq 1",
        "-> 10.0.1.2:8080 Route 3",
        "-> 10.0.1.3:80 Tunnel 0",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }

    let mut changed = dests[1].clone();
    changed.weight = 7;
    ipvs.set_destination(&key, &changed).expect("set dest");
    let mut svc2 = svc.clone();
    svc2.scheduler = "rr".to_owned();
    ipvs.set_service(&svc2).expect("set service");
    assert_eq!(services(&mut ipvs), [svc2]);
    ipvs.del_destination(&key, &dests[0]).expect("del dest");
    let got: Vec<Destination> = ipvs
        .destinations(&key)
        .expect("dump dests")
        .into_iter()
        .map(|e| e.destination)
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&changed), "{got:?}");
    let gone = ipvs
        .del_destination(&key, &dests[0])
        .expect_err("deleted twice");
    assert_eq!(gone.errno(), Some(2), "ENOENT: {gone}");
    ipvs.del_service(&key).expect("del service");
    assert!(services(&mut ipvs).is_empty());
}

pub fn fwmark_persistence_and_ipv6() {
    let segment = Segment::new(1);
    let host = segment.host(0);
    let mut ipvs = open(host);
    let mut fwm = service(
        ServiceKey::Fwmark {
            family: Family::Ipv4,
            mark: 7,
        },
        "rr",
    );
    fwm.flags = SVC_F_PERSISTENT;
    fwm.timeout = 300;
    fwm.netmask = 24;
    let v6key = ServiceKey::Inet {
        protocol: Protocol::Udp,
        address: "fd00::50".parse().expect("ip"),
        port: 53,
    };
    let v6 = service(v6key, "sh");
    ipvs.new_service(&fwm).expect("fwmark service");
    ipvs.new_service(&v6).expect("ipv6 service");
    ipvs.new_destination(&fwm.key, &dest("10.0.2.1", 443, Forward::Route, 2))
        .expect("fwmark dest");
    ipvs.new_destination(&v6key, &dest("fd00::11", 53, Forward::Masq, 1))
        .expect("ipv6 dest");
    let mut want = vec![fwm.clone(), v6.clone()];
    want.sort_by_key(|s| s.key);
    assert_eq!(services(&mut ipvs), want);
    let text = ipvsadm(host);
    for line in [
        "FWM 7 rr persistent 300 mask 255.255.255.0",
        "-> 10.0.2.1:443",
        "UDP [fd00::50]:53 sh",
        "-> [fd00::11]:53",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}
