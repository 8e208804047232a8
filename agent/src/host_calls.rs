//! The agent's side of the host calls its WASM plugins make
//! (`mesos_plugin_api::host::calls`), once the plugin host has checked
//! them: the permission, the container of the call in progress, the
//! knob's name and value. Here the knob is written into that container's
//! cgroup, which an isolator of the knob's controller (`cgroups/cpu` for
//! `cpu.shares`) must have made: a plugin never creates cgroups, and never
//! writes anywhere else.

use std::path::Path;

use mesos_isolators::cgroups::Hierarchy;
use mesos_plugin_api::host::calls::HostCalls;

#[derive(Debug)]
pub struct CgroupKnobs {
    hierarchy: Hierarchy,
}

impl CgroupKnobs {
    pub fn new(hierarchy: Hierarchy) -> Self {
        Self { hierarchy }
    }
}

impl HostCalls for CgroupKnobs {
    fn set_cgroup_knob(&self, container_id: &str, knob: &str, value: &str) -> Result<(), String> {
        // The plugin host checked both; a path is still never built from
        // anything else.
        let plain = |s: &str| {
            !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
        };
        if !plain(container_id) || !plain(knob) {
            return Err(format!("'{container_id}' or '{knob}' is not a plain name"));
        }
        let controller = knob.split('.').next().unwrap_or(knob);
        let dir = self.hierarchy.dir(controller, container_id);
        if !dir.is_dir() {
            return Err(format!(
                "container '{container_id}' has no {controller} cgroup (is cgroups/{controller} in --isolation, before the plugin?)"
            ));
        }
        let file = dir.join(knob);
        if !Path::new(&file).is_file() {
            return Err(format!(
                "{controller} has no control file {knob} here ({})",
                file.display()
            ));
        }
        std::fs::write(&file, value).map_err(|e| format!("{}: {e}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_knob_is_written_only_into_an_existing_cgroup_of_its_controller() {
        let Ok(mount) = tempfile::tempdir() else {
            panic!("no temporary directory");
        };
        let hierarchy = Hierarchy::detect(mount.path(), "mesos");
        let cpu = mount.path().join("cpu/mesos/c1");
        std::fs::create_dir_all(&cpu).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(cpu.join("cpu.shares"), "1024").unwrap_or_else(|e| panic!("{e}"));
        let knobs = CgroupKnobs::new(hierarchy);

        assert_eq!(knobs.set_cgroup_knob("c1", "cpu.shares", "321"), Ok(()));
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.shares"))
                .ok()
                .as_deref(),
            Some("321")
        );
        let refused = |id, knob| knobs.set_cgroup_knob(id, knob, "1").unwrap_err();
        assert!(refused("c2", "cpu.shares").contains("container 'c2' has no cpu cgroup"));
        assert!(
            refused("c1", "cpu.nonexistent").contains("cpu has no control file cpu.nonexistent")
        );
        assert!(refused("c1", "memory.limit_in_bytes").contains("has no memory cgroup"));
        assert!(refused("..", "cpu.shares").contains("is not a plain name"));
    }
}
