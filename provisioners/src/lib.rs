//! The Mesos containerizer's provisioner: image stores, safe layer
//! extraction, rootfs backends and image GC.
//!
//! - [`ImageReference`] parses Docker image names.
//! - [`DockerStore`] reads images from a local registry directory
//!   (`docker save` archives, OCI layouts and OCI archives) into a
//!   content-addressed layer cache, checking digests on the way.
//! - [`registry`] pulls images from a Docker registry (HTTP API v2) into
//!   the same cache when the store is given a registry URL.
//! - [`extract`] unpacks layers without ever writing outside the layer.
//! - [`backend`]s assemble a container rootfs from layers: `copy` or
//!   `overlay`. Whiteouts are stored as a neutral record beside each layer
//!   (see [`extract`]); `overlay` turns them into overlayfs whiteouts on
//!   first mount.
//! - [`Provisioner`] ties them together per container (provision, destroy,
//!   recover) and prunes unused images. Destroy unmounts anything left
//!   inside a container's directory ([`mounts`]) before deleting it.
//!
//! Everything takes its root directories as arguments, so the code runs
//! against temporary directories in tests; only the overlay backend needs
//! root (to mount). The API is synchronous (file system work); an async
//! caller runs it on a blocking thread.

pub mod backend;
pub mod bundle;
pub mod config;
pub mod digest;
pub mod error;
pub mod extract;
pub mod image;
pub mod layer;
pub mod mounts;
pub mod provisioner;
pub mod reference;
pub mod registry;
pub mod store;

pub use config::RuntimeConfig;
pub use digest::Digest;
pub use error::{Error, Result};
pub use provisioner::{ProvisionInfo, Provisioner};
pub use reference::ImageReference;
pub use registry::{DockerConfig, Remote};
pub use store::{DockerStore, ImageInfo, Layer, PruneStats};
