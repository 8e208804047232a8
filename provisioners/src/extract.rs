//! Safe extraction of one image layer (a tar stream) into an empty
//! directory.
//!
//! A layer comes from outside (an archive in the registry directory), so
//! every entry is checked before anything is written:
//! - paths must be relative and free of `..`;
//! - no entry is written through a symlink: every parent of an entry must be
//!   a real directory inside the layer, and the entry itself replaces (never
//!   follows) whatever was there;
//! - symlink targets and hardlink targets must stay inside the layer root
//!   when resolved lexically (an absolute symlink target counts from the
//!   layer root, as it will inside the container);
//! - device nodes and fifos are refused.
//!
//! Whiteouts (`.wh.<name>`, `.wh..wh..opq`) are not written as files: they
//! are returned as a [`Whiteouts`] record that the store keeps beside the
//! layer. The copy backend applies the record; the overlay backend turns it
//! into overlayfs whiteouts when a layer is first mounted (see
//! `backend::overlay`). Keeping the neutral record means a layer extracted
//! without root still works with both backends.
//!
//! The caller extracts into a private temporary directory and deletes it on
//! error, so a refused layer leaves nothing behind.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use tar::EntryType;

use crate::error::{Error, IoContext, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Large layers log their progress every this many bytes.
const PROGRESS_STEP: u64 = 256 << 20;
/// aufs-internal entries (`.wh..wh.plnk`, `.wh..wh.aufs`) carry no meaning
/// for the image and are skipped.
const AUFS_META_PREFIX: &str = ".wh..wh.";

/// The whiteouts of one layer, as slash-separated paths relative to the
/// layer root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whiteouts {
    /// Paths deleted from the layers below.
    pub deleted: BTreeSet<String>,
    /// Directories whose content from the layers below is hidden.
    pub opaque: BTreeSet<String>,
}

impl Whiteouts {
    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty() && self.opaque.is_empty()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Extracts the tar stream `reader` into `root` (an existing, empty,
/// private directory).
pub fn extract_layer(reader: impl Read, root: &Path) -> Result<(Whiteouts, ExtractStats)> {
    let mut archive = tar::Archive::new(reader);
    let mut whiteouts = Whiteouts::default();
    let mut stats = ExtractStats::default();
    // Directory modes are applied last: a read-only directory must still
    // receive its children when we are not root.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let as_root = nix::unistd::geteuid().is_root();

    let entries = archive
        .entries()
        .map_err(|e| Error::format("layer", format!("not a tar stream: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::format("layer", format!("bad tar entry: {e}")))?;
        // Names are bytes: non-UTF-8 names are kept as they are; the lossy
        // text is only for messages.
        let path_bytes = entry.path_bytes().into_owned();
        let raw_path = String::from_utf8_lossy(&path_bytes).into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let components = relative_components(Path::new(OsStr::from_bytes(&path_bytes)), &raw_path)?;
        let Some((name, parents)) = components.split_last() else {
            // The layer root itself (`./`): the container root keeps the
            // mode the backend gives it.
            continue;
        };

        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            // The record is JSON text, so whiteouts must be UTF-8.
            let utf8 = |part: &OsString| {
                part.to_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::unsafe_entry(&raw_path, "whiteout path is not UTF-8"))
            };
            let name = utf8(name)?;
            let parent = parents
                .iter()
                .map(utf8)
                .collect::<Result<Vec<_>>>()?
                .join("/");
            let target = &name[WHITEOUT_PREFIX.len()..];
            if name == OPAQUE_MARKER {
                whiteouts.opaque.insert(parent);
            } else if name.starts_with(AUFS_META_PREFIX) {
                tracing::debug!(entry = %raw_path, "skipping aufs metadata entry");
            } else if target.is_empty() || target == "." || target == ".." {
                return Err(Error::unsafe_entry(&raw_path, "whiteout names no file"));
            } else {
                let deleted = if parent.is_empty() {
                    target.to_string()
                } else {
                    format!("{parent}/{target}")
                };
                whiteouts.deleted.insert(deleted);
            }
            stats.entries += 1;
            continue;
        }

        let parent_dir = ensure_parents(root, parents, &raw_path)?;
        let path = parent_dir.join(name);
        let mode = entry
            .header()
            .mode()
            .map_err(|e| Error::format("layer", format!("'{raw_path}': bad mode: {e}")))?
            & 0o7777;

        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        remove_any(&path)?;
                        fs::create_dir(&path).at(&path)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        fs::create_dir(&path).at(&path)?;
                    }
                    Err(e) => return Err(Error::io(&path, e)),
                }
                if as_root {
                    chown(&path, &entry)?;
                }
                dir_modes.push((path, mode));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_existing(&path)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&path)
                    .at(&path)?;
                let before = stats.bytes;
                stats.bytes += io::copy(&mut entry, &mut file).at(&path)?;
                if before / PROGRESS_STEP != stats.bytes / PROGRESS_STEP {
                    tracing::info!(
                        bytes = stats.bytes,
                        entries = stats.entries,
                        "extracting layer"
                    );
                }
                // Timestamps are cosmetic: one out of range or refused is
                // not worth failing the layer.
                if let Some(when) = entry.header().mtime().ok().and_then(|secs| {
                    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
                }) {
                    let _ = file.set_modified(when);
                }
                drop(file);
                if as_root {
                    chown(&path, &entry)?;
                }
                // After chown, which clears set-id bits.
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).at(&path)?;
            }
            EntryType::Symlink => {
                let target = link_target(&entry, &raw_path)?;
                check_symlink_target(parents.len(), &target, &raw_path)?;
                remove_existing(&path)?;
                std::os::unix::fs::symlink(&target, &path).at(&path)?;
                if as_root {
                    chown(&path, &entry)?;
                }
            }
            EntryType::Link => {
                let target = link_target(&entry, &raw_path)?;
                let source = hardlink_source(root, &target, &raw_path)?;
                if source != path {
                    remove_existing(&path)?;
                    // linkat without AT_SYMLINK_FOLLOW: a link to a symlink
                    // links the symlink itself, never its target.
                    fs::hard_link(&source, &path).at(&path)?;
                }
            }
            EntryType::Char | EntryType::Block => {
                return Err(Error::unsafe_entry(
                    &raw_path,
                    "device nodes are not allowed in image layers",
                ));
            }
            EntryType::Fifo => {
                return Err(Error::unsafe_entry(
                    &raw_path,
                    "fifos are not allowed in image layers",
                ));
            }
            other => {
                return Err(Error::unsafe_entry(
                    &raw_path,
                    format!("unsupported tar entry type {other:?}"),
                ));
            }
        }
        stats.entries += 1;
    }

    // Children before parents, so a read-only parent does not block
    // setting its child's mode.
    for (path, mode) in dir_modes.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(*mode)).at(path)?;
    }
    Ok((whiteouts, stats))
}

