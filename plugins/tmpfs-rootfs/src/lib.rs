//! An example rootfs backend plugin, written as a third party would, with
//! only the public SDK: each container's root filesystem is a tmpfs of a
//! fixed size, filled with a copy of the image's layers. The container's
//! writes stay in memory, within the size, and vanish with it.
//!
//! The size is the plugin's configuration (the manifest's `config` file
//! holds a tmpfs `size`, like `64m`), 256m without one. Copying follows
//! the rootfs backend contract: each layer's whiteouts are applied before
//! its files, and nothing is ever written through a symlink of the rootfs,
//! so an image cannot make the copy land outside it.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use mesos_plugin_api::sdk::{PluginError, RootfsBackendPlugin, proto};

pub const DEFAULT_SIZE: &str = "256m";

#[derive(Debug, Default)]
pub struct TmpfsRootfs {
    size: Mutex<Option<String>>,
}

impl TmpfsRootfs {
    fn size(&self) -> String {
        self.size
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| DEFAULT_SIZE.to_string())
    }
}

/// A tmpfs size: digits, then at most one of k, m, g or %.
fn check_size(size: &str) -> Result<(), PluginError> {
    let digits = size.trim_end_matches(['k', 'm', 'g', '%']);
    let suffix = size.len() - digits.len();
    if !digits.is_empty() && suffix <= 1 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "'{size}' is not a tmpfs size (digits, then k, m, g or %)"
        )))
    }
}

fn failed(what: impl std::fmt::Display, e: impl std::fmt::Display) -> PluginError {
    PluginError::internal(format!("{what}: {e}"))
}

/// Runs `program` and turns a failure into an error with its output.
fn run(program: &str, args: &[&str]) -> Result<(), PluginError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| failed(format!("cannot run {program}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(failed(
        format!("{program} {}", args.join(" ")),
        String::from_utf8_lossy(&output.stderr).trim(),
    ))
}

fn is_mount_point(path: &Path) -> Result<bool, PluginError> {
    let table = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| failed("cannot read /proc/self/mountinfo", e))?;
    let path = path.to_string_lossy();
    Ok(table
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(path.as_ref())))
}

/// `root/relative` when every directory on the way is a real one, not a
/// symlink; `None` when there is nothing of that name to act on.
fn inside(root: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative.trim_start_matches('/'));
    let mut path = root.to_path_buf();
    for (i, part) in relative.components().enumerate() {
        let Component::Normal(part) = part else {
            return None;
        };
        if i > 0 && !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return None;
        }
        path.push(part);
    }
    (path != root).then_some(path)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Hides from `rootfs` what `layer` deletes.
fn apply_whiteouts(rootfs: &Path, layer: &proto::RootfsLayer) -> io::Result<()> {
    for dir in &layer.opaque {
        if let Some(dir) = inside(rootfs, dir).filter(|d| d.is_dir() && !d.is_symlink()) {
            for child in fs::read_dir(&dir)? {
                remove(&child?.path())?;
            }
        }
    }
    for deleted in &layer.deleted {
        if let Some(path) = inside(rootfs, deleted) {
            remove(&path)?;
        }
    }
    Ok(())
}

/// Merges the tree `from` into the directory `to`, replacing what is in
/// the way rather than writing through it.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&source)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                remove(&target)?;
                fs::create_dir(&target)?;
            }
            copy_tree(&source, &target)?;
        } else if kind.is_char_device() && meta.rdev() == 0 {
            // An overlayfs whiteout the overlay backend left: the layer's
            // `deleted` list already said so.
            continue;
        } else {
            remove(&target)?;
            if kind.is_symlink() {
                symlink(fs::read_link(&source)?, &target)?;
            } else if kind.is_file() {
                fs::copy(&source, &target)?;
            } else {
                // Devices, fifos and sockets have no place in an image.
                continue;
            }
        }
        lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

impl RootfsBackendPlugin for TmpfsRootfs {
    const NAME: &'static str = "com.example.tmpfs_rootfs";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(&self, config: &[u8]) -> Result<(), PluginError> {
        let size = std::str::from_utf8(config)
            .map_err(|_| PluginError::invalid("the configuration is not UTF-8"))?
            .trim();
        if size.is_empty() {
            return Ok(());
        }
        check_size(size)?;
        *self.size.lock().unwrap_or_else(PoisonError::into_inner) = Some(size.to_string());
        Ok(())
    }

    fn provision(
        &self,
        request: proto::ProvisionRequest,
    ) -> Result<proto::ProvisionResponse, PluginError> {
        let rootfs = PathBuf::from(&request.rootfs);
        if !rootfs.is_absolute() {
            return Err(PluginError::invalid(format!(
                "the rootfs '{}' is not an absolute path",
                rootfs.display()
            )));
        }
        fs::create_dir(&rootfs).map_err(|e| failed(rootfs.display(), e))?;
        let options = format!("size={},mode=0755", self.size());
        run(
            "mount",
            &["-t", "tmpfs", "-o", &options, "tmpfs", &request.rootfs],
        )?;
        for (i, layer) in request.layers.iter().enumerate() {
            let what = || format!("layer {} ({})", i + 1, layer.digest);
            apply_whiteouts(&rootfs, layer).map_err(|e| failed(what(), e))?;
            copy_tree(Path::new(&layer.path), &rootfs).map_err(|e| failed(what(), e))?;
        }
        Ok(proto::ProvisionResponse {})
    }

    fn destroy(
        &self,
        request: proto::DestroyRequest,
    ) -> Result<proto::DestroyResponse, PluginError> {
        let rootfs = Path::new(&request.rootfs);
        if is_mount_point(rootfs)? {
            run("umount", &[&request.rootfs])?;
        }
        Ok(proto::DestroyResponse {})
    }
}

mesos_plugin_api::export_rootfs_backend!(TmpfsRootfs);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_are_checked() {
        for good in ["64m", "1g", "100%", "4096"] {
            check_size(good).unwrap();
        }
        for bad in ["", "m", "64mb", "-1m", "64 m", "1,o=x"] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_never_leave_the_rootfs_or_go_through_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        symlink("/etc", root.path().join("host")).unwrap();
        assert_eq!(
            inside(root.path(), "etc/passwd"),
            Some(root.path().join("etc/passwd"))
        );
        assert_eq!(
            inside(root.path(), "/etc/passwd"),
            Some(root.path().join("etc/passwd"))
        );
        assert_eq!(inside(root.path(), "host"), Some(root.path().join("host")));
        for outside in ["host/passwd", "../x", "etc/../../x", "", "/"] {
            assert_eq!(inside(root.path(), outside), None, "{outside}");
        }
    }
}
