//! The `overlay` backend: mounts overlayfs with the layers' rootfs
//! directories as `lowerdir` (topmost first) and a per-container `upper`
//! and `work` directory. Needs root (CAP_SYS_ADMIN) and a kernel that takes
//! several lower directories (>= 4.0).
//!
//! overlayfs reads whiteouts from the lower directories in its own format,
//! so the first time a layer is mounted its recorded whiteouts are
//! materialised in the layer: a `0/0` character device per deleted path and
//! the `trusted.overlay.opaque=y` xattr on opaque directories. A marker file
//! records that this was done. The copy backend skips those devices, so a
//! layer serves both backends afterwards.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::backend::{Backend, rootfs_dir};
use crate::error::{Error, IoContext, Result};
use crate::extract::ensure_parents;
use crate::store::{Layer, write_atomically};

pub const NAME: &str = "overlay";
const MARKER: &str = "overlay-whiteouts";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The kernel copies mount options into one page.
const MAX_OPTIONS: usize = 4095;

#[derive(Debug, Clone, Copy, Default)]
pub struct OverlayBackend;

impl Backend for OverlayBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn provision(&self, _: &str, layers: &[Layer], container_dir: &Path) -> Result<PathBuf> {
        if layers.is_empty() {
            return Err(Error::format("image", "no layers to mount"));
        }
        for layer in layers {
            materialise_whiteouts(layer)?;
        }
        let upper = container_dir.join("upper");
        let work = container_dir.join("work");
        let rootfs = rootfs_dir(container_dir);
        for dir in [&upper, &work, &rootfs] {
            fs::create_dir(dir).at(dir)?;
        }
        // The upper directory's mode becomes that of the container's `/`;
        // not left to the umask.
        fs::set_permissions(&upper, fs::Permissions::from_mode(0o755)).at(&upper)?;
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|layer| option_path(&layer.rootfs()))
            .collect::<Result<_>>()?;
        mount_overlay(&lower, &option_path(&upper)?, &option_path(&work)?, &rootfs)?;
        tracing::debug!(rootfs = %rootfs.display(), layers = layers.len(), "mounted overlay");
        Ok(rootfs)
    }

    fn destroy(&self, _: &str, container_dir: &Path) -> Result<()> {
        let rootfs = rootfs_dir(container_dir);
        // Asking the kernel beats reading the mount table, which grows
        // with every container's overlay: EINVAL is "not a mount point".
        match nix::mount::umount2(&rootfs, MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                // Something still holds it (a lingering process's cwd):
                // detach now, the kernel frees it later.
                tracing::warn!(rootfs = %rootfs.display(), "rootfs busy; detaching it");
                nix::mount::umount2(&rootfs, MntFlags::MNT_DETACH).map_err(|e| Error::Mount {
                    action: "detach",
                    path: rootfs.clone(),
                    source: e.into(),
                })
            }
            Err(e) => Err(Error::Mount {
                action: "unmount",
                path: rootfs,
                source: e.into(),
            }),
        }
    }
}

/// Mounts with mount(2) when the options fit in its one page, else through
/// the new mount API, which takes one lower directory per call (`lowerdir+`,
/// Linux >= 6.8): images with many layers need it.
fn mount_overlay(lower: &[String], upper: &str, work: &str, target: &Path) -> Result<()> {
    let options = format!(
        "lowerdir={},upperdir={upper},workdir={work}",
        lower.join(":")
    );
    let failed = |source: io::Error| Error::Mount {
        action: "mount overlay on",
        path: target.to_path_buf(),
        source,
    };
    if options.len() <= MAX_OPTIONS {
        return nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|e| failed(e.into()));
    }
    tracing::debug!(
        layers = lower.len(),
        bytes = options.len(),
        "overlay options exceed one page; using fsconfig lowerdir+"
    );
    mount_layer_by_layer(lower, upper, work, target).map_err(|e| {
        failed(io::Error::new(
            e.kind(),
            format!(
                "{} layers need {} bytes of mount options (limit {MAX_OPTIONS}) and the new mount API failed: {e}; use the copy backend",
                lower.len(),
                options.len()
            ),
        ))
    })
}

fn mount_layer_by_layer(
    lower: &[String],
    upper: &str,
    work: &str,
    target: &Path,
) -> io::Result<()> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    // Appended in order, so topmost first, as in `lowerdir=`.
    for dir in lower {
        fsconfig_set_string(&fs, "lowerdir+", dir.as_str())?;
    }
    fsconfig_set_string(&fs, "upperdir", upper)?;
    fsconfig_set_string(&fs, "workdir", work)?;
    fsconfig_create(&fs)?;
    let mount = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    move_mount(
        &mount,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// overlayfs splits its options on ',' and lower directories on ':'.
fn option_path(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::format("overlay path", format!("{} is not UTF-8", path.display())))?;
    if text.contains([',', ':', '\\']) {
        return Err(Error::format(
            "overlay path",
            format!("{text} contains ',', ':' or '\\', which overlayfs options cannot carry"),
        ));
    }
    Ok(text.to_string())
}

/// Writes the layer's recorded whiteouts in overlayfs's format, once.
/// Concurrent calls on one layer are harmless: each step is idempotent.
pub fn materialise_whiteouts(layer: &Layer) -> Result<()> {
    let marker = layer.dir.join(MARKER);
    if marker.is_file() {
        return Ok(());
    }
    let whiteouts = layer.whiteouts()?;
    let root = layer.rootfs();
    for deleted in &whiteouts.deleted {
        let parts: Vec<String> = deleted.split('/').map(str::to_string).collect();
        let Some((name, parents)) = parts.split_last() else {
            continue;
        };
        let path = ensure_parents(&root, parents, deleted)?.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            // The layer has its own entry there; it already hides the
            // lower one.
            continue;
        }
        match rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(Error::io(&path, io::Error::from(e))),
        }
    }
    for dir in &whiteouts.opaque {
        let parts: Vec<String> = dir
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let path = ensure_parents(&root, &parts, dir)?;
        rustix::fs::lsetxattr(&path, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
            .map_err(|e| Error::io(&path, io::Error::from(e)))?;
    }
    write_atomically(&marker, b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_overlay_options_cannot_carry() {
        assert!(option_path(Path::new("/a:b")).is_err());
        assert!(option_path(Path::new("/a,b")).is_err());
        assert!(option_path(Path::new("/a/b")).is_ok());
    }
}
