//! OCI image layouts (a directory or a tar of one).

use serde::Deserialize;
use serde_json::Value;

use super::{ImageSource, LayerSource, tag_candidates};
use crate::bundle::Bundle;
use crate::config::parse_config;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageReference;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Indexes nested deeper than this are refused (a loop or a hostile file).
const MAX_INDEX_DEPTH: usize = 4;

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone, Debug)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

pub(super) fn read(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
    let what = format!("OCI layout {}", bundle.describe());
    if !bundle.exists("oci-layout") {
        return Err(Error::format(
            &what,
            "index.json without an oci-layout file",
        ));
    }
    let index: Index = serde_json::from_slice(&bundle.read_document("index.json")?)
        .map_err(|e| Error::format(format!("index.json in {}", bundle.describe()), e))?;
    let manifest_descriptor = select_manifest(&bundle, index.manifests, reference, 0)?;
    let manifest_bytes = read_blob(&bundle, &manifest_descriptor, "manifest")?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::format(format!("manifest {}", manifest_descriptor.digest), e))?;
    let config_bytes = read_blob(&bundle, &manifest.config, "config")?;
    let parsed = parse_config(&config_bytes, &format!("config {}", manifest.config.digest))?;
    if !parsed.diff_ids.is_empty() && parsed.diff_ids.len() != manifest.layers.len() {
        return Err(Error::format(
            &what,
            format!(
                "{} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                parsed.diff_ids.len()
            ),
        ));
    }
    let layers = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let digest = Digest::parse(&layer.digest)?;
            Ok(LayerSource {
                member: format!("blobs/sha256/{}", digest.hex()),
                blob_digest: Some(digest),
                diff_id: parsed.diff_ids.get(i).cloned(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageSource {
        bundle,
        config: parsed.runtime,
        layers,
    })
}

/// Picks the image manifest for `reference` out of an index: by digest if
/// the reference pins one, else by ref-name annotation, else the only one;
/// nested indexes (multi-platform) are resolved by this machine's platform.
fn select_manifest(
    bundle: &Bundle,
    manifests: Vec<Descriptor>,
    reference: &ImageReference,
    depth: usize,
) -> Result<Descriptor> {
    if depth > MAX_INDEX_DEPTH {
        return Err(Error::format(
            bundle.describe(),
            "image indexes nested too deep",
        ));
    }
    let wanted_tags = tag_candidates(reference);
    let by_name = || {
        manifests.iter().find(|m| {
            m.annotations.as_ref().is_some_and(|a| {
                let tag_matches = a.get(REF_NAME).and_then(Value::as_str).is_some_and(|name| {
                    reference.tag.as_deref() == Some(name) || wanted_tags.iter().any(|w| w == name)
                });
                let name_matches = a
                    .get(CONTAINERD_NAME)
                    .and_then(Value::as_str)
                    .is_some_and(|name| wanted_tags.iter().any(|w| w == name));
                tag_matches || name_matches
            })
        })
    };
    let by_platform = || {
        let arch = go_arch();
        manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
    };
    let named = manifests.iter().any(|m| {
        m.annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(REF_NAME) || a.contains_key(CONTAINERD_NAME))
    });
    let chosen = if let Some(digest) = &reference.digest {
        // A pinned digest must be there; nothing else will do.
        manifests.iter().find(|m| m.digest == digest.to_string())
    } else {
        by_name()
            // The file name already chose the image.
            .or_else(|| (manifests.len() == 1).then(|| &manifests[0]))
            // A multi-platform index without names.
            .or_else(|| if named { None } else { by_platform() })
    }
    .cloned()
    .ok_or_else(|| Error::ImageNotFound {
        image: reference.to_string(),
        reason: format!(
            "index.json in {} lists {} manifests and none matches",
            bundle.describe(),
            manifests.len()
        ),
    })?;
    match chosen.media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            let bytes = read_blob(bundle, &chosen, "index")?;
            let nested: Index = serde_json::from_slice(&bytes)
                .map_err(|e| Error::format(format!("index {}", chosen.digest), e))?;
            // Inside a nested index the platform decides, not the tag.
            let untagged = ImageReference {
                tag: None,
                digest: None,
                ..reference.clone()
            };
            select_manifest(bundle, nested.manifests, &untagged, depth + 1)
        }
        OCI_MANIFEST | DOCKER_MANIFEST | "" => Ok(chosen),
        other => Err(Error::format(
            format!("manifest {}", chosen.digest),
            format!("unsupported media type '{other}'"),
        )),
    }
}

/// Reads and verifies a JSON blob named by a descriptor.
fn read_blob(bundle: &Bundle, descriptor: &Descriptor, kind: &str) -> Result<Vec<u8>> {
    let digest = Digest::parse(&descriptor.digest)?;
    let bytes = bundle.read_document(&format!("blobs/sha256/{}", digest.hex()))?;
    digest.verify(&Digest::of(&bytes), format!("{kind} blob"))?;
    if let Some(size) = descriptor.size
        && size != bytes.len() as u64
    {
        return Err(Error::format(
            format!("{kind} blob {digest}"),
            format!("descriptor says {size} bytes, blob has {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// This machine's architecture in the Go spelling images use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
