//! Tasks: RunTask and KillTask from the master, and every status update
//! (from executors or made by the agent) on its way to the status update
//! manager.

use std::time::Instant;

use mesos_proto::internal::v1::{StatusUpdate, agent_to_master};
use mesos_proto::v1::{self, TaskState, executor, framework_info, task_status::Reason};

use super::model::{ExecutorState, Framework, FrameworkState, Task};
use super::{Agent, Command, ExecutorKey, now_secs};
use crate::containerizer::{self, Kind};
use crate::status_updates::Enqueued;

/// Name of the command executor binary in `--launcher_dir`.
pub const COMMAND_EXECUTOR: &str = "mesos-executor";
/// Name of the docker executor binary in `--launcher_dir`.
pub const DOCKER_EXECUTOR: &str = "mesos-docker-executor";

impl Agent {
    /// RunTask: hands the task to its executor, starting the executor if it
    /// is not running yet.
    pub(super) fn run_task(&mut self, framework_info: v1::FrameworkInfo, task: v1::TaskInfo) {
        let Some(framework_id) = framework_info.id.as_ref().map(|id| id.value.clone()) else {
            tracing::warn!(task = %task.task_id.value, "RunTask without a framework ID ignored");
            return;
        };
        if !self.accept_framework(&framework_id, framework_info) {
            self.drop_task(&framework_id, &task, "Framework is terminating");
            return;
        }
        let container = match &task.executor {
            Some(executor) => executor.container.as_ref(),
            None => task.container.as_ref(),
        };
        let containerizer = match containerizer::select(&self.config.containerizers, container) {
            Ok(kind) => kind,
            Err(message) => {
                tracing::warn!(task = %task.task_id.value, "{message}");
                let status = agent_status(
                    &task.task_id,
                    None,
                    TaskState::TaskFailed,
                    Reason::ContainerLaunchFailed,
                    &message,
                );
                self.status_update(&framework_id, status);
                return;
            }
        };
        let command_executor = task.executor.is_none();
        let info = match &task.executor {
            Some(executor) => v1::ExecutorInfo {
                framework_id: Some(v1::FrameworkId {
                    value: framework_id.clone(),
                }),
                ..executor.clone()
            },
            None => self.command_executor_info(&framework_id, &task, containerizer),
        };
        let mut task = task;
        self.decorate_labels(&framework_id, std::slice::from_mut(&mut task), &info);
        let key = ExecutorKey {
            framework_id,
            executor_id: info.executor_id.value.clone(),
        };
        tracing::info!(task = %task.task_id.value, %key, "launching task");
        if self.executor(&key).is_none() {
            self.launch_executor(key, info, task, Vec::new(), command_executor);
            return;
        }
        self.checkpoint_task(&key, &task);
        let Some(executor) = self.executor_mut(&key) else {
            return;
        };
        match executor.state {
            ExecutorState::Terminating => {
                self.drop_task(&key.framework_id, &task, "Executor is terminating")
            }
            ExecutorState::Running if executor.conn.is_some() => {
                executor
                    .launched
                    .insert(task.task_id.value.clone(), Task::new(task.clone()));
                let launch = executor::Event {
                    r#type: Some(executor::event::Type::Launch as i32),
                    launch: Some(executor::event::Launch { task }),
                    ..Default::default()
                };
                self.send_to_executor(&key, &launch);
            }
            // Delivered when the executor (re)subscribes.
            ExecutorState::Registering | ExecutorState::Running => executor.queued.push(task),
        }
        self.grow_container(&key);
    }

    /// The hooks' labels on tasks about to reach their executor.
    pub(super) fn decorate_labels(
        &self,
        framework_id: &str,
        tasks: &mut [v1::TaskInfo],
        executor: &v1::ExecutorInfo,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if self.config.hooks.is_empty() {
            return;
        }
        let agent = self.agent_info();
        for task in tasks {
            self.config
                .hooks
                .decorate_task_labels(task, executor, &framework.info, &agent);
        }
    }

