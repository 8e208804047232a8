//! An example volume driver plugin, written as a third party would, with
//! only the public SDK: Docker's `local` driver, in short. A volume is a
//! directory named after it under the plugin's root, created on its first
//! mount and kept after its last unmount, so the data outlives the
//! containers that wrote it. The root is the plugin's configuration (the
//! manifest's `config` file holds the path), `/var/lib/mesos/volumes`
//! without one.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use mesos_plugin_api::sdk::{PluginError, VolumeDriverPlugin, proto};

pub const DEFAULT_ROOT: &str = "/var/lib/mesos/volumes";

#[derive(Debug, Default)]
pub struct LocalVolumes {
    root: Mutex<Option<PathBuf>>,
}

impl LocalVolumes {
    fn root(&self) -> PathBuf {
        self.root
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }
}

/// A volume's name becomes a directory's: one plain path component.
fn check_name(name: &str) -> Result<(), PluginError> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "volume name '{name}' is not a plain name (letters, digits, '_', '-', '.', not starting with '.')"
        )))
    }
}

impl VolumeDriverPlugin for LocalVolumes {
    const NAME: &'static str = "com.example.local_volumes";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(&self, config: &[u8]) -> Result<(), PluginError> {
        let text = std::str::from_utf8(config)
            .map_err(|_| PluginError::invalid("the configuration is not UTF-8"))?
            .trim();
        if text.is_empty() {
            return Ok(());
        }
        let root = PathBuf::from(text);
        if !root.is_absolute() {
            return Err(PluginError::invalid(format!(
                "the root '{text}' is not an absolute path"
            )));
        }
        *self.root.lock().unwrap_or_else(PoisonError::into_inner) = Some(root);
        Ok(())
    }

    fn mount(&self, request: proto::MountRequest) -> Result<proto::MountResponse, PluginError> {
        let volume = request
            .volume
            .ok_or_else(|| PluginError::invalid("the request names no volume"))?;
        check_name(&volume.name)?;
        let path = self.root().join(&volume.name);
        std::fs::create_dir_all(&path)
            .map_err(|e| PluginError::internal(format!("cannot create {}: {e}", path.display())))?;
        Ok(proto::MountResponse {
            mount_point: path.display().to_string(),
        })
    }

    // The volume stays: nothing to do when its last container goes.
    fn unmount(
        &self,
        _request: proto::UnmountRequest,
    ) -> Result<proto::UnmountResponse, PluginError> {
        Ok(proto::UnmountResponse {})
    }
}

mesos_plugin_api::export_volume_driver!(LocalVolumes);
