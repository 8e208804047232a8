//! The provisioner: per container, an image's rootfs from the store through
//! a backend; destroy; recovery after an agent restart; image GC.
//!
//! Images come from the Docker store, or from an image store plugin when
//! their registry part names one: the plugin says where the image is, and
//! the Docker store reads it from there (see `mesos_plugin_api::image`).
//!
//! Layout of the provisioner directory (`<work_dir>/provisioner`):
//! `containers/<container id>/container.json` (image, backend, layers; it
//! is written before the backend runs so a crash mid-provision can still be
//! cleaned up) and the backend's directories beside it (`rootfs/`, and for
//! overlay `upper/`, `work/`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesos_plugin_api::image::{ImageName, ImageStore};
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend, Backends};
use crate::config::RuntimeConfig;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::mounts;
use crate::reference::ImageReference;
use crate::store::{DockerStore, ImageInfo, PruneStats, write_atomically};

const RECORD: &str = "container.json";

pub struct Provisioner {
    dir: PathBuf,
    store: DockerStore,
    backend: Arc<dyn Backend>,
    backends: Backends,
    image_stores: Vec<Arc<dyn ImageStore>>,
    /// Whether images no store plugin serves come from the Docker store.
    docker_images: bool,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stores: Vec<&str> = self.image_stores.iter().map(|s| s.name()).collect();
        f.debug_struct("Provisioner")
            .field("dir", &self.dir)
            .field("store", &self.store)
            .field("backend", &self.backend.name())
            .field("backends", &self.backends)
            .field("image_stores", &stores)
            .field("docker_images", &self.docker_images)
            .finish()
    }
}

/// What a container launch needs from its image.
#[derive(Clone, Debug)]
pub struct ProvisionInfo {
    pub rootfs: PathBuf,
    pub config: RuntimeConfig,
    pub image: ImageReference,
    /// Bottom first.
    pub layers: Vec<Digest>,
}

#[derive(Serialize, Deserialize)]
struct ContainerRecord {
    image: String,
    backend: String,
    layers: Vec<String>,
}

impl Provisioner {
    /// `backend` is a `--image_provisioner_backend` value, one of the
    /// built-ins.
    pub fn new(dir: impl Into<PathBuf>, store: DockerStore, backend: &str) -> Result<Provisioner> {
        Self::with_backends(dir, store, backend, Backends::default())
    }

    /// [`new`](Self::new) with `backend` one of `backends`, which also
    /// serve the destroy of a rootfs another backend built.
    pub fn with_backends(
        dir: impl Into<PathBuf>,
        store: DockerStore,
        backend: &str,
        backends: Backends,
    ) -> Result<Provisioner> {
        let dir = dir.into();
        let containers = dir.join("containers");
        fs::create_dir_all(&containers).at(&containers)?;
        Ok(Provisioner {
            dir,
            store,
            backend: backends.get(backend)?,
            backends,
            image_stores: Vec::new(),
            docker_images: true,
        })
    }

    /// Serves the images whose registry part names one of `stores` from
    /// it, and the others from the Docker store only if `docker_images`
    /// (`--image_providers` lists `docker`).
    pub fn with_image_stores(
        mut self,
        stores: Vec<Arc<dyn ImageStore>>,
        docker_images: bool,
    ) -> Provisioner {
        self.image_stores = stores;
        self.docker_images = docker_images;
        self
    }

