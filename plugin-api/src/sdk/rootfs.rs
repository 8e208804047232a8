//! The rootfs backend kind of the SDK: implement [`RootfsBackendPlugin`]
//! and write `export_rootfs_backend!(MyBackend);`. `provision` is
//! required; leave `destroy` out if deleting the container's directory
//! undoes all `provision` did.

use super::{Kind, PluginError, kind, method::rootfs as method, proto, run};
use crate::abi::API_VERSION;
use proto::{DestroyRequest, DestroyResponse, ProvisionRequest, ProvisionResponse};

/// A rootfs backend written against the plugin envelope. One instance
/// serves every call; the host makes one call at a time.
pub trait RootfsBackendPlugin: Default + Send + Sync + 'static {
    /// Reverse-DNS name, the one `plugin.toml` and
    /// `--image_provisioner_backend` use.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    /// Builds the container's rootfs from the layers (bottom first) at
    /// `request.rootfs`, which does not exist yet.
    fn provision(&self, request: ProvisionRequest) -> Result<ProvisionResponse, PluginError>;

    /// Undoes `provision`, a partial one included.
    fn destroy(&self, _request: DestroyRequest) -> Result<DestroyResponse, PluginError> {
        Err(PluginError::unimplemented(method::DESTROY))
    }
}

/// The rootfs backend kind ([`RootfsBackendPlugin`]).
#[derive(Debug)]
pub struct RootfsBackends;

impl<P: RootfsBackendPlugin> Kind<P> for RootfsBackends {
    fn info() -> proto::PluginInfo {
        proto::PluginInfo {
            name: P::NAME.to_string(),
            version: P::VERSION.to_string(),
            kinds: vec![kind::ROOTFS_BACKEND.to_string()],
            api_versions: vec![API_VERSION.to_string()],
        }
    }
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError> {
        plugin.configure(config)
    }
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        match method {
            method::PROVISION => run(method, request, |r| plugin.provision(r)),
            method::DESTROY => run(method, request, |r| plugin.destroy(r)),
            other => Err(PluginError::unimplemented(other)),
        }
    }
}
