//! The agent's side of the docker containerizer. A docker executor's
//! Engine container ends with its executor (an executor killed with
//! SIGKILL cannot stop it itself), and after a restart the `mesos-`
//! containers no recovered executor owns are removed
//! (`--docker_kill_orphans`).
//!
//! Mesos takes every `mesos-` container on the host for its own, so two
//! agents sharing a host must turn orphan killing off. Here an orphan must
//! also have its sandbox in this agent's `--work_dir`: agents sharing one
//! Engine leave each other's containers alone.

use std::collections::HashSet;
use std::path::Path;

use super::model::Executor;
use super::tasks::DOCKER_EXECUTOR;
use super::{Agent, DockerConfig};

impl Executor {
    /// The Engine container of a docker executor (for a command task) or
    /// of a custom executor in a DOCKER container.
    pub fn docker_container(&self) -> Option<String> {
        let docker_executor = self
            .info
            .command
            .as_ref()
            .and_then(|c| c.value.as_deref())
            .is_some_and(|v| v.ends_with(DOCKER_EXECUTOR));
        let in_docker = self
            .info
            .container
            .as_ref()
            .is_some_and(|c| c.r#type() == mesos_proto::v1::container_info::Type::Docker);
        (docker_executor || in_docker).then(|| mesos_docker::container_name(&self.container_id))
    }
}

/// Removes the Engine container of an executor that ended.
pub(super) fn remove_container(docker: &DockerConfig, executor: &Executor) {
    let Some(name) = executor.docker_container() else {
        return;
    };
    let socket = docker.socket.clone();
    tokio::spawn(async move {
        let removed = match mesos_docker::Engine::connect(&socket).await {
            Ok(engine) => engine.remove(&name).await,
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => tracing::info!(container = %name, "removed the executor's container"),
            // Mostly "No such container": it never started.
            Err(e) => tracing::debug!(container = %name, "not removed: {e}"),
        }
    });
}

impl Agent {
    /// After recovery: removes this agent's `mesos-` containers that no
    /// live executor owns.
    pub(super) fn kill_docker_orphans(&self) {
        let docker = &self.config.docker;
        if !docker.kill_orphans || !self.config.containerizers.iter().any(|c| c == "docker") {
            return;
        }
        let owned: HashSet<String> = self
            .frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .map(|e| e.container_id.clone())
            .collect();
        let (socket, work_dir) = (docker.socket.clone(), self.config.work_dir.clone());
        tokio::spawn(async move {
            let engine = match mesos_docker::Engine::connect(&socket).await {
                Ok(engine) => engine,
                Err(e) => {
                    tracing::warn!("cannot look for orphaned docker containers: {e}");
                    return;
                }
            };
            let containers = match engine.mesos_containers().await {
                Ok(containers) => containers,
                Err(e) => {
                    tracing::warn!("cannot list docker containers: {e}");
                    return;
                }
            };
            for container in containers {
                if owned.contains(&container.container_id) || !is_ours(&container, &work_dir) {
                    continue;
                }
                let name = mesos_docker::container_name(&container.container_id);
                match engine.remove(&name).await {
                    Ok(()) => tracing::info!(container = %name, "removed an orphaned container"),
                    Err(e) => tracing::warn!(container = %name, "cannot remove an orphan: {e}"),
                }
            }
        });
    }
}

/// Whether an Engine container was started by an agent with `work_dir`
/// (its sandbox is mounted from there).
fn is_ours(container: &mesos_docker::MesosContainer, work_dir: &Path) -> bool {
    container.mounts.iter().any(|m| m.starts_with(work_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_containers_with_a_sandbox_in_our_work_dir_are_ours() {
        let container = |mounts: &[&str]| mesos_docker::MesosContainer {
            container_id: "c".into(),
            running: true,
            mounts: mounts.iter().map(Into::into).collect(),
        };
        let ours = Path::new("/var/lib/mesos");
        assert!(is_ours(
            &container(&[
                "/data",
                "/var/lib/mesos/slaves/S0/frameworks/F/executors/e/runs/c"
            ]),
            ours
        ));
        assert!(!is_ours(&container(&["/var/lib/mesos2/slaves/S0"]), ours));
        assert!(!is_ours(&container(&[]), ours));
    }
}
