//! The Engine's container configuration for a Mesos task with a DOCKER
//! `ContainerInfo`, following what Mesos's docker containerizer passes to
//! `docker run`: the sandbox bind-mounted at `--sandbox_directory`, cpu
//! shares (and CFS quota) and a memory limit from the task's resources,
//! the network mode and port mappings, volumes, privileged mode, labels,
//! the environment, and `DockerInfo.parameters` as `docker run` options.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use mesos_proto::v1::{self, container_info::docker_info::Network};
use mesos_resources::Resources;

/// Mesos's floor for cpu shares and its CFS period.
const MIN_CPU_SHARES: i64 = 2;
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const CFS_PERIOD_US: i64 = 100_000;
/// Mesos's floor for a container's memory limit.
const MIN_MEMORY_BYTES: i64 = 32 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("the task's ContainerInfo has no 'docker' section")]
    NoDockerInfo,
    #[error("docker parameter '{0}' is not supported")]
    UnsupportedParameter(String),
    #[error("docker parameter '{key}': {problem}")]
    BadParameter { key: String, problem: String },
    #[error("volume '{0}': {1}")]
    BadVolume(String, String),
    #[error("network USER needs a network name in ContainerInfo.network_infos")]
    NoUserNetwork,
}

/// Everything a task's container is made from.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    pub container: &'a v1::ContainerInfo,
    pub command: Option<&'a v1::CommandInfo>,
    pub resources: &'a [v1::Resource],
    pub labels: Option<&'a v1::Labels>,
    /// The sandbox on the host.
    pub sandbox: &'a Path,
    /// Where the sandbox appears inside the container (`--sandbox_directory`).
    pub sandbox_directory: &'a Path,
    /// Added to the container's environment (the command's own wins).
    pub env: BTreeMap<String, String>,
    /// `--cgroups_enable_cfs`: a hard CPU cap besides shares.
    pub enable_cfs: bool,
}

/// The image a DOCKER ContainerInfo names.
pub fn image(container: &v1::ContainerInfo) -> Result<&str, SpecError> {
    container
        .docker
        .as_ref()
        .map(|d| d.image.as_str())
        .ok_or(SpecError::NoDockerInfo)
}

