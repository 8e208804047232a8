//! `disk/du`: measures each container's sandbox as `du` would (allocated
//! blocks, each inode once) and, with `--enforce_container_disk_quota`,
//! reports a disk limitation once it holds more than the container's
//! `disk` resource. The agent polls limitations every
//! `--container_disk_watch_interval` and ends a container over its quota
//! with `REASON_CONTAINER_LIMITATION_DISK`, as Mesos does.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use mesos_plugin_api::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, Limitation, LimitationKind, Usage,
};

const MB: u64 = 1 << 20;

#[derive(Debug)]
struct Watched {
    sandbox: PathBuf,
    /// The `disk` resource; `None` without one (nothing to enforce).
    limit_bytes: Option<u64>,
}

#[derive(Debug, Default)]
pub struct DiskDu {
    enforce: bool,
    containers: Mutex<HashMap<String, Watched>>,
}

impl DiskDu {
    pub const NAME: &'static str = "disk/du";

    pub fn new(enforce: bool) -> Self {
        Self {
            enforce,
            containers: Mutex::default(),
        }
    }

    fn watch(&self, spec: &ContainerSpec) {
        let disk = spec.resources.scalar("disk");
        let watched = Watched {
            sandbox: spec.sandbox.clone(),
            // Megabytes, as Mesos counts them.
            limit_bytes: (disk > 0.0).then_some((disk * MB as f64) as u64),
        };
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.container_id.clone(), watched);
    }

    /// The sandbox and limit of a container, if it is watched.
    fn watched(&self, container_id: &str) -> Option<(PathBuf, Option<u64>)> {
        let containers = self
            .containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let watched = containers.get(container_id)?;
        Some((watched.sandbox.clone(), watched.limit_bytes))
    }
}

/// Bytes allocated to the files under `dir`, hard links counted once and
/// symbolic links not followed (`runs/latest` must not count a run
/// twice). What vanishes while it is walked is skipped.
pub fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        // st_blocks counts 512-byte units whatever the block size.
        total += meta.blocks() * 512;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            pending.extend(entries.flatten().map(|e| e.path()));
        }
    }
    total
}

impl Isolator for DiskDu {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        // What a restarted agent knew is gone with it; containers that
        // live on are watched again at their next update.
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id, _| live.contains(id));
        Ok(())
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        self.watch(spec);
        Ok(LaunchInfo::default())
    }

    fn update(&self, spec: &ContainerSpec) -> Result<(), IsolatorError> {
        self.watch(spec);
        Ok(())
    }

    fn limitation(&self, container_id: &str) -> Result<Option<Limitation>, IsolatorError> {
        let Some((sandbox, Some(limit))) = self.watched(container_id).filter(|_| self.enforce)
        else {
            return Ok(None);
        };
        let used = du(&sandbox);
        Ok((used > limit).then(|| Limitation {
            kind: LimitationKind::Disk,
            message: format!(
                "Disk usage ({}) exceeds quota ({})",
                megabytes(used),
                megabytes(limit)
            ),
        }))
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolatorError> {
        let Some((sandbox, limit)) = self.watched(container_id) else {
            return Ok(Usage::default());
        };
        Ok(Usage {
            disk_used_bytes: Some(du(&sandbox)),
            disk_limit_bytes: limit,
            ..Usage::default()
        })
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(container_id);
        Ok(())
    }
}

/// `12.5MB`, as Mesos's messages print sizes.
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / MB as f64;
    format!("{}MB", (mb * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mesos_resources::Resources;

    fn spec(sandbox: &Path, disk_mb: f64) -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            resources: Resources::from(
                mesos_resources::parse_resources(&format!("disk:{disk_mb}"), "*").unwrap(),
            ),
            capabilities: Default::default(),
            sandbox: sandbox.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn counts_allocated_bytes_links_once_and_not_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, vec![7u8; 3 * MB as usize]).unwrap();
        std::fs::hard_link(&file, dir.path().join("again")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("latest")).unwrap();
        let used = du(dir.path());
        assert!((3 * MB..4 * MB).contains(&used), "{used}");
    }

    #[test]
    fn over_its_disk_resource_a_container_is_limited_only_when_enforced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), vec![7u8; 2 * MB as usize]).unwrap();
        let enforced = DiskDu::new(true);
        enforced.prepare(&spec(dir.path(), 1.0)).unwrap();
        let limitation = enforced.limitation("c1").unwrap().unwrap();
        assert_eq!(limitation.kind, LimitationKind::Disk);
        assert!(
            limitation.message.contains("exceeds quota (1MB)"),
            "{}",
            limitation.message
        );
        let usage = enforced.usage("c1").unwrap();
        assert_eq!(usage.disk_limit_bytes, Some(MB));
        assert!(usage.disk_used_bytes.unwrap() >= 2 * MB);
        // A larger quota after an update.
        enforced.update(&spec(dir.path(), 10.0)).unwrap();
        assert!(enforced.limitation("c1").unwrap().is_none());
        enforced.cleanup("c1").unwrap();
        assert_eq!(enforced.usage("c1").unwrap(), Usage::default());

        let measured = DiskDu::new(false);
        measured.prepare(&spec(dir.path(), 1.0)).unwrap();
        assert!(measured.limitation("c1").unwrap().is_none());
        assert!(measured.usage("c1").unwrap().disk_used_bytes.is_some());
    }
}
