//! The isolator: Mesos's contract for one aspect of a container's
//! isolation (a cgroup controller, a namespace, a filesystem view).
//!
//! The agent calls the isolators named by `--isolation` in that order:
//! `prepare` before the executor exists, then the executor starts already
//! inside what the isolators prepared (the launcher applies the returned
//! [`LaunchInfo`] in the child before it executes anything), `update` when
//! the container's resources change, `usage` and `limitation` while it
//! runs, and `cleanup` in reverse order once every process is gone.
//! `recover` after an agent restart is told which containers are still
//! alive and cleans up after the others.
//!
//! Calls are short and synchronous (a few filesystem writes); the agent
//! makes them off its event loop. Errors name what failed; an isolator
//! never panics on what it reads from the kernel.

use std::path::PathBuf;

use mesos_resources::Resources;

/// What an isolator is told about a container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub container_id: String,
    /// The executor's and its tasks' resources.
    pub resources: Resources,
    /// The capabilities its `ContainerInfo.linux_info` asks for.
    pub capabilities: CapabilityRequest,
    /// Its sandbox directory (on the agent's side of any rootfs).
    pub sandbox: PathBuf,
    /// The seccomp profile its `ContainerInfo.linux_info` asks for.
    pub seccomp: SeccompRequest,
    /// The CNI networks its `ContainerInfo.network_infos` name, in order.
    pub networks: Vec<String>,
    /// The host ports those networks forward to it.
    pub port_mappings: Vec<PortMapping>,
    /// `ContainerInfo.hostname`.
    pub hostname: Option<String>,
    /// Its DOCKER_VOLUME volumes, for `docker/volume`.
    pub volumes: Vec<crate::volume::VolumeRequest>,
}

/// A host port forwarded to a container port on one of its networks
/// (`NetworkInfo.port_mappings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub network: String,
    pub host_port: u32,
    pub container_port: u32,
    /// `tcp` unless the mapping says otherwise.
    pub protocol: String,
}

/// What a container's `LinuxInfo.seccomp` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompRequest {
    /// Nothing: the agent's default profile applies, if it has one.
    #[default]
    AgentDefault,
    /// `unconfined`: no filter at all.
    Unconfined,
    /// `profile_name`: this profile of the agent's, instead of its default.
    Profile(String),
}

/// Capability sets a container asks for in `ContainerInfo.linux_info`,
/// as Mesos's `CapabilityInfo.Capability` values (1000 plus Linux's
/// capability number); `None` where it asks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityRequest {
    /// `LinuxInfo.effective_capabilities`.
    pub effective: Option<Vec<i32>>,
    /// `LinuxInfo.bounding_capabilities`.
    pub bounding: Option<Vec<i32>>,
}

/// What the launcher applies to the executor's process before it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchInfo {
    /// `cgroup.procs` files the process joins (it writes itself into each).
    pub cgroup_procs: Vec<PathBuf>,
    /// Added to the executor's environment.
    pub env: Vec<(String, String)>,
    /// Namespaces the executor starts in, new ones of its own (Mesos's
    /// `ContainerLaunchInfo.clone_namespaces`).
    pub clone_namespaces: Vec<Namespace>,
    /// Linux capabilities kept in the bounding set, one bit per
    /// capability number (`CAP_CHOWN` is bit 0); the others are dropped
    /// (Mesos's `ContainerLaunchInfo.bounding_capabilities`).
    pub bounding_capabilities: Option<u64>,
    /// The effective, permitted, inheritable and ambient sets, as bits
    /// (Mesos's `ContainerLaunchInfo.effective_capabilities`).
    pub effective_capabilities: Option<u64>,
    /// `no_new_privs` is set before the executor runs.
    pub no_new_privileges: bool,
    /// Seccomp filters installed before the executor runs, in this order;
    /// the kernel applies them all, so the strictest answer wins.
    pub seccomp_filters: Vec<SeccompFilter>,
    /// A network namespace (its `nsfs` file) the executor joins.
    pub network_namespace: Option<PathBuf>,
    /// The executor gets a UTS namespace of its own with this hostname.
    pub hostname: Option<String>,
    /// Files bound over host paths in the executor's mount namespace
    /// (`(source, target)`; the container's `/etc/hosts`): the isolator
    /// asks for the mount namespace too. A target the host lacks is
    /// skipped.
    pub file_binds: Vec<(PathBuf, PathBuf)>,
    /// Directories bound into the executor's mount namespace (volumes):
    /// the isolator asks for the mount namespace too. Unlike
    /// `file_binds`, a missing target fails the launch.
    pub binds: Vec<Bind>,
    /// Labels (key, optional value) added to the container's tasks, as a
    /// task label decorator hook's are: what the agent's `/state` and the
    /// executor see. Mesos's isolators have no such output.
    pub labels: Vec<(String, Option<String>)>,
}

