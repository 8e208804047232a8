//! A custom executor in a DOCKER container. The agent starts
//! `mesos-docker-executor` with the executor's `ExecutorInfo` in
//! `MESOS_DOCKER_EXECUTOR_INFO`; it runs the executor's command in the
//! container `mesos-<container id>` with the sandbox mounted at
//! `--sandbox_directory` and the executor's `MESOS_*` environment (so the
//! executor inside subscribes to the agent itself, over the network the
//! container is given: HOST reaches an agent on loopback), copies the
//! container's output to the sandbox, and exits with its exit code. The
//! agent tracks this process as the executor's; it removes the container
//! when the executor ends.

use std::collections::BTreeMap;

use mesos_docker::{Engine, RunSpec};
use mesos_proto::v1;

use super::DockerSettings;
use crate::command_executor::ExecutorError;

/// The variable carrying the executor's `ExecutorInfo` (JSON).
pub const EXECUTOR_INFO_VAR: &str = "MESOS_DOCKER_EXECUTOR_INFO";
/// The variable carrying the executor's container ID.
pub const CONTAINER_ID_VAR: &str = "MESOS_DOCKER_CONTAINER_ID";

/// A custom executor to run in a container.
#[derive(Debug, Clone)]
pub struct ExecutorContainer {
    pub info: v1::ExecutorInfo,
    pub container_id: String,
}

impl ExecutorContainer {
    /// `None` when the agent started this binary as a docker executor for
    /// a command task.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ExecutorError> {
        let Some(json) = get(EXECUTOR_INFO_VAR) else {
            return Ok(None);
        };
        let info =
            mesos_proto::json::from_json(json.as_bytes()).map_err(|e| ExecutorError::BadEnv {
                name: EXECUTOR_INFO_VAR,
                reason: e.to_string(),
            })?;
        let container_id =
            get(CONTAINER_ID_VAR).ok_or(ExecutorError::MissingEnv(CONTAINER_ID_VAR))?;
        Ok(Some(Self { info, container_id }))
    }
}

/// Runs the executor's container until it exits; its exit code.
pub async fn supervise(
    docker: &DockerSettings,
    executor: &ExecutorContainer,
    env: BTreeMap<String, String>,
) -> Result<i64, ExecutorError> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| ExecutorError::Container(format!("{what}: {e}"));
    let container = executor
        .info
        .container
        .as_ref()
        .filter(|c| c.r#type() == v1::container_info::Type::Docker)
        .ok_or_else(|| {
            ExecutorError::Container("the executor has no DOCKER ContainerInfo".into())
        })?;
    let config = mesos_docker::container_config(&RunSpec {
        container,
        command: executor.info.command.as_ref(),
        resources: &executor.info.resources,
        labels: docker.added.labels(executor.info.labels.as_ref()).as_ref(),
        sandbox: &docker.sandbox,
        sandbox_directory: &docker.sandbox_directory,
        env: docker.added.env(container_env(env, docker)),
        enable_cfs: docker.enable_cfs,
    })
    .map_err(|e| failed("invalid executor container", &e))?;
    let image = mesos_docker::image(container).map_err(|e| failed("no image", &e))?;
    let force = container
        .docker
        .as_ref()
        .and_then(|d| d.force_pull_image)
        .unwrap_or(false);
    let engine = Engine::connect(&docker.socket)
        .await
        .map_err(|e| failed("Docker Engine", &e))?;
    engine
        .pull(image, force)
        .await
        .map_err(|e| failed("pull", &e))?;
    let name = mesos_docker::container_name(&executor.container_id);
    engine
        .run(&name, config)
        .await
        .map_err(|e| failed("Failed to run the executor's container", &e))?;
    tracing::info!(container = %name, image, "executor container started");
    let (stdout, stderr) = (tokio::io::stdout(), tokio::io::stderr());
    let logs = engine.copy_logs(&name, stdout, stderr);
    let (code, logged) = tokio::join!(engine.wait(&name), logs);
    if let Err(e) = logged {
        tracing::warn!(container = %name, "output copy ended: {e}");
    }
    let code = code.map_err(|e| failed("lost track of the executor's container", &e))?;
    tracing::info!(container = %name, code, "executor container exited");
    Ok(code)
}

/// The executor's `MESOS_*` variables as the container sees them: its
/// sandbox is at `--sandbox_directory`, and the supervisor's own settings
/// stay outside.
fn container_env(
    mut env: BTreeMap<String, String>,
    docker: &DockerSettings,
) -> BTreeMap<String, String> {
    env.retain(|name, _| {
        name.starts_with("MESOS_")
            && !name.starts_with("MESOS_DOCKER_")
            && name != "MESOS_SANDBOX_DIRECTORY"
    });
    let inside = docker.sandbox_directory.display().to_string();
    env.insert("MESOS_DIRECTORY".into(), inside.clone());
    env.insert("MESOS_SANDBOX".into(), inside);
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn the_executor_sees_its_sandbox_inside_and_not_the_supervisors_settings() {
        let docker = DockerSettings {
            socket: "/var/run/docker.sock".into(),
            sandbox: "/var/lib/mesos/slaves/S/runs/c".into(),
            sandbox_directory: PathBuf::from("/mnt/mesos/sandbox"),
            stop_timeout: Duration::ZERO,
            enable_cfs: false,
            added: Default::default(),
        };
        let env: BTreeMap<String, String> = [
            ("MESOS_FRAMEWORK_ID", "F"),
            ("MESOS_DIRECTORY", "/var/lib/mesos/slaves/S/runs/c"),
            ("MESOS_DOCKER_SOCKET", "/var/run/docker.sock"),
            (EXECUTOR_INFO_VAR, "{}"),
            ("PATH", "/usr/bin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let inside = container_env(env, &docker);
        assert_eq!(inside["MESOS_FRAMEWORK_ID"], "F");
        assert_eq!(inside["MESOS_DIRECTORY"], "/mnt/mesos/sandbox");
        assert_eq!(inside["MESOS_SANDBOX"], "/mnt/mesos/sandbox");
        assert!(!inside.contains_key("MESOS_DOCKER_SOCKET"));
        assert!(!inside.contains_key(EXECUTOR_INFO_VAR));
        assert!(!inside.contains_key("PATH"), "the image's PATH applies");
    }

    #[test]
    fn a_bad_executor_info_is_named() {
        let vars = |name: &str| match name {
            EXECUTOR_INFO_VAR => Some("{not json".to_string()),
            _ => None,
        };
        let err = ExecutorContainer::from_env(vars).unwrap_err();
        assert!(err.to_string().contains(EXECUTOR_INFO_VAR), "{err}");
        assert!(ExecutorContainer::from_env(|_| None).unwrap().is_none());
    }
}
