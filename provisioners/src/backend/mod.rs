//! Rootfs backends: turn an image's layers into a container's root
//! filesystem, inside a directory the provisioner gives each container.
//! The built-in `copy` and `overlay` and the rootfs backend plugins
//! (`mesos_plugin_api::rootfs`) are found by name in one [`Backends`]
//! registry, both for `--image_provisioner_backend` and, at destroy, for
//! the backend a container's record names.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesos_plugin_api::rootfs::RootfsBackend;

use crate::error::{Error, Result};
use crate::store::Layer;

pub mod copy;
pub mod overlay;
mod plugin;

/// The built-in backends' names.
pub const BACKENDS: [&str; 2] = [copy::NAME, overlay::NAME];

pub trait Backend: Send + Sync + Debug {
    fn name(&self) -> &str;

    /// Builds the rootfs of `container_id` from `layers` (bottom first)
    /// inside `container_dir` (an existing private directory) and returns
    /// its path. On error the caller calls [`destroy`](Self::destroy).
    fn provision(
        &self,
        container_id: &str,
        layers: &[Layer],
        container_dir: &Path,
    ) -> Result<PathBuf>;

    /// Undoes `provision`, including after a partial one; the caller then
    /// deletes `container_dir`.
    fn destroy(&self, container_id: &str, container_dir: &Path) -> Result<()>;
}

/// Every backend this agent can use: the built-ins, then the plugins.
#[derive(Clone, Default)]
pub struct Backends {
    plugins: Vec<Arc<dyn RootfsBackend>>,
}

impl Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Backends {
    /// The built-ins and `plugins`. Plugin names are reverse-DNS, so they
    /// never shadow a built-in.
    pub fn with_plugins(plugins: Vec<Arc<dyn RootfsBackend>>) -> Self {
        Self { plugins }
    }

    pub fn names(&self) -> Vec<&str> {
        BACKENDS
            .into_iter()
            .chain(self.plugins.iter().map(|p| p.name()))
            .collect()
    }

    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Backend>> {
        match name {
            copy::NAME => Ok(Arc::new(copy::CopyBackend)),
            overlay::NAME => Ok(Arc::new(overlay::OverlayBackend)),
            other => self
                .plugins
                .iter()
                .find(|p| p.name() == other)
                .map(|p| Arc::new(plugin::PluginBackend::new(p.clone())) as Arc<dyn Backend>)
                .ok_or_else(|| Error::UnknownBackend {
                    name: other.to_string(),
                    known: self.names().join(", "),
                }),
        }
    }
}

/// Mesos's choice when `--image_provisioner_backend` is not given:
/// `overlay` where it can work (root, and a store on a filesystem overlayfs
/// accepts as a lower layer), else `copy`. (`aufs` and `bind` are not
/// built.)
pub fn default_name(store_dir: &Path) -> &'static str {
    // `f_type`'s integer type differs between targets.
    #[allow(clippy::useless_conversion)]
    let filesystem = nix::sys::statfs::statfs(store_dir)
        .map(|s| i64::from(s.filesystem_type().0))
        .ok();
    choose_default(nix::unistd::geteuid().is_root(), filesystem)
}

/// Filesystems overlayfs refuses or mishandles as lower layers: btrfs,
/// aufs, overlayfs itself, zfs, eCryptfs.
const NO_OVERLAY: [i64; 5] = [0x9123_683e, 0x6175_6673, 0x794c_7630, 0x2fc1_2fc1, 0xf15f];

fn choose_default(root: bool, filesystem: Option<i64>) -> &'static str {
    match filesystem {
        Some(fs) if root && !NO_OVERLAY.contains(&fs) => overlay::NAME,
        _ => copy::NAME,
    }
}

/// Where backends put the container's root filesystem.
pub(crate) fn rootfs_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("rootfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_overlay_only_as_root_on_a_supported_filesystem() {
        const EXT4: i64 = 0xef53;
        const OVERLAYFS: i64 = 0x794c_7630;
        assert_eq!(choose_default(true, Some(EXT4)), "overlay");
        assert_eq!(choose_default(false, Some(EXT4)), "copy");
        assert_eq!(choose_default(true, Some(OVERLAYFS)), "copy");
        assert_eq!(choose_default(true, None), "copy");
    }
}
