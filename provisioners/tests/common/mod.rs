//! Builders for image layers and image archives, in memory, with the `tar`
//! crate, plus the checks shared by the copy and overlay tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use mesos_provisioners::{Digest, DockerStore, Provisioner};
use serde_json::{Value, json};
use tar::{EntryType, Header};

/// One layer tar, built entry by entry.
pub struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with `path` written into the header as raw bytes,
    /// bypassing the tar crate's own path checks so hostile archives can be
    /// built.
    fn raw(&mut self, path: &str, kind: EntryType, mode: u32, link: Option<&str>, data: &[u8]) {
        self.raw_bytes(path.as_bytes(), kind, mode, link, data);
    }

    fn raw_bytes(
        &mut self,
        path: &[u8],
        kind: EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut header = Header::new_gnu();
        {
            let name = &mut header.as_old_mut().name;
            assert!(path.len() < name.len(), "test path too long");
            name[..path.len()].copy_from_slice(path);
        }
        if let Some(link) = link {
            let field = &mut header.as_old_mut().linkname;
            assert!(link.len() < field.len(), "test link too long");
            field[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
    }

    pub fn dir(mut self, path: &str) -> Self {
        self.raw(path, EntryType::Directory, 0o755, None, b"");
        self
    }

    pub fn dir_mode(mut self, path: &str, mode: u32) -> Self {
        self.raw(path, EntryType::Directory, mode, None, b"");
        self
    }

    pub fn file(mut self, path: &str, content: &[u8]) -> Self {
        self.raw(path, EntryType::Regular, 0o644, None, content);
        self
    }

    /// A file whose name is raw bytes (not necessarily UTF-8).
    pub fn file_named_bytes(mut self, path: &[u8], content: &[u8]) -> Self {
        self.raw_bytes(path, EntryType::Regular, 0o644, None, content);
        self
    }

    pub fn file_mode(mut self, path: &str, content: &[u8], mode: u32) -> Self {
        self.raw(path, EntryType::Regular, mode, None, content);
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.raw(path, EntryType::Symlink, 0o777, Some(target), b"");
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.raw(path, EntryType::Link, 0o644, Some(target), b"");
        self
    }

    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let whiteout = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&whiteout, b"")
    }

    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    pub fn char_device(mut self, path: &str) -> Self {
        let mut header = Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_entry_type(EntryType::Char);
        header.set_mode(0o666);
        header.set_size(0);
        header.set_device_major(1).unwrap();
        header.set_device_minor(3).unwrap();
        header.set_cksum();
        self.builder.append(&header, &b""[..]).unwrap();
        self
    }

    pub fn fifo(mut self, path: &str) -> Self {
        self.raw(path, EntryType::Fifo, 0o644, None, b"");
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> Digest {
    Digest::of(data)
}

/// A layer as it goes into an image: the uncompressed tar and whether the
/// archive stores it gzipped.
pub struct ImageLayer {
    pub tar: Vec<u8>,
    pub gzip: bool,
}

impl ImageLayer {
    pub fn plain(tar: Vec<u8>) -> Self {
        ImageLayer { tar, gzip: false }
    }

    pub fn gzipped(tar: Vec<u8>) -> Self {
        ImageLayer { tar, gzip: true }
    }

    pub fn blob(&self) -> Vec<u8> {
        if self.gzip {
            gzip(&self.tar)
        } else {
            self.tar.clone()
        }
    }
}

pub fn image_config(layers: &[ImageLayer], runtime: Value) -> Value {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar).to_string()).collect();
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
}

fn append_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut header = Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut header = Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_entry_type(EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_cksum();
    builder.append(&header, &b""[..]).unwrap();
}

/// A `docker save` archive (Docker 1.10..24 layout: `<config hex>.json`,
/// `<layer id>/layer.tar`, `manifest.json`), with `config` as given.
pub fn docker_save_with_config(repo_tag: &str, layers: &[ImageLayer], config: &Value) -> Vec<u8> {
    let config_bytes = serde_json::to_vec(config).unwrap();
    let config_name = format!("{}.json", sha256(&config_bytes).hex());
    let mut builder = tar::Builder::new(Vec::new());
    let mut layer_names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let id = sha256(format!("layer-id-{i}-{}", sha256(&layer.tar)).as_bytes());
        append_dir(&mut builder, &format!("{}/", id.hex()));
        let name = format!("{}/layer.tar", id.hex());
        append_file(&mut builder, &name, &layer.blob());
        append_file(&mut builder, &format!("{}/VERSION", id.hex()), b"1.0");
        layer_names.push(name);
    }
    append_file(&mut builder, &config_name, &config_bytes);
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": layer_names,
    }]);
    append_file(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
    let top = layer_names
        .last()
        .map(|n| n.trim_end_matches("/layer.tar").to_string());
    let repositories = json!({ repo: { tag: top } });
    append_file(
        &mut builder,
        "repositories",
        &serde_json::to_vec(&repositories).unwrap(),
    );
    builder.into_inner().unwrap()
}

