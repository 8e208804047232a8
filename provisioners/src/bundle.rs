//! Read access to the files of an image as it sits in the registry
//! directory: either a directory (OCI image layout) or a tar archive
//! (`docker save` output, OCI archive). An archive is scanned once for an
//! index of its members; a member is then read straight from its offset, so
//! layers are never copied out of the archive before extraction.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::error::{Error, IoContext, Result};

/// JSON documents (manifests, configs, indexes) larger than this are refused
/// rather than read into memory.
const MAX_DOCUMENT: u64 = 16 << 20;
/// Symlink hops followed inside an archive before giving up (a loop).
const MAX_HOPS: usize = 16;

#[derive(Debug)]
pub enum Bundle {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        members: HashMap<String, Member>,
    },
}

#[derive(Debug, Clone)]
pub enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hardlink, to the archive path it names (already made
    /// relative to the archive root).
    Link(String),
}

impl Bundle {
    pub fn open_dir(path: &Path) -> Bundle {
        Bundle::Dir(path.to_path_buf())
    }

    pub fn open_tar(path: &Path) -> Result<Bundle> {
        let file = File::open(path).at(path)?;
        let bad = |reason: String| Error::format(format!("archive {}", path.display()), reason);
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
            let entry = entry.map_err(|e| bad(e.to_string()))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            // Members with unsafe names are left out; nothing can reach them.
            let Some(name) = normalize(&raw) else {
                continue;
            };
            match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    members.insert(
                        name,
                        Member::File {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                }
                EntryType::Symlink => {
                    let target =
                        String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default())
                            .into_owned();
                    let dir = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                    let joined = if dir.is_empty() || target.starts_with('/') {
                        target
                    } else {
                        format!("{dir}/{target}")
                    };
                    if let Some(resolved) = normalize_lexically(&joined) {
                        members.insert(name, Member::Link(resolved));
                    }
                }
                EntryType::Link => {
                    let target =
                        String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default())
                            .into_owned();
                    if let Some(target) = normalize(&target) {
                        members.insert(name, Member::Link(target));
                    }
                }
                _ => {}
            }
        }
        Ok(Bundle::Tar {
            path: path.to_path_buf(),
            members,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Bundle::Dir(path) | Bundle::Tar { path, .. } => path.display().to_string(),
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        match self {
            Bundle::Dir(root) => normalize(name).is_some_and(|n| root.join(n).is_file()),
            Bundle::Tar { .. } => self.locate(name).is_ok(),
        }
    }

    /// Opens a member for streaming, with its size.
    pub fn open(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Bundle::Dir(root) => {
                let relative = normalize(name).ok_or_else(|| self.missing(name))?;
                let path = root.join(relative);
                let file = File::open(&path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        self.missing(name)
                    } else {
                        Error::io(&path, e)
                    }
                })?;
                let size = file.metadata().at(&path)?.len();
                Ok((Box::new(file), size))
            }
            Bundle::Tar { path, .. } => {
                let (offset, size) = self.locate(name)?;
                let mut file = File::open(path).at(path)?;
                file.seek(SeekFrom::Start(offset)).at(path)?;
                Ok((Box::new(file.take(size)), size))
            }
        }
    }

    /// Reads a small member (a JSON document) whole.
    pub fn read_document(&self, name: &str) -> Result<Vec<u8>> {
        let (reader, size) = self.open(name)?;
        if size > MAX_DOCUMENT {
            return Err(Error::format(
                format!("{} in {}", name, self.describe()),
                format!("{size} bytes is too large for a JSON document"),
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        reader
            .take(MAX_DOCUMENT)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(format!("{} in {}", name, self.describe()), e))?;
        Ok(bytes)
    }

    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let Bundle::Tar { members, .. } = self else {
            return Err(self.missing(name));
        };
        let mut current = normalize(name).ok_or_else(|| self.missing(name))?;
        for _ in 0..MAX_HOPS {
            match members.get(&current) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(target)) => current = target.clone(),
                None => return Err(self.missing(name)),
            }
        }
        Err(Error::format(
            format!("archive {}", self.describe()),
            format!("'{name}': too many symlink hops"),
        ))
    }

    fn missing(&self, name: &str) -> Error {
        Error::format(
            format!("archive {}", self.describe()),
            format!("'{name}' is missing"),
        )
    }
}

/// A member name relative to the bundle root (`./a//b` -> `a/b`); `None`
/// for absolute names or names with `..`, which manifests must not use.
pub fn normalize(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    if name.starts_with('/') || parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// Like [`normalize`] but resolving `..` (for symlink targets inside an
/// archive); `None` when it climbs above the root.
fn normalize_lexically(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn normalizes_member_names() {
        assert_eq!(normalize("./a//b").as_deref(), Some("a/b"));
        assert_eq!(normalize("../a"), None);
        assert_eq!(normalize("/etc/passwd"), None);
        assert_eq!(normalize("a/../b"), None);
        assert_eq!(normalize_lexically("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize_lexically("a/../../b"), None);
    }

    #[test]
    fn reads_members_and_follows_links_in_an_archive() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_entry_type(EntryType::Regular);
        builder
            .append_data(&mut header, "one/layer.tar", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "two/layer.tar", "../one/layer.tar")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        std::fs::write(&path, builder.into_inner().unwrap()).unwrap();

        let bundle = Bundle::open_tar(&path).unwrap();
        assert_eq!(bundle.read_document("two/layer.tar").unwrap(), b"hello");
        assert!(bundle.exists("./one/layer.tar"));
        assert!(!bundle.exists("three"));
        assert!(bundle.read_document("../one/layer.tar").is_err());
    }
}
