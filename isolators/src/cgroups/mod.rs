//! Control groups, v1 (a hierarchy per controller) and v2 (one unified
//! hierarchy), under one `--cgroups_root` (`mesos`): a container's cgroup
//! is `<root>/<container id>` in each controller it uses.

mod container;
mod files;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use container::{ContainerCgroups, joining};
pub use files::{read_flat_keyed, read_u64};

/// How long cleanup waits for a killed container's processes to go.
const EMPTY_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The cgroup filesystem the agent manages containers in.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Where cgroupfs is mounted (`/sys/fs/cgroup`).
    mount: PathBuf,
    version: Version,
    /// `--cgroups_root`.
    root: String,
}

impl Hierarchy {
    /// The hierarchy at `mount`: v2 when it is a unified cgroup2 mount,
    /// v1 (one directory per controller) otherwise.
    pub fn detect(mount: &Path, root: &str) -> Self {
        let version = if mount.join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        Self {
            mount: mount.to_path_buf(),
            version,
            root: root.trim_matches('/').to_string(),
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether `controller` can be used here. v2 has no devices
    /// controller: device programs (cgroup BPF) go on any cgroup.
    pub fn has(&self, controller: &str) -> bool {
        match self.version {
            Version::V1 => self.mount.join(controller).is_dir(),
            Version::V2 if controller == "devices" => true,
            Version::V2 => std::fs::read_to_string(self.mount.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|n| n == controller)),
        }
    }

    /// The directory holding every container's cgroup for `controller`.
    pub fn containers_dir(&self, controller: &str) -> PathBuf {
        match self.version {
            Version::V1 => self.mount.join(controller).join(&self.root),
            Version::V2 => self.mount.join(&self.root),
        }
    }

    /// A container's cgroup for `controller`.
    pub fn dir(&self, controller: &str, container_id: &str) -> PathBuf {
        self.containers_dir(controller).join(container_id)
    }

    /// Creates the container's cgroup for `controller`. On v2 the
    /// controller is first enabled for the children of every ancestor.
    pub fn create(&self, controller: &str, container_id: &str) -> io::Result<PathBuf> {
        let dir = self.dir(controller, container_id);
        std::fs::create_dir_all(&dir)?;
        if self.version == Version::V2 {
            let mut parent = self.mount.clone();
            for part in Path::new(&self.root).components() {
                files::enable_controller(&parent, controller)?;
                parent.push(part);
            }
            files::enable_controller(&parent, controller)?;
        }
        Ok(dir)
    }

    /// Creates the container's v2 cgroup without enabling a controller,
    /// for what needs only the cgroup (a device program).
    pub fn create_plain(&self, container_id: &str) -> io::Result<PathBuf> {
        let dir = self.mount.join(&self.root).join(container_id);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The file a process writes itself into to join the cgroup.
    pub fn procs(&self, controller: &str, container_id: &str) -> PathBuf {
        self.dir(controller, container_id).join("cgroup.procs")
    }

    /// Pids in the container's cgroup for `controller`.
    pub fn pids(&self, controller: &str, container_id: &str) -> io::Result<Vec<i32>> {
        let text = std::fs::read_to_string(self.procs(controller, container_id))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Kills whatever still runs in the container's cgroup and removes it.
    /// A cgroup that does not exist is already clean.
    pub fn destroy(&self, controller: &str, container_id: &str) -> io::Result<()> {
        let dir = self.dir(controller, container_id);
        if !dir.exists() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + EMPTY_WAIT;
        loop {
            let pids = self.pids(controller, container_id).unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            // Forks racing the kill show up on the next pass.
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "processes of {} survive SIGKILL",
                    dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The kernel releases an emptied cgroup asynchronously: EBUSY for a
        // moment after the last process is reaped.
        for _ in 0..100 {
            match std::fs::remove_dir(&dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
        std::fs::remove_dir(&dir)
    }

    /// Containers with a cgroup for `controller` that are not `live`:
    /// what recovery cleans up.
    pub fn orphans(&self, controller: &str, live: &[String]) -> Vec<String> {
        let mut containers = self.containers(controller);
        containers.retain(|c| !live.contains(c));
        containers
    }

    /// Container IDs that have a cgroup for `controller`.
    pub fn containers(&self, controller: &str) -> Vec<String> {
        std::fs::read_dir(self.containers_dir(controller))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_has_a_hierarchy_per_controller() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("memory")).unwrap();
        let h = Hierarchy::detect(fake.path(), "/mesos/");
        assert_eq!(h.version(), Version::V1);
        assert!(h.has("memory") && !h.has("cpu"));
        let dir = h.create("memory", "c1").unwrap();
        assert_eq!(dir, fake.path().join("memory/mesos/c1"));
        assert_eq!(h.containers("memory"), vec!["c1".to_string()]);
        assert_eq!(
            h.procs("memory", "c1"),
            fake.path().join("memory/mesos/c1/cgroup.procs")
        );
    }

    #[test]
    fn v2_enables_the_controller_down_to_the_container() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::write(fake.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let h = Hierarchy::detect(fake.path(), "mesos");
        assert_eq!(h.version(), Version::V2);
        assert!(h.has("memory") && !h.has("blkio"));
        let dir = h.create("memory", "c1").unwrap();
        assert_eq!(dir, fake.path().join("mesos/c1"));
        for parent in [fake.path().to_path_buf(), fake.path().join("mesos")] {
            let control = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
            assert_eq!(control, "+memory", "{}", parent.display());
        }
    }

    #[test]
    fn destroying_what_does_not_exist_is_fine() {
        let fake = tempfile::tempdir().unwrap();
        let h = Hierarchy::detect(fake.path(), "mesos");
        h.destroy("memory", "never").unwrap();
    }
}
