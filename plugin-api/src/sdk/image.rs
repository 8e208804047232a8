//! The image store kind of the SDK: implement [`ImageStorePlugin`] and
//! write `export_image_store!(MyStore);`.

use super::{Kind, PluginError, kind, method::image as method, proto, run};
use crate::abi::API_VERSION;
use proto::{FetchRequest, FetchResponse};

/// An image store written against the plugin envelope. One instance
/// serves every call; the host makes one call at a time.
pub trait ImageStorePlugin: Default + Send + Sync + 'static {
    /// Reverse-DNS name, the one `plugin.toml`, `--image_providers` and
    /// the images' registry part use; so letters, digits, '-' and '.'.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    /// Where the image is: a `docker save` archive or an OCI image
    /// layout, written into `request.scratch_dir` or kept elsewhere.
    fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, PluginError>;
}

/// The image store kind ([`ImageStorePlugin`]).
#[derive(Debug)]
pub struct ImageStores;

impl<P: ImageStorePlugin> Kind<P> for ImageStores {
    fn info() -> proto::PluginInfo {
        proto::PluginInfo {
            name: P::NAME.to_string(),
            version: P::VERSION.to_string(),
            kinds: vec![kind::IMAGE_STORE.to_string()],
            api_versions: vec![API_VERSION.to_string()],
        }
    }
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError> {
        plugin.configure(config)
    }
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        match method {
            method::FETCH => run(method, request, |r| plugin.fetch(r)),
            other => Err(PluginError::unimplemented(other)),
        }
    }
}
