//! `hactl-agent run`: the VRRP daemon, and `hactl-agent cleanup`.
//!
//! The daemon glues the pure parts (config model, state machine, codec) to
//! the host: [`tasks`] lays out the tokio tasks and runs the main loop,
//! [`events`] says what each input does, [`vips`] puts addresses on
//! interfaces and remembers them for crash safety.
//!
//! Logs go to stderr, one line per event worth an operator's attention,
//! always one line per state transition: `INSTANCE: FROM -> TO (reason)`.

pub mod clock;
pub mod events;
pub mod realtime;
pub mod supervise;
pub mod tasks;
pub mod vips;
pub mod vmac;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::ConfigError;
use crate::glue::GlueError;
use crate::instance::ParamsError;
use crate::netlink::NetlinkError;
use crate::network::NetworkError;
use crate::router::RouterError;
use crate::status::StatusError;

pub use vips::VipError;

/// Default state directory (the VIP ledger lives there).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/hactl";

/// What `hactl-agent run` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
}

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Glue(#[from] GlueError),
    #[error(transparent)]
    Params(ParamsError),
    #[error(transparent)]
    Router(RouterError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Vips(#[from] VipError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Vmac(#[from] vmac::VmacError),
    #[error(transparent)]
    Lvs(#[from] crate::lvs::LvsError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot install the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("script_user {user} does not exist")]
    ScriptUser { user: String },
}

impl DaemonError {
    /// 1: the config cannot run; 3: the host refused (sockets, addresses).
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_)
            | DaemonError::Glue(_)
            | DaemonError::Params(_)
            | DaemonError::Router(_)
            | DaemonError::ScriptUser { .. } => 1,
            _ => 3,
        }
    }
}

/// One log line on stderr.
pub fn log(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "hactl-agent: {line}");
}

fn runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)
}

/// The thread that runs everything but the protocol: the status and
/// metrics listeners, vrrp_script and notify scripts, link events, email.
/// It is started before the protocol thread turns real-time, and stays
/// SCHED_OTHER.
struct IoThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IoThread {
    fn start() -> Result<IoThread, DaemonError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hactl-io".to_owned())
            .spawn(move || match runtime() {
                Ok(rt) => {
                    let _ = ready_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(DaemonError::Runtime)?;
        let handle = ready_rx
            .recv()
            .map_err(|_| DaemonError::Runtime(std::io::ErrorKind::BrokenPipe.into()))??;
        Ok(IoThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT: the protocol loop on this
/// thread, the rest on the I/O thread.
pub fn run(options: &Options) -> Result<(), DaemonError> {
    crate::sys::one_malloc_arena();
    let io = IoThread::start()?;
    let result = runtime()?.block_on(tasks::main(options, &io.handle));
    drop(io);
    result
}

/// What `hactl-agent cleanup` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    pub addresses: usize,
    pub services: usize,
}

/// Removes the VIPs and IPVS services recorded in `state_dir` (what a
/// killed agent left).
pub fn cleanup(state_dir: &Path) -> Result<Cleaned, DaemonError> {
    runtime()?.block_on(clean(state_dir))
}

/// [`cleanup`] inside a runtime (the supervisor's).
pub async fn clean(state_dir: &Path) -> Result<Cleaned, DaemonError> {
    let mut ledger = vips::VipLedger::open(state_dir, log)?;
    let driver = vips::VipDriver::open()?;
    let removed = ledger.clean(&driver).await?;
    for e in &removed {
        log(&format!("removed {} from {}", e.address, e.interface));
    }
    let services = crate::lvs::runner::clean(state_dir, log)?;
    Ok(Cleaned {
        addresses: removed.len(),
        services,
    })
}
