//! Reading an image's description out of a [`Bundle`]: which config, which
//! layers in which order, and the digests to check them against.
//!
//! Three formats, tried in this order:
//! - `docker save` with `manifest.json` (Docker >= 1.10; Docker >= 25 also
//!   writes an OCI layout beside it and points `manifest.json` at
//!   `blobs/sha256/...`);
//! - OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`);
//! - legacy `docker save` with only `repositories` and per-layer `json`.

mod docker;
mod legacy;
mod oci;

use crate::bundle::Bundle;
use crate::config::RuntimeConfig;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageReference;

#[derive(Debug)]
pub struct ImageSource {
    pub bundle: Bundle,
    pub config: RuntimeConfig,
    /// Bottom layer first.
    pub layers: Vec<LayerSource>,
}

#[derive(Debug, Clone)]
pub struct LayerSource {
    /// Member of the bundle holding the layer blob.
    pub member: String,
    /// Digest of the blob as stored (compressed or not), when the format
    /// names it.
    pub blob_digest: Option<Digest>,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`), when known.
    pub diff_id: Option<Digest>,
}

pub fn read_image(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
    if bundle.exists("manifest.json") {
        docker::read(bundle, reference)
    } else if bundle.exists("index.json") {
        oci::read(bundle, reference)
    } else if bundle.exists("repositories") {
        legacy::read(bundle, reference)
    } else {
        Err(Error::format(
            format!("image {}", bundle.describe()),
            "neither manifest.json, index.json (OCI layout) nor repositories found",
        ))
    }
}

/// The names an archive may tag the image with.
pub(crate) fn tag_candidates(reference: &ImageReference) -> Vec<String> {
    let Some(tag) = &reference.tag else {
        return Vec::new();
    };
    let mut names = vec![
        format!("{}:{tag}", reference.short_repository()),
        format!("{}:{tag}", reference.repository),
        format!("{}/{}:{tag}", reference.registry, reference.repository),
    ];
    if reference.is_docker_hub() {
        names.push(format!("docker.io/{}:{tag}", reference.repository));
    }
    names
}
