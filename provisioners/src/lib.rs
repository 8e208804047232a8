//! The Mesos containerizer's provisioner: image stores, safe layer
//! extraction, rootfs backends and image GC.
//!
//! - [`ImageReference`] parses Docker image names.
//! - [`DockerStore`] reads images from a local registry directory
//!   (`docker save` archives, OCI layouts and OCI archives) into a
//!   content-addressed layer cache, checking digests on the way.
//! - [`extract`] unpacks layers without ever writing outside the layer.
//! - Backends assemble a container rootfs from layers: `copy` or `overlay`.
//! - [`Provisioner`] ties them together per container and prunes unused
//!   images.
//!
//! Everything takes its root directories as arguments, so the code runs
//! against temporary directories in tests; only the overlay backend needs
//! root (to mount).

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
pub mod store;

pub use config::RuntimeConfig;
pub use digest::Digest;
pub use error::{Error, Result};
pub use provisioner::{ProvisionInfo, Provisioner};
pub use reference::ImageReference;
pub use store::{DockerStore, ImageInfo, Layer, PruneStats};
