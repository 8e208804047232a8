//! The agent's flags, under Mesos's names and with Mesos's defaults.
//!
//! Values that name a closed set (containerizers, isolators, `--recover`,
//! the logging level) have their own types, so a bad value stops the agent
//! at flag loading with a message naming the flag, as Mesos does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use mesos_flags::{Bytes, Duration, FlagValue, Hooks};

mesos_flags::flags! {
    /// Flags of mesos-agent.
    pub struct AgentFlags {
        /// Master to register with: host:port.
        master: String,
        /// Directory for sandboxes and checkpointed state.
        work_dir: PathBuf,
        /// IP address to listen on (default: all interfaces; 127.0.0.1 is advertised then).
        ip: Option<IpAddr>,
        /// Port to listen on.
        port: u16 = "5051",
        /// Hostname to advertise (default: the advertised IP).
        hostname: Option<String>,
        /// Total consumable resources: `name(role):value;...` or a JSON array
        /// (detected when absent).
        resources: Option<String>,
        /// Attributes of the agent: `name:value;...`.
        attributes: Option<String>,
        /// Role of resources that name none.
        default_role: String = "*",
        /// Time an executor has to subscribe before it is killed.
        executor_registration_timeout: Duration = "1mins",
        /// Time executors have to resubscribe after an agent restart
        /// (exported as MESOS_SUBSCRIPTION_BACKOFF_MAX).
        executor_reregistration_timeout: Duration = "2secs",
        /// Time an executor has to exit after SHUTDOWN before it is killed.
        executor_shutdown_grace_period: Duration = "5secs",
        /// JSON object of the environment executors get instead of the agent's own.
        executor_environment_variables: Option<EnvironmentJson>,
        /// Time executors of checkpointing frameworks wait for a restarted agent
        /// (exported as MESOS_RECOVERY_TIMEOUT).
        recovery_timeout: Duration = "15mins",
        /// Directory holding mesos-executor (default: the directory of this binary).
        launcher_dir: Option<PathBuf>,
        /// Isolators, in call order: posix/cpu and posix/mem only account;
        /// cgroups/cpu and cgroups/mem (alias `cgroups`) and cgroups/pids
        /// enforce; namespaces/pid and namespaces/ipc start executors in new
        /// namespaces; linux/capabilities (--effective_capabilities,
        /// --bounding_capabilities) and linux/nnp restrict their privileges;
        /// filesystem/linux and docker/runtime run tasks in
        /// container images (--image_providers); a plugin from --plugin_dir is
        /// named by its reverse-DNS name.
        isolation: Isolation = "posix/cpu,posix/mem",
        /// Directory of plugins: each folder with a plugin.toml is loaded and
        /// checked at start (a bad one stops the agent).
        plugin_dir: Option<PathBuf>,
        /// Mesos's module list, JSON inline, file://<path> or /<path>: each library is
        /// a dylib plugin holding one module, named as in --isolation or --hooks.
        modules: Option<String>,
        /// A directory of module lists as --modules takes them, read in
        /// name order; not together with --modules.
        modules_dir: Option<PathBuf>,
        /// Hooks, in call order (each sees what the previous one returned):
        /// names of hook plugins from --plugin_dir.
        hooks: Option<Hooks>,
        /// Where the cgroup filesystem is mounted.
        cgroups_hierarchy: PathBuf = "/sys/fs/cgroup",
        /// The cgroup under which containers' cgroups are made.
        cgroups_root: String = "mesos",
        /// Containerizers, in order of preference: `mesos`, `docker`, `oci`
        /// (command tasks in a container image, under --oci_runtime).
        containerizers: Containerizers = "mesos",
        /// The OCI runtime of the oci containerizer: a name in PATH or a
        /// path (runc, crun, youki).
        oci_runtime: String = "runc",
        /// The Docker Engine's socket, for the docker containerizer.
        docker_socket: PathBuf = "/var/run/docker.sock",
        /// The docker CLI (accepted for compatibility; the Engine API is used).
        docker: String = "docker",
        /// Grace period of `docker stop` when a task has no kill policy.
        docker_stop_timeout: Duration = "0ns",
        /// Kill `mesos-` containers no recovered executor claims.
        docker_kill_orphans: bool = "true",
        /// Give containers a hard CPU limit (CFS quota) besides their shares.
        cgroups_enable_cfs: bool = "false",
        /// Most tasks (processes and threads) a container may have, for the
        /// cgroups/pids isolator (default: no limit, the cgroup only counts).
        cgroups_pids_max: Option<u64>,
        /// Capabilities always granted to tasks under linux/capabilities: a
        /// JSON CapabilityInfo, `{"capabilities":["NET_RAW","CHOWN"]}`
        /// (an empty list drops them all).
        effective_capabilities: Option<CapabilitiesJson>,
        /// Upper bound of the capabilities tasks may have or ask for under
        /// linux/capabilities, as a JSON CapabilityInfo (absent: all).
        bounding_capabilities: Option<CapabilitiesJson>,
        /// Directory of Docker-format seccomp profiles, for linux/seccomp.
        seccomp_config_dir: Option<PathBuf>,
        /// The profile in --seccomp_config_dir every container runs under
        /// unless its LinuxInfo.seccomp says otherwise (absent: none).
        seccomp_profile_name: Option<String>,
        /// Devices containers may use under cgroups/devices besides the
        /// default whitelist: a JSON DeviceWhitelist,
        /// `{"allowed_devices":[{"device":{"path":"/dev/kmsg"},"access":{"read":true}}]}`.
        allowed_devices: Option<String>,
        /// Directory of CNI network configurations (`.conf`, `.conflist`)
        /// tasks name in `ContainerInfo.network_infos`, for network/cni.
        network_cni_config_dir: Option<PathBuf>,
        /// Where the CNI plugin binaries are (colon-separated directories).
        network_cni_plugins_dir: Option<String>,
        /// Directory for state that lives as long as the machine is up.
        runtime_dir: Option<PathBuf>,
        /// Where docker/volume checkpoints the volumes each container uses
        /// (absent: `<runtime_dir>/isolators/docker/volume`).
        docker_volume_checkpoint_dir: Option<PathBuf>,
        /// Upper bound of the first random (re-)registration delay; doubles per
        /// attempt, capped at 1 minute.
        registration_backoff_factor: Duration = "1secs",
        /// What to do with old executors on restart: `reconnect` or `cleanup`.
        recover: Recover = "reconnect",
        /// Whether an unreadable agent checkpoint (meta/slaves/<id>/slave.info) stops
        /// the agent; otherwise it starts as a new agent. Damaged framework, executor
        /// or task checkpoints only cost what they describe, either way.
        strict: bool = "true",
        /// Maximum age of finished sandboxes before they are deleted.
        gc_delay: Duration = "1weeks",
        /// How often disk usage is checked to delete sandboxes sooner.
        disk_watch_interval: Duration = "1mins",
        /// How often disk/du measures every container's sandbox.
        container_disk_watch_interval: Duration = "15secs",
        /// With disk/du, end a container whose sandbox outgrows its disk
        /// resource (REASON_CONTAINER_LIMITATION_DISK).
        enforce_container_disk_quota: bool = "false",
        /// Share of the disk kept free: sandboxes are deleted early as usage
        /// nears `1 - gc_disk_headroom`.
        gc_disk_headroom: f64 = "0.1",
        /// Image providers for tasks with a container image: `docker` (needs
        /// filesystem/linux and docker/runtime in --isolation).
        image_providers: Option<String>,
        /// Where Docker images come from: a registry URL (pulled with the
        /// v2 API; http for localhost), or a directory of `docker save`
        /// archives named `<repo>:<tag>.tar` or OCI layouts.
        docker_registry: String = "https://registry-1.docker.io",
        /// Registry credentials: a docker config.json (`auths`), as a path
        /// or inline JSON.
        docker_config: Option<String>,
        /// Cache of Docker image layers.
        docker_store_dir: PathBuf = "/tmp/mesos/store/docker",
        /// How container root filesystems are built: `copy` or `overlay`
        /// (default: overlay as root on a filesystem overlayfs takes, else copy).
        image_provisioner_backend: Option<String>,
        /// Sandbox path inside containers that have an image.
        sandbox_directory: PathBuf = "/mnt/mesos/sandbox",
        /// Directory of the fetcher cache (emptied when the agent starts).
        fetcher_cache_dir: PathBuf = "/tmp/mesos/fetch",
        /// Upper bound of the fetcher cache's size; least recently used files go first.
        fetcher_cache_size: Bytes = "2GB",
        /// A download that receives nothing for this long fails.
        fetcher_stall_timeout: Duration = "1mins",
        /// Run executors as the user of their CommandInfo or framework.
        switch_user: bool = "true",
        /// Whether command tasks use the HTTP command executor (the only kind here).
        http_command_executor: bool = "true",
        /// Logging level: INFO, WARNING or ERROR (RUST_LOG overrides).
        logging_level: LoggingLevel = "INFO",
    }
}

