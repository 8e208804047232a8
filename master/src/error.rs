//! Why the master stops, and (re-exported) the HTTP API error answer.

pub use mesos_http::ApiError;

/// Why the master daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Allocator(#[from] crate::allocator::UnknownAllocator),
    #[error("invalid flag: {0}")]
    Flag(String),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}
