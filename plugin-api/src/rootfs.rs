//! The rootfs backend: how an image's extracted layers become a
//! container's root filesystem. The agent's provisioner keeps the layers
//! (extracted once, shared by every container) and asks the backend
//! `--image_provisioner_backend` names to assemble them in a directory of
//! the container's own, then to tear that down once the container is gone,
//! after an agent restart too. The built-in `copy` and `overlay` backends
//! are registered beside the plugins under the same contract.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The container a rootfs is for, and where it goes.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    pub id: &'a str,
    /// A private directory the provisioner made for the container and
    /// deletes after [`RootfsBackend::destroy`]; the backend keeps what
    /// else it needs there.
    pub dir: &'a Path,
    /// `<dir>/rootfs`.
    pub rootfs: &'a Path,
}

/// One extracted layer, shared by every container using it: a backend
/// reads it and never writes to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsLayer {
    /// The digest of the layer's uncompressed tar (`sha256:<hex>`).
    pub digest: String,
    /// The layer's files.
    pub path: PathBuf,
    pub whiteouts: Whiteouts,
}

/// What a layer hides of the layers below it, as slash-separated paths
/// relative to the rootfs. Whiteouts are never files in the layer, except
/// that the `overlay` backend, once it has mounted a layer, leaves a 0/0
/// character device at each deleted path (overlayfs's own format): a
/// backend that copies skips those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whiteouts {
    /// Paths deleted from the layers below.
    pub deleted: BTreeSet<String>,
    /// Directories whose content from the layers below is hidden.
    pub opaque: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs backend {backend}: {message}")]
    Failed { backend: String, message: String },
}

pub trait RootfsBackend: Send + Sync {
    /// The name `--image_provisioner_backend` selects it by.
    fn name(&self) -> &str;

    /// Builds the rootfs of `container.id` from `layers` (bottom first) at
    /// `container.rootfs`, which does not exist yet. On error the
    /// provisioner calls [`destroy`](Self::destroy).
    fn provision(
        &self,
        container: &Container<'_>,
        layers: &[RootfsLayer],
    ) -> Result<(), RootfsError>;

    /// Undoes `provision`, a partial one included; the provisioner then
    /// deletes `container.dir`. Mounts the containerizer made inside the
    /// rootfs are gone by then.
    fn destroy(&self, _container: &Container<'_>) -> Result<(), RootfsError> {
        Ok(())
    }
}
