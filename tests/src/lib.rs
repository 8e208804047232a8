//! Support for end-to-end tests: real master and agent processes on
//! loopback, real clients.

// Test support: a failed expectation here is a failed test, which is what
// a panic reports.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod cluster;
pub mod docker;
pub mod framework;
pub mod images;
pub mod plugins;
pub mod python;
pub mod raw_http;
pub mod sim;
