//! The `MESOS_*` variables Mesos gives every executor. Executor libraries
//! (pymesos, the C++ one, ours) find the agent and learn their identity
//! from these, and some refuse to start without them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ExecutorEnv<'a> {
    pub framework_id: &'a str,
    pub executor_id: &'a str,
    pub agent_id: &'a str,
    /// The sandbox on the host.
    pub directory: &'a Path,
    /// `slave(1)@ip:port`.
    pub agent_pid: &'a str,
    /// `ip:port`.
    pub agent_endpoint: &'a str,
    /// Whether the framework checkpoints.
    pub checkpoint: bool,
    pub http_command_executor: bool,
    pub shutdown_grace_period: Duration,
    pub recovery_timeout: Duration,
    pub subscription_backoff_max: Duration,
}

impl ExecutorEnv<'_> {
    pub fn vars(&self) -> BTreeMap<String, String> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let duration = |d: Duration| mesos_flags::Duration(d).to_string();
        let directory = self.directory.display().to_string();
        let mut vars = BTreeMap::from([
            ("MESOS_FRAMEWORK_ID", self.framework_id.to_string()),
            ("MESOS_EXECUTOR_ID", self.executor_id.to_string()),
            ("MESOS_DIRECTORY", directory.clone()),
            // Without a container image the sandbox is seen at its host path.
            ("MESOS_SANDBOX", directory),
            ("MESOS_SLAVE_ID", self.agent_id.to_string()),
            ("MESOS_SLAVE_PID", self.agent_pid.to_string()),
            ("MESOS_AGENT_ENDPOINT", self.agent_endpoint.to_string()),
            ("MESOS_CHECKPOINT", flag(self.checkpoint)),
            (
                "MESOS_HTTP_COMMAND_EXECUTOR",
                flag(self.http_command_executor),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                duration(self.shutdown_grace_period),
            ),
            // libprocess-based executors must not take the agent's port.
            ("LIBPROCESS_PORT", "0".to_string()),
        ]);
        if self.checkpoint {
            vars.insert("MESOS_RECOVERY_TIMEOUT", duration(self.recovery_timeout));
            vars.insert(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                duration(self.subscription_backoff_max),
            );
        }
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(checkpoint: bool) -> BTreeMap<String, String> {
        ExecutorEnv {
            framework_id: "F",
            executor_id: "E",
            agent_id: "S0",
            directory: Path::new("/w/slaves/S0/frameworks/F/executors/E/runs/C"),
            agent_pid: "slave(1)@127.0.0.1:5051",
            agent_endpoint: "127.0.0.1:5051",
            checkpoint,
            http_command_executor: true,
            shutdown_grace_period: Duration::from_secs(5),
            recovery_timeout: Duration::from_secs(900),
            subscription_backoff_max: Duration::from_secs(2),
        }
        .vars()
    }

    #[test]
    fn has_the_mesos_table() {
        let vars = env(false);
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("MESOS_FRAMEWORK_ID"), Some("F"));
        assert_eq!(get("MESOS_EXECUTOR_ID"), Some("E"));
        assert_eq!(get("MESOS_SLAVE_ID"), Some("S0"));
        assert_eq!(get("MESOS_AGENT_ENDPOINT"), Some("127.0.0.1:5051"));
        assert_eq!(get("MESOS_SLAVE_PID"), Some("slave(1)@127.0.0.1:5051"));
        assert_eq!(get("MESOS_DIRECTORY"), get("MESOS_SANDBOX"));
        assert_eq!(get("MESOS_CHECKPOINT"), Some("0"));
        assert_eq!(get("MESOS_HTTP_COMMAND_EXECUTOR"), Some("1"));
        assert_eq!(get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"), Some("5secs"));
        assert_eq!(get("MESOS_RECOVERY_TIMEOUT"), None);
        assert_eq!(get("MESOS_SUBSCRIPTION_BACKOFF_MAX"), None);
    }

    #[test]
    fn checkpointing_adds_the_recovery_variables() {
        let vars = env(true);
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("MESOS_CHECKPOINT"), Some("1"));
        assert_eq!(get("MESOS_RECOVERY_TIMEOUT"), Some("15mins"));
        assert_eq!(get("MESOS_SUBSCRIPTION_BACKOFF_MAX"), Some("2secs"));
    }
}
