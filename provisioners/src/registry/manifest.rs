//! The manifests a registry serves: an image manifest (Docker schema 2 or
//! OCI) naming a config and layers, or a list of them per platform
//! (Docker manifest list, OCI index) from which this host's is chosen.

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The `Accept` header of a manifest request: every kind read here, and
/// not schema 1, so registries convert rather than send that.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn digest(&self) -> Result<Digest> {
        Digest::parse(&self.digest)
    }
}

#[derive(Deserialize, Clone, Debug)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug)]
pub enum Manifest {
    Image(ImageManifest),
    List(Vec<Descriptor>),
}

/// Reads a manifest, telling the kinds apart by the response's content
/// type, else the document's own `mediaType`, else its shape.
pub fn parse(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Manifest> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::format(what, e))?;
    if value.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return Err(Error::format(
            what,
            "schema 1 manifests are not supported (push the image again with a current client)",
        ));
    }
    // `application/json; charset=utf-8` and the like say nothing.
    let declared = content_type
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| t.starts_with("application/vnd."))
        .or_else(|| value.get("mediaType").and_then(Value::as_str));
    let is_list = match declared {
        Some(DOCKER_LIST | OCI_INDEX) => true,
        Some(DOCKER_MANIFEST | OCI_MANIFEST) => false,
        Some(other) => {
            return Err(Error::format(
                what,
                format!("unsupported manifest type '{other}'"),
            ));
        }
        None => value.get("manifests").is_some(),
    };
    if is_list {
        #[derive(Deserialize)]
        struct List {
            manifests: Vec<Descriptor>,
        }
        let list: List = serde_json::from_value(value).map_err(|e| Error::format(what, e))?;
        Ok(Manifest::List(list.manifests))
    } else {
        let image: ImageManifest =
            serde_json::from_value(value).map_err(|e| Error::format(what, e))?;
        Ok(Manifest::Image(image))
    }
}

/// The entry for linux on this machine's architecture. With several
/// variants (arm v6/v7/v8) the first listed wins, as registries list the
/// preferred one first.
pub fn pick_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let arch = go_arch();
    manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    })
}

/// Platforms a list offers, for the error when none fits.
pub fn platforms(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|m| m.platform.as_ref())
        .map(|p| match &p.variant {
            Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if names.is_empty() {
        "none named".to_string()
    } else {
        names.join(", ")
    }
}

/// This machine's architecture in the Go spelling manifests use.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_by_content_type_or_shape() {
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":3}},"layers":[{{"digest":"{}","size":5}}]}}"#,
            digest('a'),
            digest('b')
        );
        for content_type in [Some(DOCKER_MANIFEST), Some(OCI_MANIFEST), None] {
            let Manifest::Image(image) = parse(json.as_bytes(), content_type, "m").unwrap() else {
                panic!("not an image manifest");
            };
            assert_eq!(image.layers.len(), 1);
            assert_eq!(image.config.size, Some(3));
        }
    }

    #[test]
    fn list_picks_this_platform() {
        let arch = go_arch();
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"digest":"{}","platform":{{"os":"linux","architecture":"s390x"}}}},
              {{"digest":"{}","platform":{{"os":"windows","architecture":"{arch}"}}}},
              {{"digest":"{}","platform":{{"os":"linux","architecture":"{arch}"}}}}]}}"#,
            digest('1'),
            digest('2'),
            digest('3')
        );
        let Manifest::List(list) = parse(json.as_bytes(), Some("application/json"), "m").unwrap()
        else {
            panic!("not a list");
        };
        assert_eq!(pick_platform(&list).unwrap().digest, digest('3'));
        assert!(pick_platform(&list[..2]).is_none());
        assert!(platforms(&list).contains("linux/s390x"));
    }

    #[test]
    fn refuses_schema1_unknown_types_and_garbage() {
        assert!(
            parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "m")
                .unwrap_err()
                .to_string()
                .contains("schema 1")
        );
        assert!(parse(b"{}", Some("application/vnd.foo+json"), "m").is_err());
        assert!(parse(b"{}", None, "m").is_err());
        assert!(parse(b"[1]", None, "m").is_err());
        assert!(parse(b"\xff", None, "m").is_err());
    }
}
