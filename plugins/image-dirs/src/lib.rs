//! An example image store plugin, written as a third party would, with
//! only the public SDK: images kept as plain directories, as an NFS share
//! or a build system leaves them. Image `com.example.image-dirs/<repo>:<tag>`
//! is the directory `<root>/<repo>/<tag>/`, holding the image's files in
//! `rootfs/` and, optionally, its Docker config (`Env`, `Cmd`,
//! `Entrypoint`, `WorkingDir`, `User`) in `config.json`. The root is the
//! plugin's configuration (the manifest's `config` file holds the path),
//! `/var/lib/mesos/image-dirs` without one.
//!
//! The plugin packs the directory into an OCI image layout of one
//! uncompressed layer in the scratch directory the agent gives it; the
//! agent's store checks and extracts it like any image. The tar is
//! written in name order with the files' own metadata, so an unchanged
//! directory gives the same layer digest and the agent's cached copy
//! serves it again.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use mesos_plugin_api::sdk::{ImageStorePlugin, PluginError, proto};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const DEFAULT_ROOT: &str = "/var/lib/mesos/image-dirs";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Default)]
pub struct ImageDirs {
    root: Mutex<Option<PathBuf>>,
}

impl ImageDirs {
    fn root(&self) -> PathBuf {
        self.root
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }
}

fn failed(what: impl std::fmt::Display, e: impl std::fmt::Display) -> PluginError {
    PluginError::internal(format!("{what}: {e}"))
}

/// `<root>/<repository>/<tag>`, the repository's parts plain names.
fn image_dir(root: &Path, image: &proto::ImageName) -> Result<PathBuf, PluginError> {
    if image.tag.is_empty() {
        return Err(PluginError::invalid(format!(
            "'{}': images here are named by tag, not by digest",
            image.name
        )));
    }
    let relative = Path::new(&image.repository).join(&image.tag);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(PluginError::invalid(format!(
            "'{}' does not name a directory under the root",
            image.name
        )));
    }
    Ok(root.join(relative))
}

/// Appends `dir`'s tree below `prefix`, entries in name order, symlinks
/// as symlinks.
fn append_tree<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, prefix: &Path) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (path, name) = (entry.path(), prefix.join(entry.file_name()));
        tar.append_path_with_name(&path, &name)?;
        if entry.file_type()?.is_dir() {
            append_tree(tar, &path, &name)?;
        }
    }
    Ok(())
}

/// Writes `bytes` into `blobs` under their digest; answers the descriptor.
fn blob(blobs: &Path, media_type: &str, bytes: &[u8]) -> io::Result<Value> {
    let hex = format!("{:x}", Sha256::digest(bytes));
    fs::write(blobs.join(&hex), bytes)?;
    Ok(json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()}))
}

/// The digest and size of the file at `path`.
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let (mut hasher, mut buffer, mut size) = (Sha256::new(), vec![0; 64 << 10], 0u64);
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((format!("{:x}", hasher.finalize()), size));
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
}

/// Packs `dir` as an OCI layout in `layout`, tagged `tag`.
fn pack(dir: &Path, tag: &str, layout: &Path) -> io::Result<()> {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let staged = blobs.join("layer.tar");
    let mut tar = tar::Builder::new(BufWriter::new(File::create(&staged)?));
    tar.follow_symlinks(false);
    append_tree(&mut tar, &dir.join("rootfs"), Path::new(""))?;
    tar.into_inner()?.flush()?;
    let (layer_hex, layer_size) = hash_file(&staged)?;
    fs::rename(&staged, blobs.join(&layer_hex))?;

    let runtime: Value = match fs::read(dir.join("config.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e),
    };
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
    });
    let config = blob(
        &blobs,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_hex}"),
            "size": layer_size,
        }],
    });
    let mut manifest = blob(
        &blobs,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    )?;
    manifest["annotations"] = json!({ REF_NAME: tag });
    let index = json!({"schemaVersion": 2, "manifests": [manifest]});
    fs::write(layout.join("index.json"), index.to_string())?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
}

impl ImageStorePlugin for ImageDirs {
    const NAME: &'static str = "com.example.image-dirs";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(&self, config: &[u8]) -> Result<(), PluginError> {
        let text = std::str::from_utf8(config)
            .map_err(|_| PluginError::invalid("the configuration is not UTF-8"))?
            .trim();
        if text.is_empty() {
            return Ok(());
        }
        let root = PathBuf::from(text);
        if !root.is_absolute() {
            return Err(PluginError::invalid(format!(
                "the root '{text}' is not an absolute path"
            )));
        }
        *self.root.lock().unwrap_or_else(PoisonError::into_inner) = Some(root);
        Ok(())
    }

    fn fetch(&self, request: proto::FetchRequest) -> Result<proto::FetchResponse, PluginError> {
        let image = request
            .image
            .ok_or_else(|| PluginError::invalid("the request names no image"))?;
        let dir = image_dir(&self.root(), &image)?;
        if !dir.join("rootfs").is_dir() {
            return Err(PluginError::invalid(format!(
                "no image '{}': {} is not a directory",
                image.name,
                dir.join("rootfs").display()
            )));
        }
        let layout = Path::new(&request.scratch_dir).join("layout");
        pack(&dir, &image.tag, &layout)
            .map_err(|e| failed(format!("packing {}", dir.display()), e))?;
        Ok(proto::FetchResponse {
            path: layout.display().to_string(),
        })
    }
}

mesos_plugin_api::export_image_store!(ImageDirs);
