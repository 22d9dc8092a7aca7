//! Helpers shared by the agent's integration tests (`mod support;`).
//!
//! Each test binary uses only part of them, so unused items are not an
//! error here.
#![allow(dead_code)]

pub mod netns;
pub mod node;
pub mod stall;
