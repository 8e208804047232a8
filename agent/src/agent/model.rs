//! What the agent knows about the frameworks, executors and tasks it runs.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use bytes::Bytes;
use mesos_proto::codec::Format;
use mesos_proto::v1::{self, TaskState, task_status::Reason};
use tokio::sync::mpsc;

/// Finished executors kept per framework for `/state` (Mesos's default).
pub(crate) const MAX_COMPLETED_EXECUTORS: usize = 150;
/// Finished tasks kept per executor (Mesos's default).
pub(crate) const MAX_COMPLETED_TASKS: usize = 200;
/// Removed frameworks kept for `/state` (Mesos's default).
pub(crate) const MAX_COMPLETED_FRAMEWORKS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameworkState {
    Running,
    /// Shut down by the master; removed once its last executor is gone.
    Terminating,
}

#[derive(Debug)]
pub(crate) struct Framework {
    pub info: v1::FrameworkInfo,
    pub state: FrameworkState,
    pub executors: BTreeMap<String, Executor>,
    pub completed_executors: VecDeque<Executor>,
}

impl Framework {
    pub fn new(info: v1::FrameworkInfo) -> Self {
        Self {
            info,
            state: FrameworkState::Running,
            executors: BTreeMap::new(),
            completed_executors: VecDeque::new(),
        }
    }

    pub fn has_capability(&self, capability: v1::framework_info::capability::Type) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(capability as i32))
    }

    /// Archives a finished executor.
    pub fn complete(&mut self, executor: Executor) {
        self.completed_executors.push_back(executor);
        while self.completed_executors.len() > MAX_COMPLETED_EXECUTORS {
            self.completed_executors.pop_front();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutorState {
    /// Being started or started but not yet subscribed.
    Registering,
    /// Subscribed (its connection may have dropped since).
    Running,
    /// Told to shut down or being killed.
    Terminating,
}

/// An executor's event stream.
#[derive(Debug)]
pub(crate) struct Connection {
    pub id: u64,
    pub format: Format,
    /// RecordIO frames.
    pub tx: mpsc::Sender<Bytes>,
}

#[derive(Debug)]
pub(crate) struct Executor {
    pub info: v1::ExecutorInfo,
    /// Built by the agent for a command task (the master does not track
    /// those executors).
    pub command_executor: bool,
    pub container_id: String,
    pub sandbox: PathBuf,
    /// Known once the launch completed.
    pub pid: Option<u32>,
    pub state: ExecutorState,
    pub conn: Option<Connection>,
    /// Tasks waiting for the executor to subscribe.
    pub queued: Vec<v1::TaskInfo>,
    /// Which queued tasks form task groups (by task ID), delivered together.
    pub queued_groups: Vec<Vec<String>>,
    /// Tasks handed to the executor, by id.
    pub launched: BTreeMap<String, Task>,
    pub completed: VecDeque<Task>,
    /// Why the agent is ending this executor; its tasks still live when it
    /// exits fail with this.
    pub termination: Option<Termination>,
    /// Recovered after an agent restart; not the agent's child.
    pub recovered: bool,
}

impl Executor {
    pub fn framework_id(&self) -> &str {
        self.info
            .framework_id
            .as_ref()
            .map(|id| id.value.as_str())
            .unwrap_or_default()
    }

    /// Moves a task that reached a terminal state to `completed`.
    pub fn complete_task(&mut self, task_id: &str) {
        if let Some(task) = self.launched.remove(task_id) {
            self.completed.push_back(task);
            while self.completed.len() > MAX_COMPLETED_TASKS {
                self.completed.pop_front();
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Termination {
    /// The state of its unfinished tasks (TASK_FAILED when unset).
    pub state: Option<TaskState>,
    pub reason: Reason,
    pub message: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub info: v1::TaskInfo,
    pub state: TaskState,
    /// Every state the task went through, with its timestamp.
    pub statuses: Vec<(TaskState, f64)>,
}

impl Task {
    pub fn new(info: v1::TaskInfo) -> Self {
        Self {
            info,
            state: TaskState::TaskStaging,
            statuses: Vec::new(),
        }
    }
}

/// Counters behind `/metrics/snapshot`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub valid_status_updates: u64,
    pub invalid_status_updates: u64,
    pub valid_framework_messages: u64,
    pub invalid_framework_messages: u64,
    pub container_launch_errors: u64,
    pub executors_terminated: u64,
    pub tasks_finished: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub tasks_lost: u64,
    pub tasks_gone: u64,
}

impl Counters {
    pub fn count_terminal(&mut self, state: TaskState) {
        let counter = match state {
            TaskState::TaskFinished => &mut self.tasks_finished,
            TaskState::TaskFailed | TaskState::TaskError => &mut self.tasks_failed,
            TaskState::TaskKilled => &mut self.tasks_killed,
            TaskState::TaskLost | TaskState::TaskDropped => &mut self.tasks_lost,
            TaskState::TaskGone | TaskState::TaskGoneByOperator => &mut self.tasks_gone,
            _ => return,
        };
        *counter += 1;
    }
}
