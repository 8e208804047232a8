//! `cgroups/pids`: a pids cgroup per container, so that a fork bomb in one
//! container cannot take the host's pid space. Mesos 1.x has no pids
//! resource, so the limit is one for every container, `--cgroups_pids_max`
//! (none: the cgroup only counts). The count (`pids.current`, every task
//! of the container, threads included) is reported as its threads.

use mesos_plugin_api::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, Limitation, Usage,
};

use crate::cgroups::{ContainerCgroups, Hierarchy, joining, read_u64};

const NAME: &str = "cgroups/pids";

pub struct CgroupsPids {
    cgroups: ContainerCgroups,
    /// `pids.max` of every container; `None` leaves it at `max`.
    max: Option<u64>,
}

impl CgroupsPids {
    pub fn new(hierarchy: Hierarchy, max: Option<u64>) -> Self {
        Self {
            cgroups: ContainerCgroups::new(hierarchy, "pids", NAME),
            max,
        }
    }
}

impl Isolator for CgroupsPids {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        self.cgroups.destroy_orphans(live)
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let dir = self.cgroups.create(&spec.container_id)?;
        // Written even without a limit: a cgroup left from an earlier run
        // of the same container id must not keep an old one.
        let max = self
            .max
            .map_or_else(|| "max".to_string(), |m| m.to_string());
        self.cgroups.write(&spec.container_id, "pids.max", &max)?;
        Ok(joining(&dir))
    }

    fn update(&self, _spec: &ContainerSpec) -> Result<(), IsolatorError> {
        // The limit does not follow the container's resources.
        Ok(())
    }

    fn limitation(&self, _container_id: &str) -> Result<Option<Limitation>, IsolatorError> {
        // At the limit fork(2) fails with EAGAIN in the container, which
        // decides what to do about it; the container is not ended.
        Ok(None)
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolatorError> {
        let path = self.cgroups.dir(container_id).join("pids.current");
        let current = read_u64(&path).map_err(|e| self.cgroups.error(path, e))?;
        Ok(Usage {
            threads: current.and_then(|c| u32::try_from(c).ok()),
            ..Default::default()
        })
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        self.cgroups.destroy(container_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_resources::Resources;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            resources: Resources::from(
                mesos_resources::parse_resources("cpus:1;mem:64", "*").unwrap(),
            ),
            capabilities: Default::default(),
            sandbox: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn v1_limits_counts_and_removes_the_container_cgroup() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("pids")).unwrap();
        let pids = CgroupsPids::new(Hierarchy::detect(fake.path(), "mesos"), Some(64));
        let info = pids.prepare(&spec()).unwrap();
        let dir = fake.path().join("pids/mesos/c1");
        assert_eq!(info.cgroup_procs, vec![dir.join("cgroup.procs")]);
        assert_eq!(std::fs::read_to_string(dir.join("pids.max")).unwrap(), "64");
        pids.update(&spec()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max")).unwrap(),
            "64",
            "resources do not change the limit"
        );

        std::fs::write(dir.join("pids.current"), "17\n").unwrap();
        assert_eq!(pids.usage("c1").unwrap().threads, Some(17));
        assert!(pids.usage("unknown").is_err());
        assert_eq!(pids.limitation("c1").unwrap(), None);

        // A fake cgroup is a plain directory: its files go first.
        for file in ["pids.max", "pids.current"] {
            std::fs::remove_file(dir.join(file)).unwrap();
        }
        pids.cleanup("c1").unwrap();
        assert!(!dir.exists());
        pids.cleanup("c1").unwrap();
    }

    #[test]
    fn v2_enables_pids_and_without_a_limit_writes_max() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::write(fake.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let pids = CgroupsPids::new(Hierarchy::detect(fake.path(), "mesos"), None);
        let info = pids.prepare(&spec()).unwrap();
        let dir = fake.path().join("mesos/c1");
        assert_eq!(info.cgroup_procs, vec![dir.join("cgroup.procs")]);
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max")).unwrap(),
            "max"
        );
        for parent in [fake.path().to_path_buf(), fake.path().join("mesos")] {
            let control = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
            assert_eq!(control, "+pids", "{}", parent.display());
        }
        std::fs::write(dir.join("pids.current"), "max\n").unwrap();
        assert_eq!(pids.usage("c1").unwrap().threads, None);
        std::fs::write(dir.join("pids.current"), "3\n").unwrap();
        assert_eq!(pids.usage("c1").unwrap().threads, Some(3));
    }

    #[test]
    fn recovery_removes_the_cgroups_of_dead_containers() {
        let fake = tempfile::tempdir().unwrap();
        for c in ["live", "dead"] {
            std::fs::create_dir_all(fake.path().join("pids/mesos").join(c)).unwrap();
        }
        let pids = CgroupsPids::new(Hierarchy::detect(fake.path(), "mesos"), Some(8));
        pids.recover(&["live".to_string()]).unwrap();
        assert!(fake.path().join("pids/mesos/live").is_dir());
        assert!(!fake.path().join("pids/mesos/dead").exists());
    }
}
