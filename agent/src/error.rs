//! Errors the agent's HTTP APIs answer with, and why the daemon stops.

pub use mesos_http::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("invalid flag: {0}")]
    Flag(String),
    #[error("startup task failed: {0}")]
    Startup(String),
    #[error("the master refused this agent for good: {0}")]
    Refused(String),
    #[error("cannot create the work directory {path}: {source}")]
    WorkDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
