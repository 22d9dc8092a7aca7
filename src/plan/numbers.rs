//! The allocation step of resolving: explicit VRIDs and groups checked for
//! clashes per segment, the rest drawn from the pools (`allocate.rs`).

use super::*;

impl Resolver<'_> {
    /// VRIDs unique per segment, multicast groups unique per pair on a
    /// segment; explicit values first, then the allocator.
    pub(super) fn allocate(&mut self, pairs: &mut [PairPlan], explicit: &[Explicit]) {
        let mut segments: Vec<String> = pairs
            .iter()
            .map(|p| p.segment.clone())
            .filter(|s| !s.is_empty())
            .collect();
        segments.sort();
        segments.dedup();
        for seg in segments {
            let idx: Vec<usize> = (0..pairs.len())
                .filter(|i| pairs[*i].segment == seg)
                .collect();
            // VRIDs.
            let mut taken: Vec<(u8, String, Origin)> = Vec::new();
            let mut wanted: Vec<(usize, usize, String)> = Vec::new();
            for &p in &idx {
                for (j, inst) in pairs[p].instances.iter().enumerate() {
                    let label = format!("{}/{}", pairs[p].name, inst.name);
                    match explicit[p].vrids.get(j).cloned().flatten() {
                        Some((vrid, origin)) => {
                            if let Some((_, other, oo)) = taken.iter().find(|(v, _, _)| *v == vrid)
                            {
                                let msg = format!(
                                    "VRID {vrid} of `{label}` is already used by `{other}` ({oo}) on {seg}"
                                );
                                self.err(Some(origin.clone()), "hactl_instances", msg);
                            }
                            taken.push((vrid, label, origin));
                        }
                        None => wanted.push((p, j, label)),
                    }
                }
            }
            let names: Vec<String> = wanted.iter().map(|w| w.2.clone()).collect();
            let used: Vec<u8> = taken.iter().map(|t| t.0).collect();
            match allocate::allocate(&names, &used, &allocate::vrid_pool()) {
                Some(vals) => {
                    for ((p, j, _), v) in wanted.iter().zip(vals) {
                        pairs[*p].instances[*j].vrid = v;
                    }
                }
                None => self.err(
                    None,
                    "hactl_instances",
                    format!("more than 255 VRRP instances on {seg}"),
                ),
            }
            // VIPs: one owner per address on a segment.
            let mut seen: Vec<(Ipv4Addr, String, Origin)> = Vec::new();
            for &p in &idx {
                for (j, inst) in pairs[p].instances.iter().enumerate() {
                    let origins = explicit[p].vip_origins.get(j);
                    for (k, vip) in inst.vips.iter().enumerate() {
                        let label = format!("{}/{}", pairs[p].name, inst.name);
                        let origin = origins.and_then(|o| o.get(k)).cloned();
                        if let Some((_, other, oo)) =
                            seen.iter().find(|(a, _, _)| *a == vip.address)
                        {
                            let msg = format!(
                                "VIP {} of `{label}` is already used by `{other}` ({oo})",
                                vip.address
                            );
                            self.err(origin.clone(), "hactl_instances", msg);
                        }
                        if let Some(o) = origin {
                            seen.push((vip.address, label, o));
                        }
                    }
                }
            }
            // Multicast groups.
            let mut taken: Vec<(Ipv4Addr, String, Origin)> = Vec::new();
            let mut wanted: Vec<usize> = Vec::new();
            for &p in &idx {
                match &explicit[p].mcast {
                    Some((g, origin)) => {
                        if let Some((_, other, oo)) = taken.iter().find(|(x, _, _)| x == g) {
                            let msg = format!(
                                "multicast group {g} of pair `{}` is already used by pair `{other}` ({oo}) on {seg}",
                                pairs[p].name
                            );
                            self.err(Some(origin.clone()), "hactl_mcast_group", msg);
                        }
                        taken.push((*g, pairs[p].name.clone(), origin.clone()));
                        pairs[p].mcast_group = *g;
                    }
                    None => wanted.push(p),
                }
            }
            let names: Vec<String> = wanted.iter().map(|p| pairs[*p].name.clone()).collect();
            let used: Vec<Ipv4Addr> = taken.iter().map(|t| t.0).collect();
            match allocate::allocate(&names, &used, &allocate::mcast_pool()) {
                Some(vals) => {
                    for (p, g) in wanted.iter().zip(vals) {
                        pairs[*p].mcast_group = g;
                    }
                }
                None => self.err(
                    None,
                    "hactl_mcast_group",
                    format!("no free multicast group left on {seg}; set hactl_mcast_group"),
                ),
            }
        }
    }
}
