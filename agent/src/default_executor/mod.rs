//! The default executor (`mesos-default-executor`): runs task groups
//! (pods) for the agent, each task in a container nested in the executor's
//! own, as Mesos's default executor does.
//!
//! For each task of a LAUNCH_GROUP it launches a nested container through
//! the agent operator API, reports TASK_STARTING and then TASK_RUNNING, and
//! waits for the container. A group lives and dies together: when one task
//! fails or is killed, the executor kills the rest of its group
//! (TASK_KILLING first for frameworks that understand it; SIGTERM, then
//! SIGKILL after the grace period). The executor exits once every task it
//! was given is terminal and those updates were acknowledged.

mod nested_client;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use mesos_proto::v1::{self, TaskState, executor, framework_info, task_status::Source};
use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checks;
use crate::command_executor::{EventStream, ExecutorClient, ExecutorError, Settings, grace_of};
use nested_client::NestedClient;

/// Mesos's default kill grace period for tasks without a kill policy.
const DEFAULT_GRACE: Duration = Duration::from_secs(3);
/// How long to wait for acknowledgements before exiting anyway.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// Runs the executor until its tasks are done and acknowledged.
pub async fn run(settings: Settings) -> Result<(), ExecutorError> {
    let client = ExecutorClient::new(
        &settings.endpoint,
        &settings.framework_id,
        &settings.executor_id,
    );
    let events = client.subscribe(Vec::new(), Vec::new()).await?;
    let (exited_tx, exited_rx) = mpsc::channel(64);
    let (checks_tx, checks_rx) = mpsc::channel(64);
    let mut executor = DefaultExecutor {
        client,
        nested: NestedClient::new(&settings.endpoint),
        shutdown_grace_period: settings.shutdown_grace_period,
        container_id: None,
        task_killing_state: false,
        tasks: BTreeMap::new(),
        next_group: 0,
        unacknowledged: HashSet::new(),
        exit_at: None,
        exited_tx,
        checks_tx,
    };
    let result = executor.serve(events, exited_rx, checks_rx).await;
    // However the executor ends, its tasks must not outlive it.
    executor.kill_all_now().await;
    result
}

struct Task {
    info: v1::TaskInfo,
    group: usize,
    container: v1::ContainerId,
    /// Set once the task's terminal update is sent.
    terminal: bool,
    /// Killed by us (a kill, a shutdown, or its group failing).
    killing: bool,
    /// When SIGKILL is due.
    escalate_at: Option<Instant>,
    /// Its health check and check; stopped with the task.
    checkers: Vec<checks::Checker>,
    /// What its checks reported.
    reported: checks::Reported,
}

struct DefaultExecutor {
    client: ExecutorClient,
    nested: NestedClient,
    shutdown_grace_period: Duration,
    container_id: Option<v1::ContainerId>,
    task_killing_state: bool,
    tasks: BTreeMap<String, Task>,
    next_group: usize,
    /// Uuids of terminal updates not yet acknowledged.
    unacknowledged: HashSet<Vec<u8>>,
    exit_at: Option<Instant>,
    exited_tx: mpsc::Sender<(String, Option<i32>)>,
    /// Where the tasks' checkers report, by task ID.
    checks_tx: mpsc::Sender<(String, checks::Event)>,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

impl DefaultExecutor {
    async fn serve(
        &mut self,
        mut events: EventStream,
        mut exited: mpsc::Receiver<(String, Option<i32>)>,
        mut checked: mpsc::Receiver<(String, checks::Event)>,
    ) -> Result<(), ExecutorError> {
        loop {
            let escalate_at = self.tasks.values().filter_map(|t| t.escalate_at).min();
            tokio::select! {
                event = events.next() => {
                    let Some(event) = event? else {
                        tracing::warn!("the agent closed the event stream; exiting");
                        return Ok(());
                    };
                    if self.event(event).await? == Flow::Exit {
                        return Ok(());
                    }
                }
                Some((task_id, status)) = exited.recv() => {
                    self.task_exited(&task_id, status).await?;
                }
                Some((task_id, event)) = checked.recv() => self.checked(&task_id, event).await?,
                _ = sleep_until(escalate_at) => self.escalate().await,
                _ = sleep_until(self.exit_at) => {
                    tracing::warn!("terminal updates not acknowledged in time; exiting anyway");
                    return Ok(());
                }
            }
            if self.done() {
                return Ok(());
            }
        }
    }

