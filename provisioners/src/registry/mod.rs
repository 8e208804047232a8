//! Pulls from a Docker Registry HTTP API v2 (Mesos's `--docker_registry`
//! given as a URL): the manifest (schema 2 or OCI; a manifest list or OCI
//! index resolved to this host's linux platform), the config and the
//! layers not already in the store, each verified against its sha256
//! while it streams to disk.
//!
//! Which registry: a name without a registry host (`busybox`) goes to the
//! configured default URL (`library/busybox` on Docker Hub, `busybox`
//! elsewhere, as it was pushed there); a name with a host goes to that
//! host, with the default URL's scheme when it is the same host, plain
//! http for loopback hosts (Docker treats those as insecure registries)
//! and https with the system's roots otherwise.
//!
//! The pull writes into a private directory laid out like an OCI layout
//! (`blobs/sha256/<hex>`); each blob goes to a temporary name first and is
//! renamed once its digest matched, so nothing unverified ever carries a
//! blob's name. The store extracts from there as from a local layout and
//! deletes the directory.
//!
//! The store's API is synchronous; a pull runs on a thread of its own with
//! a private single-threaded runtime, so it works the same whether the
//! caller is a plain thread or a runtime's blocking thread.

pub mod auth;
mod client;
#[cfg(test)]
mod https_tests;
pub mod manifest;

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

pub use auth::{Credentials, DockerConfig};
use client::Session;
use manifest::{Manifest, pick_platform, platforms};

use crate::bundle::Bundle;
use crate::config::parse_config;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{ImageSource, LayerSource};
use crate::reference::{DOCKER_HUB, ImageReference};

/// Manifests are small documents; a bigger one is refused unread.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Image configs likewise (long histories make them grow).
pub const MAX_CONFIG: u64 = 16 << 20;

/// A registry to pull from, with the credentials to use.
#[derive(Debug)]
pub struct Remote {
    scheme: &'static str,
    /// `host[:port]` of the default registry.
    authority: String,
    config: DockerConfig,
    /// Why there is none: no root certificate could be loaded, say.
    tls: std::result::Result<Arc<ClientConfig>, String>,
}

/// Where one image is pulled from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub scheme: &'static str,
    pub registry: String,
    pub repository: String,
}

/// What a pull leaves for the store.
pub(crate) struct Pulled {
    pub image: ImageSource,
    /// The manifest's URL, recorded as the image's source.
    pub manifest_url: String,
}

impl Remote {
    /// Whether a `--docker_registry` value is a registry URL rather than a
    /// directory of archives.
    pub fn is_url(value: &str) -> bool {
        value.starts_with("http://") || value.starts_with("https://")
    }

    /// `url` is the default registry (`https://registry-1.docker.io`,
    /// `http://127.0.0.1:5000`). Loads the system's root certificates:
    /// blocking.
    pub fn new(url: &str, config: DockerConfig) -> Result<Remote> {
        let bad = |reason: &str| Error::InvalidRegistryUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(bad("expected http:// or https://"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return Err(bad("expected scheme://host[:port] without a path"));
        }
        authority
            .parse::<http::uri::Authority>()
            .map_err(|e| bad(&e.to_string()))?;
        let tls = system_tls();
        if let Err(e) = &tls {
            tracing::warn!("registry pulls over https are not possible: {e}");
        }
        Ok(Remote {
            scheme,
            authority: authority.to_lowercase(),
            config,
            tls,
        })
    }

    /// The default registry as `scheme://host[:port]`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    pub fn target(&self, reference: &ImageReference) -> Target {
        if reference.is_docker_hub() {
            let repository = if self.authority == DOCKER_HUB {
                reference.repository.clone()
            } else {
                reference.short_repository().to_string()
            };
            return Target {
                scheme: self.scheme,
                registry: self.authority.clone(),
                repository,
            };
        }
        let registry = reference.registry.to_lowercase();
        let scheme = if registry == self.authority {
            self.scheme
        } else if is_loopback(&registry) {
            "http"
        } else {
            "https"
        };
        Target {
            scheme,
            registry,
            repository: reference.repository.clone(),
        }
    }

