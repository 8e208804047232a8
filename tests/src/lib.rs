//! Support for end-to-end tests: real master and agent processes on
//! loopback, real clients.

pub mod cluster;
pub mod python;
pub mod raw_http;
