//! The agent: registers with the master, runs executors in Mesos's sandbox
//! layout, serves the v1 executor API, and gets every status update to the
//! framework. Also the command executor (`mesos-executor`).

pub mod agent;
pub mod checkpoint;
pub mod checks;
pub mod command;
pub mod command_executor;
pub mod containerizer;
pub mod default_executor;
pub mod docker_executor;
pub mod error;
pub mod executor_env;
pub mod executor_session;
pub mod fetcher;
pub mod files;
pub mod flags;
pub mod gc;
pub mod host_calls;
mod http;
pub mod images;
pub mod isolation;
pub mod launcher;
mod link;
pub mod logging;
pub mod monitor;
pub mod nested;
pub mod oci;
pub mod privileges;
pub mod sandbox;
pub mod status_updates;
pub mod validation;
pub mod volumes;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mesos_proto::v1;

pub use error::AgentError;
pub use flags::AgentFlags;

/// Runs the agent until the HTTP server stops.
pub async fn run(flags: AgentFlags) -> Result<(), AgentError> {
    if flags.master.starts_with("zk://") {
        return Err(AgentError::Flag(
            "--master: ZooKeeper master detection is not supported yet; give host:port".into(),
        ));
    }
    let work_dir = flags.work_dir.clone();
    tokio::task::spawn_blocking(move || std::fs::create_dir_all(&work_dir))
        .await
        .map_err(|e| AgentError::Startup(e.to_string()))?
        .map_err(|source| AgentError::WorkDir {
            path: flags.work_dir.clone(),
            source,
        })?;
    let resources = agent_resources(&flags).await?;
    let attributes = mesos_resources::parse_attributes(flags.attributes.as_deref().unwrap_or(""))
        .map_err(|e| AgentError::Flag(format!("--attributes: {e}")))?;

    let bind_ip = flags.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(bind_ip, flags.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| AgentError::Bind { addr, source })?;
    // Executors and the master need an address they can reach.
    let advertised = if local.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local.ip()
    };
    let endpoint = SocketAddr::new(advertised, local.port()).to_string();
    let mut agent_info = v1::AgentInfo {
        hostname: flags
            .hostname
            .clone()
            .unwrap_or_else(|| advertised.to_string()),
        port: Some(i32::from(local.port())),
        resources,
        attributes,
        ..Default::default()
    };
    if !(0.0..=1.0).contains(&flags.gc_disk_headroom) {
        return Err(AgentError::Flag(format!(
            "--gc_disk_headroom must be between 0.0 and 1.0, got {}",
            flags.gc_disk_headroom
        )));
    }
    let gc = gc::Gc::spawn(gc::GcConfig {
        work_dir: flags.work_dir.clone(),
        delay: flags.gc_delay.0,
        disk_watch_interval: flags.disk_watch_interval.0,
        disk_headroom: flags.gc_disk_headroom,
        disk_usage: Arc::new(gc::statvfs_usage),
    });
    let nested = nested::NestedContainers::default();
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
    .map_err(|e| AgentError::Startup(e.to_string()))?
    .map_err(|e| AgentError::Flag(format!("plugins: {e}")))?;
    // What the plugins' host calls may do: write knobs of containers'
    // cgroups.
    let knobs: Arc<dyn mesos_plugin_api::host::calls::HostCalls> = Arc::new(
        host_calls::CgroupKnobs::new(mesos_isolators::cgroups::Hierarchy::detect(
            &flags.cgroups_hierarchy,
            &flags.cgroups_root,
        )),
    );
    for plugin in &plugins {
        plugin.provide_host_calls(knobs.clone());
    }
    let plugin_isolators: Vec<_> = plugins.iter().filter_map(|p| p.isolator()).collect();
    let volume_drivers: Vec<_> = plugins.iter().filter_map(|p| p.volume_driver()).collect();
    let networks: Vec<_> = plugins.iter().filter_map(|p| p.network()).collect();
    let rootfs_backends = mesos_provisioners::backend::Backends::with_plugins(
        plugins.iter().filter_map(|p| p.rootfs_backend()).collect(),
    );
    let image_stores = plugins.iter().filter_map(|p| p.image_store()).collect();
    let runtime_dir = flags
        .runtime_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("/var/run/mesos"));
    let isolators = mesos_isolators::build(
        &flags.isolation.0,
        &mesos_isolators::IsolationConfig {
            cgroups_hierarchy: flags.cgroups_hierarchy.clone(),
            cgroups_root: flags.cgroups_root.clone(),
            enable_cfs: flags.cgroups_enable_cfs,
            pids_max: flags.cgroups_pids_max,
            effective_capabilities: flags.effective_capabilities.as_ref().map(|c| c.set),
            bounding_capabilities: flags.bounding_capabilities.as_ref().map(|c| c.set),
            enforce_disk_quota: flags.enforce_container_disk_quota,
            seccomp_config_dir: flags.seccomp_config_dir.clone(),
            seccomp_profile_name: flags.seccomp_profile_name.clone(),
            allowed_devices: flags.allowed_devices.clone(),
            network_cni_config_dir: flags.network_cni_config_dir.clone(),
            network_cni_plugins_dir: flags.network_cni_plugins_dir.clone(),
            runtime_dir: runtime_dir.clone(),
            docker_volume_checkpoint_dir: flags.docker_volume_checkpoint_dir.clone(),
        },
        &mesos_isolators::registry::Plugins {
            isolators: &plugin_isolators,
            volume_drivers: &volume_drivers,
            networks: &networks,
        },
    )
    .map_err(|e| AgentError::Flag(format!("--isolation: {e}")))?;
    let isolation = isolation::Isolation::new(isolators);
    let images_config = images::ImagesConfig {
        providers: flags.image_providers.clone(),
        image_stores,
        isolation: mesos_isolators::registry::expand(&flags.isolation.0),
        docker_registry: flags.docker_registry.clone(),
        docker_config: flags.docker_config.clone(),
        docker_store_dir: flags.docker_store_dir.clone(),
        backend: flags.image_provisioner_backend.clone(),
        backends: rootfs_backends,
        sandbox_directory: flags.sandbox_directory.clone(),
        work_dir: flags.work_dir.clone(),
    };
    let images = tokio::task::spawn_blocking(move || images::Images::from_config(&images_config))
        .await
        .map_err(|e| AgentError::Startup(e.to_string()))?
        .map_err(AgentError::Flag)?;
    let oci = if flags.containerizers.0.iter().any(|c| c == "oci") {
        if images.is_none() {
            return Err(AgentError::Flag(
                "--containerizers=oci runs tasks in container images: it needs --image_providers=docker and filesystem/linux,docker/runtime in --isolation".into(),
            ));
        }
        Some(
            oci::OciRuntime::resolve(&flags.oci_runtime, &runtime_dir, &flags.cgroups_root)
                .map_err(AgentError::Flag)?,
        )
    } else {
        None
    };
    let images = images.map(|images| images.with_oci(oci.clone()));
    let hooks =
        mesos_plugin_api::hooks::Hooks::resolve(mesos_flags::Hooks::names(&flags.hooks), &plugins)
            .map_err(|e| AgentError::Flag(format!("--hooks: {e}")))?;
    if !hooks.is_empty() {
        // As in Mesos, before the agent recovers, checks its volumes
        // against its resources or registers.
        let decorating = hooks.clone();
        agent_info = tokio::task::spawn_blocking(move || {
            decorating.decorate_agent(&mut agent_info);
            agent_info
        })
        .await
        .map_err(|e| AgentError::Startup(e.to_string()))?;
    }
    let fetcher_config = fetcher::FetcherConfig {
        cache_dir: flags.fetcher_cache_dir.clone(),
        cache_size: flags.fetcher_cache_size.0,
        stall_timeout: flags.fetcher_stall_timeout.0,
    };
    let fetcher = tokio::task::spawn_blocking(move || {
        let fetcher = fetcher::Fetcher::new(fetcher_config);
        fetcher.clear_cache_dir().map(|()| fetcher)
    })
    .await
    .map_err(|e| AgentError::Startup(e.to_string()))?
    .map_err(|e| {
        AgentError::Startup(format!(
            "cannot empty --fetcher_cache_dir '{}': {e}",
            flags.fetcher_cache_dir.display()
        ))
    })?;
    let checkpointed_resources = {
        let meta = checkpoint::Meta::new(&flags.work_dir);
        let checkpointed = tokio::task::spawn_blocking(move || volumes::read_checkpointed(&meta))
            .await
            .map_err(|e| AgentError::Startup(e.to_string()))?
            .map_err(|e| AgentError::Startup(e.to_string()))?;
        // Mesos refuses to start rather than lose a reservation or a volume.
        volumes::total(
            &mesos_resources::Resources::from(agent_info.resources.clone()),
            &checkpointed,
        )
        .map_err(AgentError::Startup)?;
        checkpointed
    };
    let pairs = flags.to_pairs();
    let config = agent::Config {
        checkpointed_resources,
        work_dir: flags.work_dir.clone(),
        agent_info,
        pid: format!("slave(1)@{endpoint}"),
        endpoint,
        launcher_dir: launcher::launcher_dir(flags.launcher_dir.as_deref()),
        registration_timeout: flags.executor_registration_timeout.0,
        shutdown_grace_period: flags.executor_shutdown_grace_period.0,
        recovery_timeout: flags.recovery_timeout.0,
        reregistration_timeout: flags.executor_reregistration_timeout.0,
        executor_base_env: flags.executor_environment_variables.clone().map(|e| e.vars),
        switch_user: flags.switch_user,
        http_command_executor: flags.http_command_executor,
        flags: pairs.clone(),
        gc,
        nested: nested.clone(),
        fetcher,
        isolation: isolation.clone(),
        // A zero interval would make `tokio::time::interval` panic.
        limit_watch_interval: flags
            .container_disk_watch_interval
            .0
            .max(std::time::Duration::from_millis(10)),
        images: images.clone(),
        hooks,
        containerizers: flags.containerizers.0.clone(),
        oci,
        docker: agent::DockerConfig {
            socket: flags.docker_socket.clone(),
            stop_timeout: flags.docker_stop_timeout.0,
            sandbox_directory: flags.sandbox_directory.clone(),
            enable_cfs: flags.cgroups_enable_cfs,
            kill_orphans: flags.docker_kill_orphans,
        },
    };
    tracing::info!(
        pid = %config.pid, master = %flags.master, work_dir = %flags.work_dir.display(),
        "agent starting"
    );
    let meta = checkpoint::Meta::new(&flags.work_dir);
    let meta_root = meta.root.clone();
    let (cleanup, strict) = (flags.recover == flags::Recover::Cleanup, flags.strict);
    let info = config.agent_info.clone();
    let recovered =
        tokio::task::spawn_blocking(move || agent::recover(&meta, &info, cleanup, strict))
            .await
            .map_err(|e| AgentError::Startup(e.to_string()))?
            .map_err(|e| AgentError::Startup(format!("recovery failed: {e}")))?;
    let checkpointer = checkpoint::Checkpointer::spawn(&meta_root)
        .map_err(|e| AgentError::Startup(format!("cannot start the checkpoint writer: {e}")))?;
    let handle = agent::Agent::spawn(config, checkpointer, recovered);
    let link = tokio::spawn(link::run(
        flags.master.clone(),
        handle.clone(),
        flags.registration_backoff_factor.0,
    ));
    let app = http::router(http::App {
        handle: handle.clone(),
        flags: Arc::new(pairs),
        files: Arc::new(files::Sandboxes::new(&flags.work_dir)),
        proc_root: Arc::new(std::path::PathBuf::from("/proc")),
        docker_socket: Arc::new(flags.docker_socket.clone()),
        isolation,
        nested,
        images,
    });
    tokio::select! {
        served = mesos_http::serve(listener, app) => served.map_err(AgentError::Serve),
        refused = link => match refused {
            Ok(Some(reason)) => {
                // As Mesos's agent does on the master's shutdown message:
                // its executors go with it.
                let _ = handle.request(|reply| agent::Command::Shutdown { reply }).await;
                Err(AgentError::Refused(reason))
            }
            // The agent loop is gone: nothing left to serve.
            _ => Err(AgentError::Startup("the agent loop stopped".into())),
        },
    }
}

/// `--resources`, completed with what Mesos detects for the ones not given
/// (which reads the system: off the runtime's threads).
async fn agent_resources(flags: &AgentFlags) -> Result<Vec<v1::Resource>, AgentError> {
    let given = mesos_resources::parse_resources(
        flags.resources.as_deref().unwrap_or(""),
        &flags.default_role,
    )
    .map_err(|e| AgentError::Flag(format!("--resources: {e}")))?;
    let (work_dir, role) = (flags.work_dir.clone(), flags.default_role.clone());
    tokio::task::spawn_blocking(move || {
        mesos_resources::with_detected_defaults(given, &work_dir, &role)
    })
    .await
    .map_err(|e| AgentError::Startup(e.to_string()))
}
