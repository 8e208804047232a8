//! Mesos's auto-detected agent resources, for whatever `--resources` does
//! not name.

use std::path::Path;

use mesos_proto::v1::{self, value};

/// Mesos's rule: total memory minus 1 GB, or half of it below 2 GB.
pub fn default_mem_mb(total_mb: u64) -> u64 {
    if total_mb >= 2048 {
        total_mb - 1024
    } else {
        total_mb / 2
    }
}

/// Mesos's rule: the work dir's filesystem size minus 5 GB, or half of it
/// below 10 GB.
pub fn default_disk_mb(total_mb: u64) -> u64 {
    if total_mb >= 10 * 1024 {
        total_mb - 5 * 1024
    } else {
        total_mb / 2
    }
}

fn total_memory_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn filesystem_mb(path: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    let bytes = stat.blocks().checked_mul(stat.fragment_size())?;
    Some(bytes / (1024 * 1024))
}

fn scalar(name: &str, value: f64, role: &str) -> v1::Resource {
    let mut r = v1::Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value }),
        ..Default::default()
    };
    if role != "*" {
        r.role = Some(role.to_string());
    }
    r
}

/// Adds cpus, mem, disk and ports when `resources` does not have them.
pub fn with_detected_defaults(
    mut resources: Vec<v1::Resource>,
    work_dir: &Path,
    default_role: &str,
) -> Vec<v1::Resource> {
    let has = |rs: &[v1::Resource], name: &str| rs.iter().any(|r| r.name == name);
    if !has(&resources, "cpus") {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        resources.push(scalar("cpus", cpus as f64, default_role));
    }
    if !has(&resources, "mem") {
        let mem = total_memory_mb().map(default_mem_mb).unwrap_or(1024);
        resources.push(scalar("mem", mem as f64, default_role));
    }
    if !has(&resources, "disk") {
        let disk = filesystem_mb(work_dir)
            .map(default_disk_mb)
            .unwrap_or(10 * 1024);
        resources.push(scalar("disk", disk as f64, default_role));
    }
    if !has(&resources, "ports") {
        let mut ports = v1::Resource {
            name: "ports".to_string(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges {
                range: vec![value::Range {
                    begin: 31000,
                    end: 32000,
                }],
            }),
            ..Default::default()
        };
        if default_role != "*" {
            ports.role = Some(default_role.to_string());
        }
        resources.push(ports);
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_default_rules() {
        assert_eq!(default_mem_mb(24 * 1024), 23 * 1024);
        assert_eq!(default_mem_mb(1024), 512);
        assert_eq!(default_disk_mb(100 * 1024), 95 * 1024);
        assert_eq!(default_disk_mb(8 * 1024), 4 * 1024);
    }

    #[test]
    fn fills_only_what_is_missing() {
        let given = crate::parse_resources("cpus:3", "*").unwrap();
        let all = with_detected_defaults(given, Path::new("/"), "*");
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["cpus", "mem", "disk", "ports"]);
        assert_eq!(all[0].scalar.as_ref().unwrap().value, 3.0);
        assert!(all[1].scalar.as_ref().unwrap().value > 0.0);
    }
}
