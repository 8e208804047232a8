//! The hooks of the master's `--hooks`, called in that order at Mesos's
//! master hook points; each sees what the previous one returned. A hook
//! decorates: its error is logged and the master goes on as if it had not
//! been called, as Mesos's hook manager does.
//!
//! Calls are synchronous, on the master loop as on Mesos's actor, and
//! bounded by each plugin's watchdog.

use std::sync::Arc;

use mesos_plugin_api::hook::Hook;
use mesos_proto::v1;

#[derive(Clone, Default)]
pub struct Hooks {
    hooks: Arc<[Arc<dyn Hook>]>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|h| h.name()))
            .finish()
    }
}

impl Hooks {
    pub fn new(hooks: Vec<Arc<dyn Hook>>) -> Self {
        Self {
            hooks: hooks.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// `master_launch_task_label_decorator`: the labels of `task`, on its
    /// way to its agent, replaced by each hook's answer in turn.
    pub fn decorate_launch(
        &self,
        task: &mut v1::TaskInfo,
        framework: &v1::FrameworkInfo,
        agent: &v1::AgentInfo,
    ) {
        for hook in self.hooks.iter() {
            match hook.master_launch_task_label_decorator(task, framework, agent) {
                Ok(Some(labels)) => task.labels = Some(labels),
                Ok(None) => {}
                Err(e) => tracing::warn!(task = %task.task_id.value, "labels not decorated: {e}"),
            }
        }
    }

    /// `master_launch_task_resource_decorator`: the resources of `task`,
    /// launched on `offered`, replaced by each hook's answer in turn,
    /// before the master checks them.
    pub fn decorate_launch_resources(&self, task: &mut v1::TaskInfo, offered: &[v1::Resource]) {
        for hook in self.hooks.iter() {
            match hook.master_launch_task_resource_decorator(task, offered) {
                Ok(Some(resources)) => task.resources = resources,
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    task = %task.task_id.value,
                    "resources not decorated: {e}"
                ),
            }
        }
    }

    /// `master_slave_lost_hook`.
    pub fn agent_lost(&self, agent: &v1::AgentInfo) {
        for hook in self.hooks.iter() {
            if let Err(e) = hook.master_slave_lost_hook(agent) {
                tracing::warn!(agent = %agent.hostname, "{e}");
            }
        }
    }
}
