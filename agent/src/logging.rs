//! Log setup shared by the agent and its executors: to stderr (an
//! executor's stderr is its sandbox file), at the given level unless
//! RUST_LOG says otherwise.

use std::io::IsTerminal;

/// `default_directive` is a `tracing` filter such as `info`.
pub fn init(default_directive: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_directive));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
