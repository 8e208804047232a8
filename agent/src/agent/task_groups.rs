//! Task groups (pods): RunTaskGroup from the master starts or reuses the
//! group's executor (the default executor, `mesos-default-executor`, for
//! `ExecutorInfo.type = DEFAULT`) and hands it all the group's tasks in one
//! LAUNCH_GROUP event, queued until the executor subscribes.

use mesos_proto::v1::{self, TaskState, executor, task_status::Reason};

use super::model::{ExecutorState, Task};
use super::tasks::agent_status;
use super::{Agent, ExecutorKey};

/// Name of the default executor binary in `--launcher_dir`.
pub const DEFAULT_EXECUTOR: &str = "mesos-default-executor";

impl Agent {
    pub(super) fn run_task_group(
        &mut self,
        framework_info: v1::FrameworkInfo,
        executor_info: v1::ExecutorInfo,
        group: v1::TaskGroupInfo,
    ) {
        let Some(framework_id) = framework_info.id.as_ref().map(|id| id.value.clone()) else {
            tracing::warn!("RunTaskGroup without a framework ID ignored");
            return;
        };
        if !self.accept_framework(&framework_id, framework_info) {
            for task in &group.tasks {
                self.drop_task(&framework_id, task, "Framework is terminating");
            }
            return;
        }
        let info = self.group_executor_info(&framework_id, executor_info);
        let key = ExecutorKey {
            framework_id,
            executor_id: info.executor_id.value.clone(),
        };
        let ids: Vec<String> = group
            .tasks
            .iter()
            .map(|t| t.task_id.value.clone())
            .collect();
        tracing::info!(%key, tasks = ?ids, "launching task group");
        let mut tasks = group.tasks;
        if tasks.is_empty() {
            return;
        }
        self.decorate_labels(&key.framework_id, &mut tasks, &info);
        let Some(executor) = self.executor_mut(&key) else {
            let first = tasks.remove(0);
            let first_id = first.task_id.clone();
            let rest: Vec<v1::TaskId> = tasks.iter().map(|t| t.task_id.clone()).collect();
            let started = self.launch_executor(key.clone(), info, first, tasks, false);
            match self.executor_mut(&key).filter(|_| started) {
                Some(executor) => executor.queued_groups.push(ids),
                // The executor could not be started; the first task failed
                // already, and its group fails with it.
                None => {
                    for task_id in rest {
                        let status = agent_status(
                            &task_id,
                            Some(&key.executor_id),
                            TaskState::TaskFailed,
                            Reason::ContainerLaunchFailed,
                            &format!("Task {} of its group could not be launched", first_id.value),
                        );
                        self.status_update(&key.framework_id, status);
                    }
                }
            }
            return;
        };
        match executor.state {
            ExecutorState::Terminating => {
                for task in &tasks {
                    self.drop_task(&key.framework_id, task, "Executor is terminating");
                }
            }
            ExecutorState::Running if executor.conn.is_some() => {
                for task in &tasks {
                    executor
                        .launched
                        .insert(task.task_id.value.clone(), Task::new(task.clone()));
                }
                let launch = launch_group_event(tasks);
                self.send_to_executor(&key, &launch);
            }
            ExecutorState::Registering | ExecutorState::Running => {
                executor.queued.extend(tasks);
                executor.queued_groups.push(ids);
            }
        }
        self.grow_container(&key);
    }

    /// The group's executor as the agent runs it: a DEFAULT executor
    /// without a command runs the agent's default executor.
    fn group_executor_info(
        &self,
        framework_id: &str,
        mut info: v1::ExecutorInfo,
    ) -> v1::ExecutorInfo {
        info.framework_id = Some(v1::FrameworkId {
            value: framework_id.to_string(),
        });
        let default = info.r#type() == v1::executor_info::Type::Default;
        if default && info.command.is_none() {
            let program = self.config.launcher_dir.join(DEFAULT_EXECUTOR);
            info.command = Some(v1::CommandInfo {
                value: Some(program.display().to_string()),
                shell: Some(false),
                arguments: vec![
                    DEFAULT_EXECUTOR.to_string(),
                    format!("--launcher_dir={}", self.config.launcher_dir.display()),
                ],
                ..Default::default()
            });
        }
        info
    }
}

fn launch_group_event(tasks: Vec<v1::TaskInfo>) -> executor::Event {
    executor::Event {
        r#type: Some(executor::event::Type::LaunchGroup as i32),
        launch_group: Some(executor::event::LaunchGroup {
            task_group: v1::TaskGroupInfo { tasks },
        }),
        ..Default::default()
    }
}

/// The events that deliver queued tasks to a subscribing executor: a
/// LAUNCH_GROUP per group (where its first task was queued), a LAUNCH for
/// every other task.
pub(super) fn launch_events(
    queued: Vec<v1::TaskInfo>,
    groups: &[Vec<String>],
) -> Vec<executor::Event> {
    let group_of = |task_id: &str| groups.iter().position(|g| g.iter().any(|id| id == task_id));
    let mut grouped: Vec<Vec<v1::TaskInfo>> = vec![Vec::new(); groups.len()];
    // Where each event goes: Ok(task) or Err(group index), in queue order.
    let mut order: Vec<Result<v1::TaskInfo, usize>> = Vec::new();
    for task in queued {
        match group_of(&task.task_id.value) {
            Some(g) => {
                if grouped[g].is_empty() {
                    order.push(Err(g));
                }
                grouped[g].push(task);
            }
            None => order.push(Ok(task)),
        }
    }
    order
        .into_iter()
        .map(|slot| match slot {
            Ok(task) => executor::Event {
                r#type: Some(executor::event::Type::Launch as i32),
                launch: Some(executor::event::Launch { task }),
                ..Default::default()
            },
            Err(g) => launch_group_event(std::mem::take(&mut grouped[g])),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> v1::TaskInfo {
        v1::TaskInfo {
            task_id: v1::TaskId { value: id.into() },
            ..Default::default()
        }
    }

    #[test]
    fn queued_groups_are_delivered_together_in_queue_order() {
        let queued = vec![task("a"), task("g1"), task("b"), task("g2"), task("h1")];
        let groups = vec![
            vec!["g1".to_string(), "g2".to_string()],
            vec!["h1".to_string(), "killed-before-delivery".to_string()],
        ];
        let events = launch_events(queued, &groups);
        let shape: Vec<Vec<String>> = events
            .iter()
            .map(|e| match (&e.launch, &e.launch_group) {
                (Some(l), None) => vec![l.task.task_id.value.clone()],
                (None, Some(g)) => g
                    .task_group
                    .tasks
                    .iter()
                    .map(|t| t.task_id.value.clone())
                    .collect(),
                _ => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(
            shape,
            vec![vec!["a"], vec!["g1", "g2"], vec!["b"], vec!["h1"]]
        );
        assert_eq!(events[1].r#type(), executor::event::Type::LaunchGroup);
    }
}