    /// Makes sure the framework of a RunTask is known and takes its latest
    /// info; false if it is being shut down.
    pub(super) fn accept_framework(
        &mut self,
        framework_id: &str,
        framework_info: v1::FrameworkInfo,
    ) -> bool {
        if !self.frameworks.contains_key(framework_id) {
            let framework = self
                .revive_framework(framework_id)
                .unwrap_or_else(|| Framework::new(framework_info.clone()));
            self.frameworks.insert(framework_id.to_string(), framework);
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return false;
        };
        if framework.state == FrameworkState::Terminating {
            return false;
        }
        framework.info = framework_info;
        true
    }

    /// The ExecutorInfo Mesos builds for a task that has none: the command
    /// executor, with the task's ID, running the task's command.
    /// DOCKER tasks get the docker executor instead, which runs the task's
    /// container through the Engine.
    fn command_executor_info(
        &self,
        framework_id: &str,
        task: &v1::TaskInfo,
        containerizer: Kind,
    ) -> v1::ExecutorInfo {
        let command = task.command.clone().unwrap_or_default();
        let value = command.value.clone().unwrap_or_default();
        let shown = if command.shell.unwrap_or(true) {
            format!("sh -c '{value}'")
        } else {
            let argv: Vec<&str> = std::iter::once(value.as_str())
                .chain(command.arguments.iter().map(String::as_str))
                .collect();
            format!("[{}]", argv.join(", "))
        };
        let binary = match containerizer {
            Kind::Mesos | Kind::Oci => COMMAND_EXECUTOR,
            Kind::Docker => DOCKER_EXECUTOR,
        };
        let program = self.config.launcher_dir.join(binary);
        let mut environment = command.environment.clone();
        if containerizer == Kind::Docker {
            let vars = &mut environment.get_or_insert_with(Default::default).variables;
            for (name, value) in self.config.docker.executor_env() {
                vars.push(v1::environment::Variable {
                    name: name.to_string(),
                    value: Some(value),
                    ..Default::default()
                });
            }
        }
        v1::ExecutorInfo {
            executor_id: v1::ExecutorId {
                value: task.task_id.value.clone(),
            },
            framework_id: Some(v1::FrameworkId {
                value: framework_id.to_string(),
            }),
            name: Some(format!(
                "Command Executor (Task: {}) (Command: {shown})",
                task.task_id.value
            )),
            source: Some(task.task_id.value.clone()),
            command: Some(v1::CommandInfo {
                value: Some(program.display().to_string()),
                shell: Some(false),
                arguments: vec![
                    binary.to_string(),
                    format!("--launcher_dir={}", self.config.launcher_dir.display()),
                ],
                // Only what the executor itself needs: never the task's
                // command, which it must not run by accident.
                environment,
                uris: command.uris,
                user: command.user,
            }),
            ..Default::default()
        }
    }

