//! The network kind of the SDK: implement [`NetworkPlugin`] and write
//! `export_network!(MyNetwork);`. `attach` is required; leave `detach`
//! out if the end of the namespace removes all the attach made.

use super::{Kind, PluginError, kind, method::network as method, proto, run};
use crate::abi::API_VERSION;
use proto::{AttachRequest, AttachResponse, DetachRequest, DetachResponse};

/// A network written against the plugin envelope. One instance serves
/// every call; the host makes one call at a time.
pub trait NetworkPlugin: Default + Send + Sync + 'static {
    /// Reverse-DNS name, the one `plugin.toml` and `NetworkInfo.name`
    /// use.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    /// Creates interface `ifname` in the namespace `netns` on this
    /// network, and answers its addresses.
    fn attach(&self, request: AttachRequest) -> Result<AttachResponse, PluginError>;

    /// Undoes `attach`; the namespace still exists.
    fn detach(&self, _request: DetachRequest) -> Result<DetachResponse, PluginError> {
        Err(PluginError::unimplemented(method::DETACH))
    }
}

/// What `describe` answers for `P`.
pub fn network_info<P: NetworkPlugin>() -> proto::PluginInfo {
    proto::PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        kinds: vec![kind::NETWORK.to_string()],
        api_versions: vec![API_VERSION.to_string()],
    }
}

/// Decodes the request of `method`, runs it, encodes the response.
pub fn network_dispatch<P: NetworkPlugin>(
    plugin: &P,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, PluginError> {
    match method {
        method::ATTACH => run(method, request, |r| plugin.attach(r)),
        method::DETACH => run(method, request, |r| plugin.detach(r)),
        other => Err(PluginError::unimplemented(other)),
    }
}

/// The network kind ([`NetworkPlugin`]).
#[derive(Debug)]
pub struct Networks;

impl<P: NetworkPlugin> Kind<P> for Networks {
    fn info() -> proto::PluginInfo {
        network_info::<P>()
    }
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError> {
        plugin.configure(config)
    }
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        network_dispatch(plugin, method, request)
    }
}
