//! Running the command executor's task inside a container image's root
//! filesystem.
//!
//! Design (Mesos's shape: executor on the host, task in the image). The
//! agent provisions the image and hands the executor a [`RootfsLaunch`]
//! in its environment ([`ROOTFS_LAUNCH_VAR`], JSON): the rootfs, the task's
//! final argv, environment and working directory (the `docker/runtime`
//! merge, done by the agent) and the bind mounts. The executor itself
//! stays on the host's filesystem, so its binary never needs to exist in
//! the image. Only the task process enters the image, between fork and
//! exec, in this order:
//!
//! 1. a new mount namespace whose mounts are made slaves, so nothing
//!    mounted for the task propagates out of it (and the namespace, with
//!    all of it, goes with the task's last process);
//! 2. the rootfs bind-mounted onto itself (`pivot_root` needs a mount
//!    point; the `copy` backend's rootfs is a plain directory);
//! 3. the host's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`
//!    (read-only), the sandbox at `--sandbox_directory`, then the volumes,
//!    bind-mounted;
//! 4. a fresh `/proc` (of the executor's PID namespace, if it has one), a
//!    small `/dev` (tmpfs with the usual devices bound from the host, its
//!    own `/dev/shm` and `/dev/pts`, the usual symlinks) and a read-only
//!    `/sys`;
//! 5. `pivot_root` into the rootfs, the old root detached, and `chdir` to
//!    the working directory;
//! 6. the switch to the task's user, if it has one: the executor of a
//!    task with an image runs as root so that its task can mount, and the
//!    task gives root up last, as Mesos's launch helper does.
//!
//! Everything the child does is a plain system call on paths prepared
//! before the fork, so nothing is allocated after it. Mount points are
//! created before the fork, by [`RootfsLaunch::prepare_mount_points`],
//! which refuses to follow symlinks inside the image: an image must not be
//! able to redirect a mount onto a host path.

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::privileges::{Kernel, Privileges};

/// The executor's environment variable holding the [`RootfsLaunch`].
pub const ROOTFS_LAUNCH_VAR: &str = "MESOS_TASK_ROOTFS_LAUNCH";

/// Symlinks of the task's `/dev`, as container runtimes make them.
const DEV_LINKS: [(&CStr, &str); 5] = [
    (c"/proc/self/fd", "fd"),
    (c"/proc/self/fd/0", "stdin"),
    (c"/proc/self/fd/1", "stdout"),
    (c"/proc/self/fd/2", "stderr"),
    (c"pts/ptmx", "ptmx"),
];

/// Bound read-only from the host when the image allows.
pub(crate) const HOST_NETWORK_FILES: [&str; 3] =
    ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// Devices bound from the host into the task's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// How the task runs in its image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsLaunch {
    /// The provisioned root filesystem (a host path).
    pub rootfs: PathBuf,
    /// The task's argv; `argv[0]` is the program, looked up in the
    /// image's `PATH` when it has no slash.
    pub argv: Vec<String>,
    /// Added to what the task inherits from the executor.
    pub env: Vec<(String, String)>,
    /// Inside the rootfs.
    pub working_dir: PathBuf,
    /// Bind mounts, applied in order (the sandbox first).
    pub mounts: Vec<BindMount>,
    /// Who the task runs as; `None` to stay root.
    #[serde(default)]
    pub user: Option<TaskUser>,
    /// Its capabilities and `no_new_privs` (`linux/capabilities`,
    /// `linux/nnp`): the executor stays root to set the rootfs up, so the
    /// task takes them on, as in Mesos.
    #[serde(default)]
    pub privileges: Privileges,
}

/// A user resolved on the host (the sandbox belongs to it there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// A host path.
    pub source: PathBuf,
    /// An absolute path inside the rootfs.
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{ROOTFS_LAUNCH_VAR} is not valid: {0}")]
    BadSpec(String),
    #[error("'{path}' in the image is a symlink; refusing to mount over it")]
    Symlink { path: PathBuf },
    #[error("cannot create the mount point '{path}': {source}")]
    MountPoint { path: PathBuf, source: io::Error },
    #[error("'{0}' contains a NUL byte")]
    Nul(String),
}

