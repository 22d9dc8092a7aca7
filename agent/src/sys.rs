//! The agent's `unsafe` code, kept in one place so it can be read in one go.
//!
//! Each block carries a `// SAFETY:` note. Everything here wraps a C
//! structure or call that the safe crates (socket2, nix) leave to the caller.

use std::mem::size_of;

use nix::libc;
use socket2::{SockAddr, SockAddrStorage, socklen_t};

/// `struct sockaddr_ll` (packet(7)) for sending a whole Ethernet frame out
/// of interface `ifindex`. `protocol` is the frame's ethertype in host order
/// and `destination` its destination MAC; the kernel takes the frame as
/// written and uses these only to route it to the driver.
pub(crate) fn link_layer_address(ifindex: u32, protocol: u16, destination: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `SockAddrStorage` is a `sockaddr_storage`, larger than and
    // aligned for `sockaddr_ll` (view_as asserts the size); the storage is
    // zeroed, which is a valid `sockaddr_ll`.
    let address = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol.to_be();
    // Interface indexes are positive `int`s in the kernel; an index beyond
    // i32::MAX cannot name an interface and becomes 0, which the kernel
    // refuses with ENXIO instead of sending anywhere.
    address.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
    address.sll_halen = 6;
    address.sll_addr[..6].copy_from_slice(&destination);
    let length = size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: the family is AF_PACKET and the storage holds a fully
    // initialised `sockaddr_ll` of exactly `length` bytes.
    unsafe { SockAddr::new(storage, length) }
}

// ===== scheduling (daemon::realtime) =====

/// sched(7): children (threads too) of a thread with this flag start
/// SCHED_OTHER at nice 0, so scripts and helper threads never inherit the
/// VRRP threads' real-time policy.
const SCHED_RESET_ON_FORK: libc::c_int = 0x4000_0000;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of
/// /proc/PID/stat's CPU times.
pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a constant of the C library.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100)
}

/// The calling thread's id (gettid(2)).
pub(crate) fn thread_id() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    libc::pid_t::try_from(tid).unwrap_or(0)
}

/// Puts thread `tid` (0: the caller) under SCHED_RR at `priority`, or back
/// under SCHED_OTHER when `priority` is 0; both with SCHED_RESET_ON_FORK.
pub(crate) fn set_round_robin(tid: libc::pid_t, priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    let policy = if priority == 0 {
        libc::SCHED_OTHER
    } else {
        libc::SCHED_RR
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; the
    // kernel only reads it. A tid of 0 names the calling thread.
    let rc =
        unsafe { libc::sched_setscheduler(tid, policy | SCHED_RESET_ON_FORK, &raw const param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The nice value of the calling thread (Linux: setpriority on a tid).
pub(crate) fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    let tid = libc::id_t::try_from(thread_id()).unwrap_or(0);
    // SAFETY: plain syscall wrapper on integers.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One malloc arena for the whole process: glibc otherwise gives each
/// thread that allocates (the protocol thread, the I/O thread, checkers)
/// its own heap, each with its own touched pages. The daemon allocates
/// little after start, so the shared lock costs nothing measurable; its
/// resident memory is the target (issue 13: 6 MB at 200 instances).
/// Call before the first thread starts.
pub(crate) fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt takes two integers and changes only malloc tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// mlockall(MCL_CURRENT | MCL_FUTURE): no page of the daemon is swapped.
pub(crate) fn lock_memory() -> std::io::Result<()> {
    // SAFETY: plain syscall wrapper on integer flags.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// RLIMIT_RTTIME: `soft_us` of CPU without a blocking call raises SIGXCPU
/// (the hard limit, which would SIGKILL, stays unlimited).
pub(crate) fn limit_rttime(soft_us: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft_us,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &raw const limit) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The threads [`demote_on_sigxcpu`] returns to SCHED_OTHER.
static RT_THREADS: [std::sync::atomic::AtomicI32; 16] =
    [const { std::sync::atomic::AtomicI32::new(0) }; 16];
/// Set by the SIGXCPU handler: the daemon logs it once.
pub(crate) static RT_DEMOTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Remembers thread `tid` as real-time, for the SIGXCPU handler.
pub(crate) fn register_rt_thread(tid: libc::pid_t) {
    use std::sync::atomic::Ordering;
    for slot in &RT_THREADS {
        if slot
            .compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

extern "C" fn on_sigxcpu(_: libc::c_int) {
    use std::sync::atomic::Ordering;
    let param = libc::sched_param { sched_priority: 0 };
    for slot in &RT_THREADS {
        let tid = slot.load(Ordering::SeqCst);
        if tid != 0 {
            // SAFETY: sched_setscheduler is a bare system call (no locks,
            // no allocation), safe in a signal handler; `param` lives on
            // this frame.
            unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &raw const param) };
        }
    }
    RT_DEMOTED.store(true, Ordering::SeqCst);
}

/// The registered real-time threads (for [`demote_on_sigxcpu`]'s undo).
pub(crate) fn rt_threads() -> Vec<libc::pid_t> {
    use std::sync::atomic::Ordering;
    RT_THREADS
        .iter()
        .map(|slot| slot.load(Ordering::SeqCst))
        .filter(|tid| *tid != 0)
        .collect()
}

/// SIGXCPU (RLIMIT_RTTIME reached: a real-time thread ran without
/// blocking for too long) returns every registered thread to SCHED_OTHER
/// instead of killing the daemon.
pub(crate) fn demote_on_sigxcpu() -> std::io::Result<()> {
    // SAFETY: the handler only makes async-signal-safe system calls and
    // atomic stores; `action` is fully initialised before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigxcpu as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&raw mut action.sa_mask);
        if libc::sigaction(libc::SIGXCPU, &raw const action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A timerfd that owns its descriptor, for tokio's reactor.
pub struct Timer(nix::sys::timerfd::TimerFd);

impl std::os::fd::AsRawFd for Timer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd as _;
        self.0.as_fd().as_raw_fd()
    }
}

impl Timer {
    pub fn get(&self) -> &nix::sys::timerfd::TimerFd {
        &self.0
    }
}

/// Registers `timer` with the current tokio reactor.
pub fn register_timer(
    timer: nix::sys::timerfd::TimerFd,
) -> std::io::Result<tokio::io::unix::AsyncFd<Timer>> {
    // SAFETY: `Timer` owns the descriptor (it closes when the TimerFd
    // drops, with the AsyncFd), and `as_raw_fd` always returns that one
    // descriptor: it stays open and the same for the AsyncFd's lifetime.
    unsafe { tokio::io::unix::AsyncFd::register(Timer(timer)) }.map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_ll_fields_are_in_kernel_order() {
        let address = link_layer_address(7, 0x0806, [0xff; 6]);
        assert_eq!(address.family(), libc::AF_PACKET as libc::sa_family_t);
        assert_eq!(address.len() as usize, size_of::<libc::sockaddr_ll>());
        // SAFETY: `as_ptr` points at the storage, which holds the
        // `sockaddr_ll` written above.
        let raw = unsafe { &*address.as_ptr().cast::<libc::sockaddr_ll>() };
        assert_eq!(raw.sll_protocol, 0x0806u16.to_be());
        assert_eq!(raw.sll_ifindex, 7);
        assert_eq!(raw.sll_halen, 6);
        assert_eq!(raw.sll_addr, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
}
