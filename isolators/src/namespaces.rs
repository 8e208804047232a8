//! `namespaces/pid` and `namespaces/ipc`: the executor starts in new
//! namespaces of its own. They keep no state: the kernel drops a namespace
//! with its last process, so there is nothing to set up, measure or clean
//! up; the launcher creates them (see the agent's launcher).
//!
//! Each comes with a mount namespace (Mesos has `filesystem/linux`
//! provide it), where the launcher mounts what the namespace needs to be
//! seen from inside: a PID namespace its own `/proc`, an IPC namespace its
//! own `/dev/shm` (POSIX shared memory lives in files there, which an IPC
//! namespace alone does not cover).

use std::path::Path;

use mesos_plugin_api::isolator::{ContainerSpec, Isolator, IsolatorError, LaunchInfo, Namespace};

pub struct Namespaces {
    name: &'static str,
    namespaces: &'static [Namespace],
}

impl Namespaces {
    /// `namespaces/pid`.
    pub fn pid() -> Self {
        Self {
            name: "namespaces/pid",
            namespaces: &[Namespace::Pid, Namespace::Mount],
        }
    }

    /// `namespaces/ipc`.
    pub fn ipc() -> Self {
        Self {
            name: "namespaces/ipc",
            namespaces: &[Namespace::Ipc, Namespace::Mount],
        }
    }

    /// `filesystem/linux`: a mount namespace of the container's own, so
    /// that what is mounted for it (its image's root filesystem, volumes)
    /// stays out of the host's. The rootfs itself is entered by the
    /// command executor for its task (see the agent's `images` module).
    pub fn filesystem_linux() -> Self {
        Self {
            name: "filesystem/linux",
            namespaces: &[Namespace::Mount],
        }
    }

    /// The `/proc/self/ns` entries the kernel must have for these
    /// namespaces to be created.
    pub fn kernel_entries(&self) -> Vec<&'static str> {
        self.namespaces
            .iter()
            .map(|n| match n {
                Namespace::Mount => "mnt",
                Namespace::Pid => "pid",
                Namespace::Ipc => "ipc",
            })
            .collect()
    }

    /// The first namespace kind the kernel under `proc_root` lacks.
    pub fn missing_in(&self, proc_root: &Path) -> Option<&'static str> {
        self.kernel_entries()
            .into_iter()
            .find(|entry| !proc_root.join("self/ns").join(entry).exists())
    }
}

impl Isolator for Namespaces {
    fn name(&self) -> &'static str {
        self.name
    }

    fn prepare(&self, _spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        Ok(LaunchInfo {
            clone_namespaces: self.namespaces.to_vec(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_resources::Resources;

    #[test]
    fn each_asks_for_its_namespaces() {
        let spec = ContainerSpec {
            container_id: "c1".into(),
            resources: Resources::default(),
            capabilities: Default::default(),
            sandbox: Default::default(),
            ..Default::default()
        };
        let pid = Namespaces::pid().prepare(&spec).unwrap();
        assert_eq!(pid.clone_namespaces, vec![Namespace::Pid, Namespace::Mount]);
        assert!(pid.cgroup_procs.is_empty() && pid.env.is_empty());
        let ipc = Namespaces::ipc().prepare(&spec).unwrap();
        assert_eq!(ipc.clone_namespaces, vec![Namespace::Ipc, Namespace::Mount]);

        let mut merged = pid;
        merged.merge(ipc);
        merged.merge(Namespaces::pid().prepare(&spec).unwrap());
        assert_eq!(
            merged.clone_namespaces,
            vec![Namespace::Pid, Namespace::Mount, Namespace::Ipc],
            "each namespace once"
        );
    }

    #[test]
    fn a_kernel_without_the_namespace_is_named() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("self/ns")).unwrap();
        std::fs::write(fake.path().join("self/ns/pid"), "").unwrap();
        assert_eq!(Namespaces::pid().missing_in(fake.path()), Some("mnt"));
        std::fs::write(fake.path().join("self/ns/mnt"), "").unwrap();
        assert_eq!(Namespaces::pid().missing_in(fake.path()), None);
        assert_eq!(Namespaces::ipc().missing_in(fake.path()), Some("ipc"));
        std::fs::write(fake.path().join("self/ns/ipc"), "").unwrap();
        assert_eq!(Namespaces::ipc().missing_in(fake.path()), None);
    }
}
