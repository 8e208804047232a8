//! The master's flags, under Mesos's names and defaults.

use std::net::IpAddr;
use std::path::PathBuf;

use mesos_flags::{Duration, Hooks};

mesos_flags::flags! {
    /// Flags of mesos-master.
    pub struct MasterFlags {
        /// IP address to listen on (default: all interfaces; advertised as 127.0.0.1 then).
        ip: Option<IpAddr>,
        /// Port to listen on; HTTP APIs and the agent link share it.
        port: u16 = "5050",
        /// Hostname to advertise (default: the system hostname).
        hostname: Option<String>,
        /// Directory for the registry and other persistent state.
        work_dir: Option<PathBuf>,
        /// Where the registry lives: `in_memory` or `replicated_log` (kept in --work_dir).
        registry: String = "replicated_log",
        /// How long a restarted master waits for the agents in its registry
        /// to re-register before it declares them unreachable.
        agent_reregister_timeout: Duration = "10mins",
        /// Allocator to use: `HierarchicalDRF` (built in) or the name of an
        /// allocator plugin from --plugin_dir.
        allocator: String = "HierarchicalDRF",
        /// Directory of plugins: each folder with a plugin.toml is loaded and
        /// checked at start (a bad one stops the master).
        plugin_dir: Option<PathBuf>,
        /// Mesos's module list, JSON inline, file://<path> or /<path>: each library is
        /// a dylib plugin holding one module (an allocator for --allocator).
        modules: Option<String>,
        /// A directory of module lists as --modules takes them, read in
        /// name order; not together with --modules.
        modules_dir: Option<PathBuf>,
        /// Hooks, in call order (each sees what the previous one returned):
        /// names of hook plugins from --plugin_dir or --modules.
        hooks: Option<Hooks>,
        /// Role weights, `role1=2,role2=3` (deprecated in Mesos in favour of
        /// UPDATE_WEIGHTS; roles not listed weigh 1).
        weights: Option<String>,
        /// Deprecated whitelist of roles frameworks may subscribe with, `a,b`
        /// (default: any role).
        roles: Option<String>,
        /// Smallest offer worth making: `;` joins quantities that must all be
        /// present, `|` separates alternatives.
        min_allocatable_resources: String = "cpus:0.01|mem:32",
        /// Period of the batch allocation cycle.
        allocation_interval: Duration = "1secs",
        /// Rescind offers that were not used for this long (default: never).
        offer_timeout: Option<Duration>,
        /// Time without a pong after which a ping to an agent counts as missed.
        agent_ping_timeout: Duration = "15secs",
        /// Missed pings after which an agent is considered gone and its tasks lost.
        max_agent_ping_timeouts: u32 = "5",
        /// Finished frameworks to keep in the state endpoints.
        max_completed_frameworks: usize = "50",
        /// Finished tasks to keep per framework in the state endpoints.
        max_completed_tasks_per_framework: usize = "1000",
        /// Human readable name of the cluster, shown in /master/state.
        cluster: Option<String>,
        /// Logging level: INFO, WARNING, ERROR (RUST_LOG overrides).
        logging_level: String = "INFO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_match_mesos() {
        MasterFlags::check_defaults().unwrap();
        let mesos_flags::Loaded::Flags(flags) =
            MasterFlags::load_from(Vec::<String>::new(), Vec::<(String, String)>::new()).unwrap()
        else {
            panic!("no help was asked for");
        };
        assert_eq!(flags.port, 5050);
        assert_eq!(
            flags.allocation_interval.0,
            std::time::Duration::from_secs(1)
        );
        assert_eq!(
            flags.agent_ping_timeout.0,
            std::time::Duration::from_secs(15)
        );
        assert_eq!(flags.max_agent_ping_timeouts, 5);
        assert_eq!(flags.allocator, "HierarchicalDRF");
        assert_eq!(flags.min_allocatable_resources, "cpus:0.01|mem:32");
        assert!(flags.weights.is_none() && flags.roles.is_none());
    }

    fn load(args: &[&str]) -> MasterFlags {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match MasterFlags::load_from(args, Vec::<(String, String)>::new()).unwrap() {
            mesos_flags::Loaded::Flags(flags) => flags,
            mesos_flags::Loaded::Help(_) => panic!("no help was asked for"),
        }
    }

    #[test]
    fn allocator_flags_are_checked_at_startup() {
        assert!(crate::allocator_from_flags(&load(&["--weights=a=2,b=3"]), &[]).is_ok());
        let bad = crate::allocator_from_flags(&load(&["--weights=a=heavy"]), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(bad.contains("--weights"), "{bad}");
        let bad = crate::allocator_from_flags(&load(&["--min_allocatable_resources=cpus"]), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(bad.contains("--min_allocatable_resources"), "{bad}");
    }
}
