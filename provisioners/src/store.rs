//! The Docker image store: a read-through cache over a local registry
//! directory (Mesos's `--docker_registry` given as a path), kept under
//! `--docker_store_dir`.
//!
//! Layout of the store directory:
//! - `layers/<sha256 hex>/rootfs/`: one extracted layer, named by the
//!   digest of its uncompressed tar (`diff_id`), shared by every image that
//!   contains it;
//! - `layers/<sha256 hex>/whiteouts.json`: the layer's whiteouts;
//! - `images/<sha256 of the image name>.json`: what a provision needs
//!   (layers, runtime config) plus the source file's size and mtime, so a
//!   second provision does not read the archive again unless it changed;
//! - `staging/`: private temporary directories, one per extraction in
//!   flight; a finished layer is renamed into `layers/` in one step, so a
//!   reader sees a whole layer or none;
//! - `.lock`: provisions hold it shared, image GC exclusive.
//!
//! Two provisions extracting the same layer at once each fill their own
//! staging directory; the first rename wins and the loser's copy is dropped.
//!
//! Registry lookup, for `repo[:tag|@digest]`: `<registry>/<repo><suffix>.tar`
//! (a `docker save` archive or an OCI archive) or `<registry>/<repo><suffix>/`
//! (an OCI layout directory). `repo` is tried as written for Docker Hub
//! (`busybox`, then `library/busybox`) and with then without the registry
//! host for others (`host:5000/a/b`, then `a/b`).
//!
//! A store made with [`DockerStore::remote`] pulls instead (see
//! [`crate::registry`]): into a `staging/pull-*` directory, layers already
//! in `layers/` are not downloaded, and extraction proceeds as for a local
//! layout. A pulled image is served from its record afterwards without
//! asking the registry again (Mesos's default for cached images).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::config::RuntimeConfig;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::extract::Whiteouts;
use crate::image::{ImageSource, read_image};
use crate::layer::unpack;
use crate::reference::ImageReference;
use crate::registry::{DockerConfig, Remote};

pub const DEFAULT_STORE_DIR: &str = "/tmp/mesos/store/docker";
const WHITEOUTS_FILE: &str = "whiteouts.json";
const LAYER_ROOTFS: &str = "rootfs";

#[derive(Debug)]
pub struct DockerStore {
    root: PathBuf,
    registry: PathBuf,
    /// Set when images come from a registry URL rather than `registry`.
    remote: Option<Remote>,
}

/// One cached layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub dir: PathBuf,
}

impl Layer {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(LAYER_ROOTFS)
    }

    pub fn whiteouts(&self) -> Result<Whiteouts> {
        let path = self.dir.join(WHITEOUTS_FILE);
        let bytes = fs::read(&path).at(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::format(path.display().to_string(), e))
    }
}

/// An image ready for a backend.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    pub reference: ImageReference,
    /// Bottom first, each layer once (its topmost position).
    pub layers: Vec<Layer>,
    pub config: RuntimeConfig,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub images_removed: usize,
    pub layers_removed: usize,
}

#[derive(Serialize, Deserialize)]
struct ImageRecord {
    reference: String,
    /// The archive or layout, or the manifest URL of a pulled image.
    source: PathBuf,
    source_size: u64,
    source_mtime_ns: u64,
    /// Layer digests (hex), bottom first.
    layers: Vec<String>,
    config: RuntimeConfig,
}

/// Holds the store lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _lock: Flock<File>,
}

impl DockerStore {
    /// `root` is the store directory, `registry` the directory of image
    /// archives. Both are created/checked here.
    pub fn new(root: impl Into<PathBuf>, registry: impl Into<PathBuf>) -> Result<DockerStore> {
        let store = DockerStore {
            root: root.into(),
            registry: registry.into(),
            remote: None,
        };
        store.create_dirs()?;
        Ok(store)
    }

    /// A store that pulls from `remote`.
    pub fn remote(root: impl Into<PathBuf>, remote: Remote) -> Result<DockerStore> {
        let store = DockerStore {
            root: root.into(),
            registry: PathBuf::new(),
            remote: Some(remote),
        };
        store.create_dirs()?;
        Ok(store)
    }