pub fn docker_save(repo_tag: &str, layers: &[ImageLayer], runtime: Value) -> Vec<u8> {
    docker_save_with_config(repo_tag, layers, &image_config(layers, runtime))
}

/// Writes an OCI image layout into `dir`: blobs, a manifest, `index.json`
/// with a ref-name annotation, `oci-layout`.
pub fn oci_layout(dir: &Path, tag: &str, layers: &[ImageLayer], runtime: Value) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (Digest, usize) {
        let digest = sha256(data);
        std::fs::write(blobs.join(digest.hex()), data).unwrap();
        (digest, data.len())
    };
    let config = serde_json::to_vec(&image_config(layers, runtime)).unwrap();
    let (config_digest, config_size) = put(&config);
    let layer_descriptors: Vec<Value> = layers
        .iter()
        .map(|layer| {
            let (digest, size) = put(&layer.blob());
            let media_type = if layer.gzip {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": layer_descriptors,
    }))
    .unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A `docker save` archive as Docker >= 25 writes it: an OCI layout plus a
/// `manifest.json` whose config and layers are `blobs/sha256/<hex>`.
pub fn docker_save_oci(repo_tag: &str, layers: &[ImageLayer], runtime: Value) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let tag = repo_tag.rsplit_once(':').unwrap().1;
    oci_layout(dir.path(), tag, layers, runtime.clone());
    let config = serde_json::to_vec(&image_config(layers, runtime)).unwrap();
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", sha256(&l.blob()).hex()))
        .collect();
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", sha256(&config).hex()),
        "RepoTags": [repo_tag],
        "Layers": layer_names,
    }]);
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    tar_dir(dir.path())
}

/// A tar of a directory tree (an OCI archive from an OCI layout).
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

/// A scratch world: registry dir, store dir, provisioner dir, and a
/// directory "outside" everything holding a victim file.
pub struct World {
    pub temp: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        for dir in ["registry", "store", "provisioner", "outside"] {
            std::fs::create_dir_all(temp.path().join(dir)).unwrap();
        }
        std::fs::write(temp.path().join("outside/victim"), b"original").unwrap();
        World { temp }
    }

    pub fn path(&self, relative: &str) -> std::path::PathBuf {
        self.temp.path().join(relative)
    }

    pub fn registry(&self) -> std::path::PathBuf {
        self.path("registry")
    }

    pub fn store(&self) -> DockerStore {
        DockerStore::new(self.path("store"), self.registry()).unwrap()
    }

    pub fn provisioner(&self, backend: &str) -> Provisioner {
        Provisioner::new(self.path("provisioner"), self.store(), backend).unwrap()
    }

    /// Puts an archive into the registry as `<name>.tar`.
    pub fn add_archive(&self, name: &str, bytes: &[u8]) {
        let path = self.registry().join(format!("{name}.tar"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn layer_count(&self) -> usize {
        std::fs::read_dir(self.path("store/layers"))
            .unwrap()
            .count()
    }

    pub fn staging_count(&self) -> usize {
        std::fs::read_dir(self.path("store/staging"))
            .unwrap()
            .count()
    }

    /// The victim is untouched and nothing else appeared outside.
    pub fn assert_outside_untouched(&self) {
        let outside = self.path("outside");
        let names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["victim".to_string()], "files appeared outside");
        let meta = std::fs::symlink_metadata(outside.join("victim")).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            std::os::unix::fs::MetadataExt::nlink(&meta),
            1,
            "victim was hardlinked"
        );
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"original");
        // Nothing next to the world's directories either.
        let mut top: Vec<_> = std::fs::read_dir(self.temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, vec!["outside", "provisioner", "registry", "store"]);
    }
}