    /// Pulls `reference` into `dir` (an empty private directory the caller
    /// deletes), skipping layers whose `diff_id` `cached` says the store
    /// already holds.
    pub(crate) fn pull(
        &self,
        reference: &ImageReference,
        dir: &Path,
        cached: &(dyn Fn(&Digest) -> bool + Sync),
    ) -> Result<Pulled> {
        let target = self.target(reference);
        let failed = || Error::Registry {
            image: reference.to_string(),
            registry: format!("{}://{}", target.scheme, target.registry),
            reason: "the pull thread failed".to_string(),
        };
        std::thread::scope(|scope| {
            let pull = scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Registry {
                        image: reference.to_string(),
                        registry: format!("{}://{}", target.scheme, target.registry),
                        reason: format!("cannot start an I/O runtime: {e}"),
                    })?;
                runtime.block_on(self.pull_async(&target, reference, dir, cached))
            });
            pull.join().unwrap_or_else(|_| Err(failed()))
        })
    }

    async fn pull_async(
        &self,
        target: &Target,
        reference: &ImageReference,
        dir: &Path,
        cached: &(dyn Fn(&Digest) -> bool + Sync),
    ) -> Result<Pulled> {
        let image = reference.to_string();
        let mut session = Session::new(
            target.scheme,
            &target.registry,
            &target.repository,
            &image,
            self.config.credentials(&target.registry).cloned(),
            &self.tls,
        );
        tracing::info!(image = %image, registry = %session.url(""), repository = %target.repository, "pulling image");
        let wanted = match &reference.digest {
            Some(digest) => digest.to_string(),
            None => reference.suffix().trim_start_matches(':').to_string(),
        };
        let manifest_path = format!("/v2/{}/manifests/{wanted}", target.repository);
        let manifest_url = session.url(&manifest_path);
        let (manifest, manifest_digest) =
            fetch_manifest(&mut session, &manifest_path, reference.digest.as_ref()).await?;
        let image_manifest = match manifest {
            Manifest::Image(image_manifest) => image_manifest,
            Manifest::List(list) => {
                let chosen = pick_platform(&list).ok_or_else(|| {
                    session.error(format!(
                        "the manifest list {manifest_digest} has no linux/{} image (it has: {})",
                        manifest::go_arch(),
                        platforms(&list)
                    ))
                })?;
                let digest = chosen.digest()?;
                tracing::info!(image = %image, manifest = %digest, "manifest list: picked linux/{}", manifest::go_arch());
                let path = format!("/v2/{}/manifests/{digest}", target.repository);
                match fetch_manifest(&mut session, &path, Some(&digest)).await? {
                    (Manifest::Image(image_manifest), _) => image_manifest,
                    (Manifest::List(_), _) => {
                        return Err(
                            session.error(format!("manifest {digest} is a list inside a list"))
                        );
                    }
                }
            }
        };

        let config_digest = image_manifest.config.digest()?;
        let config_bytes = {
            if let Some(size) = image_manifest.config.size
                && size > MAX_CONFIG
            {
                return Err(session.error(format!(
                    "config {config_digest} is {size} bytes, more than the {MAX_CONFIG} allowed"
                )));
            }
            let path = format!("/v2/{}/blobs/{config_digest}", target.repository);
            let response = session.get(&path, None).await?;
            let bytes = session.read(response, MAX_CONFIG, "config").await?;
            config_digest.verify(&Digest::of(&bytes), format!("config of {image}"))?;
            bytes
        };
        let parsed = parse_config(&config_bytes, &format!("config {config_digest}"))?;
        let layers = &image_manifest.layers;
        if !parsed.diff_ids.is_empty() && parsed.diff_ids.len() != layers.len() {
            return Err(session.error(format!(
                "the manifest lists {} layers but the config {} diff_ids",
                layers.len(),
                parsed.diff_ids.len()
            )));
        }

        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).at(&blobs)?;
        let total = layers.len();
        let mut sources = Vec::with_capacity(total);
        let mut downloaded = 0u64;
        for (i, layer) in layers.iter().enumerate() {
            let digest = layer.digest()?;
            if layer.media_type.ends_with("+zstd") {
                // Refused before downloading what could not be unpacked.
                return Err(session.error(format!(
                    "layer {digest} is zstd-compressed ({}); only gzip and plain tar layers are supported",
                    layer.media_type
                )));
            }
            let diff_id = parsed.diff_ids.get(i).cloned();
            let member = format!("blobs/sha256/{}", digest.hex());
            sources.push(LayerSource {
                member,
                blob_digest: Some(digest.clone()),
                diff_id: diff_id.clone(),
            });
            if diff_id.as_ref().is_some_and(cached) {
                tracing::info!(image = %image, layer = %digest, "layer {}/{total} already in the store; not downloaded", i + 1);
                continue;
            }
            let path = blobs.join(digest.hex());
            if path.is_file() {
                // The same blob twice in one image.
                continue;
            }
            let label = format!("layer {}/{total} {digest}", i + 1);
            tracing::info!(image = %image, size = ?layer.size, "downloading {label}");
            let response = session
                .get(&format!("/v2/{}/blobs/{digest}", target.repository), None)
                .await?;
            let partial = dir.join(format!("partial-{}", digest.hex()));
            downloaded += session
                .download(response, &partial, &digest, layer.size, &label)
                .await?;
            std::fs::rename(&partial, &path).at(&path)?;
        }
        tracing::info!(image = %image, layers = total, bytes = downloaded, "pull finished");
        Ok(Pulled {
            image: ImageSource {
                bundle: Bundle::open_dir(dir),
                config: parsed.runtime,
                layers: sources,
            },
            manifest_url,
        })
    }
}

