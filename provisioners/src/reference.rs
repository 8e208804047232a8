//! Docker image names: `[registry[:port]/]path[:tag][@sha256:<hex>]`, with
//! Docker Hub's defaults (registry `registry-1.docker.io`, `library/` for
//! one-component names, tag `latest` when neither tag nor digest is given).

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DOCKER_HUB: &str = "registry-1.docker.io";
const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the repository part of a name.
const MAX_NAME: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// `host[:port]`; Docker Hub when the name has none.
    pub registry: String,
    /// Slash-separated path, `library/<name>` for official Hub images.
    pub repository: String,
    /// `None` only when a digest pins the image.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageReference {
    pub fn parse(name: &str) -> Result<ImageReference> {
        let bad = |reason: &str| Error::InvalidReference {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        if name.trim() != name || name.chars().any(char::is_whitespace) {
            return Err(bad("whitespace is not allowed"));
        }

        let (rest, digest) = match name.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest)
                    .map_err(|_| bad("digest must be sha256:<64 lowercase hex digits>"))?;
                (rest, Some(digest))
            }
            None => (name, None),
        };

        // A ':' after the last '/' starts the tag; one before it belongs to
        // the registry's port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|reason| bad(&reason))?;
        }

        let (registry, repository) = match path.split_once('/') {
            Some((first, remainder)) if is_registry(first) => {
                check_registry(first).map_err(|reason| bad(&reason))?;
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), path.to_string()),
        };
        if repository.is_empty() {
            return Err(bad("missing repository"));
        }
        if repository.len() > MAX_NAME {
            return Err(bad("repository longer than 255 characters"));
        }
        for component in repository.split('/') {
            check_component(component).map_err(|reason| bad(&reason))?;
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The repository as users write it: `busybox` rather than
    /// `library/busybox` on Docker Hub.
    pub fn short_repository(&self) -> &str {
        if self.is_docker_hub() {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
        } else {
            &self.repository
        }
    }

    /// `:tag` or `@digest` (the digest wins when both are given, as it pins
    /// the content).
    pub fn suffix(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("@{digest}"),
            (None, Some(tag)) => format!(":{tag}"),
            (None, None) => format!(":{DEFAULT_TAG}"),
        }
    }
}

impl fmt::Display for ImageReference {
    /// The fully qualified form, stable across spellings of the same image
    /// (`busybox` and `docker.io`-less `library/busybox:latest` print alike).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's rule: the first component is a registry when it looks like a
/// host (has a dot or a port) or is `localhost`.
fn is_registry(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn check_registry(registry: &str) -> std::result::Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !host_ok {
        return Err(format!("invalid registry host '{host}'"));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("invalid registry port '{port}'"));
    }
    Ok(())
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let valid_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-';
    let first_ok = tag
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if tag.is_empty() {
        Err("empty tag".into())
    } else if tag.len() > 128 {
        Err("tag longer than 128 characters".into())
    } else if !first_ok || !tag.bytes().all(valid_char) {
        Err(format!(
            "invalid tag '{tag}' (letters, digits, '_', '.', '-'; not starting with '.' or '-')"
        ))
    } else {
        Ok(())
    }
}

/// A path component: lowercase letters and digits, separated by '.', '_',
/// '__' or runs of '-'.
fn check_component(component: &str) -> std::result::Result<(), String> {
    if component.is_empty() {
        return Err("empty path component".into());
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("'{component}' must be lowercase"));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let separator = |b: u8| b == b'.' || b == b'_' || b == b'-';
    let edges_ok =
        bytes.first().is_some_and(|&b| alnum(b)) && bytes.last().is_some_and(|&b| alnum(b));
    let chars_ok = bytes.iter().all(|&b| alnum(b) || separator(b));
    // Runs of separators: only '__' or any number of '-'.
    let runs_ok = component
        .split(|c: char| c.is_ascii_alphanumeric())
        .all(|run| run.len() <= 1 || run == "__" || run.bytes().all(|b| b == b'-'));
    if edges_ok && chars_ok && runs_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid path component '{component}' (lowercase letters and digits separated by '.', '_', '__' or '-')"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(name: &str) -> ImageReference {
        ImageReference::parse(name).unwrap()
    }

    #[test]
    fn official_image_gets_hub_library_and_latest() {
        let r = parse("busybox");
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.digest, None);
        assert_eq!(r.short_repository(), "busybox");
        assert_eq!(r.to_string(), "registry-1.docker.io/library/busybox:latest");
    }

    #[test]
    fn tag_and_explicit_library() {
        let r = parse("busybox:1.36");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(parse("library/busybox:1.36"), r);
    }

    #[test]
    fn registry_with_port_and_nested_path() {
        let r = parse("registry:5000/a/b:tag");
        assert_eq!(r.registry, "registry:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("tag"));
        let r = parse("localhost/x");
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.repository, "x");
        let r = parse("quay.io/coreos/etcd");
        assert_eq!(r.registry, "quay.io");
        assert_eq!(r.repository, "coreos/etcd");
        // Without a dot, port or `localhost` the first component is a path.
        let r = parse("registry/a/b");
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "registry/a/b");
    }

    #[test]
    fn digest_pins_without_tag() {
        let hex = "a".repeat(64);
        let r = parse(&format!("name@sha256:{hex}"));
        assert_eq!(r.repository, "library/name");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().hex(), hex);
        assert_eq!(r.suffix(), format!("@sha256:{hex}"));
        let r = parse(&format!("registry:5000/name:v1@sha256:{hex}"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.digest.is_some());
    }

    #[test]
    fn bad_names_are_refused_with_reason() {
        let cases = [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("busybox:", "empty tag"),
            ("busybox:-x", "invalid tag"),
            ("busy box", "whitespace"),
            ("name@sha256:abc", "digest"),
            ("name@md5:abc", "digest"),
            ("a//b", "empty path component"),
            ("-a", "invalid path component"),
            ("a..b", "invalid path component"),
            ("registry:99999/a", "port"),
            ("registry:5000/", "missing repository"),
            ("/a", "empty path component"),
        ];
        for (name, reason) in cases {
            let error = ImageReference::parse(name).unwrap_err().to_string();
            assert!(
                error.contains(reason),
                "'{name}' gave '{error}', expected it to mention '{reason}'"
            );
        }
        let long = "a".repeat(256);
        assert!(ImageReference::parse(&long).is_err());
    }
}
