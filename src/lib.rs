//! hactl: the control CLI's library. `main.rs` only parses the command line,
//! runs a command from here and maps its error to an exit code; integration
//! tests reach the same code through this crate.

pub mod facts;
pub mod lab;
pub mod operations;
pub mod ssh;
