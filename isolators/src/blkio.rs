//! `cgroups/blkio`: a block I/O cgroup per container (`blkio` on v1, `io`
//! on v2), for what each container read and wrote on each device. As in
//! Mesos it limits nothing; it reports `blkio_statistics` in
//! `/monitor/statistics`, per device, as throttling statistics.
//!
//! # Why every v1 container gets a throttle rule
//!
//! Since Linux 5.x a v1 blkio cgroup counts I/O
//! (`blkio.throttle.io_service_bytes`) only on a device where throttling
//! is active, that is where some cgroup has a rule for it: without one the
//! files say `Total 0` whatever the container does (the CFQ files that
//! counted regardless went with CFQ). So [`prepare`](Isolator::prepare)
//! gives the container a read and a write limit of 1 TiB/s on every block
//! device, which no device reaches and which switches counting on. v2's
//! `io.stat` counts without it.

use std::path::{Path, PathBuf};

use mesos_plugin_api::isolator::{ContainerSpec, Isolator, IsolatorError, LaunchInfo, Usage};
use mesos_proto::v1::cgroup_info::blkio::{self, Operation, throttling};
use mesos_proto::v1::device;

use crate::cgroups::{ContainerCgroups, Hierarchy, Version, joining};

const NAME: &str = "cgroups/blkio";

/// The limit that switches v1 counting on: far above any device, and
/// below `u64::MAX`, which the kernel reads as "no rule".
const UNREACHABLE_BPS: u64 = 1 << 40;

pub struct CgroupsBlkio {
    cgroups: ContainerCgroups,
    /// `/sys/block`: the block devices, each with a `dev` file
    /// (`254:0`).
    sys_block: PathBuf,
}

impl CgroupsBlkio {
    pub fn new(hierarchy: Hierarchy, sys_block: PathBuf) -> Self {
        Self {
            cgroups: ContainerCgroups::new(
                hierarchy.clone(),
                Self::controller(hierarchy.version()),
                NAME,
            ),
            sys_block,
        }
    }

    fn version(&self) -> Version {
        self.cgroups.hierarchy().version()
    }

    /// The controller's name in this hierarchy.
    pub fn controller(version: Version) -> &'static str {
        match version {
            Version::V1 => "blkio",
            Version::V2 => "io",
        }
    }

    /// Turns v1 counting on for the container (see the module's doc).
    fn count_every_device(&self, container_id: &str) -> Result<(), IsolatorError> {
        let devices = block_devices(&self.sys_block)
            .map_err(|e| self.cgroups.error(self.sys_block.clone(), e))?;
        for knob in [
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
        ] {
            for (major, minor) in &devices {
                // One rule per write: the kernel parses one.
                let rule = format!("{major}:{minor} {UNREACHABLE_BPS}");
                self.cgroups.write(container_id, knob, &rule)?;
            }
        }
        Ok(())
    }
}

/// The numbers (`major:minor`) of the block devices under `sys_block`.
fn block_devices(sys_block: &Path) -> std::io::Result<Vec<(u64, u64)>> {
    let mut devices = Vec::new();
    for entry in std::fs::read_dir(sys_block)? {
        let dev = entry?.path().join("dev");
        // A device can go between the listing and the read.
        let Ok(text) = std::fs::read_to_string(&dev) else {
            continue;
        };
        if let Some(number) = parse_device(text.trim()) {
            devices.push(number);
        }
    }
    devices.sort_unstable();
    Ok(devices)
}

fn parse_device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn number((major_number, minor_number): (u64, u64)) -> device::Number {
    device::Number {
        major_number,
        minor_number,
    }
}

fn value(op: Operation, value: u64) -> blkio::Value {
    blkio::Value {
        op: Some(op as i32),
        value: Some(value),
    }
}

/// The device's entry in `stats`, added if new.
fn entry(
    stats: &mut Vec<throttling::Statistics>,
    device: (u64, u64),
) -> &mut throttling::Statistics {
    let wanted = number(device);
    let at = match stats.iter().position(|s| s.device == Some(wanted)) {
        Some(at) => at,
        None => {
            stats.push(throttling::Statistics {
                device: Some(wanted),
                ..Default::default()
            });
            stats.len() - 1
        }
    };
    &mut stats[at]
}

