//! A [`Hook`] reached through the plugin envelope: each hook point is one
//! call, and an unset answer (or "unimplemented") means "no change".

use mesos_proto::plugin::v1 as proto;
use mesos_proto::v1;

use super::{Failure, Policy, Remote};
use crate::abi::method::hook as method;
use crate::envelope::Envelope;
use crate::hook::{Containerizer, Decoration, Hook, HookError, PreLaunch, StatusDecoration};

#[derive(Debug)]
pub struct PluginHook {
    remote: Remote<HookError>,
}

impl Failure for HookError {
    fn failure(hook: &'static str, message: String) -> Self {
        HookError::Failed {
            hook: hook.to_string(),
            message,
        }
    }
}

impl PluginHook {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
        }
    }
}

fn pairs(vars: &[(String, String)]) -> Vec<proto::EnvironmentVariable> {
    vars.iter()
        .map(|(name, value)| proto::EnvironmentVariable {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn labels(labels: &[(String, String)]) -> Vec<v1::Label> {
    labels
        .iter()
        .map(|(key, value)| v1::Label {
            key: key.clone(),
            value: Some(value.clone()),
        })
        .collect()
}

impl Hook for PluginHook {
    fn name(&self) -> &str {
        self.remote.name
    }

    fn slave_run_task_label_decorator(
        &self,
        task: &v1::TaskInfo,
        executor: &v1::ExecutorInfo,
        framework: &v1::FrameworkInfo,
        agent: &v1::AgentInfo,
    ) -> Result<Option<v1::Labels>, HookError> {
        let request = proto::RunTaskLabelDecoratorRequest {
            task: Some(task.clone()),
            executor: Some(executor.clone()),
            framework: Some(framework.clone()),
            agent: Some(agent.clone()),
        };
        let response = self.remote.call::<proto::RunTaskLabelDecoratorResponse>(
            method::RUN_TASK_LABEL_DECORATOR,
            &request,
        )?;
        Ok(response.and_then(|r| r.labels))
    }

    fn slave_executor_environment_decorator(
        &self,
        executor: &v1::ExecutorInfo,
    ) -> Result<Option<v1::Environment>, HookError> {
        let request = proto::ExecutorEnvironmentDecoratorRequest {
            executor: Some(executor.clone()),
        };
        let response = self
            .remote
            .call::<proto::ExecutorEnvironmentDecoratorResponse>(
                method::EXECUTOR_ENVIRONMENT_DECORATOR,
                &request,
            )?;
        Ok(response.and_then(|r| r.environment))
    }

    fn slave_pre_launch_decorator(&self, launch: &PreLaunch) -> Result<Decoration, HookError> {
        use proto::pre_launch_decorator_request::Containerizer as Wire;
        let request = proto::PreLaunchDecoratorRequest {
            containerizer: match launch.containerizer {
                Containerizer::Mesos => Wire::Mesos,
                Containerizer::Docker => Wire::Docker,
            } as i32,
            task: launch.task.clone(),
            executor: Some(launch.executor.clone()),
            container_id: launch.container_id.clone(),
            container_name: launch.container_name.clone().unwrap_or_default(),
            sandbox_directory: launch.sandbox_directory.clone(),
            mapped_sandbox_directory: launch.mapped_sandbox_directory.clone(),
            env: pairs(&launch.added.env),
            labels: labels(&launch.added.labels),
        };
        let Some(response) = self
            .remote
            .call::<proto::PreLaunchDecoratorResponse>(method::PRE_LAUNCH_DECORATOR, &request)?
        else {
            return Ok(Decoration::default());
        };
        Ok(Decoration {
            env: response
                .env
                .into_iter()
                .map(|var| (var.name, var.value))
                .collect(),
            labels: response
                .labels
                .into_iter()
                .map(|label| (label.key, label.value.unwrap_or_default()))
                .collect(),
        })
    }

    fn slave_task_status_decorator(
        &self,
        framework_id: &str,
        status: &v1::TaskStatus,
    ) -> Result<StatusDecoration, HookError> {
        let request = proto::TaskStatusDecoratorRequest {
            framework_id: framework_id.to_string(),
            status: Some(status.clone()),
        };
        let response = self
            .remote
            .call::<proto::TaskStatusDecoratorResponse>(method::TASK_STATUS_DECORATOR, &request)?;
        Ok(response
            .map(|r| StatusDecoration {
                labels: r.labels,
                container_status: r.container_status,
            })
            .unwrap_or_default())
    }

    fn master_launch_task_label_decorator(
        &self,
        task: &v1::TaskInfo,
        framework: &v1::FrameworkInfo,
        agent: &v1::AgentInfo,
    ) -> Result<Option<v1::Labels>, HookError> {
        let request = proto::MasterLaunchTaskLabelDecoratorRequest {
            task: Some(task.clone()),
            framework: Some(framework.clone()),
            agent: Some(agent.clone()),
        };
        let response = self
            .remote
            .call::<proto::MasterLaunchTaskLabelDecoratorResponse>(
                method::MASTER_LAUNCH_TASK_LABEL_DECORATOR,
                &request,
            )?;
        Ok(response.and_then(|r| r.labels))
    }

    fn master_launch_task_resource_decorator(
        &self,
        task: &v1::TaskInfo,
        offered: &[v1::Resource],
    ) -> Result<Option<Vec<v1::Resource>>, HookError> {
        let request = proto::MasterLaunchTaskResourceDecoratorRequest {
            task: Some(task.clone()),
            offered: offered.to_vec(),
        };
        let response = self
            .remote
            .call::<proto::MasterLaunchTaskResourceDecoratorResponse>(
                method::MASTER_LAUNCH_TASK_RESOURCE_DECORATOR,
                &request,
            )?;
        Ok(response.and_then(|r| r.resources).map(|r| r.resources))
    }

    fn master_slave_lost_hook(&self, agent: &v1::AgentInfo) -> Result<(), HookError> {
        let request = proto::MasterSlaveLostRequest {
            agent: Some(agent.clone()),
        };
        self.remote
            .call::<proto::MasterSlaveLostResponse>(method::MASTER_SLAVE_LOST_HOOK, &request)
            .map(drop)
    }

    fn slave_resources_decorator(
        &self,
        agent: &v1::AgentInfo,
    ) -> Result<Option<Vec<v1::Resource>>, HookError> {
        let request = proto::ResourcesDecoratorRequest {
            agent: Some(agent.clone()),
        };
        let response = self
            .remote
            .call::<proto::ResourcesDecoratorResponse>(method::RESOURCES_DECORATOR, &request)?;
        Ok(response.and_then(|r| r.resources).map(|r| r.resources))
    }

    fn slave_attributes_decorator(
        &self,
        agent: &v1::AgentInfo,
    ) -> Result<Option<Vec<v1::Attribute>>, HookError> {
        let request = proto::AttributesDecoratorRequest {
            agent: Some(agent.clone()),
        };
        let response = self
            .remote
            .call::<proto::AttributesDecoratorResponse>(method::ATTRIBUTES_DECORATOR, &request)?;
        Ok(response.and_then(|r| r.attributes).map(|a| a.attributes))
    }

    fn slave_post_fetch_hook(&self, container_id: &str, directory: &str) -> Result<(), HookError> {
        let request = proto::PostFetchRequest {
            container_id: container_id.to_string(),
            directory: directory.to_string(),
        };
        self.remote
            .call::<proto::PostFetchResponse>(method::POST_FETCH_HOOK, &request)
            .map(drop)
    }

    fn slave_remove_executor_hook(
        &self,
        framework: &v1::FrameworkInfo,
        executor: &v1::ExecutorInfo,
    ) -> Result<(), HookError> {
        let request = proto::RemoveExecutorRequest {
            framework: Some(framework.clone()),
            executor: Some(executor.clone()),
        };
        self.remote
            .call::<proto::RemoveExecutorResponse>(method::REMOVE_EXECUTOR_HOOK, &request)
            .map(drop)
    }
}