/// A host directory bound at `target` in the container's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// A compiled seccomp filter: a classic BPF program the kernel runs on
/// every system call of the container's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    /// Where it came from (a profile's name), for messages.
    pub name: String,
    /// Shared, so launching many containers under one profile copies
    /// nothing.
    pub program: std::sync::Arc<[SockFilter]>,
}

/// One BPF instruction, laid out as Linux's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A Linux namespace the launcher can give an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    /// Mounts: the executor's mounts (its own `/proc`) stay its own.
    Mount,
    /// PIDs: the executor is pid 1 of a namespace holding only its
    /// container's processes.
    Pid,
    /// System V IPC and POSIX message queues.
    Ipc,
}

impl Namespace {
    /// Linux's `CLONE_NEWNS`, `CLONE_NEWPID` and `CLONE_NEWIPC` (clone(2)),
    /// the numbers Mesos and the plugin payload carry.
    pub fn clone_flag(self) -> i32 {
        match self {
            Namespace::Mount => 0x0002_0000,
            Namespace::Pid => 0x2000_0000,
            Namespace::Ipc => 0x0800_0000,
        }
    }

    /// The namespace a `CLONE_NEW*` flag stands for, if one of these.
    pub fn from_clone_flag(flag: i32) -> Option<Self> {
        [Namespace::Mount, Namespace::Pid, Namespace::Ipc]
            .into_iter()
            .find(|n| n.clone_flag() == flag)
    }
}

impl LaunchInfo {
    /// Merges another isolator's launch info into this one.
    pub fn merge(&mut self, other: LaunchInfo) {
        self.cgroup_procs.extend(other.cgroup_procs);
        self.env.extend(other.env);
        for namespace in other.clone_namespaces {
            if !self.clone_namespaces.contains(&namespace) {
                self.clone_namespaces.push(namespace);
            }
        }
        // Two isolators restricting capabilities: what both allow.
        let both = |mine: Option<u64>, theirs: Option<u64>| match (mine, theirs) {
            (Some(a), Some(b)) => Some(a & b),
            (a, b) => a.or(b),
        };
        self.bounding_capabilities = both(self.bounding_capabilities, other.bounding_capabilities);
        self.effective_capabilities =
            both(self.effective_capabilities, other.effective_capabilities);
        self.no_new_privileges |= other.no_new_privileges;
        self.seccomp_filters.extend(other.seccomp_filters);
        self.labels.extend(other.labels);
        // One network namespace and hostname per container: the first
        // isolator's.
        if self.network_namespace.is_none() {
            self.network_namespace = other.network_namespace;
        }
        if self.hostname.is_none() {
            self.hostname = other.hostname;
        }
        self.file_binds.extend(other.file_binds);
        self.binds.extend(other.binds);
    }
}

/// What status updates report of a container (Mesos's `ContainerStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatus {
    pub networks: Vec<NetworkStatus>,
}

/// A network the container is on, and its addresses there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkStatus {
    pub name: String,
    pub ip_addresses: Vec<String>,
}