    /// Every task terminal and acknowledged.
    fn done(&self) -> bool {
        !self.tasks.is_empty()
            && self.tasks.values().all(|t| t.terminal)
            && self.unacknowledged.is_empty()
    }

    async fn event(&mut self, event: executor::Event) -> Result<Flow, ExecutorError> {
        match event.r#type() {
            executor::event::Type::Subscribed => {
                if let Some(subscribed) = event.subscribed {
                    self.task_killing_state =
                        subscribed.framework_info.capabilities.iter().any(|c| {
                            c.r#type
                                == Some(framework_info::capability::Type::TaskKillingState as i32)
                        });
                    self.container_id = subscribed.container_id;
                    tracing::info!(container = ?self.container_id, "subscribed to the agent");
                }
            }
            executor::event::Type::LaunchGroup => {
                if let Some(launch) = event.launch_group {
                    self.launch_group(launch.task_group.tasks).await?;
                }
            }
            executor::event::Type::Launch => {
                // The default executor runs task groups only; a lone task
                // is a group of one.
                if let Some(launch) = event.launch {
                    self.launch_group(vec![launch.task]).await?;
                }
            }
            executor::event::Type::Kill => {
                if let Some(kill) = event.kill {
                    let group = self.tasks.get(&kill.task_id.value).map(|t| t.group);
                    match group {
                        Some(group) => {
                            let grace = grace_of(kill.kill_policy.as_ref());
                            self.kill_group(group, grace).await?;
                        }
                        None => {
                            tracing::warn!(task = %kill.task_id.value, "kill of an unknown task")
                        }
                    }
                }
            }
            executor::event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    self.unacknowledged.remove(&ack.uuid);
                }
            }
            executor::event::Type::Shutdown => {
                tracing::info!("shutdown requested");
                let groups: HashSet<usize> = self
                    .tasks
                    .values()
                    .filter(|t| !t.terminal)
                    .map(|t| t.group)
                    .collect();
                if groups.is_empty() {
                    return Ok(Flow::Exit);
                }
                for group in groups {
                    self.kill_group(group, Some(self.shutdown_grace_period))
                        .await?;
                }
            }
            executor::event::Type::Error => {
                tracing::error!(message = ?event.error.map(|e| e.message), "error from the agent");
            }
            executor::event::Type::Message
            | executor::event::Type::Heartbeat
            | executor::event::Type::Unknown => {}
        }
        Ok(Flow::Continue)
    }

    async fn launch_group(&mut self, tasks: Vec<v1::TaskInfo>) -> Result<(), ExecutorError> {
        let group = self.next_group;
        self.next_group += 1;
        let Some(parent) = self.container_id.clone() else {
            for task in &tasks {
                self.update(
                    &task.task_id,
                    TaskState::TaskFailed,
                    Some("the executor has no container ID".into()),
                    None,
                )
                .await?;
            }
            return Ok(());
        };
        for task in &tasks {
            let container = v1::ContainerId {
                value: uuid::Uuid::new_v4().to_string(),
                parent: Some(Box::new(parent.clone())),
            };
            self.tasks.insert(
                task.task_id.value.clone(),
                Task {
                    info: task.clone(),
                    group,
                    container,
                    terminal: false,
                    killing: false,
                    escalate_at: None,
                    checkers: Vec::new(),
                    reported: checks::Reported::default(),
                },
            );
            self.update(&task.task_id, TaskState::TaskStarting, None, None)
                .await?;
        }
        let mut failed = false;
        for task in &tasks {
            let Some(entry) = self.tasks.get(&task.task_id.value) else {
                continue;
            };
            let container = entry.container.clone();
            if failed {
                self.finish(
                    &task.task_id.value,
                    TaskState::TaskKilled,
                    "another task of its group failed to launch".into(),
                )
                .await?;
                continue;
            }
            let policies = match checks::Policies::of(task) {
                Ok(policies) => policies,
                Err(e) => {
                    failed = true;
                    self.finish(&task.task_id.value, TaskState::TaskFailed, e.to_string())
                        .await?;
                    continue;
                }
            };
            match self.nested.launch(&container, task).await {
                Ok(()) => {
                    tracing::info!(task = %task.task_id.value, container = %container.value, "launched");
                    let check_status = policies.check.as_ref().map(checks::check::initial_status);
                    let mut running = status_of(&task.task_id, TaskState::TaskRunning, None);
                    running.container_status = container_status(&container);
                    running.check_status = check_status;
                    self.send(running).await?;
                    let checkers =
                        policies.spawn(Instant::now(), task.task_id.value.clone(), &self.checks_tx);
                    if let Some(entry) = self.tasks.get_mut(&task.task_id.value) {
                        entry.checkers = checkers;
                        entry.reported.check_status = check_status;
                    }
                    let (nested, tx, id) = (
                        self.nested.clone(),
                        self.exited_tx.clone(),
                        task.task_id.value.clone(),
                    );
                    tokio::spawn(async move {
                        let status = match nested.wait(&container).await {
                            Ok(status) => status,
                            Err(e) => {
                                tracing::warn!(task = %id, "waiting for the container failed: {e}");
                                None
                            }
                        };
                        let _ = tx.send((id, status)).await;
                    });
                }
                Err(e) => {
                    failed = true;
                    self.finish(
                        &task.task_id.value,
                        TaskState::TaskFailed,
                        format!("Failed to launch the task's container: {e}"),
                    )
                    .await?;
                }
            }
        }
        if failed {
            self.kill_group(group, None).await?;
        }
        Ok(())
    }

    /// A checker's result: a TASK_RUNNING update carrying it; a task that
    /// failed its health check too often is killed with its group.
    async fn checked(&mut self, task_id: &str, event: checks::Event) -> Result<(), ExecutorError> {
        let Some(task) = self
            .tasks
            .get_mut(task_id)
            .filter(|t| !t.terminal && !t.killing)
        else {
            return Ok(());
        };
        let (mut status, kill) = task.reported.apply(&task.info.task_id, event);
        status.container_status = container_status(&task.container);
        let group = task.group;
        self.send(status).await?;
        if kill {
            tracing::warn!(
                task = task_id,
                "health check failed too often; killing its group"
            );
            self.kill_group(group, None).await?;
        }
        Ok(())
    }

    async fn task_exited(
        &mut self,
        task_id: &str,
        status: Option<i32>,
    ) -> Result<(), ExecutorError> {
        let Some(task) = self.tasks.get(task_id) else {
            return Ok(());
        };
        if task.terminal {
            return Ok(());
        }
        let (group, killing) = (task.group, task.killing);
        let (state, message) = outcome(status, killing);
        tracing::info!(task = task_id, state = state.as_str_name(), "{message}");
        self.finish(task_id, state, message).await?;
        // A failed task takes its group down with it.
        if state != TaskState::TaskFinished && !killing {
            self.kill_group(group, None).await?;
        }
        Ok(())
    }

    /// Kills the live tasks of a group: TASK_KILLING, SIGTERM, and SIGKILL
    /// after the grace period (the task's own kill policy unless given).
    async fn kill_group(
        &mut self,
        group: usize,
        grace: Option<Duration>,
    ) -> Result<(), ExecutorError> {
        let ids: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.group == group && !t.terminal && !t.killing)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            task.killing = true;
            let grace = grace
                .or_else(|| grace_of(task.info.kill_policy.as_ref()))
                .unwrap_or(DEFAULT_GRACE);
            task.escalate_at = Some(Instant::now() + grace);
            let (task_id, container) = (task.info.task_id.clone(), task.container.clone());
            if self.task_killing_state {
                self.update(&task_id, TaskState::TaskKilling, None, Some(&container))
                    .await?;
            }
            tracing::info!(task = %id, ?grace, "killing");
            if let Err(e) = self.nested.kill(&container, Signal::SIGTERM as i32).await {
                tracing::warn!(task = %id, "SIGTERM failed: {e}");
            }
        }
        Ok(())
    }

    async fn escalate(&mut self) {
        let now = Instant::now();
        let due: Vec<v1::ContainerId> = self
            .tasks
            .values_mut()
            .filter(|t| !t.terminal && t.escalate_at.is_some_and(|at| at <= now))
            .map(|t| {
                t.escalate_at = None;
                t.container.clone()
            })
            .collect();
        for container in due {
            tracing::info!(container = %container.value, "grace period over; sending SIGKILL");
            let _ = self.nested.kill(&container, Signal::SIGKILL as i32).await;
        }
    }

    async fn kill_all_now(&mut self) {
        for task in self.tasks.values().filter(|t| !t.terminal) {
            let _ = self
                .nested
                .kill(&task.container, Signal::SIGKILL as i32)
                .await;
        }
    }

    /// Sends a task's terminal update.
    async fn finish(
        &mut self,
        task_id: &str,
        state: TaskState,
        message: String,
    ) -> Result<(), ExecutorError> {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return Ok(());
        };
        task.terminal = true;
        task.escalate_at = None;
        task.checkers.clear();
        let message = task.reported.explain(message);
        let mut status = status_of(&task.info.task_id, state, Some(message));
        status.container_status = container_status(&task.container);
        task.reported.stamp(&mut status);
        let uuid = self.send(status).await?;
        self.unacknowledged.insert(uuid);
        if self.tasks.values().all(|t| t.terminal) {
            self.exit_at = Some(Instant::now() + ACK_WAIT);
        }
        Ok(())
    }

    async fn update(
        &self,
        task_id: &v1::TaskId,
        state: TaskState,
        message: Option<String>,
        container: Option<&v1::ContainerId>,
    ) -> Result<Vec<u8>, ExecutorError> {
        let mut status = status_of(task_id, state, message);
        status.container_status = container.and_then(container_status);
        self.send(status).await
    }

    /// Sends `status` as the executor's, with a fresh uuid (returned).
    async fn send(&self, mut status: v1::TaskStatus) -> Result<Vec<u8>, ExecutorError> {
        let uuid = mesos_proto::ids::new_uuid_bytes();
        status.source = Some(Source::Executor as i32);
        status.timestamp = Some(crate::agent::now_secs());
        status.uuid = Some(uuid.clone());
        self.client.update(status).await?;
        Ok(uuid)
    }
}

