//! Stable traits for the pluggable parts of the master and the agent.
//!
//! Built-in implementations live next to their host (the master's DRF
//! allocator, the agent's isolators) and implement the same traits that
//! third-party plugins do, so one contract describes both.

pub mod allocator;
pub mod isolator;
