//! `cgroups/devices`: a container may use no device but Mesos's default
//! whitelist (the null, zero, full, random and urandom devices, ttys,
//! ptys, `/dev/console`, `/dev/net/tun`, and mknod of any node) and what
//! `--allowed_devices` adds, so a task cannot open the host's disks or
//! `/dev/kmsg` even as root.
//!
//! On cgroups v1 that is the container's devices cgroup: everything
//! denied, then each rule allowed. Rules are written one per `write` to
//! `devices.deny` and `devices.allow`, appending, so that a fake cgroupfs
//! of plain files records them all. On v2 there is no devices controller:
//! the rules are compiled once into an eBPF program ([`program`]), loaded
//! when the isolator is built (so a kernel without cgroup BPF stops the
//! agent at start) and attached to each container's cgroup.

mod bpf;
mod program;
mod rules;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use mesos_plugin_api::isolator::{ContainerSpec, Isolator, IsolatorError, LaunchInfo};

pub use bpf::{Attach, DeviceProgram};
pub use program::device_filter;
pub use rules::{DEFAULT_WHITELIST, Rule, parse_allowed};

use crate::cgroups::{ContainerCgroups, Hierarchy, Version, joining};

const NAME: &str = "cgroups/devices";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DevicesError {
    #[error("--allowed_devices is not a DeviceWhitelist: {0}")]
    Json(String),
    #[error("--allowed_devices: '{path}': {reason}")]
    Device { path: String, reason: String },
    #[error("--allowed_devices: an entry has neither a device path nor a number")]
    NoDevice,
    /// cgroups v2 without a loadable device program.
    #[error("cgroups v2 device control needs cgroup BPF: {0}")]
    Bpf(String),
}

/// How a container's access is restricted.
enum Enforcer {
    /// v1: the rules, written to the container's devices cgroup.
    Rules(Vec<Rule>),
    /// v2: the program, attached to the container's cgroup.
    Program(Arc<dyn Attach>),
}

pub struct CgroupsDevices {
    cgroups: ContainerCgroups,
    enforcer: Enforcer,
}

impl CgroupsDevices {
    /// The isolator for the default whitelist and `allowed`: on v2 its
    /// program is loaded now.
    pub fn new(hierarchy: Hierarchy, allowed: Vec<Rule>) -> Result<Self, DevicesError> {
        let mut rules = DEFAULT_WHITELIST.to_vec();
        rules.extend(allowed);
        let enforcer = match hierarchy.version() {
            Version::V1 => Enforcer::Rules(rules),
            Version::V2 => {
                let program = DeviceProgram::load(&device_filter(&rules))
                    .map_err(|e| DevicesError::Bpf(e.to_string()))?;
                Enforcer::Program(Arc::new(program))
            }
        };
        Ok(Self {
            cgroups: ContainerCgroups::new(hierarchy, "devices", NAME),
            enforcer,
        })
    }

    /// The v2 isolator with `attach` in the kernel's place.
    pub fn with_attach(hierarchy: Hierarchy, attach: Arc<dyn Attach>) -> Self {
        Self {
            cgroups: ContainerCgroups::new(hierarchy, "devices", NAME),
            enforcer: Enforcer::Program(attach),
        }
    }

    /// Writes `rule` to the control file at `path` in one write.
    fn write_rule(&self, path: &Path, rule: &str) -> Result<(), IsolatorError> {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut file| file.write_all(rule.as_bytes()))
            .map_err(|source| self.cgroups.error(path.to_path_buf(), source))
    }
}

impl Isolator for CgroupsDevices {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        self.cgroups.destroy_orphans(live)
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let id = &spec.container_id;
        let dir = match &self.enforcer {
            Enforcer::Rules(rules) => {
                let dir = self.cgroups.create(id)?;
                // A new cgroup inherits its parent's rules: take them all
                // away first, then give the whitelist back.
                self.write_rule(&dir.join("devices.deny"), "a")?;
                for rule in rules {
                    self.write_rule(&dir.join("devices.allow"), &rule.to_string())?;
                }
                dir
            }
            Enforcer::Program(program) => {
                // No controller to enable: a program goes on any cgroup.
                let dir = self
                    .cgroups
                    .hierarchy()
                    .create_plain(id)
                    .map_err(|source| self.cgroups.error(self.cgroups.dir(id), source))?;
                program
                    .attach(&dir)
                    .map_err(|source| self.cgroups.error(dir.clone(), source))?;
                dir
            }
        };
        Ok(joining(&dir))
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        self.cgroups.destroy(container_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Mutex;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_v1_container_gets_everything_denied_then_the_whitelist() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("devices")).unwrap();
        let hierarchy = Hierarchy::detect(fake.path(), "mesos");
        let kmsg = parse_allowed(
            r#"{"allowed_devices":[{"device":{"number":{"major_number":1,"minor_number":11}},"access":{"read":true}}]}"#,
        )
        .unwrap();
        let devices = CgroupsDevices::new(hierarchy, kmsg).unwrap();
        let launch = devices.prepare(&spec()).unwrap();
        let dir = fake.path().join("devices/mesos/c1");
        assert_eq!(launch.cgroup_procs, [dir.join("cgroup.procs")]);
        assert_eq!(
            std::fs::read_to_string(dir.join("devices.deny")).unwrap(),
            "a"
        );
        let allowed = std::fs::read_to_string(dir.join("devices.allow")).unwrap();
        assert!(allowed.starts_with("c *:* mb *:* mc 1:3 rwm"), "{allowed}");
        assert!(allowed.ends_with("c 10:200 rwmc 1:11 r"), "{allowed}");
    }

    /// Records where it was asked to attach.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<PathBuf>>);

    impl Attach for Recorder {
        fn attach(&self, cgroup: &Path) -> std::io::Result<()> {
            self.0.lock().unwrap().push(cgroup.to_path_buf());
            Ok(())
        }
    }

    #[test]
    fn a_v2_container_gets_the_program_on_its_cgroup_and_no_controller() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::write(fake.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let recorder = Arc::new(Recorder::default());
        let devices = CgroupsDevices::with_attach(
            Hierarchy::detect(fake.path(), "mesos"),
            Arc::clone(&recorder) as Arc<dyn Attach>,
        );
        let launch = devices.prepare(&spec()).unwrap();
        let dir = fake.path().join("mesos/c1");
        assert_eq!(launch.cgroup_procs, [dir.join("cgroup.procs")]);
        assert_eq!(*recorder.0.lock().unwrap(), std::slice::from_ref(&dir));
        assert!(
            !fake.path().join("cgroup.subtree_control").exists(),
            "no controller is enabled"
        );
        devices.cleanup("c1").unwrap();
        assert!(!dir.exists());
    }
}