pub fn container_config(spec: &RunSpec<'_>) -> Result<ContainerCreateBody, SpecError> {
    let docker = spec
        .container
        .docker
        .as_ref()
        .ok_or(SpecError::NoDockerInfo)?;
    let mut config = ContainerCreateBody {
        image: Some(docker.image.clone()),
        ..Default::default()
    };
    let mut host = HostConfig {
        privileged: Some(docker.privileged.unwrap_or(false)),
        ..Default::default()
    };

    // The command, as Mesos hands it to `docker run`.
    if let Some(command) = spec.command {
        let value = command.value.clone().unwrap_or_default();
        if command.shell.unwrap_or(true) {
            if !value.is_empty() {
                config.entrypoint = Some(vec!["/bin/sh".into()]);
                config.cmd = Some(vec!["-c".into(), value]);
            }
        } else {
            let argv: Vec<String> = (!value.is_empty())
                .then_some(value)
                .into_iter()
                .chain(command.arguments.iter().cloned())
                .collect();
            if !argv.is_empty() {
                config.cmd = Some(argv);
            }
        }
        if let Some(user) = &command.user {
            config.user = Some(user.clone());
        }
    }

    let mut env = spec.env.clone();
    env.insert(
        "MESOS_SANDBOX".into(),
        spec.sandbox_directory.display().to_string(),
    );
    if let Some(vars) = spec.command.and_then(|c| c.environment.as_ref()) {
        for var in &vars.variables {
            env.insert(var.name.clone(), var.value.clone().unwrap_or_default());
        }
    }

    // Resources.
    let resources = Resources::from(spec.resources.to_vec());
    let cpus = resources.scalar("cpus");
    if cpus > 0.0 {
        host.cpu_shares = Some(((cpus * CPU_SHARES_PER_CPU) as i64).max(MIN_CPU_SHARES));
        if spec.enable_cfs {
            host.cpu_period = Some(CFS_PERIOD_US);
            host.cpu_quota = Some(((cpus * CFS_PERIOD_US as f64) as i64).max(1000));
        }
    }
    let mem = resources.scalar("mem");
    if mem > 0.0 {
        host.memory = Some(((mem * 1024.0 * 1024.0) as i64).max(MIN_MEMORY_BYTES));
    }

    // Volumes: the sandbox first, then the task's.
    let mut binds = vec![format!(
        "{}:{}",
        spec.sandbox.display(),
        spec.sandbox_directory.display()
    )];
    for volume in &spec.container.volumes {
        binds.push(bind(volume, spec.sandbox)?);
    }

    // Network.
    let network = docker.network.map_or(Network::Host, |_| docker.network());
    match network {
        Network::Host => host.network_mode = Some("host".into()),
        Network::None => host.network_mode = Some("none".into()),
        Network::Bridge => host.network_mode = Some("bridge".into()),
        Network::User => {
            let name = spec
                .container
                .network_infos
                .iter()
                .find_map(|n| n.name.clone())
                .ok_or(SpecError::NoUserNetwork)?;
            host.network_mode = Some(name);
        }
    }
    if !matches!(network, Network::Host | Network::None) {
        if let Some(hostname) = &spec.container.hostname {
            config.hostname = Some(hostname.clone());
        }
        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for mapping in &docker.port_mappings {
            let protocol = mapping.protocol.clone().unwrap_or_else(|| "tcp".into());
            let key = format!(
                "{}/{}",
                mapping.container_port,
                protocol.to_ascii_lowercase()
            );
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: None,
                    host_port: Some(mapping.host_port.to_string()),
                });
        }
        if !bindings.is_empty() {
            config.exposed_ports = Some(exposed);
            host.port_bindings = Some(bindings);
        }
    }

    // Labels.
    let mut labels: HashMap<String, String> = HashMap::new();
    for label in spec.labels.map(|l| l.labels.as_slice()).unwrap_or_default() {
        labels.insert(label.key.clone(), label.value.clone().unwrap_or_default());
    }

    for parameter in &docker.parameters {
        apply_parameter(
            &parameter.key,
            &parameter.value,
            &mut config,
            &mut host,
            &mut env,
            &mut labels,
            &mut binds,
        )?;
    }

    config.env = Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect());
    if !labels.is_empty() {
        config.labels = Some(labels);
    }
    host.binds = Some(binds);
    config.host_config = Some(host);
    Ok(config)
}

/// `host_path:container_path[:ro]`; a relative host path is in the sandbox.
fn bind(volume: &v1::Volume, sandbox: &Path) -> Result<String, SpecError> {
    let container_path = &volume.container_path;
    let host_path = volume.host_path.as_deref().ok_or_else(|| {
        SpecError::BadVolume(
            container_path.clone(),
            "only host_path volumes are supported".into(),
        )
    })?;
    let host: PathBuf = if Path::new(host_path).is_absolute() {
        PathBuf::from(host_path)
    } else {
        if Path::new(host_path)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(SpecError::BadVolume(
                container_path.clone(),
                "a relative host_path must stay in the sandbox".into(),
            ));
        }
        sandbox.join(host_path)
    };
    let mode = match volume.mode() {
        v1::volume::Mode::Ro => ":ro",
        v1::volume::Mode::Rw => "",
    };
    Ok(format!("{}:{container_path}{mode}", host.display()))
}

