//! Deterministic allocation of VRIDs (per L2 segment) and multicast groups
//! (per pair, unique on a segment).
//!
//! Each value without an explicit number starts from a stable hash (FNV-1a)
//! of its name (`pair/instance` for a VRID, `pair` for a group) into the
//! pool, and probes forward to the first free value; names are served in
//! sorted order. The result depends only on the inventory's content, never on
//! hash-map order, and adding a pair moves no existing number unless two
//! names collide in the pool.
//!
//! Multicast pool: 224.0.0.152 - 224.0.0.250. Groups in 224.0.0.0/24 are
//! link-local (routers do not forward them, switches do not snoop them); the
//! IANA registry of that block lists 224.0.0.152-250 as unassigned, so the
//! pool avoids 224.0.0.0-22 (all-hosts, routers, OSPF, RIP, VRRP's own .18,
//! IGMPv3 .22, ...), .23-.151 (GLBP/HSRPv2 .102, PTP .107, Babel .111, ...)
//! and .251-.255 (mDNS, LLMNR, Teredo, experiments).

use std::net::Ipv4Addr;

/// The default multicast groups, in order.
pub fn mcast_pool() -> Vec<Ipv4Addr> {
    (152..=250)
        .map(|last| Ipv4Addr::new(224, 0, 0, last))
        .collect()
}

/// Every VRID (RFC 5798 5.2.3: 1-255).
pub fn vrid_pool() -> Vec<u8> {
    (1..=255).collect()
}

/// FNV-1a, 64 bits: stable across runs and platforms.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Allocate one value from `pool` for each name, skipping `taken` (the
/// explicit values on the segment). Returns values in the order of `names`,
/// or `None` when the pool runs out.
pub fn allocate<T: Copy + PartialEq>(names: &[String], taken: &[T], pool: &[T]) -> Option<Vec<T>> {
    let mut used: Vec<T> = taken.to_vec();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].cmp(&names[*b]));
    let mut out: Vec<Option<T>> = vec![None; names.len()];
    for i in order {
        if pool.is_empty() {
            return None;
        }
        let start = (stable_hash(&names[i]) % pool.len() as u64) as usize;
        let pick = (0..pool.len())
            .map(|k| pool[(start + k) % pool.len()])
            .find(|v| !used.contains(v))?;
        used.push(pick);
        out[i] = Some(pick);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allocation_is_deterministic_unique_and_respects_taken() {
        let pool = vrid_pool();
        let cases: &[(&[&str], &[u8])] = &[
            (&["a/www", "a/blog", "b/api"], &[]),
            (&["a/www", "a/blog", "b/api"], &[1, 2, 3]),
            (&["x/1", "x/2", "x/3", "x/4", "x/5"], &[10, 20]),
        ];
        for (n, taken) in cases {
            let got = allocate(&names(n), taken, &pool).unwrap();
            let again = allocate(&names(n), taken, &pool).unwrap();
            assert_eq!(got, again, "same input, same numbers");
            let mut all: Vec<u8> = got.iter().chain(taken.iter()).copied().collect();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), got.len() + taken.len(), "unique for {n:?}");
            // Input order does not change any name's number.
            let mut rev = names(n);
            rev.reverse();
            let got_rev = allocate(&rev, taken, &pool).unwrap();
            for (i, name) in rev.iter().enumerate() {
                let j = n.iter().position(|x| x == name).unwrap();
                assert_eq!(got_rev[i], got[j], "name {name}");
            }
        }
    }

    #[test]
    fn exhaustion_is_reported() {
        let pool = [1u8, 2];
        assert_eq!(
            allocate(&names(&["a", "b"]), &[], &pool).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(allocate(&names(&["a", "b"]), &[1], &pool), None);
    }

    #[test]
    fn mcast_pool_avoids_assigned_groups() {
        let pool = mcast_pool();
        for assigned in [0u8, 1, 2, 5, 6, 9, 18, 22, 102, 107, 251, 252, 253] {
            assert!(
                !pool.contains(&Ipv4Addr::new(224, 0, 0, assigned)),
                "{assigned}"
            );
        }
        assert_eq!(pool.len(), 99);
    }
}