/// The normal components of an entry path; refuses absolute paths and `..`.
pub(crate) fn relative_components(path: &Path, raw: &str) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::unsafe_entry(raw, "absolute path"));
            }
            Component::ParentDir => {
                return Err(Error::unsafe_entry(raw, "path contains '..'"));
            }
        }
    }
    Ok(out)
}

/// Makes sure every parent of an entry is a real directory under `root`,
/// creating missing ones, and refusing to pass through a symlink or a file.
pub(crate) fn ensure_parents<P: AsRef<Path>>(
    root: &Path,
    parents: &[P],
    entry: &str,
) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    for part in parents {
        let part = part.as_ref();
        dir.push(part);
        let part = part.display();
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::unsafe_entry(
                    entry,
                    format!(
                        "parent '{part}' is a symlink; writing through it could leave the layer"
                    ),
                ));
            }
            Ok(_) => {
                return Err(Error::unsafe_entry(
                    entry,
                    format!("parent '{part}' is not a directory"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).at(&dir)?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).at(&dir)?;
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Ok(dir)
}

/// Removes whatever is at `path` (file, symlink, or directory tree) without
/// following symlinks; nothing there is fine.
pub(crate) fn remove_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => remove_any(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).at(path)?;
    if meta.is_dir() {
        // std's remove_dir_all does not follow symlinks inside the tree.
        fs::remove_dir_all(path).at(path)
    } else {
        fs::remove_file(path).at(path)
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, raw_path: &str) -> Result<PathBuf> {
    match entry.link_name_bytes() {
        Some(bytes) if !bytes.is_empty() => Ok(PathBuf::from(OsStr::from_bytes(&bytes))),
        _ => Err(Error::unsafe_entry(raw_path, "link without a target")),
    }
}

/// Resolves `target` lexically from the symlink's directory (or from the
/// layer root when absolute) and refuses it if it climbs above the root.
fn check_symlink_target(link_depth: usize, target: &Path, raw_path: &str) -> Result<()> {
    let mut depth: usize = if target.is_absolute() { 0 } else { link_depth };
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    Error::unsafe_entry(
                        raw_path,
                        format!(
                            "symlink target '{}' escapes the layer root",
                            target.display()
                        ),
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// The existing file a hardlink entry points to: an archive path inside the
/// layer, reached without passing through a symlink, and not a directory.
fn hardlink_source(root: &Path, target: &Path, raw_path: &str) -> Result<PathBuf> {
    let shown = target.display();
    let components = relative_components(target, raw_path).map_err(|_| {
        Error::unsafe_entry(
            raw_path,
            format!("hardlink target '{shown}' escapes the layer root"),
        )
    })?;
    let Some((name, parents)) = components.split_last() else {
        return Err(Error::unsafe_entry(raw_path, "hardlink to the layer root"));
    };
    let mut path = root.to_path_buf();
    for part in parents {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            _ => {
                return Err(Error::unsafe_entry(
                    raw_path,
                    format!("hardlink target '{shown}' is not inside this layer"),
                ));
            }
        }
    }
    path.push(name);
    match fs::symlink_metadata(&path) {
        Ok(meta) if !meta.is_dir() => Ok(path),
        Ok(_) => Err(Error::unsafe_entry(raw_path, "hardlink to a directory")),
        Err(_) => Err(Error::unsafe_entry(
            raw_path,
            format!("hardlink target '{shown}' is not inside this layer"),
        )),
    }
}

fn chown<R: Read>(path: &Path, entry: &tar::Entry<'_, R>) -> Result<()> {
    let header = entry.header();
    // Some tools leave the owner fields empty; like GNU tar, read that as
    // root rather than refusing the layer.
    let uid = header.uid().unwrap_or(0);
    let gid = header.gid().unwrap_or(0);
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return Err(Error::format(
            "layer",
            format!("{}: owner {uid}:{gid} out of range", path.display()),
        ));
    };
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io(path, e.into()))
}
