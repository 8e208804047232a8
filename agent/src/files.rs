//! Read-only access to sandboxes for `/files/{browse,read,download}`.
//!
//! A request names a path either as the sandbox's host path
//! (`<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<run>/...`)
//! or as Mesos's virtual path (`/frameworks/<fw>/executors/<ex>/runs/<run>/...`,
//! meaning the current agent). Nothing outside a sandbox is ever served.
//!
//! Tasks own their sandboxes and may plant symlinks in them (to
//! `/etc/shadow`, or to another task's sandbox). Checking a path and then
//! opening it would race with such a task, so every lookup goes through
//! `openat2(RESOLVE_BENEATH)` from the sandbox's directory: the kernel
//! refuses any step (`..`, an absolute symlink, a symlink climbing out)
//! that leaves it. The functions here block: call them off the runtime.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use http::StatusCode;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{Gid, Group, Uid, User};

/// Mesos reads at most 16 pages per `/files/read` request.
pub const MAX_READ_LENGTH: usize = 16 * 4096;

/// Components of a sandbox below `slaves/`:
/// `<agent>/frameworks/<fw>/executors/<ex>/runs/<run>`.
const SANDBOX_DEPTH: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{0}")]
    BadRequest(String),
    #[error("'{0}' is outside every sandbox")]
    Forbidden(String),
    #[error("No file or directory at '{0}'")]
    NotFound(String),
    #[error("cannot access '{path}': {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl FilesError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One `/files/browse` entry, as Mesos renders it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    pub path: String,
    pub nlink: u64,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// `ls -l` style: `drwxr-xr-x`.
    pub mode: String,
    /// The raw `st_mode`, for the operator API's `FileInfo`.
    #[serde(skip)]
    pub raw_mode: u32,
    pub uid: String,
    pub gid: String,
}

/// A chunk of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub offset: u64,
    pub data: Vec<u8>,
    /// The file's size when read.
    pub size: u64,
}

/// The sandboxes under one agent work directory.
#[derive(Debug, Clone)]
pub struct Sandboxes {
    /// As configured, made absolute.
    work_dir: PathBuf,
    /// The same with symlinks resolved, if it differs.
    canonical: Option<PathBuf>,
}

/// A request path split into its sandbox and the path inside it.
struct Located {
    /// Relative to the work directory: `slaves/<agent>/.../runs/<run>`.
    sandbox: PathBuf,
    /// Relative to the sandbox; empty for the sandbox itself.
    inside: PathBuf,
}

impl Sandboxes {
    pub fn new(work_dir: &Path) -> Self {
        let work_dir = std::path::absolute(work_dir).unwrap_or_else(|_| work_dir.to_path_buf());
        let canonical = std::fs::canonicalize(&work_dir)
            .ok()
            .filter(|c| *c != work_dir);
        Self {
            work_dir,
            canonical,
        }
    }

