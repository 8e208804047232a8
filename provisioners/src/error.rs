//! The one error type of the crate: every failure names the file, entry or
//! image it is about, so an agent log line is enough to act on it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image name '{name}': {reason}")]
    InvalidReference { name: String, reason: String },

    #[error("image '{image}' not found: {reason}")]
    ImageNotFound { image: String, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid registry URL '{url}': {reason}")]
    InvalidRegistryUrl { url: String, reason: String },

    #[error("pulling '{image}' from {registry}: {reason}")]
    Registry {
        image: String,
        registry: String,
        reason: String,
    },

    #[error("bad image {what}: {reason}")]
    Format { what: String, reason: String },

    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("refused layer entry '{entry}': {reason}")]
    UnsafeEntry { entry: String, reason: String },

    #[error("unknown provisioner backend '{name}' (known: {known})")]
    UnknownBackend { name: String, known: String },

    /// A rootfs backend plugin failed; the message names it.
    #[error("{0}")]
    Plugin(#[from] mesos_plugin_api::rootfs::RootfsError),

    /// An image store plugin failed; the message names it.
    #[error("{0}")]
    ImageStore(#[from] mesos_plugin_api::image::ImageStoreError),

    #[error("invalid container id '{id}': {reason}")]
    InvalidContainerId { id: String, reason: String },

    #[error("container '{0}' is already provisioned")]
    AlreadyProvisioned(String),

    #[error("cannot {action} {path}: {source}")]
    Mount {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Format {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn unsafe_entry(entry: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::UnsafeEntry {
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }
}

/// Attaches the path an `io::Error` happened on.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
