//! Fuzz target `decode`: arbitrary bytes into the VRRP decoder and the IPv4
//! header parser of `hactl_agent::packet`.
//!
//! The first input byte picks the source/destination pair (IPv4 multicast,
//! IPv4 unicast, IPv6, or a mixed pair), the rest is the VRRP message. The
//! decoder must never panic, and whatever it accepts must encode and decode
//! back to the same advertisement. The same property runs in CI, seeded, in
//! `agent/tests/packet.rs`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hactl_agent::packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let v4_src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let v6_src = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    let (src, dst) = match selector % 4 {
        0 => (v4_src, IpAddr::V4(packet::VRRP_MULTICAST_V4)),
        1 => (v4_src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))),
        2 => (v6_src, IpAddr::V6(packet::VRRP_MULTICAST_V6)),
        _ => (v4_src, IpAddr::V6(packet::VRRP_MULTICAST_V6)),
    };
    if let Ok(advert) = packet::decode(bytes, src, dst) {
        let sent = advert.encode(src, dst).expect("a decoded advert encodes");
        assert_eq!(packet::decode(&sent, src, dst), Ok(advert));
    }
    let _ = packet::decode_ipv4_packet(bytes);
});