    /// From the agent's flags: `--docker_registry` (a URL or a directory)
    /// and `--docker_config` (a docker config.json, path or content).
    pub fn from_flags(
        root: impl Into<PathBuf>,
        docker_registry: &str,
        docker_config: Option<&str>,
    ) -> Result<DockerStore> {
        if Remote::is_url(docker_registry) {
            let config = match docker_config {
                Some(value) => DockerConfig::from_flag(value)?,
                None => DockerConfig::default(),
            };
            DockerStore::remote(root, Remote::new(docker_registry, config)?)
        } else {
            DockerStore::new(root, docker_registry)
        }
    }

    fn create_dirs(&self) -> Result<()> {
        for dir in [self.layers_dir(), self.images_dir(), self.staging_dir()] {
            fs::create_dir_all(&dir).at(&dir)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    pub fn layer(&self, digest: &Digest) -> Layer {
        Layer {
            digest: digest.clone(),
            dir: self.layers_dir().join(digest.hex()),
        }
    }

    /// Shared: layers may be added, none removed. Exclusive: for GC.
    pub fn lock(&self, exclusive: bool) -> Result<StoreLock> {
        let path = self.root.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        let lock = Flock::lock(file, arg).map_err(|(_, errno)| Error::io(&path, errno.into()))?;
        Ok(StoreLock { _lock: lock })
    }

    /// The image's layers (extracted on first use) and runtime config. The
    /// caller holds a shared [`lock`](Self::lock).
    pub fn get(&self, reference: &ImageReference) -> Result<ImageInfo> {
        let record_path = self.record_path(reference);
        let record = self.read_record(&record_path);
        if let Some(remote) = &self.remote {
            if let Some(info) = record.and_then(|r| self.cached(reference, r)) {
                return Ok(info);
            }
            let dir = tempfile::Builder::new()
                .prefix("pull-")
                .tempdir_in(self.staging_dir())
                .at(self.staging_dir())?;
            let pulled = remote.pull(reference, dir.path(), &|diff_id| self.has_layer(diff_id))?;
            let source = PathBuf::from(pulled.manifest_url);
            return self.store_image(reference, pulled.image, source, (0, 0), &record_path);
        }
        let source = match self.find_source(reference) {
            Ok(source) => source,
            // Once stored, an image no longer needs its archive.
            Err(error) => {
                return match record.and_then(|r| self.cached(reference, r)) {
                    Some(info) => Ok(info),
                    None => Err(error),
                };
            }
        };
        self.read_source(reference, source, record, &record_path)
    }

    /// The image `reference` from `source`, a `docker save` archive or an
    /// OCI layout found elsewhere (by an image store plugin), read as one
    /// of the local registry's: digests checked, layers extracted into the
    /// store unless there already. The caller holds a shared
    /// [`lock`](Self::lock).
    pub fn get_from(&self, reference: &ImageReference, source: &Path) -> Result<ImageInfo> {
        let record_path = self.record_path(reference);
        let record = self.read_record(&record_path);
        self.read_source(reference, source.to_path_buf(), record, &record_path)
    }

    /// An empty private directory for an image on its way into the store;
    /// deleted when dropped (and by image GC after a crash).
    pub fn scratch(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(self.staging_dir())
            .at(self.staging_dir())
    }

    /// Reads `source` unless the record says it was read as it is now.
    fn read_source(
        &self,
        reference: &ImageReference,
        source: PathBuf,
        record: Option<ImageRecord>,
        record_path: &Path,
    ) -> Result<ImageInfo> {
        let (size, mtime_ns) = source_stamp(&source)?;
        if let Some(record) = record
            && record.source == source
            && record.source_size == size
            && record.source_mtime_ns == mtime_ns
            && let Some(info) = self.cached(reference, record)
        {
            return Ok(info);
        }

        let bundle = if source.is_dir() {
            Bundle::open_dir(&source)
        } else {
            Bundle::open_tar(&source)?
        };
        let image = read_image(bundle, reference)?;
        self.store_image(reference, image, source, (size, mtime_ns), record_path)
    }

    fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer(diff_id).dir.join(WHITEOUTS_FILE).is_file()
    }

    /// Extracts the layers not yet stored and writes the image's record.
    fn store_image(
        &self,
        reference: &ImageReference,
        image: ImageSource,
        source: PathBuf,
        (size, mtime_ns): (u64, u64),
        record_path: &Path,
    ) -> Result<ImageInfo> {
        let total = image.layers.len();
        tracing::info!(image = %reference, source = %source.display(), layers = total, "reading image into the store");
        let mut digests: Vec<Digest> = Vec::with_capacity(total);
        let mut total_bytes = 0u64;
        for (i, layer) in image.layers.iter().enumerate() {
            if let Some(diff_id) = &layer.diff_id
                && self.has_layer(diff_id)
            {
                tracing::info!(image = %reference, layer = %diff_id, "layer {}/{} already in the store", i + 1, total);
                digests.push(diff_id.clone());
                continue;
            }
            let staging = tempfile::Builder::new()
                .prefix("layer-")
                .tempdir_in(self.staging_dir())
                .at(self.staging_dir())?;
            let rootfs = staging.path().join(LAYER_ROOTFS);
            fs::create_dir(&rootfs).at(&rootfs)?;
            // Not left to the umask: the top layer's root becomes the
            // container's `/`.
            fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755)).at(&rootfs)?;
            let unpacked = unpack(&image.bundle, layer, &rootfs)?;
            let whiteouts_path = staging.path().join(WHITEOUTS_FILE);
            let whiteouts = serde_json::to_vec(&unpacked.whiteouts)
                .map_err(|e| Error::format("whiteouts", e))?;
            fs::write(&whiteouts_path, whiteouts).at(&whiteouts_path)?;
            let target = self.layer(&unpacked.diff_id).dir;
            match fs::rename(staging.path(), &target) {
                Ok(()) => {
                    // Renamed away: nothing left for the guard to delete.
                    let _ = staging.keep();
                }
                Err(_) if target.join(WHITEOUTS_FILE).is_file() => {
                    tracing::debug!(layer = %unpacked.diff_id, "layer extracted concurrently; keeping the other copy");
                }
                Err(e) => return Err(Error::io(&target, e)),
            }
            total_bytes += unpacked.stats.bytes;
            tracing::info!(
                image = %reference,
                layer = %unpacked.diff_id,
                entries = unpacked.stats.entries,
                bytes = unpacked.stats.bytes,
                blob_bytes = unpacked.blob_bytes,
                "layer {}/{} extracted ({} bytes so far)",
                i + 1,
                total,
                total_bytes
            );
            digests.push(unpacked.diff_id);
        }

