//! The pool: one master connection per host, opened on first use and kept
//! for the run, and the fan-out that works on many hosts at once with at
//! most `forks` in flight. One host's failure is recorded in its result and
//! the other hosts go on (ripgrep's habit: report, set the exit code, keep
//! going).
//!
//! ```text
//!  Pool ── control dir /tmp/hactl-ssh-PID-N/ (0700)
//!   ├─ lb1 ── MasterHandle (socket 0, pid) ── HostSession ── commands
//!   ├─ lb2 ── MasterHandle (socket 1, pid) ── HostSession ── commands
//!   └─ ...    every master stopped on drop, on close_all, on Ctrl-C
//! ```

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};

use super::master::{self, ControlDir, MasterHandle};
use super::{HostSession, SshError, SshOptions, Target};

/// The exit status after an interrupt (128 + SIGINT), as shells report it.
const INTERRUPTED_EXIT: i32 = 130;

/// One host's result of a fan-out.
#[derive(Debug)]
pub struct HostResult<T, E> {
    /// The inventory host name.
    pub host: String,
    pub result: Result<T, E>,
    /// Connection plus work.
    pub elapsed: Duration,
}

/// The masters of one run, shared with the interrupt handler.
type Masters = Arc<Mutex<Vec<Arc<MasterHandle>>>>;

/// Connections to many hosts. Dropping it stops every master.
pub struct Pool {
    options: SshOptions,
    control_dir: ControlDir,
    sessions: Mutex<HashMap<String, Arc<OnceCell<Arc<HostSession>>>>>,
    next_socket: Mutex<usize>,
    masters: Masters,
}

impl Pool {
    /// A pool with no connections yet; makes the control directory.
    pub fn new(options: SshOptions) -> Result<Pool, SshError> {
        let control_dir = ControlDir::create(options.control_dir_parent.as_deref())?;
        Ok(Pool {
            options,
            control_dir,
            sessions: Mutex::new(HashMap::new()),
            next_socket: Mutex::new(0),
            masters: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The directory holding this pool's control sockets.
    pub fn control_dir(&self) -> &std::path::Path {
        self.control_dir.path()
    }

    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    /// The logged-in session of `target`, connecting on first use. A failed
    /// connection is not remembered, and a master that has gone away (closed,
    /// or dropped by ssh when the host stopped answering) is replaced: the
    /// next call connects again.
    pub async fn connect(&self, target: &Target) -> Result<Arc<HostSession>, SshError> {
        let cell = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let entry = sessions.entry(target.host.clone()).or_default();
            if entry.get().is_some_and(|session| !session.is_connected()) {
                *entry = Arc::default();
            }
            entry.clone()
        };
        cell.get_or_try_init(|| async {
            let control_path = self.control_dir.path().join(self.socket_name());
            let handle = master::start(target, &self.options, control_path).await?;
            self.masters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle.clone());
            Ok(Arc::new(HostSession::new(
                target.clone(),
                handle,
                self.options.command_timeout,
            )))
        })
        .await
        .cloned()
    }

    fn socket_name(&self) -> String {
        let mut next = self.next_socket.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        (*next - 1).to_string()
    }

    /// The PIDs of the masters this pool started and has not stopped.
    pub fn master_pids(&self) -> Vec<u32> {
        self.masters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|m| m.pid())
            .collect()
    }

    /// Runs `work` on every target, at most `forks` hosts at a time,
    /// connecting first. Results come back in `targets` order; a host that
    /// fails to connect or whose work fails has an `Err` and the others go on.
    pub async fn fan_out<'a, T, E, F, Fut>(
        &'a self,
        targets: &'a [Target],
        work: F,
    ) -> Vec<HostResult<T, E>>
    where
        F: Fn(Arc<HostSession>) -> Fut,
        Fut: Future<Output = Result<T, E>> + 'a,
        E: From<SshError>,
    {
        let permits = Semaphore::new(self.options.forks.max(1));
        let permits = &permits;
        let work = &work;
        let jobs = targets.iter().map(|target| async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire().await.ok();
            let started = Instant::now();
            let result = match self.connect(target).await {
                Ok(session) => work(session).await,
                Err(error) => Err(E::from(error)),
            };
            HostResult {
                host: target.host.clone(),
                result,
                elapsed: started.elapsed(),
            }
        });
        join_all(jobs.collect()).await
    }

    /// Stops every master now (they are also stopped on drop).
    pub fn close_all(&self) {
        close_masters(&self.masters);
    }

    /// A handle that stops every master of this pool from anywhere (another
    /// thread, a signal handler task), also masters connected later.
    pub fn closer(&self) -> MasterCloser {
        MasterCloser {
            masters: self.masters.clone(),
        }
    }

    /// Spawns a task that, on Ctrl-C or SIGTERM, stops every master of this
    /// pool, removes its control directory and exits with status 130:
    /// `process::exit` runs no destructors, so without this an interrupted
    /// run would leave masters behind until their idle timeout. Call it from within the tokio runtime.
    pub fn close_on_interrupt(&self) -> tokio::task::JoinHandle<()> {
        let closer = self.closer();
        let control_dir = self.control_dir.path().to_path_buf();
        tokio::spawn(async move {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
            closer.close();
            let _ = std::fs::remove_dir_all(&control_dir);
            std::process::exit(INTERRUPTED_EXIT);
        })
    }
}

/// Stops a pool's masters; see [`Pool::closer`].
#[derive(Debug, Clone)]
pub struct MasterCloser {
    masters: Masters,
}

impl MasterCloser {
    /// Stops every master started so far. Synchronous, so it also works
    /// when the runtime is shutting down.
    pub fn close(&self) {
        close_masters(&self.masters);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        close_masters(&self.masters);
    }
}

fn close_masters(masters: &Masters) {
    let masters: Vec<Arc<MasterHandle>> = masters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    // Stopping waits up to a grace period each: stop them side by side.
    std::thread::scope(|scope| {
        for master in &masters {
            scope.spawn(|| master.stop());
        }
    });
}

/// Polls every future until all are done; outputs in input order. The
/// futures run concurrently on the calling task (the work is I/O), so they
/// may borrow from the caller.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn join_all_runs_concurrently_and_keeps_order() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let jobs = (0..4u64)
            .map(|i| {
                let (running, peak) = (&running, &peak);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20 * (4 - i))).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                }
            })
            .collect();
        assert_eq!(join_all(jobs).await, [0, 1, 2, 3]);
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn fan_out_records_each_failure_and_goes_on() {
        let pool = Pool::new(SshOptions {
            forks: 2,
            ..SshOptions::default()
        })
        .unwrap();
        // Refused before any ssh starts: an address ssh would take as an option.
        let targets = vec![
            Target::new("a", "-oops"),
            Target::new("b", ""),
            Target::new("c", "-x"),
        ];
        let results = pool
            .fan_out(&targets, |_session| async { Ok::<_, SshError>(()) })
            .await;
        let hosts: Vec<&str> = results.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        for result in &results {
            match &result.result {
                Err(SshError::InvalidTarget { host, .. }) => assert_eq!(host, &result.host),
                other => panic!("{other:?}"),
            }
        }
    }
}
