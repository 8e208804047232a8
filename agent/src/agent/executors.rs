//! Executor lifecycle: launch, registration timeout, exit, shutdown.

use std::collections::BTreeMap;
use std::time::Instant;

use mesos_proto::internal::v1::{ExecutorExited, StatusUpdate, agent_to_master};
use mesos_proto::v1::{self, TaskState, executor, task_status::Reason, task_status::Source};
use nix::sys::signal::Signal;

use super::{Agent, Command, Executor, ExecutorKey, ExecutorState, MAX_COMPLETED, Task, is_terminal, now_secs};
use crate::launcher::{self, LaunchSpec};
use crate::sandbox;

impl Agent {
    /// The ExecutorInfo Mesos builds for a command task.
    fn command_executor_info(&self, framework_id: &str, task: &v1::TaskInfo) -> v1::ExecutorInfo {
        let command = task
            .command
            .as_ref()
            .and_then(|c| c.value.clone())
            .unwrap_or_default();
        let program = self.config.launcher_dir.join("mesos-executor");
        v1::ExecutorInfo {
            executor_id: v1::ExecutorId {
                value: task.task_id.value.clone(),
            },
            framework_id: Some(v1::FrameworkId {
                value: framework_id.to_string(),
            }),
            name: Some(format!(
                "Command Executor (Task: {}) (Command: sh -c '{command}')",
                task.task_id.value
            )),
            source: Some(task.task_id.value.clone()),
            command: Some(v1::CommandInfo {
                value: Some(program.display().to_string()),
                shell: Some(false),
                arguments: vec!["mesos-executor".to_string()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// RunTask from the master: hand the task to its executor, starting the
    /// executor if needed.
    pub(super) fn run_task(&mut self, framework: v1::FrameworkInfo, task: v1::TaskInfo) {
        let Some(framework_id) = framework.id.as_ref().map(|id| id.value.clone()) else {
            tracing::warn!("RunTask without a framework id ignored");
            return;
        };
        self.frameworks.insert(framework_id.clone(), framework);
        let info = match &task.executor {
            Some(executor) => {
                let mut executor = executor.clone();
                executor.framework_id = Some(v1::FrameworkId {
                    value: framework_id.clone(),
                });
                executor
            }
            None => self.command_executor_info(&framework_id, &task),
        };
        let key = (framework_id.clone(), info.executor_id.value.clone());
        if let Some(executor) = self.executors.get_mut(&key)
            && executor.state != ExecutorState::Terminating
        {
            if executor.conn.is_some() {
                let event = executor::Event {
                    r#type: Some(executor::event::Type::Launch as i32),
                    launch: Some(executor::event::Launch { task: task.clone() }),
                    ..Default::default()
                };
                executor.launched.insert(
                    task.task_id.value.clone(),
                    Task {
                        info: task,
                        state: TaskState::TaskStaging,
                    },
                );
                self.send_to_executor(&key, &event);
            } else {
                executor.queued.push(task);
            }
            return;
        }
        if let Err(message) = self.launch_executor(&key, info, task.clone()) {
            self.counters.launch_errors += 1;
            tracing::warn!(framework = %framework_id, task = %task.task_id.value, %message, "executor launch failed");
            self.generate_update(
                &framework_id,
                &task.task_id,
                Some(&key.1),
                TaskState::TaskFailed,
                Reason::ContainerLaunchFailed,
                &message,
            );
        }
    }

    fn launch_executor(&mut self, key: &ExecutorKey, info: v1::ExecutorInfo, task: v1::TaskInfo) -> Result<(), String> {
        let agent_id = self
            .agent_id
            .clone()
            .ok_or_else(|| "agent is not registered".to_string())?;
        let container_id = uuid::Uuid::new_v4().to_string();
        let sandbox = sandbox::create(&self.config.work_dir, &agent_id, &key.0, &key.1, &container_id)
            .map_err(|e| format!("Failed to create the sandbox: {e}"))?;
        let command = info
            .command
            .clone()
            .ok_or_else(|| "ExecutorInfo has no command".to_string())?;
        let mut spec = LaunchSpec::from_command(&command, sandbox.clone());
        spec.env = self.executor_environment(key, &info, &container_id, &sandbox, spec.env);
        let mut child = launcher::spawn(&spec).map_err(|e| format!("Failed to launch the executor: {e}"))?;
        let pid = child.id();
        tracing::info!(framework = %key.0, executor = %key.1, container = %container_id, ?pid, "launched executor");

        let handle = self.handle.clone();
        let (watch_key, watch_container) = (key.clone(), container_id.clone());
        tokio::spawn(async move {
            let status = child.wait().await.ok().map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.into_raw()
            });
            handle.notify(Command::ExecutorExited {
                key: watch_key,
                container_id: watch_container,
                status,
            });
        });
        let handle = self.handle.clone();
        let timeout = self.config.registration_timeout;
        let (timer_key, timer_container) = (key.clone(), container_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            handle.notify(Command::RegistrationTimeout {
                key: timer_key,
                container_id: timer_container,
            });
        });

        self.executors.insert(
            key.clone(),
            Executor {
                info,
                framework_id: key.0.clone(),
                container_id,
                sandbox,
                pid,
                state: ExecutorState::Registering,
                conn: None,
                queued: vec![task],
                launched: BTreeMap::new(),
                completed: Vec::new(),
            },
        );
        Ok(())
    }

    /// The environment Mesos gives executors (the agent's own environment
    /// is inherited; these come on top, then CommandInfo.environment).
    fn executor_environment(
        &self,
        key: &ExecutorKey,
        info: &v1::ExecutorInfo,
        container_id: &str,
        sandbox: &std::path::Path,
        command_env: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let checkpoint = self
            .frameworks
            .get(&key.0)
            .and_then(|f| f.checkpoint)
            .unwrap_or(false);
        let grace = info
            .shutdown_grace_period
            .as_ref()
            .map(|d| std::time::Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
            .unwrap_or(self.config.shutdown_grace);
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("MESOS_FRAMEWORK_ID", key.0.clone());
        set("MESOS_EXECUTOR_ID", key.1.clone());
        set("MESOS_DIRECTORY", sandbox.display().to_string());
        set("MESOS_SANDBOX", sandbox.display().to_string());
        set("MESOS_SLAVE_ID", self.agent_id.clone().unwrap_or_default());
        set("MESOS_AGENT_ID", self.agent_id.clone().unwrap_or_default());
        set("MESOS_SLAVE_PID", self.config.pid.clone());
        set("MESOS_AGENT_ENDPOINT", self.config.endpoint.clone());
        set("MESOS_CONTAINER_ID", container_id.to_string());
        set("MESOS_CHECKPOINT", if checkpoint { "1" } else { "0" }.to_string());
        set("MESOS_HTTP_COMMAND_EXECUTOR", "1".to_string());
        set(
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
            mesos_flags::Duration(grace).to_string(),
        );
        set("LIBPROCESS_PORT", "0".to_string());
        if checkpoint {
            set("MESOS_RECOVERY_TIMEOUT", "15mins".to_string());
            set("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs".to_string());
        }
        env.extend(command_env);
        env
    }

    /// An update the agent itself reports (launch failures, executor
    /// deaths, kills of tasks that never reached their executor).
    pub(super) fn generate_update(
        &mut self,
        framework_id: &str,
        task_id: &v1::TaskId,
        executor_id: Option<&str>,
        state: TaskState,
        reason: Reason,
        message: &str,
    ) {
        let status = v1::TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message: Some(message.to_string()),
            source: Some(Source::Agent as i32),
            reason: Some(reason as i32),
            executor_id: executor_id.map(|e| v1::ExecutorId { value: e.to_string() }),
            ..Default::default()
        };
        self.forward_update(framework_id, status);
    }

    /// Stamps an update and hands it to the status update manager.
    pub(super) fn forward_update(&mut self, framework_id: &str, mut status: v1::TaskStatus) {
        status.agent_id = self.agent_id.as_ref().map(|id| v1::AgentId { value: id.clone() });
        if status.timestamp.is_none() {
            status.timestamp = Some(now_secs());
        }
        if status.uuid.is_none() {
            status.uuid = Some(mesos_proto::ids::new_uuid_bytes());
        }
        if is_terminal(status.state()) {
            *self.counters.terminal.entry(status.state().as_str_name()).or_default() += 1;
        }
        let update = StatusUpdate {
            framework_id: v1::FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: status.executor_id.clone(),
            status,
        };
        if let Some(head) = self.updates.enqueue(update, Instant::now()) {
            self.send_to_master(agent_to_master::Message::StatusUpdate(head));
        }
    }

    pub(super) fn registration_timeout(&mut self, key: &ExecutorKey, container_id: &str) {
        let Some(executor) = self.executors.get(key) else {
            return;
        };
        if executor.container_id != container_id || executor.state != ExecutorState::Registering {
            return;
        }
        tracing::warn!(framework = %key.0, executor = %key.1, "executor did not subscribe in time; killing it");
        self.fail_tasks(key, Reason::ExecutorRegistrationTimeout, "Executor did not register in time");
        if let Some(executor) = self.executors.get_mut(key) {
            executor.state = ExecutorState::Terminating;
            if let Some(pid) = executor.pid {
                launcher::signal_group(pid, Signal::SIGKILL);
            }
        }
    }

    /// Every task of the executor not yet terminal fails with `reason`.
    fn fail_tasks(&mut self, key: &ExecutorKey, reason: Reason, message: &str) {
        let Some(executor) = self.executors.get_mut(key) else {
            return;
        };
        let mut failed: Vec<v1::TaskId> = executor.queued.drain(..).map(|t| t.task_id).collect();
        for task in executor.launched.values_mut() {
            if !is_terminal(task.state) {
                task.state = TaskState::TaskFailed;
                failed.push(task.info.task_id.clone());
            }
        }
        for task_id in failed {
            self.generate_update(&key.0, &task_id, Some(&key.1), TaskState::TaskFailed, reason, message);
        }
    }

    pub(super) fn executor_exited(&mut self, key: &ExecutorKey, container_id: &str, status: Option<i32>) {
        if self.executors.get(key).is_none_or(|e| e.container_id != container_id) {
            return;
        }
        let description = describe_wait_status(status);
        tracing::info!(framework = %key.0, executor = %key.1, "executor {description}");
        self.fail_tasks(key, Reason::ExecutorTerminated, &format!("Executor {description}"));
        let Some(mut executor) = self.executors.remove(key) else {
            return;
        };
        executor.conn = None;
        executor.completed.extend(std::mem::take(&mut executor.launched).into_values());
        self.send_to_master(agent_to_master::Message::ExecutorExited(ExecutorExited {
            framework_id: v1::FrameworkId { value: key.0.clone() },
            executor_id: v1::ExecutorId { value: key.1.clone() },
            status,
        }));
        self.completed_executors.push_back(executor);
        while self.completed_executors.len() > MAX_COMPLETED {
            self.completed_executors.pop_front();
        }
    }

    /// SHUTDOWN to every executor of the framework, SIGKILL after the grace
    /// period; its pending updates are dropped (nobody will acknowledge).
    pub(super) fn shutdown_framework(&mut self, framework_id: &str) {
        tracing::info!(framework = framework_id, "shutting down framework");
        let keys: Vec<ExecutorKey> = self
            .executors
            .keys()
            .filter(|(fid, _)| fid == framework_id)
            .cloned()
            .collect();
        for key in keys {
            self.shutdown_executor(&key);
        }
        self.updates.forget_framework(framework_id);
        self.frameworks.remove(framework_id);
    }

    pub(super) fn shutdown_executor(&mut self, key: &ExecutorKey) {
        let shutdown = executor::Event {
            r#type: Some(executor::event::Type::Shutdown as i32),
            ..Default::default()
        };
        let delivered = self.send_to_executor(key, &shutdown);
        let Some(executor) = self.executors.get_mut(key) else {
            return;
        };
        executor.state = ExecutorState::Terminating;
        let grace = if delivered {
            self.config.shutdown_grace
        } else {
            std::time::Duration::ZERO
        };
        let handle = self.handle.clone();
        let (key, container_id) = (key.clone(), executor.container_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            handle.notify(Command::ShutdownTimeout { key, container_id });
        });
    }

    pub(super) fn shutdown_timeout(&mut self, key: &ExecutorKey, container_id: &str) {
        if let Some(executor) = self.executors.get(key)
            && executor.container_id == container_id
            && let Some(pid) = executor.pid
        {
            launcher::signal_group(pid, Signal::SIGKILL);
        }
    }
}

/// "exited with status 3", "terminated by SIGKILL".
pub(crate) fn describe_wait_status(status: Option<i32>) -> String {
    let Some(raw) = status else {
        return "exited with an unknown status".to_string();
    };
    if libc_wifexited(raw) {
        format!("exited with status {}", (raw >> 8) & 0xff)
    } else {
        let signal = raw & 0x7f;
        match Signal::try_from(signal) {
            Ok(s) => format!("terminated by {s}"),
            Err(_) => format!("terminated by signal {signal}"),
        }
    }
}

fn libc_wifexited(raw: i32) -> bool {
    raw & 0x7f == 0
}

#[cfg(test)]
mod tests {
    use super::describe_wait_status;

    #[test]
    fn describes_wait_statuses() {
        assert_eq!(describe_wait_status(Some(3 << 8)), "exited with status 3");
        assert_eq!(describe_wait_status(Some(9)), "terminated by SIGKILL");
        assert_eq!(describe_wait_status(None), "exited with an unknown status");
    }
}
