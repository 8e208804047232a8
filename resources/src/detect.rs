//! Mesos's auto-detected agent resources, for whatever `--resources` does
//! not name. The rules are pure functions of the measured numbers so they
//! can be tested; only `with_detected_defaults` looks at the machine.

use std::path::Path;

use mesos_proto::v1::{self, value};

use crate::parse::apply_role;

const MB: u64 = 1024 * 1024;
/// Used when memory cannot be measured, as Mesos does.
const FALLBACK_MEM_MB: u64 = 1024;
/// Used when the work dir's filesystem cannot be measured, as Mesos does.
const FALLBACK_DISK_MB: u64 = 10 * 1024;

/// Total memory minus 1 GB, or half of it below 2 GB.
pub fn default_mem_mb(total_mb: u64) -> u64 {
    if total_mb >= 2048 {
        total_mb - 1024
    } else {
        total_mb / 2
    }
}

/// The work dir's filesystem size minus 5 GB, or half of it below 10 GB.
pub fn default_disk_mb(total_mb: u64) -> u64 {
    if total_mb >= 10 * 1024 {
        total_mb - 5 * 1024
    } else {
        total_mb / 2
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in MB.
pub fn meminfo_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn total_memory_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .inspect_err(|e| tracing::warn!(error = %e, "cannot read /proc/meminfo"))
        .ok()?;
    meminfo_total_mb(&meminfo)
}

/// Size of the filesystem that holds `path`, in MB. The work dir may not
/// exist yet on a first start, so the nearest existing ancestor is asked.
fn filesystem_mb(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = nix::sys::statvfs::statvfs(existing)
        .inspect_err(|e| tracing::warn!(path = %existing.display(), error = %e, "statvfs failed"))
        .ok()?;
    Some(stat.blocks().checked_mul(stat.fragment_size())? / MB)
}

fn scalar(name: &str, value: f64) -> v1::Resource {
    v1::Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value }),
        ..Default::default()
    }
}

fn default_ports() -> v1::Resource {
    v1::Resource {
        name: "ports".to_string(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: 31000,
                end: 32000,
            }],
        }),
        ..Default::default()
    }
}

/// Adds cpus, mem, disk and ports (for `default_role`) when `resources`
/// does not name them in any role.
pub fn with_detected_defaults(
    mut resources: Vec<v1::Resource>,
    work_dir: &Path,
    default_role: &str,
) -> Vec<v1::Resource> {
    let has = |rs: &[v1::Resource], name: &str| rs.iter().any(|r| r.name == name);
    let mut detected = Vec::new();
    if !has(&resources, "cpus") {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        detected.push(scalar("cpus", cpus as f64));
    }
    if !has(&resources, "mem") {
        let mem = total_memory_mb()
            .map(default_mem_mb)
            .unwrap_or(FALLBACK_MEM_MB);
        detected.push(scalar("mem", mem as f64));
    }
    if !has(&resources, "disk") {
        let disk = filesystem_mb(work_dir)
            .map(default_disk_mb)
            .unwrap_or(FALLBACK_DISK_MB);
        detected.push(scalar("disk", disk as f64));
    }
    if !has(&resources, "ports") {
        detected.push(default_ports());
    }
    for mut r in detected {
        apply_role(&mut r, default_role);
        tracing::debug!(name = %r.name, "resource not given; using the detected amount");
        resources.push(r);
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_default_rules() {
        assert_eq!(default_mem_mb(24 * 1024), 23 * 1024);
        assert_eq!(default_mem_mb(2048), 1024);
        assert_eq!(default_mem_mb(2047), 1023);
        assert_eq!(default_mem_mb(1024), 512);
        assert_eq!(default_disk_mb(100 * 1024), 95 * 1024);
        assert_eq!(default_disk_mb(10 * 1024), 5 * 1024);
        assert_eq!(default_disk_mb(8 * 1024), 4 * 1024);
    }

    #[test]
    fn reads_meminfo() {
        let text = "MemTotal:       16318480 kB\nMemFree:         1234 kB\n";
        assert_eq!(meminfo_total_mb(text), Some(15936));
        assert_eq!(meminfo_total_mb("MemFree: 1 kB\n"), None);
        assert_eq!(meminfo_total_mb("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn fills_only_what_is_missing() {
        let given = crate::parse_resources("cpus:3;ports(web):[1-2]", "*").unwrap();
        let all = with_detected_defaults(given, Path::new("/no/such/dir/yet"), "*");
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["cpus", "ports", "mem", "disk"]);
        assert_eq!(all[0].scalar.as_ref().unwrap().value, 3.0);
        assert!(all[2].scalar.as_ref().unwrap().value > 0.0);
        // The root filesystem is measurable, so this is not the fallback
        // unless the machine really is that size.
        assert!(all[3].scalar.as_ref().unwrap().value > 0.0);
    }

    #[test]
    fn detected_resources_take_the_default_role() {
        let all = with_detected_defaults(Vec::new(), Path::new("/"), "ops");
        assert_eq!(all.len(), 4);
        for r in &all {
            assert_eq!(r.role.as_deref(), Some("ops"), "{}", r.name);
            assert_eq!(r.reservations[0].role.as_deref(), Some("ops"));
        }
        assert_eq!(
            all[3].ranges.as_ref().unwrap().range,
            vec![value::Range {
                begin: 31000,
                end: 32000
            }]
        );
        let cpus = std::thread::available_parallelism().unwrap().get() as f64;
        assert_eq!(all[0].scalar.as_ref().unwrap().value, cpus);
    }
}