    /// Lists a directory, or describes a single file.
    pub fn browse(&self, path: &str) -> Result<Vec<Entry>, FilesError> {
        let (fd, stat) = self.open(path)?;
        let path = path.trim_end_matches('/');
        if kind(&stat) != SFlag::S_IFDIR {
            let name = path.to_string();
            return Ok(vec![entry(name, &stat, &mut Names::default())]);
        }
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| io_error(path, e))?;
        let mut names = Vec::new();
        for item in dir.iter() {
            let item = item.map_err(|e| io_error(path, e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        let mut owners = Names::default();
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            // Entries vanish while we list (a task deleting files): skip them.
            let Ok(stat) = fstatat(
                dir.as_fd(),
                name.as_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            entries.push(entry(format!("{path}/{name}"), &stat, &mut owners));
        }
        Ok(entries)
    }

    /// Mesos's `/files/read`: no offset (or -1) asks for the file's size;
    /// `length` is capped at [`MAX_READ_LENGTH`].
    pub fn read(
        &self,
        path: &str,
        offset: Option<i64>,
        length: Option<i64>,
    ) -> Result<Chunk, FilesError> {
        let (mut file, size) = self.open_file(path)?;
        let offset = match offset {
            None | Some(-1) => {
                return Ok(Chunk {
                    offset: size,
                    data: Vec::new(),
                    size,
                });
            }
            Some(o) if o < 0 => {
                return Err(FilesError::BadRequest(format!(
                    "Negative offset provided: {o}"
                )));
            }
            Some(o) => o.unsigned_abs().min(size),
        };
        let length = match length {
            None | Some(-1) => MAX_READ_LENGTH,
            Some(l) if l < 0 => {
                return Err(FilesError::BadRequest(format!(
                    "Negative length provided: {l}"
                )));
            }
            Some(l) => usize::try_from(l)
                .unwrap_or(usize::MAX)
                .min(MAX_READ_LENGTH),
        };
        file.seek(SeekFrom::Start(offset))
            .map_err(|source| FilesError::Io {
                path: path.to_string(),
                source,
            })?;
        let mut data = Vec::with_capacity(length.min(usize::try_from(size - offset).unwrap_or(0)));
        file.take(length as u64)
            .read_to_end(&mut data)
            .map_err(|source| FilesError::Io {
                path: path.to_string(),
                source,
            })?;
        Ok(Chunk { offset, data, size })
    }

    /// Opens a regular file for `/files/download`; returns it and its size.
    pub fn open_file(&self, path: &str) -> Result<(File, u64), FilesError> {
        let (fd, stat) = self.open(path)?;
        match kind(&stat) {
            SFlag::S_IFREG => Ok((File::from(fd), stat.st_size.unsigned_abs())),
            SFlag::S_IFDIR => Err(FilesError::BadRequest(format!("'{path}' is a directory"))),
            _ => Err(FilesError::BadRequest(format!(
                "'{path}' is not a regular file"
            ))),
        }
    }

    /// Opens `path` for reading, refusing anything but directories and
    /// regular files (opening a FIFO or a device a task planted could
    /// block or have side effects).
    fn open(&self, path: &str) -> Result<(OwnedFd, FileStat), FilesError> {
        let located = self.locate(path)?;
        let beneath = |flags: OFlag| {
            OpenHow::new()
                .flags(flags | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS)
        };
        let work_dir = nix::fcntl::open(
            &self.work_dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| lookup_error(path, e))?;
        let sandbox = openat2(
            &work_dir,
            &located.sandbox,
            beneath(OFlag::O_PATH | OFlag::O_DIRECTORY),
        )
        .map_err(|e| lookup_error(path, e))?;
        let inside: &Path = if located.inside.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &located.inside
        };
        // Look first without opening, then open what we looked at.
        let probe = openat2(&sandbox, inside, beneath(OFlag::O_PATH | OFlag::O_NOFOLLOW))
            .map_err(|e| lookup_error(path, e))?;
        let probed = fstat(&probe).map_err(|e| io_error(path, e))?;
        let flags = match kind(&probed) {
            SFlag::S_IFDIR => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            SFlag::S_IFREG => OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
            SFlag::S_IFLNK => {
                // The last component is a symlink: follow it, still beneath.
                OFlag::O_RDONLY | OFlag::O_NONBLOCK
            }
            _ => {
                return Err(FilesError::BadRequest(format!(
                    "'{path}' is neither a file nor a directory"
                )));
            }
        };
        let fd = openat2(&sandbox, inside, beneath(flags)).map_err(|e| lookup_error(path, e))?;
        let stat = fstat(&fd).map_err(|e| io_error(path, e))?;
        if !matches!(kind(&stat), SFlag::S_IFDIR | SFlag::S_IFREG) {
            return Err(FilesError::BadRequest(format!(
                "'{path}' is neither a file nor a directory"
            )));
        }
        Ok((fd, stat))
    }

    fn locate(&self, path: &str) -> Result<Located, FilesError> {
        if path.is_empty() {
            return Err(FilesError::BadRequest(
                "Expecting 'path' to be a non-empty string".into(),
            ));
        }
        let requested = Path::new(path);
        if !requested.is_absolute() {
            return Err(FilesError::BadRequest(format!(
                "'{path}' is not an absolute path"
            )));
        }
        let mut parts = Vec::new();
        for component in requested.components() {
            match component {
                Component::Normal(part) => parts.push(part),
                Component::ParentDir => return Err(FilesError::Forbidden(path.to_string())),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        // The virtual path of Mesos's agent: the current agent's sandboxes.
        let below_slaves: Vec<_> = if parts.first().is_some_and(|p| *p == "frameworks") {
            std::iter::once(std::ffi::OsStr::new("latest"))
                .chain(parts.iter().copied())
                .collect()
        } else {
            let relative = [Some(&self.work_dir), self.canonical.as_ref()]
                .into_iter()
                .flatten()
                .find_map(|root| requested.strip_prefix(root).ok())
                .ok_or_else(|| FilesError::NotFound(path.to_string()))?;
            let mut rest = relative.components().filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            });
            if rest.next().is_none_or(|first| first != "slaves") {
                return Err(FilesError::Forbidden(path.to_string()));
            }
            rest.collect()
        };
        if below_slaves.len() < SANDBOX_DEPTH {
            return Err(FilesError::NotFound(path.to_string()));
        }
        let (sandbox, inside) = below_slaves.split_at(SANDBOX_DEPTH);
        let fixed = [(1, "frameworks"), (3, "executors"), (5, "runs")];
        if fixed.iter().any(|(i, name)| sandbox[*i] != *name) {
            return Err(FilesError::NotFound(path.to_string()));
        }
        for id in [sandbox[0], sandbox[2], sandbox[4], sandbox[6]] {
            let valid = id
                .to_str()
                .is_some_and(|id| mesos_proto::ids::validate_id(id).is_ok());
            if !valid {
                return Err(FilesError::NotFound(path.to_string()));
            }
        }
        Ok(Located {
            sandbox: std::iter::once(std::ffi::OsStr::new("slaves"))
                .chain(sandbox.iter().copied())
                .collect(),
            inside: inside.iter().collect(),
        })
    }
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

fn lookup_error(path: &str, errno: Errno) -> FilesError {
    match errno {
        // EXDEV: a step left the sandbox; ELOOP: a symlink where none may be.
        Errno::EXDEV | Errno::ELOOP | Errno::EACCES | Errno::EPERM => {
            FilesError::Forbidden(path.to_string())
        }
        Errno::ENOENT | Errno::ENOTDIR => FilesError::NotFound(path.to_string()),
        other => io_error(path, other),
    }
}

fn io_error(path: &str, errno: Errno) -> FilesError {
    FilesError::Io {
        path: path.to_string(),
        source: std::io::Error::from(errno),
    }
}

/// User and group names, looked up once per request.
#[derive(Default)]
struct Names {
    users: std::collections::HashMap<u32, String>,
    groups: std::collections::HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map_or_else(|| uid.to_string(), |u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map_or_else(|| gid.to_string(), |g| g.name)
            })
            .clone()
    }
}

