//! The volume driver: where a named volume lives on the host. The agent's
//! `docker/volume` isolator asks the driver a container's DOCKER_VOLUME
//! volume names (`DockerVolume.driver`) to mount it, binds the answer into
//! the container at its `container_path`, and asks the driver to unmount
//! it once no container uses it any more, as Mesos does through dvdcli.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A named volume of a driver, as a task asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VolumeSpec {
    /// `DockerVolume.name`.
    pub name: String,
    /// `DockerVolume.driver_options`.
    pub options: BTreeMap<String, String>,
}

/// A DOCKER_VOLUME volume a container asks for
/// (`ContainerInfo.volumes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// `DockerVolume.driver`: the volume driver plugin's name.
    pub driver: String,
    pub volume: VolumeSpec,
    /// `Volume.container_path`: where the container sees it.
    pub container_path: String,
    /// `Volume.mode` is `RO`.
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume driver {driver}: {message}")]
    Failed { driver: String, message: String },
}

pub trait VolumeDriver: Send + Sync {
    /// The name `DockerVolume.driver` selects it by.
    fn name(&self) -> &str;

    /// Makes `volume` available on the host for `container_id`, creating
    /// it if need be, and answers where it is: an absolute path to a
    /// directory. Called for every container using the volume.
    fn mount(&self, container_id: &str, volume: &VolumeSpec) -> Result<PathBuf, VolumeError>;

    /// The last container using `volume` is gone.
    fn unmount(&self, _volume: &VolumeSpec) -> Result<(), VolumeError> {
        Ok(())
    }
}
