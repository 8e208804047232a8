//! The volume driver kind of the SDK: implement [`VolumeDriverPlugin`]
//! and write `export_volume_driver!(MyDriver);`. `mount` is required;
//! leave `unmount` out if a volume needs nothing when its last container
//! goes.

use super::{Kind, PluginError, kind, method::volume as method, proto, run};
use crate::abi::API_VERSION;
use proto::{MountRequest, MountResponse, UnmountRequest, UnmountResponse};

/// A volume driver written against the plugin envelope. One instance
/// serves every call; the host makes one call at a time.
pub trait VolumeDriverPlugin: Default + Send + Sync + 'static {
    /// Reverse-DNS name, the one `plugin.toml` and `DockerVolume.driver`
    /// use.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    /// The volume on the host, created if need be; called for every
    /// container that uses it.
    fn mount(&self, request: MountRequest) -> Result<MountResponse, PluginError>;

    /// The last container using the volume is gone.
    fn unmount(&self, _request: UnmountRequest) -> Result<UnmountResponse, PluginError> {
        Err(PluginError::unimplemented(method::UNMOUNT))
    }
}

/// What `describe` answers for `P`.
pub fn volume_driver_info<P: VolumeDriverPlugin>() -> proto::PluginInfo {
    proto::PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        kinds: vec![kind::VOLUME_DRIVER.to_string()],
        api_versions: vec![API_VERSION.to_string()],
    }
}

/// Decodes the request of `method`, runs it, encodes the response.
pub fn volume_driver_dispatch<P: VolumeDriverPlugin>(
    plugin: &P,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, PluginError> {
    match method {
        method::MOUNT => run(method, request, |r| plugin.mount(r)),
        method::UNMOUNT => run(method, request, |r| plugin.unmount(r)),
        other => Err(PluginError::unimplemented(other)),
    }
}

/// The volume driver kind ([`VolumeDriverPlugin`]).
#[derive(Debug)]
pub struct VolumeDrivers;

impl<P: VolumeDriverPlugin> Kind<P> for VolumeDrivers {
    fn info() -> proto::PluginInfo {
        volume_driver_info::<P>()
    }
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError> {
        plugin.configure(config)
    }
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        volume_driver_dispatch(plugin, method, request)
    }
}