fn entry(path: String, stat: &FileStat, names: &mut Names) -> Entry {
    Entry {
        path,
        nlink: stat.st_nlink,
        size: stat.st_size.unsigned_abs(),
        mtime: stat.st_mtime,
        mode: mode_string(stat.st_mode),
        raw_mode: stat.st_mode,
        uid: names.user(stat.st_uid),
        gid: names.group(stat.st_gid),
    }
}

/// `ls -l`'s rendering of a mode.
fn mode_string(mode: u32) -> String {
    let kind = match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => 'd',
        SFlag::S_IFLNK => 'l',
        SFlag::S_IFCHR => 'c',
        SFlag::S_IFBLK => 'b',
        SFlag::S_IFIFO => 'p',
        SFlag::S_IFSOCK => 's',
        _ => '-',
    };
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let exec =
        |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _tmp: tempfile::TempDir,
        work_dir: PathBuf,
        sandbox: PathBuf,
        files: Sandboxes,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let work_dir = tmp.path().join("work");
        let executor = work_dir.join("slaves/S1/frameworks/F1/executors/E1");
        let sandbox = executor.join("runs/C1");
        std::fs::create_dir_all(sandbox.join("sub")).unwrap();
        symlink("C1", executor.join("runs/latest")).unwrap();
        symlink("S1", work_dir.join("slaves/latest")).unwrap();
        std::fs::write(sandbox.join("stdout"), b"hello world\n").unwrap();
        std::fs::write(sandbox.join("sub/inner"), b"inner").unwrap();
        // A neighbour whose files must stay out of reach.
        let other = work_dir.join("slaves/S1/frameworks/F1/executors/E2/runs/C2");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("secret"), b"secret").unwrap();
        std::fs::write(work_dir.join("outside"), b"outside").unwrap();
        let files = Sandboxes::new(&work_dir);
        Fixture {
            _tmp: tmp,
            work_dir,
            sandbox,
            files,
        }
    }

    fn host(f: &Fixture, inside: &str) -> String {
        format!("{}/{inside}", f.sandbox.display())
    }

    #[test]
    fn browses_a_sandbox_by_host_and_virtual_path() {
        let f = fixture();
        let listing = f.files.browse(&host(&f, "")).unwrap();
        let names: Vec<_> = listing.iter().map(|e| e.path.clone()).collect();
        let root = f.sandbox.display().to_string();
        assert_eq!(names, vec![format!("{root}/stdout"), format!("{root}/sub")]);
        assert_eq!(listing[0].size, 12);
        assert!(listing[0].mode.starts_with("-rw"));
        assert!(listing[1].mode.starts_with('d'));

        let virt = f
            .files
            .browse("/frameworks/F1/executors/E1/runs/latest/sub/")
            .unwrap();
        assert_eq!(virt.len(), 1);
        assert_eq!(
            virt[0].path,
            "/frameworks/F1/executors/E1/runs/latest/sub/inner"
        );
    }

    #[test]
    fn reads_with_mesos_offsets() {
        let f = fixture();
        let path = host(&f, "stdout");
        assert_eq!(
            f.files.read(&path, None, None).unwrap(),
            Chunk {
                offset: 12,
                data: vec![],
                size: 12
            }
        );
        let chunk = f.files.read(&path, Some(6), Some(3)).unwrap();
        assert_eq!((chunk.offset, chunk.data.as_slice()), (6, &b"wor"[..]));
        let tail = f.files.read(&path, Some(100), None).unwrap();
        assert_eq!((tail.offset, tail.data.len()), (12, 0));
        assert!(matches!(
            f.files.read(&path, Some(-5), None),
            Err(FilesError::BadRequest(_))
        ));
        assert!(matches!(
            f.files.read(&host(&f, "sub"), Some(0), None),
            Err(FilesError::BadRequest(_))
        ));
    }

    #[test]
    fn refuses_every_way_out_of_a_sandbox() {
        let f = fixture();
        symlink("/etc/passwd", f.sandbox.join("abs")).unwrap();
        symlink("../../../E2/runs/C2/secret", f.sandbox.join("neighbour")).unwrap();
        symlink("../../../../../../../outside", f.sandbox.join("up")).unwrap();
        symlink("/", f.sandbox.join("root")).unwrap();
        symlink("sub/inner", f.sandbox.join("fine")).unwrap();

        for inside in ["abs", "neighbour", "up", "root/etc/passwd", "sub/../../C2"] {
            let err = f.files.read(&host(&f, inside), Some(0), None).unwrap_err();
            assert!(matches!(err, FilesError::Forbidden(_)), "{inside}: {err:?}");
        }
        // Symlinks that stay inside are fine.
        let chunk = f.files.read(&host(&f, "fine"), Some(0), None).unwrap();
        assert_eq!(chunk.data, b"inner");

        let outside = format!("{}/outside", f.work_dir.display());
        assert!(matches!(
            f.files.read(&outside, Some(0), None),
            Err(FilesError::Forbidden(_))
        ));
        for path in ["/etc/passwd", "/", "/frameworks/F1"] {
            assert!(
                matches!(f.files.browse(path), Err(FilesError::NotFound(_))),
                "{path}"
            );
        }
        assert!(matches!(
            f.files.browse("relative/path"),
            Err(FilesError::BadRequest(_))
        ));
    }

    #[test]
    fn refuses_special_files() {
        let f = fixture();
        nix::unistd::mkfifo(&f.sandbox.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        // Must answer at once, not block waiting for a writer.
        let err = f.files.read(&host(&f, "fifo"), Some(0), None).unwrap_err();
        assert!(matches!(err, FilesError::BadRequest(_)), "{err:?}");
    }

    #[test]
    fn renders_modes_like_ls() {
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
    }
}
