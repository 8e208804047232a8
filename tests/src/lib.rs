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

/// Whether a test that needs root and `available` can run; otherwise it
/// is skipped with `why` printed, or fails with `CI=true`, where nothing
/// may skip.
pub fn require_root(available: bool, why: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    match (
        root && available,
        std::env::var("CI").as_deref() == Ok("true"),
    ) {
        (true, _) => true,
        (false, true) => panic!("{why} (in CI)"),
        (false, false) => {
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}