/// The two-layer image with whiteouts used by the copy and overlay tests.
pub fn two_layer_image() -> Vec<ImageLayer> {
    let base = LayerBuilder::new()
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0")
        .file("etc/old", b"to be deleted")
        .dir("bin/")
        .file_mode("bin/sh", b"#!shell", 0o755)
        .hardlink("bin/sh2", "bin/sh")
        .symlink("bin/ls", "sh")
        .dir("data/")
        .file("data/a", b"a")
        .dir("data/sub/")
        .file("data/sub/b", b"b")
        .dir("lib/")
        .file("lib/keep", b"k")
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/x", b"x")
        .build();
    let top = LayerBuilder::new()
        .dir("etc/")
        .whiteout("etc/old")
        .file("etc/passwd", b"root:x:0:0:changed")
        .dir("data/")
        .opaque("data")
        .file("data/c", b"c")
        .whiteout("lib")
        .dir("bin/")
        .symlink("bin/ls", "/bin/sh")
        .dir("new/")
        .file_mode("new/tool", b"tool", 0o700)
        .whiteout("var/cache/x")
        .build();
    vec![ImageLayer::plain(base), ImageLayer::gzipped(top)]
}

pub fn two_layer_runtime() -> Value {
    json!({
        "Entrypoint": ["/bin/sh"],
        "Cmd": ["-c", "true"],
        "Env": ["PATH=/bin", "A=b"],
        "WorkingDir": "/data",
        "User": "nobody",
    })
}

/// Checks the merged result of [`two_layer_image`] file by file.
pub fn assert_two_layer_rootfs(rootfs: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let read = |p: &str| std::fs::read(rootfs.join(p)).unwrap();
    let exists = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).is_ok();

    assert_eq!(read("etc/passwd"), b"root:x:0:0:changed");
    assert!(!exists("etc/old"), "whiteout did not delete etc/old");
    assert!(
        !exists("etc/.wh.old"),
        "whiteout marker leaked into the rootfs"
    );

    let mut data: Vec<_> = std::fs::read_dir(rootfs.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(data, vec!["c"], "opaque dir kept lower content");
    assert_eq!(read("data/c"), b"c");

    assert!(!exists("lib"), "whiteout did not delete the lib directory");
    assert!(!exists(".wh.lib"));
    assert!(exists("var/cache"));
    assert!(!exists("var/cache/x"));

    let sh = std::fs::metadata(rootfs.join("bin/sh")).unwrap();
    assert_eq!(read("bin/sh"), b"#!shell");
    assert_eq!(sh.permissions().mode() & 0o777, 0o755);
    let sh2 = std::fs::metadata(rootfs.join("bin/sh2")).unwrap();
    assert_eq!(sh.ino(), sh2.ino(), "hardlink not kept as a link");
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/ls")).unwrap(),
        Path::new("/bin/sh"),
        "upper symlink did not replace the lower one"
    );
    assert_eq!(read("new/tool"), b"tool");
    assert_eq!(
        std::fs::metadata(rootfs.join("new/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

/// Root-only tests: `Some(())` to run; skipped with the reason printed, or
/// failed under `CI=true`.
pub fn require_root(what: &str) -> Option<()> {
    if nix::unistd::geteuid().is_root() {
        return Some(());
    }
    let reason = format!("{what} needs root");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}, and CI=true does not allow skipping it");
    }
    eprintln!("SKIPPED: {reason}");
    None
}

pub const APPLETS: [&str; 5] = ["sh", "echo", "cat", "ls", "true"];

/// A root filesystem with busybox and a few applets as a tar, or `None`
/// (skipped) without `/bin/busybox`.
pub fn busybox_rootfs() -> Option<Vec<u8>> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        let reason = "/bin/busybox not found: apt-get install busybox-static";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{reason}");
        }
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    let mut builder = tar::Builder::new(Vec::new());
    for dir in ["bin", "tmp", "etc"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(if dir == "tmp" { 0o1777 } else { 0o755 });
        header.set_size(0);
        builder
            .append_data(&mut header, format!("{dir}/"), &b""[..])
            .unwrap();
    }
    builder
        .append_path_with_name(busybox, "bin/busybox")
        .unwrap();
    for applet in APPLETS {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder
            .append_link(&mut header, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    Some(builder.into_inner().unwrap())
}

/// The busybox image as a `docker save` archive built here, or `None`.
pub fn busybox_archive() -> Option<Vec<u8>> {
    let rootfs_layer = busybox_rootfs()?;
    let config_layer = LayerBuilder::new()
        .dir("etc/")
        .file("etc/hostname", b"busybox\n")
        .build();
    let layers = vec![
        ImageLayer::gzipped(rootfs_layer),
        ImageLayer::plain(config_layer),
    ];
    Some(docker_save(
        "busybox:latest",
        &layers,
        json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
    ))
}

/// Runs `busybox echo hi` inside `rootfs` with chroot (root only).
pub fn chroot_echo(rootfs: &Path) -> String {
    let output = Command::new("chroot")
        .arg(rootfs)
        .args(["/bin/busybox", "echo", "hi"])
        .output()
        .expect("chroot runs");
    assert!(
        output.status.success(),
        "chroot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
