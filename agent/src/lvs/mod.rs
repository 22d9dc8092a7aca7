//! The LVS half of the agent: keepalived's checker process, in a thread of
//! its own.
//!
//! ```text
//!  checker task (one per checker, own timer) ─Report─┐
//!                                                    v
//!  VRRP main loop ──Reload/Shutdown──>  ┌──────────────────────────┐
//!     (daemon::tasks)  <──watch: status─│ LVS loop: pools, ledger  │──> IPVS (generic netlink)
//!                                       └──────────┬───────────────┘
//!                                                  └──> notify queue (notify_up/down, quorum_up/down)
//! ```
//!
//! [`plan`] turns the config into virtual servers, [`checker`] counts
//! retries, [`pool`] decides which real servers are in the table,
//! [`reconcile`] turns wanted-versus-kernel into IPVS operations,
//! [`ledger`] remembers the services this agent created and [`probe`]
//! runs the checks ([`tls`] for SSL_GET). [`runner`] is the loop that ties them together. It
//! runs on its own OS thread with its own runtime, so neither a slow check
//! nor a netlink call ever delays a VRRP advert.

pub mod checker;
pub mod ledger;
pub mod plan;
pub mod pool;
pub mod probe;
pub mod reconcile;
pub mod runner;
pub mod tls;

pub use runner::{LvsError, LvsHandle, spawn};
