//! The hook kind of the SDK: implement [`HookPlugin`] and write
//! `export_hook!(MyHook);`. Each method is one of Mesos's hook points,
//! the master's (`master_*`) or the agent's (`slave_*`); leave out the
//! ones you do not need (they answer "unimplemented", which the daemon
//! takes as "no change").

use super::{Kind, PluginError, kind, method::hook as method, proto, run};
use crate::abi::API_VERSION;
use proto::{
    AttributesDecoratorRequest, AttributesDecoratorResponse, ExecutorEnvironmentDecoratorRequest,
    ExecutorEnvironmentDecoratorResponse, MasterLaunchTaskLabelDecoratorRequest,
    MasterLaunchTaskLabelDecoratorResponse, MasterLaunchTaskResourceDecoratorRequest,
    MasterLaunchTaskResourceDecoratorResponse, MasterSlaveLostRequest, MasterSlaveLostResponse,
    PostFetchRequest, PostFetchResponse, PreLaunchDecoratorRequest, PreLaunchDecoratorResponse,
    RemoveExecutorRequest, RemoveExecutorResponse, ResourcesDecoratorRequest,
    ResourcesDecoratorResponse, RunTaskLabelDecoratorRequest, RunTaskLabelDecoratorResponse,
    TaskStatusDecoratorRequest, TaskStatusDecoratorResponse,
};

/// A hook written against the plugin envelope. One instance serves every
/// call; the host makes one call at a time.
pub trait HookPlugin: Default + Send + Sync + 'static {
    /// Reverse-DNS name, the one `plugin.toml` and `--hooks` use.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    /// The task's labels are replaced by the answer's, if set.
    fn slave_run_task_label_decorator(
        &self,
        _request: RunTaskLabelDecoratorRequest,
    ) -> Result<RunTaskLabelDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(method::RUN_TASK_LABEL_DECORATOR))
    }

    /// The executor's environment is replaced by the answer's, if set.
    fn slave_executor_environment_decorator(
        &self,
        _request: ExecutorEnvironmentDecoratorRequest,
    ) -> Result<ExecutorEnvironmentDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(
            method::EXECUTOR_ENVIRONMENT_DECORATOR,
        ))
    }

    /// The answer's variables and labels are added to the container.
    fn slave_pre_launch_decorator(
        &self,
        _request: PreLaunchDecoratorRequest,
    ) -> Result<PreLaunchDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(method::PRE_LAUNCH_DECORATOR))
    }

    /// The status's labels and container status are replaced by the
    /// answer's, where set.
    fn slave_task_status_decorator(
        &self,
        _request: TaskStatusDecoratorRequest,
    ) -> Result<TaskStatusDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(method::TASK_STATUS_DECORATOR))
    }

    /// The sandbox holds the container's fetched URIs; the container has
    /// not started.
    /// The labels of the task the agent gets are replaced by the answer's,
    /// where set.
    fn master_launch_task_label_decorator(
        &self,
        _request: MasterLaunchTaskLabelDecoratorRequest,
    ) -> Result<MasterLaunchTaskLabelDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(
            method::MASTER_LAUNCH_TASK_LABEL_DECORATOR,
        ))
    }

    /// The task's resources, before the master checks them, are replaced
    /// by the answer's, where set.
    fn master_launch_task_resource_decorator(
        &self,
        _request: MasterLaunchTaskResourceDecoratorRequest,
    ) -> Result<MasterLaunchTaskResourceDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(
            method::MASTER_LAUNCH_TASK_RESOURCE_DECORATOR,
        ))
    }

    fn master_slave_lost_hook(
        &self,
        _request: MasterSlaveLostRequest,
    ) -> Result<MasterSlaveLostResponse, PluginError> {
        Err(PluginError::unimplemented(method::MASTER_SLAVE_LOST_HOOK))
    }

    /// The agent's resources are replaced by the answer's, where set.
    fn slave_resources_decorator(
        &self,
        _request: ResourcesDecoratorRequest,
    ) -> Result<ResourcesDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(method::RESOURCES_DECORATOR))
    }

    /// The agent's attributes are replaced by the answer's, where set.
    fn slave_attributes_decorator(
        &self,
        _request: AttributesDecoratorRequest,
    ) -> Result<AttributesDecoratorResponse, PluginError> {
        Err(PluginError::unimplemented(method::ATTRIBUTES_DECORATOR))
    }

    fn slave_post_fetch_hook(
        &self,
        _request: PostFetchRequest,
    ) -> Result<PostFetchResponse, PluginError> {
        Err(PluginError::unimplemented(method::POST_FETCH_HOOK))
    }

    fn slave_remove_executor_hook(
        &self,
        _request: RemoveExecutorRequest,
    ) -> Result<RemoveExecutorResponse, PluginError> {
        Err(PluginError::unimplemented(method::REMOVE_EXECUTOR_HOOK))
    }
}

/// What `describe` answers for `P`.
pub fn hook_info<P: HookPlugin>() -> proto::PluginInfo {
    proto::PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        kinds: vec![kind::HOOK.to_string()],
        api_versions: vec![API_VERSION.to_string()],
    }
}

/// Decodes the request of `method`, runs it, encodes the response.
pub fn hook_dispatch<P: HookPlugin>(
    plugin: &P,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, PluginError> {
    match method {
        method::MASTER_LAUNCH_TASK_LABEL_DECORATOR => run(method, request, |r| {
            plugin.master_launch_task_label_decorator(r)
        }),
        method::MASTER_LAUNCH_TASK_RESOURCE_DECORATOR => run(method, request, |r| {
            plugin.master_launch_task_resource_decorator(r)
        }),
        method::MASTER_SLAVE_LOST_HOOK => {
            run(method, request, |r| plugin.master_slave_lost_hook(r))
        }
        method::RESOURCES_DECORATOR => {
            run(method, request, |r| plugin.slave_resources_decorator(r))
        }
        method::ATTRIBUTES_DECORATOR => {
            run(method, request, |r| plugin.slave_attributes_decorator(r))
        }
        method::RUN_TASK_LABEL_DECORATOR => run(method, request, |r| {
            plugin.slave_run_task_label_decorator(r)
        }),
        method::EXECUTOR_ENVIRONMENT_DECORATOR => run(method, request, |r| {
            plugin.slave_executor_environment_decorator(r)
        }),
        method::PRE_LAUNCH_DECORATOR => {
            run(method, request, |r| plugin.slave_pre_launch_decorator(r))
        }
        method::TASK_STATUS_DECORATOR => {
            run(method, request, |r| plugin.slave_task_status_decorator(r))
        }
        method::POST_FETCH_HOOK => run(method, request, |r| plugin.slave_post_fetch_hook(r)),
        method::REMOVE_EXECUTOR_HOOK => {
            run(method, request, |r| plugin.slave_remove_executor_hook(r))
        }
        other => Err(PluginError::unimplemented(other)),
    }
}

/// The hook kind ([`HookPlugin`]).
#[derive(Debug)]
pub struct Hooks;

impl<P: HookPlugin> Kind<P> for Hooks {
    fn info() -> proto::PluginInfo {
        hook_info::<P>()
    }
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError> {
        plugin.configure(config)
    }
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        hook_dispatch(plugin, method, request)
    }
}
