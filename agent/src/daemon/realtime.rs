//! How the VRRP threads are scheduled: `vrrp_rt_priority`,
//! `vrrp_priority`, `vrrp_no_swap` and `vrrp_rlimit_rttime` as
//! keepalived.conf(5) gives them, and our default for fast adverts.
//!
//! The VRRP threads are the protocol loop (timers, adverts, state
//! machines) and the receive threads; scripts, the status and metrics
//! listeners, email and IPVS run on other threads at normal priority
//! (see [`super::tasks`]). Every policy is set with SCHED_RESET_ON_FORK,
//! so nothing the VRRP threads start inherits it.
//!
//! Default when `vrrp_rt_priority` is unset: keepalived stays SCHED_OTHER,
//! which is how a busy box starves its adverts (issue 13 measured 25 false
//! takeovers in 20 trials at 10 ms adverts under load, and takeover storms
//! when 200 instances start on both nodes at once). We use SCHED_RR at
//! [`AUTO_RT_PRIORITY`] (below the kernel's threaded interrupts at 50) with
//! an RLIMIT_RTTIME of [`AUTO_RTTIME_US`]: the VRRP threads sleep between
//! adverts, so they cost a busy box nothing but latency. Should one ever
//! run that long without sleeping, SIGXCPU returns the VRRP threads to
//! SCHED_OTHER (logged) rather than killing the daemon.
//! `vrrp_rt_priority 0` (ours) keeps keepalived's SCHED_OTHER.

use std::sync::OnceLock;

use crate::config::GlobalDefs;
use crate::sys;

use super::log;

/// SCHED_RR priority when vrrp_rt_priority is unset.
pub const AUTO_RT_PRIORITY: u8 = 10;
/// keepalived's default `vrrp_rlimit_rttime`, microseconds.
pub const RTTIME_US: u64 = 10_000;
/// Ours for the automatic policy: a 1000-instance takeover bursts.
pub const AUTO_RTTIME_US: u64 = 200_000;

/// The scheduling the VRRP threads run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// SCHED_RR priority; `None`: SCHED_OTHER.
    pub rt_priority: Option<u8>,
    pub nice: Option<i32>,
    pub rttime_us: u64,
    pub no_swap: bool,
    /// Chosen by us (no vrrp_rt_priority in the config).
    pub automatic: bool,
}

impl Policy {
    /// The policy of `global`.
    pub fn choose(global: &GlobalDefs) -> Policy {
        let automatic = global.vrrp_rt_priority.is_none();
        let rt_priority = match global.vrrp_rt_priority {
            None => Some(AUTO_RT_PRIORITY),
            Some(0) => None,
            Some(p) => Some(p),
        };
        let default_rttime = if automatic { AUTO_RTTIME_US } else { RTTIME_US };
        Policy {
            rt_priority,
            nice: global.vrrp_priority,
            rttime_us: global.vrrp_rlimit_rttime.unwrap_or(default_rttime),
            no_swap: global.vrrp_no_swap,
            automatic,
        }
    }
}

static POLICY: OnceLock<Policy> = OnceLock::new();

/// Process-wide settings, once at start: memory lock, RLIMIT_RTTIME and
/// the SIGXCPU fallback. Later calls (a reload) change nothing.
pub fn install(policy: Policy) {
    if POLICY.set(policy).is_err() {
        return;
    }
    if policy.no_swap
        && let Err(e) = sys::lock_memory()
    {
        log(&format!("vrrp_no_swap: cannot lock memory: {e}"));
    }
    if policy.rt_priority.is_some() {
        if let Err(e) = sys::limit_rttime(policy.rttime_us) {
            log(&format!("vrrp_rlimit_rttime: {e}"));
        }
        if let Err(e) = sys::demote_on_sigxcpu() {
            log(&format!("cannot handle SIGXCPU: {e}"));
        }
    }
}

/// Puts the calling thread under the installed policy (a VRRP thread).
pub fn enter_vrrp_thread(what: &str) {
    let Some(policy) = POLICY.get() else { return };
    if let Some(priority) = policy.rt_priority {
        match sys::set_round_robin(0, priority) {
            Ok(()) => sys::register_rt_thread(sys::thread_id()),
            Err(e) => log(&format!("{what}: cannot use SCHED_RR {priority}: {e}")),
        }
    }
    if let Some(nice) = policy.nice
        && let Err(e) = sys::set_thread_nice(nice)
    {
        log(&format!("{what}: cannot set vrrp_priority {nice}: {e}"));
    }
}

/// Set when SIGXCPU demoted the VRRP threads (until [`restore`]).
pub fn demoted() -> bool {
    sys::RT_DEMOTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// How long the VRRP threads stay SCHED_OTHER after a SIGXCPU before they
/// return to the policy: one overrun (a stalled virtual machine counts
/// its stolen ticks against the thread) must not cost real-time for good.
pub const DEMOTION_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// After a demotion: the VRRP threads under the policy again, the soft
/// RLIMIT_RTTIME back to its value (the kernel raises it by a second at
/// each SIGXCPU). Returns what to log.
pub fn restore() -> Option<String> {
    let policy = POLICY.get()?;
    let priority = policy.rt_priority?;
    if let Err(e) = sys::limit_rttime(policy.rttime_us) {
        return Some(format!("vrrp_rlimit_rttime: {e}"));
    }
    let mut failed = Vec::new();
    let threads = sys::rt_threads();
    for tid in &threads {
        if let Err(e) = sys::set_round_robin(*tid, priority) {
            failed.push(format!("thread {tid}: {e}"));
        }
    }
    sys::RT_DEMOTED.store(false, std::sync::atomic::Ordering::SeqCst);
    Some(if failed.is_empty() {
        format!(
            "the VRRP threads are SCHED_RR {priority} again ({} thread(s))",
            threads.len()
        )
    } else {
        format!(
            "cannot return the VRRP threads to SCHED_RR {priority}: {}",
            failed.join("; ")
        )
    })
}

/// One line saying how the VRRP threads run.
pub fn describe(policy: &Policy) -> String {
    let mut text = match policy.rt_priority {
        Some(p) => format!(
            "VRRP threads SCHED_RR {p}{} (RLIMIT_RTTIME {} us)",
            if policy.automatic {
                ", the default"
            } else {
                ""
            },
            policy.rttime_us
        ),
        None => "VRRP threads SCHED_OTHER".to_owned(),
    };
    if let Some(n) = policy.nice {
        text.push_str(&format!(", nice {n}"));
    }
    if policy.no_swap {
        text.push_str(", memory locked");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_unless_configured() {
        let auto = Policy::choose(&GlobalDefs::default());
        assert_eq!(auto.rt_priority, Some(AUTO_RT_PRIORITY));
        assert!(auto.automatic);
        assert_eq!(auto.rttime_us, AUTO_RTTIME_US);
        let off = Policy::choose(&GlobalDefs {
            vrrp_rt_priority: Some(0),
            ..GlobalDefs::default()
        });
        assert_eq!(off.rt_priority, None);
        let g = GlobalDefs {
            vrrp_rt_priority: Some(40),
            vrrp_priority: Some(-5),
            ..GlobalDefs::default()
        };
        let set = Policy::choose(&g);
        assert_eq!(set.rt_priority, Some(40));
        assert_eq!(set.nice, Some(-5));
        assert_eq!(set.rttime_us, RTTIME_US);
        assert!(!set.automatic);
    }
}
