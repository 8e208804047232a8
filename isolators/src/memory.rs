//! `cgroups/mem`: the container's `mem` as its memory limit (32 MB at
//! least, as Mesos), its usage, and an OOM kill in the cgroup reported as a
//! memory limitation.

use mesos_plugin_api::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, Limitation, LimitationKind, Usage,
};

use crate::cgroups::{ContainerCgroups, Hierarchy, Version, joining, read_flat_keyed, read_u64};

const NAME: &str = "cgroups/mem";
const MIN_LIMIT: u64 = 32 * 1024 * 1024;

pub struct CgroupsMem {
    cgroups: ContainerCgroups,
}

impl CgroupsMem {
    pub fn new(hierarchy: Hierarchy) -> Self {
        Self {
            cgroups: ContainerCgroups::new(hierarchy, "memory", NAME),
        }
    }

    fn version(&self) -> Version {
        self.cgroups.hierarchy().version()
    }

    fn dir(&self, container_id: &str) -> std::path::PathBuf {
        self.cgroups.dir(container_id)
    }

    fn limit_of(spec: &ContainerSpec) -> u64 {
        ((spec.resources.scalar("mem") * 1024.0 * 1024.0) as u64).max(MIN_LIMIT)
    }

    fn write_limit(&self, spec: &ContainerSpec) -> Result<(), IsolatorError> {
        let limit = Self::limit_of(spec).to_string();
        let knobs: &[&str] = match self.version() {
            // The soft limit first: the kernel refuses a hard limit below it.
            Version::V1 => &["memory.soft_limit_in_bytes", "memory.limit_in_bytes"],
            Version::V2 => &["memory.max"],
        };
        for knob in knobs {
            self.cgroups.write(&spec.container_id, knob, &limit)?;
        }
        Ok(())
    }

    fn io(&self, path: std::path::PathBuf, source: std::io::Error) -> IsolatorError {
        self.cgroups.error(path, source)
    }
}

impl Isolator for CgroupsMem {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        self.cgroups.destroy_orphans(live)
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let dir = self.cgroups.create(&spec.container_id)?;
        self.write_limit(spec)?;
        Ok(joining(&dir))
    }

    /// Only ever raises the limit: lowering it under what the container
    /// uses would OOM-kill it (Mesos's memory isolator does the same).
    fn update(&self, spec: &ContainerSpec) -> Result<(), IsolatorError> {
        let knob = match self.version() {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        let path = self.dir(&spec.container_id).join(knob);
        // "max" (v2's unlimited) reads as no number: nothing to raise.
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().ok(),
            Err(source) => return Err(self.io(path, source)),
        };
        match current {
            Some(current) if Self::limit_of(spec) > current => self.write_limit(spec),
            _ => Ok(()),
        }
    }

    fn limitation(&self, container_id: &str) -> Result<Option<Limitation>, IsolatorError> {
        let dir = self.dir(container_id);
        let (events, limit_file) = match self.version() {
            Version::V1 => (
                dir.join("memory.oom_control"),
                dir.join("memory.limit_in_bytes"),
            ),
            Version::V2 => (dir.join("memory.events"), dir.join("memory.max")),
        };
        let kills = match read_flat_keyed(&events, "oom_kill") {
            Ok(kills) => kills.unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(events, e)),
        };
        if kills == 0 {
            return Ok(None);
        }
        let limit = read_u64(&limit_file).ok().flatten();
        let message = match limit {
            Some(bytes) => format!(
                "Memory limit exceeded: the container's limit is {} MB and the kernel's OOM killer ended {kills} of its processes",
                bytes / (1024 * 1024)
            ),
            None => format!("Memory limit exceeded: the OOM killer ended {kills} process(es)"),
        };
        Ok(Some(Limitation {
            kind: LimitationKind::Memory,
            message,
        }))
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolatorError> {
        let dir = self.dir(container_id);
        let number = |name: &str| {
            let path = dir.join(name);
            read_u64(&path).map_err(|e| self.io(path, e))
        };
        let keyed = |name: &str, key: &str| {
            let path = dir.join(name);
            read_flat_keyed(&path, key).map_err(|e| self.io(path, e))
        };
        Ok(match self.version() {
            Version::V1 => Usage {
                mem_total_bytes: number("memory.usage_in_bytes")?,
                mem_limit_bytes: number("memory.limit_in_bytes")?,
                mem_rss_bytes: keyed("memory.stat", "total_rss")?,
                mem_cache_bytes: keyed("memory.stat", "total_cache")?,
                ..Default::default()
            },
            Version::V2 => Usage {
                mem_total_bytes: number("memory.current")?,
                mem_limit_bytes: number("memory.max")?,
                mem_rss_bytes: keyed("memory.stat", "anon")?,
                mem_cache_bytes: keyed("memory.stat", "file")?,
                ..Default::default()
            },
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

    fn spec(mem: u64) -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            resources: Resources::from(
                mesos_resources::parse_resources(&format!("mem:{mem}"), "*").unwrap(),
            ),
            capabilities: Default::default(),
            sandbox: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn the_limit_follows_mem_and_an_oom_kill_is_a_limitation() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("memory")).unwrap();
        let mem = CgroupsMem::new(Hierarchy::detect(fake.path(), "mesos"));
        mem.prepare(&spec(64)).unwrap();
        let dir = fake.path().join("memory/mesos/c1");
        let knob = |k: &str| std::fs::read_to_string(dir.join(k)).unwrap();
        assert_eq!(knob("memory.limit_in_bytes"), (64u64 << 20).to_string());
        mem.update(&spec(8)).unwrap();
        assert_eq!(
            knob("memory.limit_in_bytes"),
            (64u64 << 20).to_string(),
            "never lowered"
        );
        mem.update(&spec(96)).unwrap();
        assert_eq!(knob("memory.limit_in_bytes"), (96u64 << 20).to_string());

        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        assert_eq!(mem.limitation("c1").unwrap(), None);
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        let limitation = mem.limitation("c1").unwrap().unwrap();
        assert_eq!(limitation.kind, LimitationKind::Memory);
        assert!(
            limitation.message.contains("96 MB"),
            "{}",
            limitation.message
        );
        assert_eq!(mem.limitation("unknown").unwrap(), None);
    }

    #[test]
    fn v2_reads_memory_events() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::write(fake.path().join("cgroup.controllers"), "memory").unwrap();
        let mem = CgroupsMem::new(Hierarchy::detect(fake.path(), "mesos"));
        mem.prepare(&spec(128)).unwrap();
        let dir = fake.path().join("mesos/c1");
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.max")).unwrap(),
            (128u64 << 20).to_string()
        );
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(mem.limitation("c1").unwrap().is_some());
        std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
        std::fs::write(dir.join("memory.stat"), "anon 1024\nfile 2048\n").unwrap();
        let usage = mem.usage("c1").unwrap();
        assert_eq!(usage.mem_total_bytes, Some(4096));
        assert_eq!(usage.mem_rss_bytes, Some(1024));
        assert_eq!(usage.mem_limit_bytes, Some(128 << 20));
    }
}