/// `--isolation`: isolator names, in call order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation(pub Vec<String>);

impl FlagValue for Isolation {
    fn parse_flag(s: &str) -> Result<Self, String> {
        let names = split_list(s);
        // Plugin names are known only once --plugin_dir is loaded.
        mesos_isolators::registry::validate_builtin(&names).map_err(|e| e.to_string())?;
        Ok(Self(names))
    }

    fn render_flag(&self) -> String {
        self.0.join(",")
    }
}

/// `--containerizers`: containerizer names, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerizers(pub Vec<String>);

impl FlagValue for Containerizers {
    fn parse_flag(s: &str) -> Result<Self, String> {
        let names = split_list(s);
        if names.is_empty() {
            return Err("expected at least one containerizer".into());
        }
        if let Some(other) = names
            .iter()
            .find(|n| !crate::containerizer::KNOWN.contains(&n.as_str()))
        {
            return Err(format!(
                "unknown or unsupported containerizer '{other}' (available: {})",
                crate::containerizer::KNOWN.join(", ")
            ));
        }
        Ok(Self(names))
    }

    fn render_flag(&self) -> String {
        self.0.join(",")
    }
}

/// `--recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recover {
    Reconnect,
    Cleanup,
}

impl FlagValue for Recover {
    fn parse_flag(s: &str) -> Result<Self, String> {
        match s {
            "reconnect" => Ok(Self::Reconnect),
            "cleanup" => Ok(Self::Cleanup),
            _ => Err("expected 'reconnect' or 'cleanup'".into()),
        }
    }