    /// KillTask. A task still waiting for its executor to subscribe is
    /// killed by the agent itself; otherwise the executor is asked.
    pub(super) fn kill_task(
        &mut self,
        framework_id: &str,
        task_id: &v1::TaskId,
        kill_policy: Option<v1::KillPolicy>,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            tracing::warn!(
                task = %task_id.value, framework = framework_id,
                "kill for a task of an unknown framework ignored"
            );
            return;
        };
        let found = framework.executors.iter_mut().find(|(_, e)| {
            e.launched.contains_key(&task_id.value)
                || e.queued.iter().any(|t| t.task_id == *task_id)
        });
        let Some((executor_id, executor)) = found else {
            let finished = framework
                .executors
                .values()
                .chain(&framework.completed_executors)
                .any(|e| e.completed.iter().any(|t| t.info.task_id == *task_id));
            if finished {
                tracing::info!(
                    task = %task_id.value, framework = framework_id,
                    "kill for a finished task ignored"
                );
                return;
            }
            tracing::warn!(
                task = %task_id.value, framework = framework_id,
                "kill for a task with no executor"
            );
            let status = agent_status(
                task_id,
                None,
                self.lost_state(framework_id),
                Reason::ExecutorTerminated,
                "Cannot find executor",
            );
            self.status_update(framework_id, status);
            return;
        };
        let key = ExecutorKey {
            framework_id: framework_id.to_string(),
            executor_id: executor_id.clone(),
        };
        if let Some(position) = executor.queued.iter().position(|t| t.task_id == *task_id) {
            let task = executor.queued.remove(position);
            executor
                .launched
                .insert(task_id.value.clone(), Task::new(task));
            // An executor started for this task alone has nothing left to do.
            let idle = executor.state == ExecutorState::Registering
                && executor.queued.is_empty()
                && executor.launched.len() == 1;
            let status = agent_status(
                task_id,
                Some(&key.executor_id),
                TaskState::TaskKilled,
                Reason::TaskKilledDuringLaunch,
                "Killed before delivery to the executor",
            );
            self.status_update(framework_id, status);
            if idle {
                self.shutdown_executor(&key);
            }
            return;
        }
        let kill = executor::Event {
            r#type: Some(executor::event::Type::Kill as i32),
            kill: Some(executor::event::Kill {
                task_id: task_id.clone(),
                kill_policy,
            }),
            ..Default::default()
        };
        if !self.send_to_executor(&key, &kill) {
            tracing::warn!(
                task = %task_id.value, %key,
                "cannot deliver the kill: the executor is not connected"
            );
        }
    }

    /// A task the agent will not run: TASK_DROPPED for partition-aware
    /// frameworks, TASK_LOST for the others (Mesos's rule).
    pub(super) fn drop_task(&mut self, framework_id: &str, task: &v1::TaskInfo, message: &str) {
        tracing::warn!(
            task = %task.task_id.value, framework = framework_id,
            "dropping task: {message}"
        );
        let reason = Reason::ExecutorTerminated;
        let status = agent_status(
            &task.task_id,
            None,
            self.lost_state(framework_id),
            reason,
            message,
        );
        self.status_update(framework_id, status);
    }

    pub(super) fn lost_state(&self, framework_id: &str) -> TaskState {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.has_capability(framework_info::capability::Type::PartitionAware));
        if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        }
    }

    /// A task whose executor died while the agent was away (or that the
    /// agent had to kill after a restart): TASK_GONE for partition-aware
    /// frameworks, TASK_LOST for the others.
    pub(super) fn gone_state(&self, framework_id: &str) -> TaskState {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.has_capability(framework_info::capability::Type::PartitionAware));
        if partition_aware {
            TaskState::TaskGone
        } else {
            TaskState::TaskLost
        }
    }
}

/// A status the agent reports itself.
pub(super) fn agent_status(
    task_id: &v1::TaskId,
    executor_id: Option<&str>,
    state: TaskState,
    reason: Reason,
    message: &str,
) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(message.to_string()),
        source: Some(v1::task_status::Source::Agent as i32),
        reason: Some(reason as i32),
        executor_id: executor_id.map(|id| v1::ExecutorId {
            value: id.to_string(),
        }),
        ..Default::default()
    }
}

impl Agent {
    /// Holds a task's head until the checkpoints written so far, its
    /// record among them, are on disk; then it goes to the master.
    pub(super) fn forward_once_durable(&mut self, framework_id: &str, task_id: &str) {
        self.updates.hold(framework_id, task_id);
        self.once_durable(Command::ForwardUpdate {
            framework_id: framework_id.to_string(),
            task_id: task_id.to_string(),
        });
    }

    /// A held head whose record is on disk goes to the master.
    pub(super) fn forward_update(&mut self, framework_id: &str, task_id: &str) {
        if let Some(head) = self.updates.release(framework_id, task_id, Instant::now()) {
            self.send_to_master(agent_to_master::Message::StatusUpdate(head));
        }
    }