/// Fetches and parses a manifest, verifying its digest: against `pinned`
/// when the reference or a list names it, else against the registry's
/// `Docker-Content-Digest` header when it sends one.
async fn fetch_manifest(
    session: &mut Session,
    path: &str,
    pinned: Option<&Digest>,
) -> Result<(Manifest, Digest)> {
    let response = session.get(path, Some(manifest::ACCEPT)).await?;
    let content_type = response.content_type.clone();
    let header = response.digest_header.clone();
    let bytes = session.read(response, MAX_MANIFEST, "manifest").await?;
    let actual = Digest::of(&bytes);
    let what = format!("manifest {}", session.url(path));
    match (pinned, header) {
        (Some(expected), _) => expected.verify(&actual, &what)?,
        (None, Some(header)) => {
            // Registries may name another algorithm; only sha256 is checked.
            if let Ok(expected) = Digest::parse(&header) {
                expected.verify(&actual, &what)?;
            }
        }
        (None, None) => {}
    }
    let manifest = manifest::parse(&bytes, content_type.as_deref(), &what)?;
    Ok((manifest, actual))
}

/// Hosts Docker talks plain http to.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn system_tls() -> std::result::Result<Arc<ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no trusted root certificates found ({})",
            errors.join("; ")
        ));
    }
    tls_with_roots(roots)
}

fn tls_with_roots(roots: RootCertStore) -> std::result::Result<Arc<ClientConfig>, String> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn target(default: &str, name: &str) -> Target {
        Remote::new(default, DockerConfig::default())
            .unwrap()
            .target(&ImageReference::parse(name).unwrap())
    }

    #[test]
    fn picks_registry_scheme_and_repository() {
        let hub = "https://registry-1.docker.io";
        assert_eq!(
            target(hub, "busybox"),
            Target {
                scheme: "https",
                registry: DOCKER_HUB.into(),
                repository: "library/busybox".into()
            }
        );
        let local = "http://127.0.0.1:5000/";
        assert_eq!(
            target(local, "busybox"),
            Target {
                scheme: "http",
                registry: "127.0.0.1:5000".into(),
                repository: "busybox".into()
            }
        );
        assert_eq!(target(local, "org/app").repository, "org/app");
        assert_eq!(target(hub, "localhost:5000/a").scheme, "http");
        assert_eq!(target(hub, "127.0.0.1:5001/a").scheme, "http");
        assert_eq!(target(hub, "quay.io/a/b").scheme, "https");
        assert_eq!(
            target("https://127.0.0.1:5000", "127.0.0.1:5000/a").scheme,
            "https"
        );
    }

    #[test]
    fn refuses_bad_urls() {
        for url in [
            "127.0.0.1:5000",
            "ftp://x",
            "http://",
            "http://h/path",
            "http://u@h",
        ] {
            assert!(Remote::new(url, DockerConfig::default()).is_err(), "{url}");
        }
        assert!(Remote::is_url("https://registry-1.docker.io"));
        assert!(!Remote::is_url("/var/lib/images"));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.1.2.3:80"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry.example"));
    }
}
