//! The agent: registers with the master, runs executors in Mesos's sandbox
//! layout, serves the v1 executor API, and gets every status update to the
//! framework.

pub mod agent;
pub mod command_executor;
pub mod error;
pub mod flags;
mod http;
pub mod launcher;
pub mod logging;
mod link;
pub mod sandbox;
pub mod status_updates;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mesos_proto::v1;

pub use error::AgentError;
pub use flags::AgentFlags;

/// Runs the agent until the process ends.
pub async fn run(flags: AgentFlags) -> Result<(), AgentError> {
    if flags.containerizers.split(',').any(|c| c.trim() != "mesos") {
        return Err(AgentError::Flag(format!(
            "--containerizers={}: only 'mesos' is available so far",
            flags.containerizers
        )));
    }
    for isolator in flags.isolation.split(',').map(str::trim) {
        if !matches!(isolator, "posix/cpu" | "posix/mem" | "posix/disk" | "") {
            return Err(AgentError::Flag(format!(
                "--isolation: unknown isolator '{isolator}' (available: posix/cpu, posix/mem, posix/disk)"
            )));
        }
    }
    std::fs::create_dir_all(&flags.work_dir).map_err(|source| AgentError::WorkDir {
        path: flags.work_dir.clone(),
        source,
    })?;
    let resources = mesos_resources::parse_resources(flags.resources.as_deref().unwrap_or(""), &flags.default_role)
        .map_err(|e| AgentError::Flag(format!("--resources: {e}")))?;
    let resources = mesos_resources::with_detected_defaults(resources, &flags.work_dir, &flags.default_role);
    let attributes = mesos_resources::parse_attributes(flags.attributes.as_deref().unwrap_or(""))
        .map_err(|e| AgentError::Flag(format!("--attributes: {e}")))?;

    let bind_ip = flags.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(bind_ip, flags.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| AgentError::Bind { addr, source })?;
    let advertised = if local.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local.ip()
    };
    let hostname = flags.hostname.clone().unwrap_or_else(|| advertised.to_string());
    let endpoint = format!("{advertised}:{}", local.port());
    let agent_info = v1::AgentInfo {
        hostname,
        port: Some(i32::from(local.port())),
        resources,
        attributes,
        ..Default::default()
    };
    let pairs = flags.to_pairs();
    let config = agent::Config {
        work_dir: flags.work_dir.clone(),
        agent_info,
        pid: format!("slave(1)@{endpoint}"),
        endpoint,
        launcher_dir: launcher::launcher_dir(flags.launcher_dir.as_deref()),
        registration_timeout: flags.executor_registration_timeout.0,
        shutdown_grace: flags.executor_shutdown_grace_period.0,
        sandbox_directory: flags.sandbox_directory.clone(),
        flags: pairs.clone(),
    };
    tracing::info!(pid = %config.pid, master = %flags.master, "agent starting");
    let handle = agent::Agent::spawn(config);
    tokio::spawn(link::run(flags.master.clone(), handle.clone(), flags.registration_backoff_factor.0));
    let app = http::router(http::App {
        handle,
        flags: Arc::new(pairs),
    });
    axum::serve(listener, app).await.map_err(AgentError::Serve)
}
