//! The mount table, read from `/proc/self/mountinfo`: a container's
//! directory must have nothing mounted under it before it is deleted, or
//! the deletion would run into whatever is mounted there (a bind-mounted
//! host directory, `/proc`).

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::MntFlags;

use crate::error::{Error, IoContext, Result};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Every mount point, in mount order.
pub fn mount_points() -> Result<Vec<PathBuf>> {
    let text = fs::read_to_string(MOUNTINFO).at(MOUNTINFO)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .collect())
}

pub fn is_mount_point(path: &Path) -> Result<bool> {
    Ok(mount_points()?.iter().any(|m| m == path))
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect())
}

/// Mount points strictly below `dir`.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(mounts_under(dir)?
        .into_iter()
        .filter(|m| m != dir)
        .collect())
}

/// Detaches `mounts` (mount points, in mount order), deepest first.
pub fn detach_all(mut mounts: Vec<PathBuf>) -> Result<()> {
    // Stacked mounts appear once per layer; the latest is on top.
    mounts.reverse();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for mount in &mounts {
        tracing::info!(mount = %mount.display(), "unmounting leftover mount");
        match nix::mount::umount2(mount, MntFlags::MNT_DETACH) {
            // Already gone with its parent.
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Mount {
                    action: "unmount",
                    path: mount.clone(),
                    source: e.into(),
                });
            }
        }
    }
    Ok(())
}

/// An error naming the first mount point left strictly below `dir`.
pub fn ensure_nothing_below(dir: &Path) -> Result<()> {
    match mounts_below(dir)?.first() {
        Some(left) => Err(Error::Mount {
            action: "unmount",
            path: left.clone(),
            source: std::io::Error::other("still mounted after unmounting"),
        }),
        None => Ok(()),
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(value) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
        assert_eq!(unescape_octal(r"/end\04"), r"/end\04");
    }

    #[test]
    fn root_is_a_mount_point() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(
            mounts_under(Path::new("/nonexistent-dir"))
                .unwrap()
                .is_empty()
        );
    }
}
