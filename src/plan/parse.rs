//! Small parsers and helpers of the plan: addresses with a prefix,
//! subnets, did-you-mean.

use std::net::Ipv4Addr;

use super::Vip;

/// An IPv4 address with a prefix length, `10.0.0.51/24`.
pub(crate) fn parse_cidr(s: &str) -> Option<Vip> {
    let (a, p) = s.split_once('/')?;
    let address: Ipv4Addr = a.trim().parse().ok()?;
    let prefix_len: u8 = p.trim().parse().ok()?;
    (prefix_len <= 32).then_some(Vip {
        address,
        prefix_len,
    })
}

pub(super) fn parse_vip(s: &str) -> Option<Vip> {
    parse_cidr(s)
}

/// The network address of `addr` under a prefix length.
pub fn network(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    };
    Ipv4Addr::from(u32::from(addr) & mask)
}

/// ` (did you mean `x`?)` for the closest candidate, or nothing.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let limit = 3.max(word.len() / 3);
    // The distance is at least the difference in length: a candidate that
    // differs by more than the limit cannot be the hint, and a long
    // mistyped value is not compared letter by letter with each of them.
    let best = candidates
        .iter()
        .filter(|c| c.chars().count().abs_diff(word.chars().count()) <= limit)
        .map(|c| (strsim::levenshtein(word, c), *c))
        .min();
    match best {
        Some((d, c)) if d <= limit => format!(" (did you mean `{c}`?)"),
        _ => String::new(),
    }
}
