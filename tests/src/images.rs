//! Container images for tests, built offline: a busybox image made from
//! the host's `/bin/busybox` (Debian's busybox-static), written as a
//! `docker save` archive into a directory the agent reads as its
//! `--docker_registry`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the host's statically linked busybox is.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into the image's `/bin`.
const APPLETS: [&str; 22] = [
    "sh", "[", "test", "cat", "echo", "ls", "grep", "wc", "env", "pwd", "touch", "mkdir", "sleep",
    "head", "true", "false", "mount", "id", "ps", "rm", "tr", "cut",
];

/// What the busybox test image holds beyond busybox.
pub const RELEASE_FILE: &str = "etc/image-release";
pub const RELEASE: &str = "busybox-test-image";

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header
}

fn add_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    builder.append_data(&mut h, path, &b""[..]).unwrap();
}

fn add_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    builder.append_data(&mut h, path, data).unwrap();
}

/// The bottom layer: `/bin/busybox`, its applets, `/tmp` and `/etc`.
fn busybox_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    add_dir(&mut builder, "bin/", 0o755);
    add_dir(&mut builder, "etc/", 0o755);
    add_dir(&mut builder, "tmp/", 0o1777);
    let busybox = std::fs::read(BUSYBOX).unwrap();
    add_file(&mut builder, "bin/busybox", &busybox, 0o755);
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        builder
            .append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// The top layer: the file that tells the image apart from the host.
fn release_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    add_dir(&mut builder, "etc/", 0o755);
    add_file(
        &mut builder,
        RELEASE_FILE,
        format!("{RELEASE}\n").as_bytes(),
        0o644,
    );
    builder.into_inner().unwrap()
}

/// A `docker save` archive (`manifest.json`, `<config hex>.json`,
/// `<layer id>/layer.tar`) of uncompressed `layers`, bottom first, with
/// `runtime` as the image's `config`.
pub fn docker_save(repo_tag: &str, layers: &[Vec<u8>], runtime: Value) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let mut builder = tar::Builder::new(Vec::new());
    let mut names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let id = sha256_hex(format!("{i}:{}", sha256_hex(layer)).as_bytes());
        add_dir(&mut builder, &format!("{id}/"), 0o755);
        let name = format!("{id}/layer.tar");
        add_file(&mut builder, &name, layer, 0o644);
        names.push(name);
    }
    add_file(&mut builder, &config_name, &config, 0o644);
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": names,
    }]);
    add_file(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
        0o644,
    );
    builder.into_inner().unwrap()
}

/// Writes the busybox test image into `registry` as `busybox:latest`,
/// with `runtime` as its config (Env, Cmd, ...). `false` (nothing
/// written) without `/bin/busybox`.
pub fn write_busybox_image(registry: &Path, runtime: Value) -> bool {
    write_busybox_image_with(registry, "busybox", Vec::new(), runtime)
}

/// [`write_busybox_image`] as `<name>:latest`, with `more` layers on top.
pub fn write_busybox_image_with(
    registry: &Path,
    name: &str,
    more: Vec<Vec<u8>>,
    runtime: Value,
) -> bool {
    if !Path::new(BUSYBOX).exists() {
        return false;
    }
    let mut layers = vec![busybox_layer(), release_layer()];
    layers.extend(more);
    let tag = format!("{name}:latest");
    let archive = docker_save(&tag, &layers, runtime);
    std::fs::write(registry.join(format!("{tag}.tar")), archive).unwrap();
    true
}

/// A layer that deletes `deleted` from the layers below (a `.wh.`
/// whiteout) and adds the file `path` holding `data`; both in `etc/`.
pub fn whiteout_layer(deleted: &str, path: &str, data: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    add_dir(&mut builder, "etc/", 0o755);
    let (dir, name) = deleted.rsplit_once('/').unwrap_or(("", deleted));
    let whiteout = if dir.is_empty() {
        format!(".wh.{name}")
    } else {
        format!("{dir}/.wh.{name}")
    };
    add_file(&mut builder, &whiteout, b"", 0o644);
    add_file(&mut builder, path, data.as_bytes(), 0o644);
    builder.into_inner().unwrap()
}

/// The busybox image's files as a directory tree in `dir` (which must not
/// exist): `/bin/busybox` with its applets, `/etc`, `/tmp`. `false`
/// without `/bin/busybox`.
pub fn write_busybox_tree(dir: &Path) -> bool {
    use std::os::unix::fs::{PermissionsExt, symlink};
    if !Path::new(BUSYBOX).exists() {
        return false;
    }
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    true
}

/// A MESOS `ContainerInfo` with the Docker image `name`.
pub fn mesos_container(name: &str) -> mesos_proto::v1::ContainerInfo {
    use mesos_proto::v1;
    v1::ContainerInfo {
        r#type: v1::container_info::Type::Mesos as i32,
        mesos: Some(v1::container_info::MesosInfo {
            image: Some(v1::Image {
                r#type: v1::image::Type::Docker as i32,
                docker: Some(v1::image::Docker {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Mount table lines that mention `path`.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let path = path.display().to_string();
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&path))
        .map(str::to_string)
        .collect()
}

/// Waits (bounded) until no rootfs of the agent is mounted or on disk;
/// returns what is left.
pub fn wait_rootfs_gone(work_dir: &Path, store: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let containers = work_dir.join("provisioner/containers");
    let left = || {
        let mut mounts = mounts_under(&work_dir.join("provisioner"));
        mounts.extend(mounts_under(store));
        let dirs: Vec<PathBuf> = std::fs::read_dir(&containers)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        (mounts, dirs)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (mounts, dirs) = left();
        if (mounts.is_empty() && dirs.is_empty()) || Instant::now() > deadline {
            return (mounts, dirs);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
