//! `cgroups/cpu`: CPU shares from the container's `cpus` (1024 per CPU, as
//! Mesos), a CFS quota as well with `--cgroups_enable_cfs`, and CPU time
//! from `cpuacct` (v1) or `cpu.stat` (v2).

use mesos_plugin_api::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, Limitation, Usage,
};

use crate::cgroups::{Hierarchy, Version, read_flat_keyed};

const NAME: &str = "cgroups/cpu";
const SHARES_PER_CPU: f64 = 1024.0;
const MIN_SHARES: u64 = 2;
/// The CFS period Mesos uses, in microseconds.
const CFS_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, in microseconds.
const MIN_QUOTA_US: u64 = 1_000;

pub struct CgroupsCpu {
    hierarchy: Hierarchy,
    enable_cfs: bool,
    /// USER_HZ, which `cpuacct.stat` counts in.
    ticks_per_sec: f64,
}

impl CgroupsCpu {
    pub fn new(hierarchy: Hierarchy, enable_cfs: bool) -> Self {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|t| *t > 0)
            .unwrap_or(100);
        Self {
            hierarchy,
            enable_cfs,
            ticks_per_sec: ticks as f64,
        }
    }

    /// The v1 controllers this isolator uses (cpuacct may be mounted apart).
    fn v1_controllers(&self) -> Vec<&'static str> {
        if self.hierarchy.has("cpuacct") {
            vec!["cpu", "cpuacct"]
        } else {
            vec!["cpu"]
        }
    }

    fn write(&self, spec: &ContainerSpec) -> Result<(), IsolatorError> {
        let cpus = spec.resources.scalar("cpus");
        let shares = ((cpus * SHARES_PER_CPU) as u64).max(MIN_SHARES);
        let quota = ((cpus * CFS_PERIOD_US as f64) as u64).max(MIN_QUOTA_US);
        let dir = self.hierarchy.dir("cpu", &spec.container_id);
        let knobs: Vec<(&str, String)> = match self.hierarchy.version() {
            Version::V1 => {
                let mut knobs = vec![("cpu.shares", shares.to_string())];
                if self.enable_cfs {
                    knobs.push(("cpu.cfs_period_us", CFS_PERIOD_US.to_string()));
                    knobs.push(("cpu.cfs_quota_us", quota.to_string()));
                }
                knobs
            }
            Version::V2 => {
                let mut knobs = vec![("cpu.weight", weight_of(shares).to_string())];
                if self.enable_cfs {
                    knobs.push(("cpu.max", format!("{quota} {CFS_PERIOD_US}")));
                }
                knobs
            }
        };
        for (knob, value) in knobs {
            let path = dir.join(knob);
            std::fs::write(&path, value).map_err(|source| io(path, source))?;
        }
        Ok(())
    }
}

/// cgroup v2's `cpu.weight` (1..=10000) for v1 shares (2..=262144), the
/// kernel's and runc's conversion.
fn weight_of(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9_999) / 262_142
}

fn io(path: std::path::PathBuf, source: std::io::Error) -> IsolatorError {
    IsolatorError::Io {
        isolator: NAME,
        path,
        source,
    }
}

