//! Rootfs backends: turn an image's layers into a container's root
//! filesystem, inside a directory the provisioner gives each container.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::Layer;

pub mod copy;
pub mod overlay;

/// Names accepted by `--image_provisioner_backend`.
pub const BACKENDS: [&str; 2] = [copy::NAME, overlay::NAME];

pub trait Backend: Send + Sync + Debug {
    fn name(&self) -> &'static str;

    /// Builds the rootfs from `layers` (bottom first) inside
    /// `container_dir` (an existing private directory) and returns its
    /// path. On error the caller calls [`destroy`](Self::destroy).
    fn provision(&self, layers: &[Layer], container_dir: &Path) -> Result<PathBuf>;

    /// Undoes `provision`, including after a partial one; the caller then
    /// deletes `container_dir`.
    fn destroy(&self, container_dir: &Path) -> Result<()>;
}

/// The backend for a `--image_provisioner_backend` value.
pub fn by_name(name: &str) -> Result<Box<dyn Backend>> {
    match name {
        copy::NAME => Ok(Box::new(copy::CopyBackend)),
        overlay::NAME => Ok(Box::new(overlay::OverlayBackend)),
        other => Err(Error::UnknownBackend(other.to_string())),
    }
}

/// Where backends put the container's root filesystem.
pub(crate) fn rootfs_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("rootfs")
}