    pub fn store(&self) -> &DockerStore {
        &self.store
    }

    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    pub fn provision(&self, container_id: &str, image: &ImageReference) -> Result<ProvisionInfo> {
        let container_dir = self.container_dir(container_id)?;
        // Held until the rootfs is built and the container's layers are on
        // record, so GC cannot remove them in between.
        let _lock = self.store.lock(false)?;
        match fs::create_dir(&container_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyProvisioned(container_id.to_string()));
            }
            Err(e) => return Err(Error::io(&container_dir, e)),
        }
        let result = self.provision_in(container_id, &container_dir, image);
        if let Err(error) = &result {
            tracing::warn!(container = container_id, image = %image, %error, "provisioning failed; cleaning up");
            if let Err(cleanup) =
                self.destroy_dir(container_id, &container_dir, self.backend.as_ref())
            {
                tracing::warn!(container = container_id, error = %cleanup, "cleanup after failed provision failed");
            }
        }
        result
    }

    fn provision_in(
        &self,
        container_id: &str,
        container_dir: &Path,
        image: &ImageReference,
    ) -> Result<ProvisionInfo> {
        let started = std::time::Instant::now();
        let info = self.image(image)?;
        let record = ContainerRecord {
            image: image.to_string(),
            backend: self.backend.name().to_string(),
            layers: info
                .layers
                .iter()
                .map(|l| l.digest.hex().to_string())
                .collect(),
        };
        let bytes =
            serde_json::to_vec_pretty(&record).map_err(|e| Error::format("container record", e))?;
        write_atomically(&container_dir.join(RECORD), &bytes)?;
        let rootfs = self
            .backend
            .provision(container_id, &info.layers, container_dir)?;
        tracing::info!(
            image = %image,
            backend = self.backend.name(),
            rootfs = %rootfs.display(),
            layers = info.layers.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "provisioned rootfs"
        );
        Ok(ProvisionInfo {
            rootfs,
            config: info.config,
            image: info.reference,
            layers: info.layers.into_iter().map(|l| l.digest).collect(),
        })
    }

    /// The image's layers and config, from the store its name says.
    fn image(&self, image: &ImageReference) -> Result<ImageInfo> {
        let Some(store) = self
            .image_stores
            .iter()
            .find(|s| s.name() == image.registry)
        else {
            if !self.docker_images {
                let reason = if image.is_docker_hub() {
                    "--image_providers does not list docker (image stores serve the images named '<store>/<repository>:<tag>')".to_string()
                } else {
                    format!(
                        "no image store is named '{}', and --image_providers does not list docker",
                        image.registry
                    )
                };
                return Err(Error::ImageNotFound {
                    image: image.to_string(),
                    reason,
                });
            }
            return self.store.get(image);
        };
        let scratch = self.store.scratch()?;
        let name = ImageName {
            name: image.to_string(),
            registry: image.registry.clone(),
            repository: image.repository.clone(),
            tag: image.tag.clone(),
            digest: image.digest.as_ref().map(ToString::to_string),
        };
        let started = std::time::Instant::now();
        let source = store.fetch(&name, scratch.path())?;
        tracing::info!(
            image = %image,
            store = store.name(),
            source = %source.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "image store answered"
        );
        self.store.get_from(image, &source)
    }

    /// Tears down the container's rootfs. `false` when there was none.
    pub fn destroy(&self, container_id: &str) -> Result<bool> {
        let container_dir = self.container_dir(container_id)?;
        if !container_dir.exists() {
            return Ok(false);
        }
        // The backend that built it, which may differ from today's flag.
        let backend = match read_record(&container_dir) {
            Some(record) => self.backends.get(&record.backend)?,
            None => self.backend.clone(),
        };
        self.destroy_dir(container_id, &container_dir, backend.as_ref())?;
        tracing::info!(container = container_id, "destroyed rootfs");
        Ok(true)
    }

    /// Mounts inside the rootfs (the containerizer's `/proc`, bind-mounted
    /// sandboxes and volumes) go first, then the backend's own, and the
    /// directory is deleted only once nothing is mounted below it: deleting
    /// through a bind mount would delete host files.
    ///
    /// The mount table is read once: it holds every live container's
    /// overlay, so each read costs in proportion to their number (reading
    /// it three times was most of what a destroy cost with 50 live). Only
    /// a container with more than its rootfs mounted (leftovers of a crash,
    /// a stacked mount) gets a second look before the deletion.
    fn destroy_dir(
        &self,
        container_id: &str,
        container_dir: &Path,
        backend: &dyn Backend,
    ) -> Result<()> {
        let rootfs = backend::rootfs_dir(container_dir);
        let mut mounted = mounts::mounts_under(container_dir)?;
        let only_the_rootfs = mounted.len() <= 1 && mounted.iter().all(|m| *m == rootfs);
        mounted.retain(|m| *m != rootfs && m.as_path() != container_dir);
        let (in_rootfs, others) = mounted.into_iter().partition(|m| m.starts_with(&rootfs));
        mounts::detach_all(in_rootfs)?;
        backend.destroy(container_id, container_dir)?;
        mounts::detach_all(others)?;
        if !only_the_rootfs {
            mounts::ensure_nothing_below(container_dir)?;
        }
        fs::remove_dir_all(container_dir).at(container_dir)
    }

    /// Ids of the containers with a rootfs on disk.
    pub fn containers(&self) -> Result<Vec<String>> {
        let dir = self.dir.join("containers");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).at(&dir)? {
            ids.push(entry.at(&dir)?.file_name().to_string_lossy().into_owned());
        }
        ids.sort();
        Ok(ids)
    }

    /// After an agent restart: destroys the rootfs of every container not
    /// in `known` (Mesos's provisioner recover) and returns their ids.
    pub fn recover(&self, known: &[String]) -> Result<Vec<String>> {
        let mut destroyed = Vec::new();
        for id in self.containers()? {
            if !known.contains(&id) {
                tracing::info!(container = %id, "destroying rootfs of an unknown container");
                self.destroy(&id)?;
                destroyed.push(id);
            }
        }
        Ok(destroyed)
    }

    /// Image GC (PRUNE_IMAGES): keeps the images in `keep` and every layer
    /// a live container uses; removes other image records and layers.
    pub fn prune_images(&self, keep: &[ImageReference]) -> Result<PruneStats> {
        // Exclusive first: no provision can add a container while the
        // live set is read.
        let lock = self.store.lock(true)?;
        let mut active = BTreeSet::new();
        for id in self.containers()? {
            let container_dir = self.dir.join("containers").join(&id);
            let Some(record) = read_record(&container_dir) else {
                // A container whose record is missing is mid-provision
                // from a crash; its layers are not known, keep everything.
                tracing::warn!(container = %id, "no container record; skipping image GC");
                return Ok(PruneStats::default());
            };
            for hex in record.layers {
                if let Some(digest) = Digest::from_hex(&hex) {
                    active.insert(digest);
                }
            }
        }
        let stats = self.store.prune_locked(&lock, keep, &active)?;
        tracing::info!(
            images_removed = stats.images_removed,
            layers_removed = stats.layers_removed,
            "pruned images"
        );
        Ok(stats)
    }

    fn container_dir(&self, container_id: &str) -> Result<PathBuf> {
        validate_container_id(container_id)?;
        Ok(self.dir.join("containers").join(container_id))
    }
}

fn read_record(container_dir: &Path) -> Option<ContainerRecord> {
    let bytes = fs::read(container_dir.join(RECORD)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Container ids become directory names.
fn validate_container_id(id: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidContainerId {
        id: id.to_string(),
        reason: reason.to_string(),
    };
    if id.is_empty() {
        return Err(bad("empty"));
    }
    if id == "." || id == ".." {
        return Err(bad("not a valid directory name"));
    }
    if id.len() > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    if id
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(bad("contains '/', '\\', whitespace or control characters"));
    }
    Ok(())
}
