//! Legacy `docker save` archives (before Docker 1.10): `repositories` and a
//! `<id>/json` per layer linking to its parent.

use serde_json::Value;

use super::{ImageSource, LayerSource, tag_candidates};
use crate::bundle::Bundle;
use crate::config::parse_config;
use crate::error::{Error, Result};
use crate::reference::ImageReference;

/// Parent links followed before assuming a loop.
const MAX_LEGACY_LAYERS: usize = 1000;

pub(super) fn read(bundle: Bundle, reference: &ImageReference) -> Result<ImageSource> {
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