    /// Every status update goes through here: it is stamped, recorded on
    /// its task and queued for the master.
    pub(super) fn status_update(&mut self, framework_id: &str, mut status: v1::TaskStatus) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            tracing::warn!(
                task = %status.task_id.value, framework = framework_id,
                "status update for an unknown framework dropped"
            );
            self.counters.invalid_status_updates += 1;
            return;
        };
        if framework.state == FrameworkState::Terminating {
            tracing::info!(
                task = %status.task_id.value, framework = framework_id,
                "status update for a terminating framework dropped"
            );
            self.counters.invalid_status_updates += 1;
            return;
        }
        status.agent_id = self
            .agent_id
            .as_ref()
            .map(|id| v1::AgentId { value: id.clone() });
        status.timestamp = status.timestamp.or_else(|| Some(now_secs()));
        status.uuid = status
            .uuid
            .or_else(|| Some(mesos_proto::ids::new_uuid_bytes()));
        let state = status.state();
        let uuid = status.uuid.clone().unwrap_or_default();
        if let Some(acknowledged) = self
            .updates
            .seen(framework_id, &status.task_id.value, &uuid)
        {
            tracing::info!(
                task = %status.task_id.value, framework = framework_id,
                acknowledged, "duplicate status update not forwarded"
            );
            // The executor resent an update the framework already
            // acknowledged: it missed the acknowledgement.
            if acknowledged
                && status.source() == v1::task_status::Source::Executor
                && let Some(executor_id) = &status.executor_id
            {
                self.acknowledge_executor(
                    &ExecutorKey {
                        framework_id: framework_id.to_string(),
                        executor_id: executor_id.value.clone(),
                    },
                    &status.task_id,
                    uuid,
                );
            }
            return;
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(executor) = status
            .executor_id
            .as_ref()
            .and_then(|id| framework.executors.get_mut(&id.value))
        {
            if status.container_status.is_none() {
                status.container_status = Some(v1::ContainerStatus {
                    container_id: Some(v1::ContainerId {
                        value: executor.container_id.clone(),
                        parent: None,
                    }),
                    executor_pid: executor.pid,
                    ..Default::default()
                });
            }
            // What the containerizer knows of the container (its
            // addresses), as Mesos adds to every update.
            if let Some(container_status) = status.container_status.as_mut()
                && container_status.network_infos.is_empty()
            {
                container_status.network_infos =
                    network_infos(self.config.isolation.status(&executor.container_id));
            }
            if let Some(task) = executor.launched.get_mut(&status.task_id.value) {
                task.state = state;
                task.statuses
                    .push((state, status.timestamp.unwrap_or_default()));
                if state.is_terminal() {
                    executor.complete_task(&status.task_id.value);
                }
            }
        }
        self.counters.valid_status_updates += 1;
        if state.is_terminal() {
            self.counters.count_terminal(state);
        }
        tracing::info!(
            task = %status.task_id.value, framework = framework_id,
            state = state.as_str_name(), "status update"
        );
        self.config.hooks.decorate_status(framework_id, &mut status);
        let update = StatusUpdate {
            framework_id: v1::FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: status.executor_id.clone(),
            status,
            latest_state: None,
        };
        match self.updates.enqueue(update.clone(), Instant::now()) {
            Enqueued::SendNow(head) => {
                if self.checkpoint_update(&update) {
                    self.forward_once_durable(framework_id, &update.status.task_id.value);
                } else {
                    self.send_to_master(agent_to_master::Message::StatusUpdate(*head));
                }
            }
            Enqueued::Queued => {
                self.checkpoint_update(&update);
            }
            // Caught above.
            Enqueued::Duplicate { .. } => {}
        }
    }
}

/// The networks a container is on, as `NetworkInfo`s with their addresses.
fn network_infos(status: mesos_plugin_api::isolator::ContainerStatus) -> Vec<v1::NetworkInfo> {
    status
        .networks
        .into_iter()
        .map(|network| v1::NetworkInfo {
            name: Some(network.name),
            ip_addresses: network
                .ip_addresses
                .into_iter()
                .map(|address| v1::network_info::IpAddress {
                    protocol: Some(if address.contains(':') {
                        v1::network_info::Protocol::IPv6 as i32
                    } else {
                        v1::network_info::Protocol::IPv4 as i32
                    }),
                    ip_address: Some(address),
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}
