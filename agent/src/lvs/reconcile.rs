//! The difference between the table the config wants and the kernel's, as
//! the IPVS operations that close it.
//!
//! Rules (issue 11, keepalived's behaviour):
//! - a wanted service that is missing is created; one that differs in
//!   scheduler, flags, timeout or netmask is corrected in place;
//! - in a wanted service, destinations the pool does not want are
//!   removed, missing ones added, different ones (weight, forwarding,
//!   thresholds) changed; nothing else is touched, so a reload that
//!   changed one real server changes one destination;
//! - a service this agent created (the ownership ledger says so) that the
//!   config no longer wants is deleted; a service it did not create is
//!   never deleted, whatever it holds;
//! - at shutdown ([`release`]) the services of the ledger are deleted.
//!
//! Pure: both tables go in, [`Step`]s come out, in an order the kernel
//! accepts (services before their destinations, deletions last).

use std::collections::{BTreeMap, BTreeSet};

use crate::ipvs::{Destination, SVC_F_HASHED, Service, ServiceKey};

/// One table: each service with its destinations.
pub type Table = BTreeMap<ServiceKey, (Service, Vec<Destination>)>;

/// One IPVS operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    NewService(Service),
    SetService(Service),
    DelService(ServiceKey),
    NewDest(ServiceKey, Destination),
    SetDest(ServiceKey, Destination),
    DelDest(ServiceKey, Destination),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dest =
            |f: &mut std::fmt::Formatter<'_>, verb: &str, k: &ServiceKey, d: &Destination| {
                let at = match d.address {
                    std::net::IpAddr::V6(a) => format!("[{a}]:{}", d.port),
                    a => format!("{a}:{}", d.port),
                };
                write!(f, "{verb} {k} -> {at} {} weight {}", d.forward, d.weight)
            };
        match self {
            Step::NewService(s) => write!(f, "add {} {}", s.key, s.scheduler),
            Step::SetService(s) => write!(f, "change {} {}", s.key, s.scheduler),
            Step::DelService(k) => write!(f, "delete {k}"),
            Step::NewDest(k, d) => dest(f, "add", k, d),
            Step::SetDest(k, d) => dest(f, "change", k, d),
            Step::DelDest(k, d) => dest(f, "delete", k, d),
        }
    }
}

impl Step {
    pub fn key(&self) -> &ServiceKey {
        match self {
            Step::NewService(s) | Step::SetService(s) => &s.key,
            Step::DelService(k)
            | Step::NewDest(k, _)
            | Step::SetDest(k, _)
            | Step::DelDest(k, _) => k,
        }
    }
}

/// Whether the kernel's `have` already is the service `want` asks for.
fn same_service(want: &Service, have: &Service) -> bool {
    want.scheduler == have.scheduler
        && want.flags == have.flags & !SVC_F_HASHED
        && want.timeout == have.timeout
        && want.netmask == have.netmask
        && want.pe_name == have.pe_name
}

/// The steps from `kernel` to `wanted`; `owned` are the services this agent
/// created (the ledger).
pub fn diff(wanted: &Table, kernel: &Table, owned: &BTreeSet<ServiceKey>) -> Vec<Step> {
    let mut steps = Vec::new();
    for (key, (service, dests)) in wanted {
        let existing = match kernel.get(key) {
            None => {
                steps.push(Step::NewService(service.clone()));
                &[][..]
            }
            Some((have, have_dests)) => {
                if !same_service(service, have) {
                    steps.push(Step::SetService(service.clone()));
                }
                have_dests.as_slice()
            }
        };
        for d in dests {
            match existing.iter().find(|h| h.endpoint() == d.endpoint()) {
                None => steps.push(Step::NewDest(*key, d.clone())),
                Some(h) if h != d => steps.push(Step::SetDest(*key, d.clone())),
                Some(_) => {}
            }
        }
        for h in existing {
            if !dests.iter().any(|d| d.endpoint() == h.endpoint()) {
                steps.push(Step::DelDest(*key, h.clone()));
            }
        }
    }
    for key in kernel.keys() {
        if !wanted.contains_key(key) && owned.contains(key) {
            steps.push(Step::DelService(*key));
        }
    }
    steps
}

/// Shutdown: delete every service of `owned` that the kernel has.
pub fn release(kernel: &Table, owned: &BTreeSet<ServiceKey>) -> Vec<Step> {
    owned
        .iter()
        .filter(|k| kernel.contains_key(k))
        .map(|k| Step::DelService(*k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::ipvs::Forward;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            address: "10.0.0.50".parse().expect("ip"),
            port,
        }
    }

    fn service(port: u16, scheduler: &str) -> Service {
        Service {
            key: key(port),
            scheduler: scheduler.to_owned(),
            flags: 0,
            timeout: 0,
            netmask: 32,
            pe_name: None,
        }
    }

    fn dest(last: u8, weight: u32) -> Destination {
        Destination {
            address: std::net::IpAddr::from([10, 0, 1, last]),
            port: 80,
            forward: Forward::Masq,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    fn table(entries: Vec<(Service, Vec<Destination>)>) -> Table {
        entries.into_iter().map(|(s, d)| (s.key, (s, d))).collect()
    }

    #[test]
    fn an_empty_kernel_gets_services_then_destinations() {
        let wanted = table(vec![(service(80, "rr"), vec![dest(1, 1), dest(2, 2)])]);
        let steps = diff(&wanted, &Table::new(), &BTreeSet::new());
        assert_eq!(
            steps,
            [
                Step::NewService(service(80, "rr")),
                Step::NewDest(key(80), dest(1, 1)),
                Step::NewDest(key(80), dest(2, 2)),
            ]
        );
    }

    #[test]
    fn a_matching_table_needs_nothing_even_with_the_hashed_flag() {
        let wanted = table(vec![(service(80, "rr"), vec![dest(1, 1)])]);
        let mut kernel = wanted.clone();
        if let Some((s, _)) = kernel.get_mut(&key(80)) {
            s.flags |= SVC_F_HASHED;
        }
        assert!(diff(&wanted, &kernel, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn drift_is_corrected_and_stale_destinations_removed() {
        let wanted = table(vec![(service(80, "wlc"), vec![dest(1, 5), dest(3, 1)])]);
        let kernel = table(vec![(service(80, "rr"), vec![dest(1, 1), dest(2, 1)])]);
        assert_eq!(
            diff(&wanted, &kernel, &BTreeSet::new()),
            [
                Step::SetService(service(80, "wlc")),
                Step::SetDest(key(80), dest(1, 5)),
                Step::NewDest(key(80), dest(3, 1)),
                Step::DelDest(key(80), dest(2, 1)),
            ]
        );
    }

    #[test]
    fn only_owned_services_are_ever_deleted() {
        let wanted = Table::new();
        let kernel = table(vec![
            (service(80, "rr"), vec![dest(1, 1)]),
            (service(443, "rr"), vec![dest(1, 1)]),
        ]);
        let owned = BTreeSet::from([key(443)]);
        assert_eq!(diff(&wanted, &kernel, &owned), [Step::DelService(key(443))]);
        assert_eq!(release(&kernel, &owned), [Step::DelService(key(443))]);
        // Owned but already gone: nothing to do.
        assert!(release(&Table::new(), &owned).is_empty());
    }
}