/// Why a container hit one of its limits (Mesos's `ContainerLimitation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limitation {
    pub kind: LimitationKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitationKind {
    Memory,
    Disk,
    Other,
}

/// Usage an isolator measures; fields it does not measure stay `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub cpus_user_time_secs: Option<f64>,
    pub cpus_system_time_secs: Option<f64>,
    pub cpus_nr_periods: Option<u64>,
    pub cpus_nr_throttled: Option<u64>,
    pub cpus_throttled_time_secs: Option<f64>,
    pub mem_total_bytes: Option<u64>,
    pub mem_rss_bytes: Option<u64>,
    pub mem_cache_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
    pub processes: Option<u32>,
    /// Tasks (threads) in the container, what a pids cgroup counts.
    pub threads: Option<u32>,
    pub disk_used_bytes: Option<u64>,
    pub disk_limit_bytes: Option<u64>,
    /// Block I/O per device.
    pub blkio: Option<mesos_proto::v1::cgroup_info::blkio::Statistics>,
}

impl Usage {
    /// Fills what `self` lacks from `other`.
    pub fn merge(&mut self, other: Usage) {
        fn take<T>(mine: &mut Option<T>, theirs: Option<T>) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
        take(&mut self.cpus_user_time_secs, other.cpus_user_time_secs);
        take(&mut self.cpus_system_time_secs, other.cpus_system_time_secs);
        take(&mut self.cpus_nr_periods, other.cpus_nr_periods);
        take(&mut self.cpus_nr_throttled, other.cpus_nr_throttled);
        take(
            &mut self.cpus_throttled_time_secs,
            other.cpus_throttled_time_secs,
        );
        take(&mut self.mem_total_bytes, other.mem_total_bytes);
        take(&mut self.mem_rss_bytes, other.mem_rss_bytes);
        take(&mut self.mem_cache_bytes, other.mem_cache_bytes);
        take(&mut self.mem_limit_bytes, other.mem_limit_bytes);
        take(&mut self.processes, other.processes);
        take(&mut self.threads, other.threads);
        take(&mut self.disk_used_bytes, other.disk_used_bytes);
        take(&mut self.disk_limit_bytes, other.disk_limit_bytes);
        take(&mut self.blkio, other.blkio);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    #[error("{isolator}: {path}: {source}")]
    Io {
        isolator: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{isolator}: {message}")]
    Failed {
        isolator: &'static str,
        message: String,
    },
}

/// Mesos's isolator contract. Every method but `name` defaults to what
/// an isolator with nothing to do at that point answers (Mesos's
/// defaults): nothing to recover, prepare, update or clean up, no
/// limitation, no usage.
pub trait Isolator: Send + Sync {
    /// The name `--isolation` selects it by (`cgroups/mem`).
    fn name(&self) -> &'static str;

    /// After an agent restart: `live` containers are still running; state
    /// this isolator kept for any other container is cleaned up.
    fn recover(&self, _live: &[String]) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Before the executor exists: set the container up.
    fn prepare(&self, _spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        Ok(LaunchInfo::default())
    }

    /// The container's resources changed (a task joined or left).
    fn update(&self, _spec: &ContainerSpec) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// A limit the container hit, if any (a memory cgroup's OOM kill).
    fn limitation(&self, _container_id: &str) -> Result<Option<Limitation>, IsolatorError> {
        Ok(None)
    }

    fn usage(&self, _container_id: &str) -> Result<Usage, IsolatorError> {
        Ok(Usage::default())
    }

    /// What the container's status updates report (its addresses). Asked
    /// on the agent's loop: answer from memory.
    fn status(&self, _container_id: &str) -> Result<ContainerStatus, IsolatorError> {
        Ok(ContainerStatus::default())
    }

    /// Every process of the container is gone (or is killed here): remove
    /// what `prepare` made. Cleaning up a container it does not know is
    /// not an error.
    fn cleanup(&self, _container_id: &str) -> Result<(), IsolatorError> {
        Ok(())
    }
}