impl RootfsLaunch {
    pub fn to_json(&self) -> String {
        // Only strings and booleans: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, RootfsError> {
        let launch: Self =
            serde_json::from_str(text).map_err(|e| RootfsError::BadSpec(e.to_string()))?;
        if launch.argv.is_empty() {
            return Err(RootfsError::BadSpec("the task has no command".into()));
        }
        if !launch.rootfs.is_absolute() {
            return Err(RootfsError::BadSpec("the rootfs is not absolute".into()));
        }
        Ok(launch)
    }

    /// Creates, inside the rootfs, every directory and file the task's
    /// mounts land on, and returns those mounts in order: the host's
    /// name resolution files first, where the image lets them be bound
    /// (the task shares the host's network, as in Mesos without a network
    /// isolator), then the sandbox and the volumes.
    pub fn prepare_mount_points(&self) -> Result<Vec<BindMount>, RootfsError> {
        for dir in [
            Path::new("proc"),
            Path::new("dev"),
            Path::new("sys"),
            &self.working_dir,
        ] {
            make_inside(&self.rootfs, dir, true)?;
        }
        let mut mounts = Vec::new();
        for file in HOST_NETWORK_FILES {
            let source = Path::new(file);
            if !source.is_file() {
                continue;
            }
            match make_inside(&self.rootfs, source, false) {
                Ok(()) => mounts.push(BindMount {
                    source: source.to_path_buf(),
                    target: source.to_path_buf(),
                    read_only: true,
                }),
                // Optional: an image that makes it a symlink (say, into
                // /run) keeps its own.
                Err(e) => tracing::debug!("not binding the host's {file}: {e}"),
            }
        }
        for mount in &self.mounts {
            let is_dir = fs::metadata(&mount.source).map_or(true, |m| m.is_dir());
            make_inside(&self.rootfs, &mount.target, is_dir)?;
            mounts.push(mount.clone());
        }
        Ok(mounts)
    }

    /// The system calls of the module comment, with their arguments;
    /// `bind` comes from [`RootfsLaunch::prepare_mount_points`].
    pub fn plan(&self, bind: &[BindMount]) -> Result<EnterPlan, RootfsError> {
        let rootfs = cstring(&self.rootfs)?;
        let inside = |path: &Path| cstring(&self.rootfs.join(relative(path)));
        let mut mounts = Vec::new();
        for mount in bind {
            mounts.push((
                cstring(&mount.source)?,
                inside(&mount.target)?,
                mount.read_only,
            ));
        }
        let dev = self.rootfs.join("dev");
        let mut devices = Vec::new();
        for name in DEVICES {
            let host = Path::new("/dev").join(name);
            if host.exists() {
                devices.push((cstring(&host)?, cstring(&dev.join(name))?));
            }
        }
        Ok(EnterPlan {
            proc_dir: inside(Path::new("/proc"))?,
            dev_dir: cstring(&dev)?,
            shm_dir: cstring(&dev.join("shm"))?,
            pts_dir: cstring(&dev.join("pts"))?,
            sys_dir: inside(Path::new("/sys"))?,
            links: DEV_LINKS
                .iter()
                .map(|(target, name)| Ok((*target, cstring(&dev.join(name))?)))
                .collect::<Result<_, RootfsError>>()?,
            rootfs,
            mounts,
            devices,
            working_dir: cstring(&Path::new("/").join(relative(&self.working_dir)))?,
            user: self.user.as_ref().map(|u| {
                (
                    nix::unistd::Uid::from_raw(u.uid),
                    nix::unistd::Gid::from_raw(u.gid),
                )
            }),
            privileges: self.privileges,
        })
    }
}

