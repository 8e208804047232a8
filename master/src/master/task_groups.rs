//! LAUNCH_GROUP: a task group (pod) starts whole or not at all. Mesos's
//! checks apply to the group and each of its tasks; any failure answers
//! TASK_ERROR with REASON_TASK_GROUP_INVALID for every task of the group.

use std::collections::HashSet;

use mesos_proto::internal::v1 as internal;
use mesos_proto::internal::v1::master_to_agent;
use mesos_proto::v1::{self, TaskState, offer::operation, task_status::Reason};
use mesos_resources::Resources;

use super::Master;
use crate::wire;

impl Master {
    pub(super) fn launch_group(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        group: operation::LaunchGroup,
        remaining: &mut Resources,
    ) {
        let mut executor = group.executor;
        let tasks = group.task_group.tasks;
        let needed = match self.validate_group(framework_id, agent_id, &executor, &tasks, remaining)
        {
            Ok(needed) => needed,
            Err(message) => {
                tracing::info!(framework = framework_id, %message, "invalid task group");
                self.counters.tasks_error += tasks.len() as u64;
                for task in &tasks {
                    self.send_master_update(
                        framework_id,
                        &task.task_id,
                        None,
                        TaskState::TaskError,
                        Reason::TaskGroupInvalid,
                        &message,
                    );
                }
                return;
            }
        };
        *remaining = remaining.checked_sub(&needed).unwrap_or_default();
        executor.framework_id = Some(wire::framework_id(framework_id));

        // The executor's resources (when it is new) are booked on the first
        // task, as for a single task with a new executor.
        let mut executor_share = needed;
        for task in &tasks {
            executor_share = executor_share
                .checked_sub(&wire::incoming(&task.resources))
                .unwrap_or_default();
        }
        let mut framework = None;
        for (i, task) in tasks.iter().enumerate() {
            let mut booked = task.clone();
            booked.executor = Some(executor.clone());
            let mut resources = wire::incoming(&task.resources);
            if i == 0 {
                resources.add(&executor_share);
            }
            framework = self.record_task(framework_id, agent_id, &booked, resources);
        }
        let Some(framework) = framework else {
            return;
        };
        self.counters.tasks_launched += tasks.len() as u64;
        let run = internal::RunTaskGroup {
            framework,
            executor,
            task_group: v1::TaskGroupInfo { tasks },
        };
        if !self.send_to_agent(
            agent_id,
            master_to_agent::Message::RunTaskGroup(Box::new(run)),
        ) {
            tracing::warn!(
                agent = agent_id,
                "could not reach the agent to launch a task group"
            );
        }
    }

    /// What the group takes from the offer (its tasks, plus its executor if
    /// that is not running on the agent yet), or why it is invalid.
    fn validate_group(
        &self,
        framework_id: &str,
        agent_id: &str,
        executor: &v1::ExecutorInfo,
        tasks: &[v1::TaskInfo],
        remaining: &Resources,
    ) -> Result<Resources, String> {
        if tasks.is_empty() {
            return Err("Task group is empty".into());
        }
        mesos_proto::ids::validate_id(&executor.executor_id.value).map_err(|e| {
            format!(
                "Executor ID '{}' is invalid: {e}",
                executor.executor_id.value
            )
        })?;
        if let Some(fid) = &executor.framework_id
            && fid.value != framework_id
        {
            return Err("ExecutorInfo has an invalid FrameworkID".into());
        }
        match executor.r#type() {
            v1::executor_info::Type::Default if executor.command.is_some() => {
                return Err("'ExecutorInfo.command' must not be set for 'DEFAULT' executor".into());
            }
            v1::executor_info::Type::Custom if executor.command.is_none() => {
                return Err("'ExecutorInfo.command' must be set for 'CUSTOM' executor".into());
            }
            v1::executor_info::Type::Unknown => {
                return Err("'ExecutorInfo.type' must be set".into());
            }
            _ => {}
        }
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| "Framework is gone".to_string())?;
        let mut ids = HashSet::new();
        let mut needed = Resources::default();
        for task in tasks {
            let id = &task.task_id.value;
            mesos_proto::ids::validate_id(id)
                .map_err(|e| format!("Task ID '{id}' is invalid: {e}"))?;
            if framework.tasks.contains_key(id) || !ids.insert(id.as_str()) {
                return Err(format!("Task has duplicate ID: {id}"));
            }
            if task.agent_id.value != agent_id {
                return Err(format!(
                    "Task '{id}' uses agent ID {} which does not match offer's agent ID {agent_id}",
                    task.agent_id.value
                ));
            }
            if task.executor.is_some() {
                return Err(format!(
                    "'TaskInfo.executor' must not be set for task '{id}' of a task group"
                ));
            }
            let resources = wire::incoming(&task.resources);
            if resources.is_empty() {
                return Err(format!("Task '{id}' uses no resources"));
            }
            needed.add(&resources);
        }
        let running = self.agents.get(agent_id).is_some_and(|a| {
            a.executors
                .contains_key(&(framework_id.to_string(), executor.executor_id.value.clone()))
        });
        if !running {
            needed.add(&wire::incoming(&executor.resources));
        }
        if !remaining.contains(&needed) {
            return Err(format!(
                "Task group uses more resources {needed} than available {remaining}"
            ));
        }
        Ok(needed)
    }
}
