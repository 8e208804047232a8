//! What every cgroups isolator with one controller does the same way: a
//! cgroup per container, made at prepare and joined by the executor,
//! removed at cleanup and, for containers gone while the agent was down,
//! at recovery; failures name the isolator and the path.

use std::io;
use std::path::{Path, PathBuf};

use mesos_plugin_api::isolator::{IsolatorError, LaunchInfo};

use super::Hierarchy;

#[derive(Debug, Clone)]
pub struct ContainerCgroups {
    hierarchy: Hierarchy,
    controller: &'static str,
    isolator: &'static str,
}

impl ContainerCgroups {
    pub fn new(hierarchy: Hierarchy, controller: &'static str, isolator: &'static str) -> Self {
        Self {
            hierarchy,
            controller,
            isolator,
        }
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The container's cgroup.
    pub fn dir(&self, container_id: &str) -> PathBuf {
        self.hierarchy.dir(self.controller, container_id)
    }

    /// `source`, failing on `path`, as this isolator's error.
    pub fn error(&self, path: PathBuf, source: io::Error) -> IsolatorError {
        IsolatorError::Io {
            isolator: self.isolator,
            path,
            source,
        }
    }

    /// Makes the container's cgroup (enabling the controller on v2).
    pub fn create(&self, container_id: &str) -> Result<PathBuf, IsolatorError> {
        self.hierarchy
            .create(self.controller, container_id)
            .map_err(|source| self.error(self.dir(container_id), source))
    }

    /// Writes `value` to the control file `knob` of the container.
    pub fn write(&self, container_id: &str, knob: &str, value: &str) -> Result<(), IsolatorError> {
        let path = self.dir(container_id).join(knob);
        std::fs::write(&path, value).map_err(|source| self.error(path, source))
    }

    /// Kills what is left in the container's cgroup and removes it.
    pub fn destroy(&self, container_id: &str) -> Result<(), IsolatorError> {
        self.hierarchy
            .destroy(self.controller, container_id)
            .map_err(|source| self.error(self.dir(container_id), source))
    }

    /// Destroys the cgroup of every container not `live`.
    pub fn destroy_orphans(&self, live: &[String]) -> Result<(), IsolatorError> {
        for container in self.hierarchy.orphans(self.controller, live) {
            self.destroy(&container)?;
        }
        Ok(())
    }
}

/// Has the executor join the cgroup at `dir`.
pub fn joining(dir: &Path) -> LaunchInfo {
    LaunchInfo {
        cgroup_procs: vec![dir.join("cgroup.procs")],
        ..Default::default()
    }
}