    fn render_flag(&self) -> String {
        match self {
            Self::Reconnect => "reconnect",
            Self::Cleanup => "cleanup",
        }
        .to_string()
    }
}

/// `--logging_level`, in glog's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggingLevel {
    Info,
    Warning,
    Error,
}

impl LoggingLevel {
    /// The matching `tracing` filter directive.
    pub fn directive(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warn",
            Self::Error => "error",
        }
    }
}

impl FlagValue for LoggingLevel {
    fn parse_flag(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "INFO" => Ok(Self::Info),
            "WARNING" => Ok(Self::Warning),
            "ERROR" => Ok(Self::Error),
            _ => Err("expected INFO, WARNING or ERROR".into()),
        }
    }

    fn render_flag(&self) -> String {
        match self {
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
        .to_string()
    }
}

/// `--executor_environment_variables`: a JSON object of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentJson {
    pub vars: BTreeMap<String, String>,
    text: String,
}

impl FlagValue for EnvironmentJson {
    fn parse_flag(s: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))?;
        let serde_json::Value::Object(object) = value else {
            return Err("expected a JSON object".into());
        };
        let mut vars = BTreeMap::new();
        for (name, value) in object {
            let serde_json::Value::String(value) = value else {
                return Err(format!("the value of '{name}' is not a string"));
            };
            vars.insert(name, value);
        }
        Ok(Self {
            vars,
            text: s.to_string(),
        })
    }

    fn render_flag(&self) -> String {
        self.text.clone()
    }
}

