//! `cgroups/devices`: a devices cgroup per container that denies every
//! device but Mesos's default whitelist (the null, zero, full, random and
//! urandom devices, ttys, ptys, `/dev/console`, `/dev/net/tun`, and mknod
//! of any node) and what `--allowed_devices` adds, so a task cannot open
//! the host's disks or `/dev/kmsg` even as root.
//!
//! cgroups v1 only: on v2 device access is an eBPF program attached to the
//! cgroup, which this isolator does not load yet; the registry refuses it
//! there (no `devices` controller). Rules are written one per `write` to
//! `devices.deny` and `devices.allow`, appending, so that a fake cgroupfs
//! of plain files records them all.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mesos_plugin_api::isolator::{ContainerSpec, Isolator, IsolatorError, LaunchInfo};
use serde::Deserialize;

use crate::cgroups::Hierarchy;

const NAME: &str = "cgroups/devices";
const CONTROLLER: &str = "devices";

/// Mesos's default whitelist, in the kernel's rule syntax.
const DEFAULT_WHITELIST: [&str; 13] = [
    "c *:* m",      // mknod of any character device
    "b *:* m",      // and any block device
    "c 1:3 rwm",    // /dev/null
    "c 1:5 rwm",    // /dev/zero
    "c 1:7 rwm",    // /dev/full
    "c 1:8 rwm",    // /dev/random
    "c 1:9 rwm",    // /dev/urandom
    "c 5:0 rwm",    // /dev/tty
    "c 5:1 rwm",    // /dev/console
    "c 5:2 rwm",    // /dev/ptmx
    "c 136:* rwm",  // /dev/pts/*
    "c 4:0 rwm",    // /dev/tty0
    "c 10:200 rwm", // /dev/net/tun
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DevicesError {
    #[error("--allowed_devices is not a DeviceWhitelist: {0}")]
    Json(String),
    #[error("--allowed_devices: '{path}': {reason}")]
    Device { path: String, reason: String },
    #[error("--allowed_devices: an entry has neither a device path nor a number")]
    NoDevice,
}

/// Mesos's `DeviceWhitelist`, as `--allowed_devices` gives it.
#[derive(Debug, Deserialize)]
struct Whitelist {
    #[serde(default)]
    allowed_devices: Vec<DeviceAccess>,
}

#[derive(Debug, Deserialize)]
struct DeviceAccess {
    device: Device,
    #[serde(default)]
    access: Access,
}

#[derive(Debug, Deserialize)]
struct Device {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    number: Option<Number>,
}

#[derive(Debug, Deserialize)]
struct Number {
    major_number: u64,
    minor_number: u64,
}

#[derive(Debug, Default, Deserialize)]
struct Access {
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    mknod: bool,
}

/// `--allowed_devices` as kernel rules (`c 1:11 r`), each device looked
/// up on the host by its path (a numbered one is a character device).
pub fn parse_allowed(json: &str) -> Result<Vec<String>, DevicesError> {
    let whitelist: Whitelist =
        serde_json::from_str(json).map_err(|e| DevicesError::Json(e.to_string()))?;
    whitelist
        .allowed_devices
        .iter()
        .map(|entry| {
            let (kind, major, minor) = match (&entry.device.path, &entry.device.number) {
                (Some(path), _) => node(Path::new(path))?,
                (None, Some(n)) => ('c', n.major_number, n.minor_number),
                (None, None) => return Err(DevicesError::NoDevice),
            };
            let access: String = [
                (entry.access.read, 'r'),
                (entry.access.write, 'w'),
                (entry.access.mknod, 'm'),
            ]
            .iter()
            .filter_map(|&(on, c)| on.then_some(c))
            .collect();
            Ok(format!("{kind} {major}:{minor} {access}"))
        })
        .filter(|rule| !rule.as_ref().is_ok_and(|r| r.ends_with(' ')))
        .collect()
}

/// The type and number of the device node at `path`.
fn node(path: &Path) -> Result<(char, u64, u64), DevicesError> {
    let failed = |reason: String| DevicesError::Device {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
    let kind = if meta.file_type().is_char_device() {
        'c'
    } else if meta.file_type().is_block_device() {
        'b'
    } else {
        return Err(failed("not a device node".into()));
    };
    let rdev = meta.rdev();
    Ok((
        kind,
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev),
    ))
}

pub struct CgroupsDevices {
    hierarchy: Hierarchy,
    /// The default whitelist and `--allowed_devices`.
    allowed: Vec<String>,
}

impl CgroupsDevices {
    pub fn new(hierarchy: Hierarchy, allowed_devices: Vec<String>) -> Self {
        let mut allowed: Vec<String> = DEFAULT_WHITELIST.iter().map(|r| r.to_string()).collect();
        allowed.extend(allowed_devices);
        Self { hierarchy, allowed }
    }

    fn dir(&self, container_id: &str) -> PathBuf {
        self.hierarchy.dir(CONTROLLER, container_id)
    }
}

fn io(path: PathBuf, source: std::io::Error) -> IsolatorError {
    IsolatorError::Io {
        isolator: NAME,
        path,
        source,
    }
}

/// Writes `rule` to the control file at `path` in one write.
fn write_rule(path: &Path, rule: &str) -> Result<(), IsolatorError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut file| file.write_all(rule.as_bytes()))
        .map_err(|source| io(path.to_path_buf(), source))
}

impl Isolator for CgroupsDevices {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        for container in self.hierarchy.orphans(CONTROLLER, live) {
            self.cleanup(&container)?;
        }
        Ok(())
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let dir = self
            .hierarchy
            .create(CONTROLLER, &spec.container_id)
            .map_err(|source| io(self.dir(&spec.container_id), source))?;
        // A new cgroup inherits its parent's rules: take them all away
        // first, then give the whitelist back.
        write_rule(&dir.join("devices.deny"), "a")?;
        for rule in &self.allowed {
            write_rule(&dir.join("devices.allow"), rule)?;
        }
        Ok(LaunchInfo {
            cgroup_procs: vec![dir.join("cgroup.procs")],
            ..Default::default()
        })
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        self.hierarchy
            .destroy(CONTROLLER, container_id)
            .map_err(|source| io(self.dir(container_id), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_gets_everything_denied_then_the_whitelist() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("devices")).unwrap();
        let hierarchy = Hierarchy::detect(fake.path(), "mesos");
        let devices = CgroupsDevices::new(hierarchy, vec!["c 1:11 r".into()]);
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

    #[test]
    fn allowed_devices_are_looked_up_by_path_or_taken_by_number() {
        let rules = parse_allowed(
            r#"{"allowed_devices": [
                {"device": {"path": "/dev/null"}, "access": {"read": true, "write": true}},
                {"device": {"number": {"major_number": 10, "minor_number": 237}},
                 "access": {"read": true, "mknod": true}},
                {"device": {"path": "/dev/zero"}, "access": {}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(rules, ["c 1:3 rw", "c 10:237 rm"]);
        for (json, expected) in [
            (r#"{"allowed_devices": 1}"#, "not a DeviceWhitelist"),
            (
                r#"{"allowed_devices": [{"device": {"path": "/nonexistent"}}]}"#,
                "'/nonexistent': No such file",
            ),
            (
                r#"{"allowed_devices": [{"device": {"path": "/etc/hostname"}}]}"#,
                "not a device node",
            ),
            (
                r#"{"allowed_devices": [{"device": {}}]}"#,
                "neither a device path nor a number",
            ),
        ] {
            let error = parse_allowed(json).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