/// A v1 `blkio.throttle.io_serviced`/`io_service_bytes` file: lines of
/// `254:0 Read 4096`, then a device-less `Total`, which is left out (it
/// is the sum of the others).
fn parse_v1(text: &str, stats: &mut Vec<throttling::Statistics>, bytes: bool) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(device), Some(op), Some(count)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Some(device), Ok(count)) = (parse_device(device), count.parse::<u64>()) else {
            continue;
        };
        let op = match op {
            "Read" => Operation::Read,
            "Write" => Operation::Write,
            "Sync" => Operation::Sync,
            "Async" => Operation::Async,
            "Discard" => Operation::Discard,
            "Total" => Operation::Total,
            _ => Operation::Unknown,
        };
        let entry = entry(stats, device);
        let values = if bytes {
            &mut entry.io_service_bytes
        } else {
            &mut entry.io_serviced
        };
        values.push(value(op, count));
    }
}

/// v2's `io.stat`: a line per device, `254:0 rbytes=1 wbytes=2 rios=3
/// wios=4 dbytes=5 dios=6`, as counts of read, write and discard, and
/// their totals.
fn parse_v2(text: &str) -> Vec<throttling::Statistics> {
    let mut stats = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(device) = words.next().and_then(parse_device) else {
            continue;
        };
        let keyed: Vec<(&str, u64)> = words
            .filter_map(|w| {
                let (key, count) = w.split_once('=')?;
                Some((key, count.parse().ok()?))
            })
            .collect();
        let get = |key: &str| keyed.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let entry = entry(&mut stats, device);
        for (values, [read, write, discard]) in [
            (&mut entry.io_service_bytes, ["rbytes", "wbytes", "dbytes"]),
            (&mut entry.io_serviced, ["rios", "wios", "dios"]),
        ] {
            let mut total = 0u64;
            for (op, key) in [
                (Operation::Read, read),
                (Operation::Write, write),
                (Operation::Discard, discard),
            ] {
                if let Some(count) = get(key) {
                    total = total.saturating_add(count);
                    values.push(value(op, count));
                }
            }
            values.push(value(Operation::Total, total));
        }
    }
    stats
}

