//! The hook: Mesos's hook points, where a plugin decorates what a daemon
//! is about to do (the master: a task it sends to its agent; the agent:
//! its own resources and attributes, a task's labels, an executor's
//! environment, a container's environment and labels, a status update)
//! or is told that something happened (the master: an agent was lost; the
//! agent: a sandbox was fetched, an executor was removed).
//!
//! Each daemon calls the hooks named by its `--hooks` in that order, and
//! each sees what the previous one returned. Every method defaults to "no
//! change" (`Ok(None)` or an empty [`Decoration`]), which is also what the
//! host applies when a plugin answers "unimplemented". Hooks decorate, they
//! do not decide: the agent logs a hook's error and goes on without it,
//! except for [`Hook::slave_pre_launch_decorator`] under a `fail_closed`
//! policy, which fails the launch as Mesos's Docker pre-launch hook does.

use mesos_proto::v1;

/// The containerizer launching a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containerizer {
    Mesos,
    Docker,
}

/// A container about to start, as [`Hook::slave_pre_launch_decorator`]
/// sees it.
#[derive(Debug, Clone)]
pub struct PreLaunch {
    pub containerizer: Containerizer,
    /// The task the container is for; `None` for a custom executor.
    pub task: Option<v1::TaskInfo>,
    pub executor: v1::ExecutorInfo,
    pub container_id: String,
    /// The Engine container's name (Docker only).
    pub container_name: Option<String>,
    /// The sandbox on the host.
    pub sandbox_directory: String,
    /// Where the container sees its sandbox.
    pub mapped_sandbox_directory: String,
    /// What the previous hooks added.
    pub added: Decoration,
}

/// What a pre-launch hook adds to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoration {
    /// Added to the container's environment.
    pub env: Vec<(String, String)>,
    /// Added to the container's labels (the Engine's; a Mesos container
    /// has none).
    pub labels: Vec<(String, String)>,
}

impl Decoration {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.labels.is_empty()
    }

    /// Adds another hook's decoration after this one's.
    pub fn merge(&mut self, other: Decoration) {
        self.env.extend(other.env);
        self.labels.extend(other.labels);
    }
}

/// What a status decorator replaces; `None` keeps the status's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusDecoration {
    pub labels: Option<v1::Labels>,
    pub container_status: Option<v1::ContainerStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {hook}: {message}")]
    Failed { hook: String, message: String },
}

pub trait Hook: Send + Sync {
    /// The name `--hooks` selects it by.
    fn name(&self) -> &str;

    /// The master is about to send a task it accepted to its agent: the
    /// task's new labels, as the agent gets them.
    fn master_launch_task_label_decorator(
        &self,
        _task: &v1::TaskInfo,
        _framework: &v1::FrameworkInfo,
        _agent: &v1::AgentInfo,
    ) -> Result<Option<v1::Labels>, HookError> {
        Ok(None)
    }

    /// The master got a task to launch on `offered`, before it checks the
    /// task: its new resources.
    fn master_launch_task_resource_decorator(
        &self,
        _task: &v1::TaskInfo,
        _offered: &[v1::Resource],
    ) -> Result<Option<Vec<v1::Resource>>, HookError> {
        Ok(None)
    }

    /// The master removed an agent as lost.
    fn master_slave_lost_hook(&self, _agent: &v1::AgentInfo) -> Result<(), HookError> {
        Ok(())
    }

    /// The agent is starting (before it recovers or registers): its new
    /// resources.
    fn slave_resources_decorator(
        &self,
        _agent: &v1::AgentInfo,
    ) -> Result<Option<Vec<v1::Resource>>, HookError> {
        Ok(None)
    }

    /// The agent is starting, its resources decorated: its new
    /// attributes.
    fn slave_attributes_decorator(
        &self,
        _agent: &v1::AgentInfo,
    ) -> Result<Option<Vec<v1::Attribute>>, HookError> {
        Ok(None)
    }

    /// A task is about to be handed to its executor: its new labels.
    fn slave_run_task_label_decorator(
        &self,
        _task: &v1::TaskInfo,
        _executor: &v1::ExecutorInfo,
        _framework: &v1::FrameworkInfo,
        _agent: &v1::AgentInfo,
    ) -> Result<Option<v1::Labels>, HookError> {
        Ok(None)
    }

    /// An executor is about to be launched: its command's new environment.
    fn slave_executor_environment_decorator(
        &self,
        _executor: &v1::ExecutorInfo,
    ) -> Result<Option<v1::Environment>, HookError> {
        Ok(None)
    }

    /// A container is about to start: what to add to it.
    fn slave_pre_launch_decorator(&self, _launch: &PreLaunch) -> Result<Decoration, HookError> {
        Ok(Decoration::default())
    }

    /// A status update is on its way to the framework.
    fn slave_task_status_decorator(
        &self,
        _framework_id: &str,
        _status: &v1::TaskStatus,
    ) -> Result<StatusDecoration, HookError> {
        Ok(StatusDecoration::default())
    }

    /// The URIs of container `container_id` were fetched into `directory`,
    /// its sandbox on the host; the container has not started.
    fn slave_post_fetch_hook(
        &self,
        _container_id: &str,
        _directory: &str,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// An executor was removed.
    fn slave_remove_executor_hook(
        &self,
        _framework: &v1::FrameworkInfo,
        _executor: &v1::ExecutorInfo,
    ) -> Result<(), HookError> {
        Ok(())
    }
}
