//! Log setup shared by the agent and its executors: to stderr (the
//! executor's stderr is its sandbox file), level from the Mesos flag unless
//! RUST_LOG says otherwise.

use std::io::IsTerminal;

pub fn init(level: &str) {
    let level = match level.to_ascii_uppercase().as_str() {
        "WARNING" | "WARN" => "warn",
        "ERROR" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
