//! The volume driver kind of the SDK: implement [`VolumeDriverPlugin`]
//! and write `export_volume_driver!(MyDriver);`. `mount` is required;
//! leave `unmount` out if a volume needs nothing when its last container
//! goes.

use super::{PluginError, guarded, kind, method::volume as method, proto, run};
use crate::abi::API_VERSION;
use crate::envelope::{Envelope, Response};
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

/// A volume driver `P` called in the host's process: its built-in form.
pub struct InProcessVolumeDriver<P>(P);

impl<P: VolumeDriverPlugin> InProcessVolumeDriver<P> {
    /// Describes and configures `P` as a loader would.
    pub fn new(config: &[u8]) -> Result<(proto::PluginInfo, Self), PluginError> {
        let plugin = guarded(|| Ok(P::default()))?;
        guarded(|| plugin.configure(config))?;
        Ok((volume_driver_info::<P>(), Self(plugin)))
    }
}

impl<P: VolumeDriverPlugin> Envelope for InProcessVolumeDriver<P> {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
        guarded(|| volume_driver_dispatch(&self.0, method, request)).map(Response::from)
    }
}

impl<P> std::fmt::Debug for InProcessVolumeDriver<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessVolumeDriver")
    }
}
