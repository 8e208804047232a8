//! A rootfs backend plugin as a [`Backend`]: the store's layers as the
//! plugin contract describes them, whiteouts read from their record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesos_plugin_api::rootfs::{Container, RootfsBackend, RootfsLayer, Whiteouts};

use crate::backend::{Backend, rootfs_dir};
use crate::error::Result;
use crate::store::Layer;

pub(super) struct PluginBackend(Arc<dyn RootfsBackend>);

impl PluginBackend {
    pub(super) fn new(plugin: Arc<dyn RootfsBackend>) -> Self {
        Self(plugin)
    }
}

impl std::fmt::Debug for PluginBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PluginBackend")
            .field(&self.0.name())
            .finish()
    }
}

impl Backend for PluginBackend {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn provision(
        &self,
        container_id: &str,
        layers: &[Layer],
        container_dir: &Path,
    ) -> Result<PathBuf> {
        let layers = layers
            .iter()
            .map(|layer| {
                let whiteouts = layer.whiteouts()?;
                Ok(RootfsLayer {
                    digest: layer.digest.to_string(),
                    path: layer.rootfs(),
                    whiteouts: Whiteouts {
                        deleted: whiteouts.deleted,
                        opaque: whiteouts.opaque,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rootfs = rootfs_dir(container_dir);
        let container = Container {
            id: container_id,
            dir: container_dir,
            rootfs: &rootfs,
        };
        self.0.provision(&container, &layers)?;
        Ok(rootfs)
    }

    fn destroy(&self, container_id: &str, container_dir: &Path) -> Result<()> {
        let rootfs = rootfs_dir(container_dir);
        let container = Container {
            id: container_id,
            dir: container_dir,
            rootfs: &rootfs,
        };
        Ok(self.0.destroy(&container)?)
    }
}
