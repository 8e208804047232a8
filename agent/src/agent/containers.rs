//! The agent's live containers as `/containers` and `/monitor/statistics`
//! see them: identity and limits from the agent's state, usage read by the
//! caller off the agent loop.

use std::path::PathBuf;

use super::Agent;
use super::state_json::executor_resources;

/// One running executor's container.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub framework_id: String,
    pub executor_id: String,
    pub executor_name: String,
    pub source: String,
    pub container_id: String,
    pub sandbox: PathBuf,
    /// The executor's pid, which leads the container's session; `None`
    /// while it is being launched.
    pub pid: Option<u32>,
    pub cpus_limit: Option<f64>,
    pub mem_limit_bytes: Option<u64>,
    /// The Engine container of a docker executor, measured by the Engine.
    pub docker_container: Option<String>,
}

impl Agent {
    pub(super) fn containers(&self) -> Vec<ContainerView> {
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .map(|executor| {
                let resources = executor_resources(executor);
                let info = &executor.info;
                ContainerView {
                    framework_id: executor.framework_id().to_string(),
                    executor_id: info.executor_id.value.clone(),
                    executor_name: info.name.clone().unwrap_or_default(),
                    source: info.source.clone().unwrap_or_default(),
                    container_id: executor.container_id.clone(),
                    sandbox: executor.sandbox.clone(),
                    pid: executor.pid,
                    cpus_limit: Some(resources.scalar("cpus")).filter(|c| *c > 0.0),
                    mem_limit_bytes: Some(resources.scalar("mem"))
                        .filter(|mb| *mb > 0.0)
                        .map(|mb| (mb * 1024.0 * 1024.0).round() as u64),
                    docker_container: executor.docker_container(),
                }
            })
            .collect()
    }
}
