//! Reading an image's description out of a [`Bundle`]: which config, which
//! layers in which order, and the digests to check them against.
//!
//! Three formats, tried in this order:
//! - `docker save` with `manifest.json` (Docker >= 1.10; Docker >= 25 also
//!   writes an OCI layout beside it and points `manifest.json` at
//!   `blobs/sha256/...`);
//! - OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`);
//! - legacy `docker save` with only `repositories` and per-layer `json`.

use serde::Deserialize;
use serde_json::Value;

use crate::bundle::Bundle;
use crate::config::{RuntimeConfig, parse_config};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageReference;

/// Parent links followed in a legacy archive before assuming a loop.
const MAX_LEGACY_LAYERS: usize = 1000;

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
        read_docker(bundle, reference)
    } else if bundle.exists("index.json") {
        read_oci(bundle, reference)
    } else if bundle.exists("repositories") {
        read_legacy(bundle, reference)
    } else {
        Err(Error::format(
            format!("image {}", bundle.describe()),
            "neither manifest.json, index.json (OCI layout) nor repositories found",
        ))
    }
}

/// The names an archive may tag the image with.
fn tag_candidates(reference: &ImageReference) -> Vec<String> {
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

// ---------------------------------------------------------------- docker save

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn read_docker(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
    let what = format!("manifest.json in {}", bundle.describe());
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&bundle.read_document("manifest.json")?)
            .map_err(|e| Error::format(&what, e))?;
    let wanted = tag_candidates(reference);
    let entry = match entries
        .iter()
        .find(|e| e.repo_tags.iter().flatten().any(|tag| wanted.contains(tag)))
    {
        Some(entry) => entry,
        // The file name already chose the image; an untagged or differently
        // tagged single image is what the operator put there.
        None if entries.len() == 1 => &entries[0],
        None => {
            return Err(Error::ImageNotFound {
                image: reference.to_string(),
                reason: format!("{what} holds {} images, none tagged so", entries.len()),
            });
        }
    };

    let config_bytes = bundle.read_document(&entry.config)?;
    if let Some(expected) = digest_from_member(&entry.config) {
        expected.verify(
            &Digest::of(&config_bytes),
            format!("config {}", entry.config),
        )?;
    }
    let parsed = parse_config(&config_bytes, &format!("config {}", entry.config))?;
    if !parsed.diff_ids.is_empty() && parsed.diff_ids.len() != entry.layers.len() {
        return Err(Error::format(
            &what,
            format!(
                "{} layers but the config lists {} diff_ids",
                entry.layers.len(),
                parsed.diff_ids.len()
            ),
        ));
    }
    let layers = entry
        .layers
        .iter()
        .enumerate()
        .map(|(i, member)| LayerSource {
            member: member.clone(),
            blob_digest: digest_from_member(member),
            diff_id: parsed.diff_ids.get(i).cloned(),
        })
        .collect();
    Ok(ImageSource {
        bundle,
        config: parsed.runtime,
        layers,
    })
}

/// `blobs/sha256/<hex>` and `<hex>.json` name their content's digest.
fn digest_from_member(member: &str) -> Option<Digest> {
    let name = member.trim_start_matches("./");
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex);
    }
    name.strip_suffix(".json").and_then(Digest::from_hex)
}

// ----------------------------------------------------------------------- OCI

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

fn read_oci(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
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

// -------------------------------------------------------------- legacy save

fn read_legacy(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
    let what = format!("repositories in {}", bundle.describe());
    let repositories: serde_json::Map<String, Value> =
        serde_json::from_slice(&bundle.read_document("repositories")?)
            .map_err(|e| Error::format(&what, e))?;
    let mut images: Vec<(String, String, String)> = Vec::new();
    for (repository, tags) in &repositories {
        let Some(tags) = tags.as_object() else {
            return Err(Error::format(
                &what,
                format!("'{repository}' is not an object"),
            ));
        };
        for (tag, id) in tags {
            let Some(id) = id.as_str() else {
                return Err(Error::format(
                    &what,
                    format!("'{repository}:{tag}' is not a string"),
                ));
            };
            images.push((repository.clone(), tag.clone(), id.to_string()));
        }
    }
    let wanted = tag_candidates(reference);
    let top = match images
        .iter()
        .find(|(repo, tag, _)| wanted.contains(&format!("{repo}:{tag}")))
    {
        Some((_, _, id)) => id.clone(),
        None if images.len() == 1 => images[0].2.clone(),
        None => {
            return Err(Error::ImageNotFound {
                image: reference.to_string(),
                reason: format!("{what} holds {} images, none tagged so", images.len()),
            });
        }
    };

    // Walk parent links from the top layer down.
    let mut chain = Vec::new();
    let mut config = None;
    let mut current = Some(top);
    while let Some(id) = current {
        if chain.len() >= MAX_LEGACY_LAYERS || chain.contains(&id) {
            return Err(Error::format(&what, "layer parent chain loops"));
        }
        if id.contains('/') || id.starts_with('.') {
            return Err(Error::format(&what, format!("bad layer id '{id}'")));
        }
        let json_name = format!("{id}/json");
        let bytes = bundle.read_document(&json_name)?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::format(&json_name, e))?;
        if config.is_none() {
            config = Some(parse_config(&bytes, &json_name)?.runtime);
        }
        current = match value.get("parent") {
            None | Some(Value::Null) => None,
            Some(Value::String(parent)) if parent.is_empty() => None,
            Some(Value::String(parent)) => Some(parent.clone()),
            Some(_) => return Err(Error::format(&json_name, "'parent' is not a string")),
        };
        chain.push(id);
    }
    chain.reverse();
    let layers = chain
        .into_iter()
        .map(|id| LayerSource {
            member: format!("{id}/layer.tar"),
            blob_digest: None,
            diff_id: None,
        })
        .collect();
    Ok(ImageSource {
        bundle,
        config: config.unwrap_or_default(),
        layers,
    })
}
