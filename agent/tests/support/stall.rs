//! How late the machine itself wakes a real-time thread: one probe thread
//! per CPU, pinned, SCHED_RR at the agent's default priority, waking every
//! millisecond on an absolute deadline and recording each wake-up later
//! than [`RECORDED`].
//!
//! On a virtual machine the hypervisor may stop every vCPU at once for tens
//! of milliseconds (steal time): measured here under load, such probes saw
//! 28-92 ms stalls on both vCPUs at the same instant. No program inside can
//! send an advert then, so a load test tells the agent's lateness from the
//! platform's by asking the probes what they saw when a transition happened.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, ClockNanosleepFlags, clock_gettime, clock_nanosleep};
use nix::unistd::{Pid, gettid};

/// Wake-ups at least this late are kept.
pub const RECORDED: Duration = Duration::from_millis(5);
const PERIOD: Duration = Duration::from_millis(1);

/// One late wake-up: when the probe woke (CLOCK_MONOTONIC, ns, as the
/// agent's transition records) and how late.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub cpu: usize,
    pub woke_ns: u64,
    pub late: Duration,
}

impl Stall {
    /// When the probe should have woken: the stall's start.
    pub fn started_ns(&self) -> u64 {
        self.woke_ns.saturating_sub(self.late.as_nanos() as u64)
    }
}

pub fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

pub struct StallProbe {
    stop: Arc<AtomicBool>,
    stalls: Arc<Mutex<Vec<Stall>>>,
    threads: Vec<JoinHandle<()>>,
}

impl StallProbe {
    /// One probe per CPU at SCHED_RR `priority` (set with chrt(1)).
    pub fn start(priority: u8) -> StallProbe {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let stop = Arc::new(AtomicBool::new(false));
        let stalls = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..cpus)
            .map(|cpu| {
                let (stop, stalls) = (Arc::clone(&stop), Arc::clone(&stalls));
                std::thread::spawn(move || probe(cpu, priority, &stop, &stalls))
            })
            .collect();
        StallProbe {
            stop,
            stalls,
            threads,
        }
    }

    /// Ends the probes (what they recorded stays).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Every stall so far.
    pub fn stalls(&self) -> Vec<Stall> {
        self.stalls.lock().expect("stalls").clone()
    }

    /// The longest stall that overlaps `[from_ns, to_ns]`: a probe stopped
    /// from `woke_ns - late` to `woke_ns`. A stall is recorded when it ends,
    /// so one that stopped the master's vCPU may end well after the
    /// backup's takeover that it caused (seen here: 100 ms on one vCPU, the
    /// takeover 36 ms into it).
    pub fn worst_overlapping(&self, from_ns: u64, to_ns: u64) -> Option<Stall> {
        self.stalls()
            .into_iter()
            .filter(|s| s.started_ns() <= to_ns && s.woke_ns >= from_ns)
            .max_by_key(|s| s.late)
    }
}

impl Drop for StallProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn probe(cpu: usize, priority: u8, stop: &AtomicBool, stalls: &Mutex<Vec<Stall>>) {
    let tid = gettid();
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
    let rr = Command::new("chrt")
        .args(["--rr", "--pid", &priority.to_string(), &tid.to_string()])
        .status();
    assert!(
        rr.is_ok_and(|s| s.success()),
        "chrt --rr {priority} for the stall probe"
    );
    let mut next = monotonic_ns();
    let period = PERIOD.as_nanos() as u64;
    while !stop.load(Ordering::Relaxed) {
        next += period;
        let at = TimeSpec::new((next / 1_000_000_000) as i64, (next % 1_000_000_000) as i64);
        let _ = clock_nanosleep(
            ClockId::CLOCK_MONOTONIC,
            ClockNanosleepFlags::TIMER_ABSTIME,
            &at,
        );
        let now = monotonic_ns();
        let late = Duration::from_nanos(now.saturating_sub(next));
        if late >= RECORDED {
            stalls.lock().expect("stalls").push(Stall {
                cpu,
                woke_ns: now,
                late,
            });
            next = now;
        }
    }
}