impl Isolator for CgroupsBlkio {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        self.cgroups.destroy_orphans(live)
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let dir = self.cgroups.create(&spec.container_id)?;
        if self.version() == Version::V1 {
            self.count_every_device(&spec.container_id)?;
        }
        Ok(joining(&dir))
    }

    fn update(&self, _spec: &ContainerSpec) -> Result<(), IsolatorError> {
        // Nothing follows the container's resources.
        Ok(())
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolatorError> {
        let dir = self.cgroups.dir(container_id);
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(|e| self.cgroups.error(path, e))
        };
        let throttling = match self.version() {
            Version::V1 => {
                let mut stats = Vec::new();
                parse_v1(&read("blkio.throttle.io_serviced")?, &mut stats, false);
                parse_v1(&read("blkio.throttle.io_service_bytes")?, &mut stats, true);
                stats
            }
            Version::V2 => parse_v2(&read("io.stat")?),
        };
        Ok(Usage {
            blkio: Some(blkio::Statistics {
                throttling,
                ..Default::default()
            }),
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

    fn spec() -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            ..Default::default()
        }
    }

    /// A fake `/sys/block` with vda (254:0) and loop0 (7:0).
    fn sys_block() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, dev) in [("vda", "254:0\n"), ("loop0", "7:0\n")] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("dev"), dev).unwrap();
        }
        dir
    }

    fn values(values: &[blkio::Value]) -> Vec<(Operation, u64)> {
        values
            .iter()
            .map(|v| {
                (
                    Operation::try_from(v.op.unwrap()).unwrap(),
                    v.value.unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn v1_switches_counting_on_for_every_device_and_reads_it_per_device() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("blkio")).unwrap();
        let devices = sys_block();
        let blkio = CgroupsBlkio::new(
            Hierarchy::detect(fake.path(), "mesos"),
            devices.path().to_path_buf(),
        );
        let info = blkio.prepare(&spec()).unwrap();
        let dir = fake.path().join("blkio/mesos/c1");
        assert_eq!(info.cgroup_procs, vec![dir.join("cgroup.procs")]);
        // A plain file keeps the last write; the kernel keeps every rule.
        assert_eq!(
            std::fs::read_to_string(dir.join("blkio.throttle.write_bps_device")).unwrap(),
            format!("254:0 {UNREACHABLE_BPS}")
        );

        std::fs::write(
            dir.join("blkio.throttle.io_service_bytes"),
            "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 12288\n254:0 Async 0\n\
             254:0 Discard 0\n254:0 Total 12288\n7:0 Read 512\n7:0 Total 512\nTotal 12800\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("blkio.throttle.io_serviced"),
            "254:0 Read 1\n254:0 Write 2\n254:0 Total 3\nTotal 3\n",
        )
        .unwrap();
        let usage = blkio.usage("c1").unwrap();
        let stats = usage.blkio.unwrap().throttling;
        assert_eq!(stats.len(), 2, "{stats:?}");
        assert_eq!(stats[0].device, Some(number((254, 0))));
        assert_eq!(
            values(&stats[0].io_service_bytes),
            vec![
                (Operation::Read, 4096),
                (Operation::Write, 8192),
                (Operation::Sync, 12288),
                (Operation::Async, 0),
                (Operation::Discard, 0),
                (Operation::Total, 12288),
            ]
        );
        assert_eq!(
            values(&stats[0].io_serviced),
            vec![
                (Operation::Read, 1),
                (Operation::Write, 2),
                (Operation::Total, 3)
            ]
        );
        assert_eq!(stats[1].device, Some(number((7, 0))));
        assert!(stats[1].io_serviced.is_empty());
        assert!(blkio.usage("unknown").is_err());

        for file in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(file.unwrap().path()).unwrap();
        }
        blkio.cleanup("c1").unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn v2_enables_io_and_reads_io_stat() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::write(fake.path().join("cgroup.controllers"), "cpu io memory\n").unwrap();
        let devices = sys_block();
        let blkio = CgroupsBlkio::new(
            Hierarchy::detect(fake.path(), "mesos"),
            devices.path().to_path_buf(),
        );
        let info = blkio.prepare(&spec()).unwrap();
        let dir = fake.path().join("mesos/c1");
        assert_eq!(info.cgroup_procs, vec![dir.join("cgroup.procs")]);
        assert_eq!(
            std::fs::read_to_string(fake.path().join("mesos/cgroup.subtree_control")).unwrap(),
            "+io"
        );
        assert!(
            !dir.join("blkio.throttle.read_bps_device").exists(),
            "v2 counts without rules"
        );
        std::fs::write(
            dir.join("io.stat"),
            "254:0 rbytes=4096 wbytes=1024 rios=2 wios=1 dbytes=0 dios=0\nnot a line\n",
        )
        .unwrap();
        let stats = blkio.usage("c1").unwrap().blkio.unwrap().throttling;
        assert_eq!(stats.len(), 1);
        assert_eq!(
            values(&stats[0].io_service_bytes),
            vec![
                (Operation::Read, 4096),
                (Operation::Write, 1024),
                (Operation::Discard, 0),
                (Operation::Total, 5120),
            ]
        );
        assert_eq!(
            values(&stats[0].io_serviced),
            vec![
                (Operation::Read, 2),
                (Operation::Write, 1),
                (Operation::Discard, 0),
                (Operation::Total, 3),
            ]
        );
    }

    #[test]
    fn unparsable_device_files_are_skipped() {
        let devices = sys_block();
        std::fs::create_dir(devices.path().join("odd")).unwrap();
        std::fs::write(devices.path().join("odd/dev"), "garbage").unwrap();
        std::fs::create_dir(devices.path().join("gone")).unwrap();
        assert_eq!(
            block_devices(devices.path()).unwrap(),
            vec![(7, 0), (254, 0)]
        );
    }
}