/// A `docker run` option given as `DockerInfo.parameters`. The common ones
/// map to the Engine's fields; anything else is refused with its name, so
/// a task never runs with an option silently dropped.
fn apply_parameter(
    key: &str,
    value: &str,
    config: &mut ContainerCreateBody,
    host: &mut HostConfig,
    env: &mut BTreeMap<String, String>,
    labels: &mut HashMap<String, String>,
    binds: &mut Vec<String>,
) -> Result<(), SpecError> {
    let bad = |problem: &str| SpecError::BadParameter {
        key: key.to_string(),
        problem: problem.to_string(),
    };
    let number = |v: &str| v.parse::<i64>().map_err(|_| bad("expected a number"));
    let list = |field: &mut Option<Vec<String>>| {
        field.get_or_insert_with(Vec::new).push(value.to_string())
    };
    match key {
        "env" | "e" => {
            let (k, v) = value
                .split_once('=')
                .ok_or_else(|| bad("expected NAME=VALUE"))?;
            env.insert(k.to_string(), v.to_string());
        }
        "label" | "l" => {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            labels.insert(k.to_string(), v.to_string());
        }
        "volume" | "v" => binds.push(value.to_string()),
        "workdir" | "w" => config.working_dir = Some(value.to_string()),
        "user" | "u" => config.user = Some(value.to_string()),
        "hostname" | "h" => config.hostname = Some(value.to_string()),
        "entrypoint" => config.entrypoint = Some(vec![value.to_string()]),
        "cap-add" => list(&mut host.cap_add),
        "cap-drop" => list(&mut host.cap_drop),
        "dns" => list(&mut host.dns),
        "dns-search" => list(&mut host.dns_search),
        "add-host" => list(&mut host.extra_hosts),
        "security-opt" => list(&mut host.security_opt),
        "device" => {
            let mut parts = value.split(':');
            let on_host = parts.next().unwrap_or_default().to_string();
            let in_container = parts
                .next()
                .map(str::to_string)
                .unwrap_or_else(|| on_host.clone());
            let permissions = parts.next().unwrap_or("rwm").to_string();
            host.devices
                .get_or_insert_with(Vec::new)
                .push(bollard::models::DeviceMapping {
                    path_on_host: Some(on_host),
                    path_in_container: Some(in_container),
                    cgroup_permissions: Some(permissions),
                });
        }
        "memory-swap" => host.memory_swap = Some(number(value)?),
        "pids-limit" => host.pids_limit = Some(number(value)?),
        "shm-size" => host.shm_size = Some(number(value)?),
        "oom-score-adj" => host.oom_score_adj = Some(number(value)?),
        "init" => host.init = Some(value != "false"),
        "read-only" => host.readonly_rootfs = Some(value != "false"),
        "ipc" => host.ipc_mode = Some(value.to_string()),
        "pid" => host.pid_mode = Some(value.to_string()),
        "uts" => host.uts_mode = Some(value.to_string()),
        "stop-signal" => config.stop_signal = Some(value.to_string()),
        "tmpfs" => {
            let (path, options) = value.split_once(':').unwrap_or((value, ""));
            host.tmpfs
                .get_or_insert_with(HashMap::new)
                .insert(path.to_string(), options.to_string());
        }
        "sysctl" => {
            let (k, v) = value
                .split_once('=')
                .ok_or_else(|| bad("expected NAME=VALUE"))?;
            host.sysctls
                .get_or_insert_with(HashMap::new)
                .insert(k.to_string(), v.to_string());
        }
        other => return Err(SpecError::UnsupportedParameter(other.to_string())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(name: &str, value: f64) -> v1::Resource {
        v1::Resource {
            name: name.into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value }),
            ..Default::default()
        }
    }

    fn docker(network: Network) -> v1::ContainerInfo {
        v1::ContainerInfo {
            r#type: v1::container_info::Type::Docker as i32,
            docker: Some(v1::container_info::DockerInfo {
                image: "busybox:1".into(),
                network: Some(network as i32),
                port_mappings: vec![v1::container_info::docker_info::PortMapping {
                    host_port: 31001,
                    container_port: 80,
                    protocol: None,
                }],
                ..Default::default()
            }),
            volumes: vec![
                v1::Volume {
                    mode: v1::volume::Mode::Ro as i32,
                    container_path: "/etc/conf".into(),
                    host_path: Some("/srv/conf".into()),
                    ..Default::default()
                },
                v1::Volume {
                    mode: v1::volume::Mode::Rw as i32,
                    container_path: "/data".into(),
                    host_path: Some("data".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn spec<'a>(
        container: &'a v1::ContainerInfo,
        command: Option<&'a v1::CommandInfo>,
        resources: &'a [v1::Resource],
    ) -> RunSpec<'a> {
        RunSpec {
            container,
            command,
            resources,
            labels: None,
            sandbox: Path::new("/var/lib/mesos/sandbox"),
            sandbox_directory: Path::new("/mnt/mesos/sandbox"),
            env: BTreeMap::from([("MESOS_TASK_ID".into(), "t".into())]),
            enable_cfs: true,
        }
    }

    #[test]
    fn a_bridge_task_gets_limits_ports_volumes_and_its_shell_command() {
        let container = docker(Network::Bridge);
        let command = v1::CommandInfo {
            value: Some("echo hi".into()),
            ..Default::default()
        };
        let resources = [scalar("cpus", 0.5), scalar("mem", 64.0)];
        let config = container_config(&spec(&container, Some(&command), &resources)).unwrap();
        assert_eq!(config.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(
            config.cmd,
            Some(vec!["-c".to_string(), "echo hi".to_string()])
        );
        let host = config.host_config.unwrap();
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.cpu_quota, Some(50_000));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        let ports = host.port_bindings.unwrap();
        assert_eq!(
            ports["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("31001")
        );
        assert_eq!(
            host.binds.unwrap(),
            vec![
                "/var/lib/mesos/sandbox:/mnt/mesos/sandbox".to_string(),
                "/srv/conf:/etc/conf:ro".to_string(),
                "/var/lib/mesos/sandbox/data:/data".to_string(),
            ]
        );
        let env = config.env.unwrap();
        assert!(env.contains(&"MESOS_SANDBOX=/mnt/mesos/sandbox".to_string()));
        assert!(env.contains(&"MESOS_TASK_ID=t".to_string()));
    }

    #[test]
    fn host_network_ignores_port_mappings_and_plain_commands_keep_the_entrypoint() {
        let container = docker(Network::Host);
        let command = v1::CommandInfo {
            value: Some("serve".into()),
            shell: Some(false),
            arguments: vec!["--port".into(), "80".into()],
            ..Default::default()
        };
        let config = container_config(&spec(&container, Some(&command), &[])).unwrap();
        assert_eq!(config.entrypoint, None);
        assert_eq!(
            config.cmd,
            Some(vec!["serve".to_string(), "--port".into(), "80".into()])
        );
        let host = config.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert!(host.port_bindings.is_none());
        assert!(host.memory.is_none());
    }

    #[test]
    fn parameters_map_to_engine_fields_and_unknown_ones_are_refused() {
        let mut container = docker(Network::None);
        let parameters = |pairs: &[(&str, &str)]| -> Vec<v1::Parameter> {
            pairs
                .iter()
                .map(|(k, v)| v1::Parameter {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect()
        };
        if let Some(d) = container.docker.as_mut() {
            d.parameters = parameters(&[
                ("env", "A=1"),
                ("label", "team=x"),
                ("cap-add", "NET_ADMIN"),
                ("pids-limit", "64"),
            ]);
        }
        let config = container_config(&spec(&container, None, &[])).unwrap();
        assert!(config.env.unwrap().contains(&"A=1".to_string()));
        assert_eq!(config.labels.unwrap()["team"], "x");
        let host = config.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(host.pids_limit, Some(64));

        if let Some(d) = container.docker.as_mut() {
            d.parameters = parameters(&[("frobnicate", "yes")]);
        }
        assert_eq!(
            container_config(&spec(&container, None, &[])),
            Err(SpecError::UnsupportedParameter("frobnicate".into()))
        );
        if let Some(d) = container.docker.as_mut() {
            d.parameters = parameters(&[("pids-limit", "lots")]);
        }
        assert!(matches!(
            container_config(&spec(&container, None, &[])),
            Err(SpecError::BadParameter { .. })
        ));
    }

    #[test]
    fn volumes_cannot_climb_out_of_the_sandbox() {
        let mut container = docker(Network::Host);
        container.volumes = vec![v1::Volume {
            mode: v1::volume::Mode::Rw as i32,
            container_path: "/x".into(),
            host_path: Some("../../etc".into()),
            ..Default::default()
        }];
        assert!(matches!(
            container_config(&spec(&container, None, &[])),
            Err(SpecError::BadVolume(..))
        ));
    }
}
