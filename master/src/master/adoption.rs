//! A master that restarted (or a new leader) does not know what runs on
//! its agents. They come back with their IDs and report their frameworks,
//! executors and tasks; the master adopts them, so running tasks keep
//! running and stay visible, and frameworks that re-subscribe find them.
//! A framework known only from its agents waits, disconnected, for its
//! scheduler (Mesos's recovered frameworks): its tasks are not killed.

use std::collections::{BTreeMap, BTreeSet};

use mesos_plugin_api::allocator::FrameworkSpec;
use mesos_proto::v1;
use mesos_resources::Resources;

use super::frameworks::{framework_roles, has_capability};
use super::{Framework, Master, Task};
use crate::wire;

/// What a registering agent says it runs.
pub(super) struct Reported<'a> {
    pub frameworks: &'a [v1::FrameworkInfo],
    pub executors: &'a [v1::ExecutorInfo],
    pub tasks: &'a [v1::Task],
}

/// What an agent the master did not know brings with it.
#[derive(Debug, Default)]
pub(super) struct Adopted {
    /// (framework, task) of each adopted task.
    pub tasks: BTreeSet<(String, String)>,
    /// (framework, executor) -> executor.
    pub executors: BTreeMap<(String, String), v1::ExecutorInfo>,
    /// What each framework holds on the agent, for the allocator.
    pub used: Vec<(String, Resources)>,
}

impl Master {
    /// Adopts what a registering agent reports; the agent itself is added
    /// by the caller.
    pub(super) fn adopt(&mut self, agent_id: &str, register: &Reported<'_>) -> Adopted {
        for info in register.frameworks {
            self.recover_framework(info);
        }
        let mut adopted = Adopted::default();
        let mut used: BTreeMap<String, Resources> = BTreeMap::new();
        for executor in register.executors {
            let Some(framework_id) = executor.framework_id.as_ref().map(|f| f.value.clone()) else {
                continue;
            };
            if self.frameworks.contains_key(&framework_id) {
                used.entry(framework_id.clone())
                    .or_default()
                    .add(&wire::incoming(&executor.resources));
                adopted.executors.insert(
                    (framework_id, executor.executor_id.value.clone()),
                    executor.clone(),
                );
            }
        }
        for task in register.tasks {
            let framework_id = task.framework_id.value.clone();
            let state = task.state();
            let Some(framework) = self.frameworks.get_mut(&framework_id) else {
                tracing::warn!(
                    agent = agent_id, task = %task.task_id.value, framework = %framework_id,
                    "a task of a framework the agent did not report; not adopted"
                );
                continue;
            };
            if state.is_terminal() || framework.tasks.contains_key(&task.task_id.value) {
                continue;
            }
            let resources = wire::incoming(&task.resources);
            used.entry(framework_id.clone())
                .or_default()
                .add(&resources);
            let mut proto = task.clone();
            proto.agent_id = wire::agent_id(agent_id);
            framework.tasks.insert(
                task.task_id.value.clone(),
                std::sync::Arc::new(Task::new(proto, resources)),
            );
            adopted
                .tasks
                .insert((framework_id.clone(), task.task_id.value.clone()));
        }
        adopted.used = used.into_iter().collect();
        if !adopted.tasks.is_empty() {
            tracing::info!(
                agent = agent_id,
                tasks = adopted.tasks.len(),
                "adopted the tasks of an agent this master did not know"
            );
        }
        adopted
    }

    /// Publishes the adopted tasks to operator subscribers once the agent
    /// is in place.
    pub(super) fn announce_adopted(&mut self, adopted: &BTreeSet<(String, String)>) {
        for (framework_id, task_id) in adopted {
            self.publish_task_added(framework_id, task_id);
        }
    }

    /// A framework the master learns of from an agent: known, disconnected,
    /// until its scheduler subscribes again.
    fn recover_framework(&mut self, info: &v1::FrameworkInfo) {
        let Some(id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        if self.frameworks.contains_key(&id) || mesos_proto::ids::validate_id(&id).is_err() {
            return;
        }
        let multi_role = has_capability(info, v1::framework_info::capability::Type::MultiRole);
        let roles = framework_roles(info, multi_role);
        self.allocator.add_framework(
            FrameworkSpec {
                id: id.clone(),
                roles: roles.clone(),
                suppressed_roles: Vec::new(),
            },
            &[],
        );
        self.allocator.set_framework_active(&id, false);
        let now = wire::now_secs();
        self.frameworks.insert(
            id.clone(),
            Framework {
                id: id.clone(),
                info: info.clone(),
                role: roles.first().cloned().unwrap_or_else(|| "*".to_string()),
                multi_role,
                partition_aware: has_capability(
                    info,
                    v1::framework_info::capability::Type::PartitionAware,
                ),
                conn: None,
                registered_time: now,
                reregistered_time: None,
                unregistered_time: Some(now),
                failover_deadline: None,
                offers: Default::default(),
                tasks: Default::default(),
                completed_tasks: Default::default(),
            },
        );
        tracing::info!(framework = %id, "recovered a framework from an agent; waiting for its scheduler");
        self.publish_framework(&id, true);
    }
}
