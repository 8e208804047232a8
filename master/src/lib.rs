//! The master: frameworks, agents, offers, and the Mesos v1 scheduler API.
//!
//! One port serves everything: the Mesos HTTP APIs (HTTP/1.1) and the
//! internal agent link (gRPC over HTTP/2), told apart per connection.

pub mod allocator;
pub mod error;
pub mod flags;
mod http;
mod link;
pub mod master;
pub mod registry;
mod validation;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mesos_proto::internal::v1::agent_link_server::AgentLinkServer;
use mesos_proto::v1;

pub use error::MasterError;
pub use flags::MasterFlags;

/// Shown as `build_date` in `/version` and `/master/state`.
pub const BUILD_DATE: &str = "";

/// Binds the port and serves until the process ends.
pub async fn run(flags: MasterFlags) -> Result<(), MasterError> {
    let (plugin_dir, modules, modules_dir) = (
        flags.plugin_dir.clone(),
        flags.modules.clone(),
        flags.modules_dir.clone(),
    );
    let plugins = tokio::task::spawn_blocking(move || {
        mesos_plugin_api::host::load_all(
            plugin_dir.as_deref(),
            modules.as_deref(),
            modules_dir.as_deref(),
        )
    })
    .await
    .map_err(|e| MasterError::Flag(format!("plugins: {e}")))?
    .map_err(|e| MasterError::Flag(format!("plugins: {e}")))?;
    if let Some(other) = plugins
        .iter()
        .find(|p| p.name() == flags.allocator && p.allocator().is_none())
    {
        return Err(MasterError::Flag(format!(
            "--allocator: plugin '{}' is of kind '{}', not an allocator",
            other.name(),
            other.manifest.kind.as_str()
        )));
    }
    let allocators: Vec<_> = plugins.iter().filter_map(|p| p.allocator()).collect();
    let allocator = allocator_from_flags(&flags, &allocators)?;
    let hooks =
        mesos_plugin_api::hooks::Hooks::resolve(mesos_flags::Hooks::names(&flags.hooks), &plugins)
            .map_err(|e| MasterError::Flag(format!("--hooks: {e}")))?;
    let (listener, mut config) = bind(&flags).await?;
    config.hooks = hooks;
    let store: Box<dyn registry::Store> = match (flags.registry.as_str(), &flags.work_dir) {
        ("in_memory", _) => Box::new(registry::InMemory),
        (_, Some(work_dir)) => Box::new(registry::InFile::new(work_dir)),
        (_, None) => {
            return Err(MasterError::Flag(
                "--work_dir is required with --registry=replicated_log \
                 (or use --registry=in_memory)"
                    .into(),
            ));
        }
    };
    serve(listener, config, allocator, store).await
}

/// The allocator `--allocator` names, configured by the allocator flags.
pub fn allocator_from_flags(
    flags: &MasterFlags,
    plugins: &[Arc<mesos_plugin_api::adapter::LoadedAllocator>],
) -> Result<Box<dyn mesos_plugin_api::allocator::Allocator>, MasterError> {
    let weights = match &flags.weights {
        Some(text) => allocator::parse_weights(text).map_err(MasterError::Flag)?,
        None => Vec::new(),
    };
    let min_allocatable = allocator::MinAllocatable::parse(&flags.min_allocatable_resources)
        .map_err(MasterError::Flag)?;
    Ok(allocator::by_name_with(
        &flags.allocator,
        allocator::Options {
            weights,
            min_allocatable,
        },
        plugins,
    )?)
}

/// Binds the listening socket and derives the master's identity from it
/// (port 0 picks a free port, which tests rely on).
pub async fn bind(
    flags: &MasterFlags,
) -> Result<(tokio::net::TcpListener, master::Config), MasterError> {
    match flags.registry.as_str() {
        "in_memory" | "replicated_log" => {}
        other => {
            return Err(MasterError::Flag(format!(
                "--registry must be 'in_memory' or 'replicated_log', got '{other}'"
            )));
        }
    }
    let bind_ip = flags.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(bind_ip, flags.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MasterError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| MasterError::Bind { addr, source })?;
    let advertised_ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST,
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    };
    let hostname = flags
        .hostname
        .clone()
        .unwrap_or_else(|| advertised_ip.to_string());
    let id = uuid::Uuid::new_v4().to_string();
    let pid = format!("master@{advertised_ip}:{}", local.port());
    let master_info = v1::MasterInfo {
        id,
        ip: wire::packed_ipv4(advertised_ip),
        port: u32::from(local.port()),
        pid: Some(pid),
        hostname: Some(hostname.clone()),
        version: Some(mesos_proto::MESOS_VERSION.to_string()),
        address: Some(v1::Address {
            hostname: Some(hostname),
            ip: Some(advertised_ip.to_string()),
            port: i32::from(local.port()),
        }),
        capabilities: vec![],
        ..Default::default()
    };
    let config = master::Config {
        master_info,
        allocation_interval: flags.allocation_interval.0,
        offer_timeout: flags.offer_timeout.map(|d| d.0),
        agent_ping_timeout: flags.agent_ping_timeout.0,
        max_agent_ping_timeouts: flags.max_agent_ping_timeouts,
        agent_reregister_timeout: flags.agent_reregister_timeout.0,
        weights: match &flags.weights {
            Some(text) => allocator::parse_weights(text).map_err(MasterError::Flag)?,
            None => Vec::new(),
        },
        max_completed_frameworks: flags.max_completed_frameworks,
        max_completed_tasks_per_framework: flags.max_completed_tasks_per_framework,
        cluster: flags.cluster.clone(),
        flags: flags.to_pairs(),
        hooks: mesos_plugin_api::hooks::Hooks::default(),
    };
    Ok((listener, config))
}

/// Runs the master on an already bound listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: master::Config,
    allocator: Box<dyn mesos_plugin_api::allocator::Allocator>,
    store: Box<dyn registry::Store>,
) -> Result<(), MasterError> {
    let (registry, writer) = registry::open(store).await?;
    tracing::info!(
        pid = config.master_info.pid.as_deref().unwrap_or_default(),
        allocator = allocator.name(),
        "master starting"
    );
    let flags = Arc::new(config.flags.clone());
    let info = &config.master_info;
    let leader_host = info
        .hostname
        .clone()
        .or_else(|| info.address.as_ref().and_then(|a| a.ip.clone()))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let leader: Arc<str> = format!("{leader_host}:{}", info.port).into();
    let handle = master::Master::new(config, allocator)
        .with_registry(registry, writer)
        .spawn();
    let grpc =
        tonic::service::Routes::new(AgentLinkServer::new(link::LinkService::new(handle.clone())))
            .into_axum_router();
    // The gRPC router brings its own fallback; ours replaces it so unknown
    // paths get a plain 404 rather than a gRPC status.
    let app = http::router(http::App {
        handle,
        flags,
        leader,
    })
    .merge(grpc)
    .fallback(http::endpoints::not_found);
    mesos_http::serve(listener, app)
        .await
        .map_err(MasterError::Serve)
}