fn status_of(task_id: &v1::TaskId, state: TaskState, message: Option<String>) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message,
        ..Default::default()
    }
}

fn container_status(container: &v1::ContainerId) -> Option<v1::ContainerStatus> {
    Some(v1::ContainerStatus {
        container_id: Some(container.clone()),
        ..Default::default()
    })
}

/// The terminal state for a container's raw wait status.
fn outcome(status: Option<i32>, killed: bool) -> (TaskState, String) {
    use nix::sys::wait::WaitStatus;
    let Some(raw) = status else {
        return (
            TaskState::TaskFailed,
            "The task's container was lost".into(),
        );
    };
    let decoded = WaitStatus::from_raw(nix::unistd::Pid::from_raw(1), raw);
    match decoded {
        Ok(WaitStatus::Exited(_, 0)) => (
            TaskState::TaskFinished,
            "Command exited with status 0".into(),
        ),
        _ if killed => (
            TaskState::TaskKilled,
            "Command terminated by the executor".into(),
        ),
        Ok(WaitStatus::Exited(_, code)) => (
            TaskState::TaskFailed,
            format!("Command exited with status {code}"),
        ),
        Ok(WaitStatus::Signaled(_, signal, _)) => (
            TaskState::TaskFailed,
            format!("Command terminated with signal {}", signal.as_str()),
        ),
        _ => (
            TaskState::TaskFailed,
            format!("Command ended with wait status {raw}"),
        ),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_wait_status() {
        assert_eq!(outcome(Some(0), false).0, TaskState::TaskFinished);
        assert_eq!(outcome(Some(0), true).0, TaskState::TaskFinished);
        let (state, message) = outcome(Some(3 << 8), false);
        assert_eq!(
            (state, message.as_str()),
            (TaskState::TaskFailed, "Command exited with status 3")
        );
        assert_eq!(outcome(Some(15), true).0, TaskState::TaskKilled);
        let (state, message) = outcome(Some(9), false);
        assert_eq!(state, TaskState::TaskFailed);
        assert!(message.contains("SIGKILL"), "{message}");
        assert_eq!(outcome(None, false).0, TaskState::TaskFailed);
    }
}
