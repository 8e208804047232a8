//! The `copy` backend: copies every layer, bottom first, into the
//! container's rootfs, applying each layer's whiteouts before its content.
//! Works on any filesystem and without root; costs a full copy per
//! container.
//!
//! Like extraction, copying never follows a symlink in the destination: a
//! symlink from a lower layer is replaced, not written through, when an
//! upper layer has a file or directory at its path.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::backend::{Backend, rootfs_dir};
use crate::error::{Error, IoContext, Result};
use crate::extract::{Whiteouts, remove_existing};
use crate::store::Layer;

pub const NAME: &str = "copy";

#[derive(Debug, Clone, Copy, Default)]
pub struct CopyBackend;

impl Backend for CopyBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn provision(&self, _: &str, layers: &[Layer], container_dir: &Path) -> Result<PathBuf> {
        let rootfs = rootfs_dir(container_dir);
        fs::create_dir(&rootfs).at(&rootfs)?;
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755)).at(&rootfs)?;
        let mut copier = Copier {
            as_root: nix::unistd::geteuid().is_root(),
            bytes: 0,
            links: HashMap::new(),
        };
        for (i, layer) in layers.iter().enumerate() {
            apply_whiteouts(&rootfs, &layer.whiteouts()?)?;
            copier.links.clear();
            copier.copy_dir(&layer.rootfs(), &rootfs)?;
            tracing::debug!(
                layer = %layer.digest,
                "copied layer {}/{} ({} bytes so far)",
                i + 1,
                layers.len(),
                copier.bytes
            );
        }
        Ok(rootfs)
    }

    fn destroy(&self, _: &str, container_dir: &Path) -> Result<()> {
        let rootfs = rootfs_dir(container_dir);
        remove_existing(&rootfs)
    }
}

/// Deletes what the layer's whiteouts hide from the layers below.
fn apply_whiteouts(rootfs: &Path, whiteouts: &Whiteouts) -> Result<()> {
    for dir in &whiteouts.opaque {
        if let Some(path) = resolve_inside(rootfs, dir)
            && fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
        {
            for child in fs::read_dir(&path).at(&path)? {
                remove_existing(&child.at(&path)?.path())?;
            }
        }
    }
    for deleted in &whiteouts.deleted {
        if let Some(path) = resolve_inside(rootfs, deleted) {
            remove_existing(&path)?;
        }
    }
    Ok(())
}

/// `root/relative` if every parent on the way is a real directory; `None`
/// when the path does not exist as such (e.g. it goes through a symlink, so
/// there is nothing of that name to hide).
fn resolve_inside(root: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
    let (last, parents) = match parts.split_last() {
        Some(split) => split,
        None => return Some(path),
    };
    for part in parents {
        if *part == ".." || *part == "." {
            return None;
        }
        path.push(part);
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return None;
        }
    }
    if *last == ".." || *last == "." {
        return None;
    }
    path.push(last);
    Some(path)
}

struct Copier {
    as_root: bool,
    bytes: u64,
    /// Hardlinked files of the current layer, by (device, inode), to the
    /// first copy made: links stay links in the rootfs.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    /// Merges the tree `src` into the existing directory `dst`.
    fn copy_dir(&mut self, src: &Path, dst: &Path) -> Result<()> {
        for entry in fs::read_dir(src).at(src)? {
            let entry = entry.at(src)?;
            let from = entry.path();
            let to = dst.join(entry.file_name());
            let meta = fs::symlink_metadata(&from).at(&from)?;
            let kind = meta.file_type();
            if kind.is_dir() {
                if !fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
                    remove_existing(&to)?;
                    fs::create_dir(&to).at(&to)?;
                }
                self.copy_dir(&from, &to)?;
                self.own(&to, &meta)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                    .at(&to)?;
            } else if kind.is_file() {
                remove_existing(&to)?;
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1
                    && let Some(first) = self.links.get(&key)
                {
                    fs::hard_link(first, &to).at(&to)?;
                    continue;
                }
                self.copy_file(&from, &to, &meta)?;
                if meta.nlink() > 1 {
                    self.links.insert(key, to);
                }
            } else if kind.is_symlink() {
                remove_existing(&to)?;
                let target = fs::read_link(&from).at(&from)?;
                std::os::unix::fs::symlink(&target, &to).at(&to)?;
                self.own(&to, &meta)?;
            } else if kind.is_char_device() && meta.rdev() == 0 {
                // An overlay whiteout the overlay backend made in this
                // layer; the copy backend used the record instead.
            } else {
                return Err(Error::unsafe_entry(
                    from.display(),
                    "special file in a layer (extraction refuses these)",
                ));
            }
        }
        Ok(())
    }

    fn copy_file(&mut self, from: &Path, to: &Path, meta: &fs::Metadata) -> Result<()> {
        let mut source = fs::File::open(from).at(from)?;
        let mut target = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(to)
            .at(to)?;
        self.bytes += io::copy(&mut source, &mut target).at(to)?;
        if let Ok(modified) = meta.modified() {
            // Cosmetic; not worth failing the copy.
            let _ = target.set_modified(modified);
        }
        drop(target);
        self.own(to, meta)?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).at(to)
    }

    fn own(&self, path: &Path, meta: &fs::Metadata) -> Result<()> {
        if !self.as_root {
            return Ok(());
        }
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(nix::unistd::Uid::from_raw(meta.uid())),
            Some(nix::unistd::Gid::from_raw(meta.gid())),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::io(path, e.into()))
    }
}