impl Isolator for CgroupsCpu {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        for container in self.hierarchy.orphans("cpu", live) {
            self.cleanup(&container)?;
        }
        Ok(())
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let controllers = match self.hierarchy.version() {
            Version::V1 => self.v1_controllers(),
            Version::V2 => vec!["cpu"],
        };
        let mut info = LaunchInfo::default();
        for controller in controllers {
            let dir = self
                .hierarchy
                .create(controller, &spec.container_id)
                .map_err(|source| io(self.hierarchy.dir(controller, &spec.container_id), source))?;
            info.cgroup_procs.push(dir.join("cgroup.procs"));
        }
        self.write(spec)?;
        Ok(info)
    }

    fn update(&self, spec: &ContainerSpec) -> Result<(), IsolatorError> {
        self.write(spec)
    }

    fn limitation(&self, _container_id: &str) -> Result<Option<Limitation>, IsolatorError> {
        // CPU is throttled, never a reason to end a container.
        Ok(None)
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolatorError> {
        let mut usage = Usage::default();
        match self.hierarchy.version() {
            Version::V1 => {
                let acct = if self.hierarchy.has("cpuacct") {
                    "cpuacct"
                } else {
                    "cpu"
                };
                let stat = self.hierarchy.dir(acct, container_id).join("cpuacct.stat");
                let ticks = |key| read_flat_keyed(&stat, key).map_err(|e| io(stat.clone(), e));
                usage.cpus_user_time_secs = ticks("user")?.map(|t| t as f64 / self.ticks_per_sec);
                usage.cpus_system_time_secs =
                    ticks("system")?.map(|t| t as f64 / self.ticks_per_sec);
                let cpu_stat = self.hierarchy.dir("cpu", container_id).join("cpu.stat");
                if let Ok(Some(periods)) = read_flat_keyed(&cpu_stat, "nr_periods") {
                    usage.cpus_nr_periods = Some(periods);
                    usage.cpus_nr_throttled =
                        read_flat_keyed(&cpu_stat, "nr_throttled").ok().flatten();
                    usage.cpus_throttled_time_secs = read_flat_keyed(&cpu_stat, "throttled_time")
                        .ok()
                        .flatten()
                        .map(|ns| ns as f64 / 1e9);
                }
            }
            Version::V2 => {
                let stat = self.hierarchy.dir("cpu", container_id).join("cpu.stat");
                let get = |key| read_flat_keyed(&stat, key).map_err(|e| io(stat.clone(), e));
                let secs = |us: Option<u64>| us.map(|us| us as f64 / 1e6);
                usage.cpus_user_time_secs = secs(get("user_usec")?);
                usage.cpus_system_time_secs = secs(get("system_usec")?);
                usage.cpus_nr_periods = get("nr_periods")?;
                usage.cpus_nr_throttled = get("nr_throttled")?;
                usage.cpus_throttled_time_secs = secs(get("throttled_usec")?);
            }
        }
        Ok(usage)
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        let controllers = match self.hierarchy.version() {
            Version::V1 => self.v1_controllers(),
            Version::V2 => vec!["cpu"],
        };
        for controller in controllers {
            self.hierarchy
                .destroy(controller, container_id)
                .map_err(|source| io(self.hierarchy.dir(controller, container_id), source))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_resources::Resources;

    fn spec(cpus: &str) -> ContainerSpec {
        ContainerSpec {
            container_id: "c1".into(),
            resources: Resources::from(
                mesos_resources::parse_resources(&format!("cpus:{cpus}"), "*").unwrap(),
            ),
            capabilities: Default::default(),
            sandbox: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn shares_and_quota_follow_the_cpus_on_v1() {
        let fake = tempfile::tempdir().unwrap();
        for c in ["cpu", "cpuacct"] {
            std::fs::create_dir_all(fake.path().join(c)).unwrap();
        }
        let cpu = CgroupsCpu::new(Hierarchy::detect(fake.path(), "mesos"), true);
        let info = cpu.prepare(&spec("0.5")).unwrap();
        assert_eq!(info.cgroup_procs.len(), 2, "cpu and cpuacct");
        let knob =
            |k: &str| std::fs::read_to_string(fake.path().join("cpu/mesos/c1").join(k)).unwrap();
        assert_eq!(knob("cpu.shares"), "512");
        assert_eq!(knob("cpu.cfs_quota_us"), "50000");
        assert_eq!(knob("cpu.cfs_period_us"), "100000");
        cpu.update(&spec("0.001")).unwrap();
        assert_eq!(knob("cpu.shares"), "2", "the kernel's minimum");
        assert_eq!(knob("cpu.cfs_quota_us"), "1000");

        std::fs::write(
            fake.path().join("cpuacct/mesos/c1/cpuacct.stat"),
            "user 250\nsystem 50\n",
        )
        .unwrap();
        let usage = cpu.usage("c1").unwrap();
        assert_eq!(usage.cpus_user_time_secs, Some(250.0 / cpu.ticks_per_sec));
        assert_eq!(usage.cpus_system_time_secs, Some(50.0 / cpu.ticks_per_sec));
    }

    #[test]
    fn v2_uses_weight_and_cpu_max() {
        let fake = tempfile::tempdir().unwrap();
        std::fs::write(fake.path().join("cgroup.controllers"), "cpu memory").unwrap();
        let cpu = CgroupsCpu::new(Hierarchy::detect(fake.path(), "mesos"), true);
        let info = cpu.prepare(&spec("1")).unwrap();
        assert_eq!(
            info.cgroup_procs,
            vec![fake.path().join("mesos/c1/cgroup.procs")]
        );
        let knob = |k: &str| std::fs::read_to_string(fake.path().join("mesos/c1").join(k)).unwrap();
        assert_eq!(knob("cpu.weight"), "39");
        assert_eq!(knob("cpu.max"), "100000 100000");
        std::fs::write(
            fake.path().join("mesos/c1/cpu.stat"),
            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 500\n",
        )
        .unwrap();
        let usage = cpu.usage("c1").unwrap();
        assert_eq!(usage.cpus_user_time_secs, Some(2.0));
        assert_eq!(usage.cpus_nr_throttled, Some(2));
    }

    #[test]
    fn weights_span_the_v2_range() {
        assert_eq!(weight_of(2), 1);
        assert_eq!(weight_of(1024), 39);
        assert_eq!(weight_of(262_144), 10_000);
    }
}
