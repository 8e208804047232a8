//! The agent's flags, under Mesos's names and defaults.

use std::net::IpAddr;
use std::path::PathBuf;

use mesos_flags::Duration;

mesos_flags::flags! {
    /// Flags of mesos-agent.
    pub struct AgentFlags {
        /// Master to register with: host:port.
        master: String,
        /// Directory for sandboxes and checkpointed state.
        work_dir: PathBuf,
        /// IP address to listen on (default: all interfaces; advertised as 127.0.0.1 then).
        ip: Option<IpAddr>,
        /// Port to listen on.
        port: u16 = "5051",
        /// Hostname to advertise (default: the advertised IP).
        hostname: Option<String>,
        /// Total consumable resources: `name(role):value;...` or a JSON array (auto-detected when absent).
        resources: Option<String>,
        /// Attributes of the agent: `name:value;...`.
        attributes: Option<String>,
        /// Role of resources that name none.
        default_role: String = "*",
        /// Time an executor has to subscribe before it is killed.
        executor_registration_timeout: Duration = "1mins",
        /// Time an executor has to exit after SHUTDOWN before it is killed.
        executor_shutdown_grace_period: Duration = "5secs",
        /// Directory holding mesos-executor (default: next to this binary).
        launcher_dir: Option<PathBuf>,
        /// Isolators, in call order (posix/cpu and posix/mem only account; no enforcement yet).
        isolation: String = "posix/cpu,posix/mem",
        /// Containerizers, in order of preference (only `mesos` so far).
        containerizers: String = "mesos",
        /// Directory for state that lives as long as the machine is up.
        runtime_dir: Option<PathBuf>,
        /// Upper bound of the first random (re-)registration delay; doubles per attempt, capped at 1 minute.
        registration_backoff_factor: Duration = "1secs",
        /// Sandbox path inside containers that have an image.
        sandbox_directory: PathBuf = "/mnt/mesos/sandbox",
        /// Whether command tasks use the HTTP command executor (the only kind here).
        http_command_executor: bool = "true",
        /// Logging level: INFO, WARNING, ERROR (RUST_LOG overrides).
        logging_level: String = "INFO",
    }
}