/// `--effective_capabilities`, `--bounding_capabilities`: a JSON
/// `CapabilityInfo`, `{"capabilities":["NET_RAW","MKNOD"]}`, as Mesos
/// takes it (capability names as in `CapabilityInfo.Capability`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitiesJson {
    /// One bit per Linux capability number.
    pub set: u64,
    text: String,
}

impl FlagValue for CapabilitiesJson {
    fn parse_flag(s: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))?;
        let serde_json::Value::Object(object) = value else {
            return Err(r#"expected a JSON object like {"capabilities":["NET_RAW"]}"#.into());
        };
        if let Some(other) = object.keys().find(|k| *k != "capabilities") {
            return Err(format!(
                "unknown field '{other}' (CapabilityInfo has 'capabilities')"
            ));
        }
        let names = match object.get("capabilities") {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .ok_or_else(|| format!("capability {item} is not a name"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("'capabilities' is not an array".into()),
        };
        let set = mesos_isolators::capabilities::set_of_names(names).map_err(|e| e.to_string())?;
        Ok(Self {
            set,
            text: s.to_string(),
        })
    }

    fn render_flag(&self) -> String {
        self.text.clone()
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_flags::{FlagsError, Loaded};

    fn load(args: &[&str]) -> Result<AgentFlags, FlagsError> {
        let args = args.iter().map(|s| s.to_string());
        match AgentFlags::load_from(args, Vec::new())? {
            Loaded::Flags(flags) => Ok(flags),
            Loaded::Help(_) => panic!("unexpected help"),
        }
    }

    #[test]
    fn defaults_are_mesos_defaults() {
        let flags = load(&["--master=m:5050", "--work_dir=/w"]).unwrap();
        assert_eq!(flags.port, 5051);
        assert_eq!(flags.default_role, "*");
        assert_eq!(flags.executor_registration_timeout.to_string(), "1mins");
        assert_eq!(flags.executor_shutdown_grace_period.to_string(), "5secs");
        assert_eq!(flags.isolation.render_flag(), "posix/cpu,posix/mem");
        assert_eq!(flags.recover, Recover::Reconnect);
        assert!(flags.strict && flags.switch_user && flags.http_command_executor);
        assert_eq!(flags.gc_delay.to_string(), "1weeks");
        assert_eq!(flags.fetcher_cache_size.0, 2 << 30);
        assert_eq!(flags.fetcher_cache_dir, PathBuf::from("/tmp/mesos/fetch"));
        assert_eq!(flags.fetcher_stall_timeout.to_string(), "1mins");
        let pairs = flags.to_pairs();
        assert!(pairs.contains(&("recover".to_string(), "reconnect".to_string())));
        assert!(pairs.contains(&("logging_level".to_string(), "INFO".to_string())));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let base = ["--master=m:5050", "--work_dir=/w"];
        for (bad, flag) in [
            ("--containerizers=rkt", "containerizers"),
            ("--isolation=cgroups/cpu,com.example/unknown", "isolation"),
            ("--recover=maybe", "recover"),
            ("--logging_level=LOUD", "logging_level"),
            (
                "--executor_environment_variables=[1]",
                "executor_environment_variables",
            ),
            ("--port=http", "port"),
            ("--hooks=com.example.a,com.example.a", "hooks"),
            (
                r#"--effective_capabilities={"capabilities":["NET_FLY"]}"#,
                "effective_capabilities",
            ),
            ("--bounding_capabilities=NET_RAW", "bounding_capabilities"),
        ] {
            let mut args = base.to_vec();
            args.push(bad);
            let err = load(&args).unwrap_err();
            assert!(err.to_string().contains(flag), "{bad}: {err}");
        }
        assert!(matches!(
            load(&["--work_dir=/w"]),
            Err(FlagsError::Required(_))
        ));
        assert!(matches!(
            load(&["--master=m", "--work_dir=/w", "--bogus=1"]),
            Err(FlagsError::Unknown(_))
        ));
    }

    #[test]
    fn hooks_keep_their_order() {
        let base = ["--master=m:5050", "--work_dir=/w"];
        assert_eq!(load(&base).unwrap().hooks, None);
        let mut args = base.to_vec();
        args.push("--hooks=com.example.b, com.example.a");
        let hooks = load(&args).unwrap().hooks.unwrap();
        assert_eq!(hooks.0, ["com.example.b", "com.example.a"]);
        let env = vec![("MESOS_HOOKS".to_string(), "com.example.c".to_string())];
        let args = base.iter().map(|s| s.to_string());
        let Loaded::Flags(flags) = AgentFlags::load_from(args, env).unwrap() else {
            panic!("unexpected help");
        };
        assert_eq!(flags.hooks.unwrap().0, ["com.example.c"]);
    }

    #[test]
    fn executor_environment_is_a_string_map() {
        let env = EnvironmentJson::parse_flag(r#"{"PATH":"/bin","A":"1"}"#).unwrap();
        assert_eq!(env.vars.get("PATH").map(String::as_str), Some("/bin"));
        assert!(EnvironmentJson::parse_flag(r#"{"A":1}"#).is_err());
    }

    #[test]
    fn capabilities_are_a_json_capability_info() {
        let parsed =
            CapabilitiesJson::parse_flag(r#"{"capabilities":["NET_RAW","CHOWN"]}"#).unwrap();
        assert_eq!(parsed.set, 0x2001);
        assert_eq!(
            parsed.render_flag(),
            r#"{"capabilities":["NET_RAW","CHOWN"]}"#
        );
        // No capabilities at all: every one is dropped.
        assert_eq!(
            CapabilitiesJson::parse_flag(r#"{"capabilities":[]}"#)
                .unwrap()
                .set,
            0
        );
        assert_eq!(CapabilitiesJson::parse_flag("{}").unwrap().set, 0);
        for (bad, says) in [
            (
                r#"{"capabilities":["NET_FLY"]}"#,
                "unknown capability 'NET_FLY'",
            ),
            (r#"{"capabilities":[1013]}"#, "not a name"),
            (r#"{"capabilities":"NET_RAW"}"#, "not an array"),
            (r#"{"caps":["NET_RAW"]}"#, "unknown field 'caps'"),
            (r#"["NET_RAW"]"#, "expected a JSON object"),
            ("NET_RAW", "invalid JSON"),
        ] {
            let err = CapabilitiesJson::parse_flag(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let base = ["--master=m:5050", "--work_dir=/w"];
        let flags = load(&base).unwrap();
        assert_eq!(flags.effective_capabilities, None);
        assert_eq!(flags.bounding_capabilities, None);
        let mut args = base.to_vec();
        args.push(r#"--bounding_capabilities={"capabilities":["CHOWN","NET_RAW"]}"#);
        assert_eq!(
            load(&args).unwrap().bounding_capabilities.unwrap().set,
            0x2001
        );
    }

    #[test]
    fn capability_names_are_those_of_the_proto() {
        use mesos_proto::v1::capability_info::Capability;
        for (number, name) in mesos_isolators::capabilities::NAMES.iter().enumerate() {
            let value = 1000 + i32::try_from(number).unwrap();
            assert_eq!(
                Capability::try_from(value).ok().map(|c| c.as_str_name()),
                Some(*name),
                "capability {number}"
            );
        }
    }
}