        let digests = dedup_keep_topmost(digests);
        let record = ImageRecord {
            reference: reference.to_string(),
            source,
            source_size: size,
            source_mtime_ns: mtime_ns,
            layers: digests.iter().map(|d| d.hex().to_string()).collect(),
            config: image.config.clone(),
        };
        self.write_record(record_path, &record)?;
        Ok(ImageInfo {
            reference: reference.clone(),
            layers: digests.iter().map(|d| self.layer(d)).collect(),
            config: image.config,
        })
    }

    /// The image from its record, if all its layers are still stored.
    fn cached(&self, reference: &ImageReference, record: ImageRecord) -> Option<ImageInfo> {
        let layers = record
            .layers
            .iter()
            .map(|hex| Digest::from_hex(hex).map(|d| self.layer(&d)))
            .collect::<Option<Vec<_>>>()?;
        if !layers.iter().all(|l| l.dir.join(WHITEOUTS_FILE).is_file()) {
            return None;
        }
        tracing::debug!(image = %reference, "image found in the store");
        Some(ImageInfo {
            reference: reference.clone(),
            layers,
            config: record.config,
        })
    }

    /// Removes image records not in `keep` and layers neither used by a
    /// kept image nor in `active` (layers of live containers). Takes the
    /// exclusive lock.
    pub fn prune(&self, keep: &[ImageReference], active: &BTreeSet<Digest>) -> Result<PruneStats> {
        let lock = self.lock(true)?;
        self.prune_locked(&lock, keep, active)
    }

    /// [`prune`](Self::prune) for a caller already holding the exclusive
    /// lock (a second flock from this process would wait on itself).
    pub fn prune_locked(
        &self,
        _exclusive: &StoreLock,
        keep: &[ImageReference],
        active: &BTreeSet<Digest>,
    ) -> Result<PruneStats> {
        let keep: BTreeSet<String> = keep.iter().map(ToString::to_string).collect();
        let mut stats = PruneStats::default();
        let mut retained: BTreeSet<String> = active.iter().map(|d| d.hex().to_string()).collect();

        let images_dir = self.images_dir();
        for entry in fs::read_dir(&images_dir).at(&images_dir)? {
            let path = entry.at(&images_dir)?.path();
            match self.read_record(&path) {
                Some(record) if keep.contains(&record.reference) => {
                    retained.extend(record.layers);
                }
                _ => {
                    fs::remove_file(&path).at(&path)?;
                    stats.images_removed += 1;
                }
            }
        }

        let layers_dir = self.layers_dir();
        for entry in fs::read_dir(&layers_dir).at(&layers_dir)? {
            let entry = entry.at(&layers_dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !retained.contains(&name) {
                tracing::info!(layer = %name, "removing unused layer");
                // Out of `layers/` in one step first: a crash halfway through
                // the deletion must not leave a half layer that looks whole.
                let doomed = self.staging_dir().join(format!("removing-{name}"));
                fs::rename(entry.path(), &doomed).at(entry.path())?;
                fs::remove_dir_all(&doomed).at(&doomed)?;
                stats.layers_removed += 1;
            }
        }

        // No extraction runs under the exclusive lock: leftovers are from
        // a crash.
        let staging = self.staging_dir();
        for entry in fs::read_dir(&staging).at(&staging)? {
            let path = entry.at(&staging)?.path();
            fs::remove_dir_all(&path).at(&path)?;
        }
        Ok(stats)
    }

    /// The archive or layout directory holding `reference`.
    pub fn find_source(&self, reference: &ImageReference) -> Result<PathBuf> {
        if let Some(remote) = &self.remote {
            return Err(Error::ImageNotFound {
                image: reference.to_string(),
                reason: format!(
                    "images come from the registry {}, not a directory",
                    remote.url()
                ),
            });
        }
        let mut names = vec![reference.short_repository().to_string()];
        if reference.is_docker_hub() {
            names.push(reference.repository.clone());
        } else {
            names.insert(
                0,
                format!("{}/{}", reference.registry, reference.repository),
            );
        }
        names.dedup();
        let mut suffixes = Vec::new();
        if let Some(digest) = &reference.digest {
            suffixes.push(format!("@{digest}"));
        }
        if let Some(tag) = &reference.tag {
            suffixes.push(format!(":{tag}"));
        }
        let mut tried = Vec::new();
        for name in &names {
            for suffix in &suffixes {
                let base = self.registry.join(format!("{name}{suffix}"));
                let archive = base.with_file_name(format!(
                    "{}.tar",
                    base.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                ));
                if archive.is_file() {
                    return Ok(archive);
                }
                if base.join("oci-layout").is_file() {
                    return Ok(base);
                }
                tried.push(archive.display().to_string());
                tried.push(base.display().to_string());
            }
        }
        Err(Error::ImageNotFound {
            image: reference.to_string(),
            reason: format!("none of {} exists", tried.join(", ")),
        })
    }

    fn record_path(&self, reference: &ImageReference) -> PathBuf {
        let key = Digest::of(reference.to_string().as_bytes());
        self.images_dir().join(format!("{}.json", key.hex()))
    }

    /// A missing or unreadable record just means the image is read again.
    fn read_record(&self, path: &Path) -> Option<ImageRecord> {
        let bytes = fs::read(path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable image record");
                None
            }
        }
    }

    fn write_record(&self, path: &Path, record: &ImageRecord) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(record).map_err(|e| Error::format("image record", e))?;
        write_atomically(path, &bytes)
    }
}

/// Writes through a temporary file and a rename, so readers never see a
/// half-written file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).at(dir)?;
    io::Write::write_all(&mut temp, bytes).at(temp.path())?;
    temp.as_file().sync_all().at(temp.path())?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

fn source_stamp(source: &Path) -> Result<(u64, u64)> {
    // A layout directory changes through its index.
    let file = if source.is_dir() {
        source.join("index.json")
    } else {
        source.to_path_buf()
    };
    let meta = fs::metadata(&file).at(&file)?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Ok((meta.len(), mtime_ns))
}

/// A layer listed twice is applied once, at its upper position (overlayfs
/// refuses a directory twice in `lowerdir`).
fn dedup_keep_topmost(digests: Vec<Digest>) -> Vec<Digest> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Digest> = digests
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.clone()))
        .collect();
    out.reverse();
    out
}