/// What the forked child needs to enter the rootfs, prepared before the
/// fork.
pub struct EnterPlan {
    rootfs: CString,
    mounts: Vec<(CString, CString, bool)>,
    proc_dir: CString,
    dev_dir: CString,
    shm_dir: CString,
    pts_dir: CString,
    sys_dir: CString,
    links: Vec<(&'static CStr, CString)>,
    devices: Vec<(CString, CString)>,
    working_dir: CString,
    user: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
    privileges: Privileges,
}

impl EnterPlan {
    /// Runs in the forked child before exec: system calls only, and on
    /// failure a static message on stderr (the sandbox's `stderr`) saying
    /// which step failed; the errno comes back to the executor.
    #[allow(unsafe_code)]
    pub fn enter(&self) -> io::Result<()> {
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        use nix::sys::stat::Mode;
        let none = None::<&CStr>;
        let step = |what: &'static str, result: nix::Result<()>| {
            result.map_err(|errno| {
                // SAFETY: fd 2 is the child's stderr for as long as it runs.
                let stderr = unsafe { std::os::fd::BorrowedFd::borrow_raw(2) };
                let _ = nix::unistd::write(stderr, what.as_bytes());
                io::Error::from(errno)
            })
        };
        step(
            "rootfs: cannot create a mount namespace\n",
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS),
        )?;
        step(
            "rootfs: cannot make the mounts slaves\n",
            mount(none, c"/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none),
        )?;
        let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
        step(
            "rootfs: cannot bind-mount the rootfs\n",
            mount(
                Some(self.rootfs.as_c_str()),
                self.rootfs.as_c_str(),
                none,
                bind,
                none,
            ),
        )?;
        for (source, target, read_only) in &self.mounts {
            step(
                "rootfs: cannot bind-mount a volume or the sandbox\n",
                mount(Some(source.as_c_str()), target.as_c_str(), none, bind, none),
            )?;
            if *read_only {
                step(
                    "rootfs: cannot make a volume read-only\n",
                    mount(
                        none,
                        target.as_c_str(),
                        none,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        none,
                    ),
                )?;
            }
        }
        step(
            "rootfs: cannot mount /proc\n",
            mount(
                Some(c"proc"),
                self.proc_dir.as_c_str(),
                Some(c"proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                none,
            ),
        )?;
        step(
            "rootfs: cannot mount /dev\n",
            mount(
                Some(c"tmpfs"),
                self.dev_dir.as_c_str(),
                Some(c"tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some(c"mode=755"),
            ),
        )?;
        for (host, target) in &self.devices {
            let created = nix::fcntl::open(
                target.as_c_str(),
                nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY,
                Mode::from_bits_truncate(0o666),
            )
            .map(drop);
            step("rootfs: cannot create a device node\n", created)?;
            step(
                "rootfs: cannot bind a device\n",
                mount(
                    Some(host.as_c_str()),
                    target.as_c_str(),
                    none,
                    MsFlags::MS_BIND,
                    none,
                ),
            )?;
        }
        for dir in [&self.shm_dir, &self.pts_dir] {
            step(
                "rootfs: cannot create a /dev directory\n",
                nix::unistd::mkdir(dir.as_c_str(), Mode::from_bits_truncate(0o755)),
            )?;
        }
        step(
            "rootfs: cannot mount /dev/shm\n",
            mount(
                Some(c"shm"),
                self.shm_dir.as_c_str(),
                Some(c"tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(c"mode=1777"),
            ),
        )?;
        for (target, link) in &self.links {
            step(
                "rootfs: cannot make the /dev symlinks\n",
                nix::unistd::symlinkat(*target, nix::fcntl::AT_FDCWD, link.as_c_str()),
            )?;
        }
        // Best effort, as some kernels or hosts refuse them: a private
        // devpts for terminals and a read-only /sys.
        let _ = mount(
            Some(c"devpts"),
            self.pts_dir.as_c_str(),
            Some(c"devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=0620"),
        );
        let _ = mount(
            Some(c"sysfs"),
            self.sys_dir.as_c_str(),
            Some(c"sysfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            none,
        );
        // pivot_root(".", "."): the old root ends up stacked on the new
        // one, where it is detached; no directory for it is needed.
        step(
            "rootfs: cannot enter the rootfs\n",
            nix::unistd::chdir(self.rootfs.as_c_str()),
        )?;
        step(
            "rootfs: pivot_root failed\n",
            nix::unistd::pivot_root(c".", c"."),
        )?;
        step(
            "rootfs: cannot detach the host's root\n",
            umount2(c".", MntFlags::MNT_DETACH),
        )?;
        step(
            "rootfs: cannot change to the working directory\n",
            nix::unistd::chdir(self.working_dir.as_c_str()),
        )?;
        step(
            "rootfs: cannot drop capabilities\n",
            self.privileges.before_switch(&Kernel, self.user.is_some()),
        )?;
        if let Some((uid, gid)) = self.user {
            // Only the user's primary group: root's supplementary groups
            // must not stay with the task.
            step(
                "rootfs: cannot drop the supplementary groups\n",
                nix::unistd::setgroups(&[gid]),
            )?;
            step("rootfs: cannot switch group\n", nix::unistd::setgid(gid))?;
            step("rootfs: cannot switch user\n", nix::unistd::setuid(uid))?;
        }
        step(
            "rootfs: cannot set capabilities\n",
            self.privileges.after_switch(&Kernel),
        )?;
        Ok(())
    }
}

/// `path` without its root, `..` refused by dropping it (targets come from
/// the agent, which already checked them).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

fn cstring(path: &Path) -> Result<CString, RootfsError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| RootfsError::Nul(path.display().to_string()))
}

/// Creates `target` (absolute inside `rootfs`) and its missing parents,
/// never following a symlink that is part of the image.
fn make_inside(rootfs: &Path, target: &Path, is_dir: bool) -> Result<(), RootfsError> {
    let parts: Vec<_> = relative(target)
        .components()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut path = rootfs.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let last = i + 1 == parts.len();
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(RootfsError::Symlink { path });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let made = if last && !is_dir {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map(drop)
                } else {
                    fs::create_dir(&path)
                };
                made.map_err(|source| RootfsError::MountPoint {
                    path: path.clone(),
                    source,
                })?;
            }
            Err(source) => return Err(RootfsError::MountPoint { path, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_made_without_following_image_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("mnt")).unwrap();
        let source = tempfile::NamedTempFile::new().unwrap();
        let launch = RootfsLaunch {
            rootfs: root.path().to_path_buf(),
            argv: vec!["true".into()],
            mounts: vec![BindMount {
                source: source.path().to_path_buf(),
                target: "/etc/conf/file".into(),
                read_only: true,
            }],
            ..Default::default()
        };
        let mounts = launch.prepare_mount_points().unwrap();
        assert!(root.path().join("etc/conf/file").is_file());
        assert_eq!(mounts.last(), launch.mounts.last());
        if Path::new("/etc/hosts").is_file() {
            assert!(root.path().join("etc/hosts").is_file());
            assert!(mounts.iter().any(|m| m.target == Path::new("/etc/hosts")));
        }
        assert!(root.path().join("proc").is_dir());

        let escaping = RootfsLaunch {
            mounts: vec![BindMount {
                source: outside.path().to_path_buf(),
                target: "/mnt/x".into(),
                read_only: false,
            }],
            ..launch
        };
        let err = escaping.prepare_mount_points().unwrap_err();
        assert!(matches!(err, RootfsError::Symlink { .. }), "{err}");
        assert!(!outside.path().join("x").exists());
    }

    #[test]
    fn the_spec_round_trips_and_bad_specs_are_errors() {
        let launch = RootfsLaunch {
            rootfs: "/r".into(),
            argv: vec!["sh".into()],
            env: vec![("A".into(), "1".into())],
            working_dir: "/".into(),
            mounts: Vec::new(),
            user: Some(TaskUser {
                name: "nobody".into(),
                uid: 65534,
                gid: 65534,
            }),
            privileges: Privileges {
                bounding: Some(0x2001),
                effective: Some(0x2000),
                no_new_privs: true,
            },
        };
        assert_eq!(RootfsLaunch::from_json(&launch.to_json()).unwrap(), launch);
        assert!(RootfsLaunch::from_json("{").is_err());
        let empty = RootfsLaunch {
            argv: Vec::new(),
            ..launch
        };
        assert!(RootfsLaunch::from_json(&empty.to_json()).is_err());
    }
}
