//! `docker save` archives with `manifest.json`.

use serde::Deserialize;

use super::{ImageSource, LayerSource, tag_candidates};
use crate::bundle::Bundle;
use crate::config::parse_config;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageReference;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn read(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
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
