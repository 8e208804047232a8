//! The agent's state and the one task that owns it. HTTP handlers, the
//! master link and process watchers send [`Command`]s; nothing else touches
//! the state.

mod executors;
mod executor_calls;
mod master_messages;
mod state_json;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_proto::codec::Format;
use mesos_proto::internal::v1::{AgentToMaster, RegisterAgent, agent_to_master, master_to_agent};
use mesos_proto::v1::{self, executor};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::status_updates::StatusUpdateManager;

/// Executors and frameworks kept after they end, for the state endpoint.
const MAX_COMPLETED: usize = 100;

#[derive(Debug, Clone)]
pub struct Config {
    pub work_dir: PathBuf,
    /// Without `id`; the master assigns it.
    pub agent_info: v1::AgentInfo,
    /// `slave(1)@ip:port`.
    pub pid: String,
    /// `ip:port`, for executors (`MESOS_AGENT_ENDPOINT`).
    pub endpoint: String,
    pub launcher_dir: PathBuf,
    pub registration_timeout: Duration,
    pub shutdown_grace: Duration,
    pub sandbox_directory: PathBuf,
    pub flags: Vec<(String, String)>,
}

pub enum Command {
    /// The link connected; it needs the RegisterAgent to send first.
    LinkUp {
        tx: mpsc::Sender<AgentToMaster>,
        reply: oneshot::Sender<RegisterAgent>,
    },
    LinkDown,
    FromMaster(Box<master_to_agent::Message>),
    ExecutorSubscribe {
        call: executor::Call,
        format: Format,
        reply: oneshot::Sender<Result<ExecutorSubscription, ApiError>>,
    },
    ExecutorCall {
        call: executor::Call,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    ExecutorStreamClosed {
        key: ExecutorKey,
        conn: u64,
    },
    ExecutorExited {
        key: ExecutorKey,
        container_id: String,
        /// Raw wait status; `None` if waiting failed.
        status: Option<i32>,
    },
    RegistrationTimeout {
        key: ExecutorKey,
        container_id: String,
    },
    ShutdownTimeout {
        key: ExecutorKey,
        container_id: String,
    },
    State {
        reply: oneshot::Sender<serde_json::Value>,
    },
    Metrics {
        reply: oneshot::Sender<serde_json::Value>,
    },
}

/// An executor's event stream, handed to the HTTP layer.
#[derive(Debug)]
pub struct ExecutorSubscription {
    /// RecordIO frames in the executor's format.
    pub events: mpsc::Receiver<Bytes>,
    /// Identifies this connection when it closes.
    pub conn: u64,
}

/// (framework id, executor id).
pub type ExecutorKey = (String, String);

#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

impl Handle {
    pub async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        let unavailable = || ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
        self.tx.send(make(reply)).await.map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())
    }

    /// Sends a command without a reply, waiting for room in the queue.
    pub async fn send(&self, command: Command) -> Result<(), ApiError> {
        self.tx
            .send(command)
            .await
            .map_err(|_| ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"))
    }

    /// Fire and forget; never blocks the caller.
    pub fn notify(&self, command: Command) {
        if let Err(mpsc::error::TrySendError::Full(command)) = self.tx.try_send(command) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(command).await;
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutorState {
    Registering,
    Running,
    Terminating,
}

#[derive(Debug)]
pub(crate) struct Connection {
    id: u64,
    format: Format,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Debug)]
pub(crate) struct Task {
    info: v1::TaskInfo,
    state: v1::TaskState,
}

#[derive(Debug)]
pub(crate) struct Executor {
    info: v1::ExecutorInfo,
    framework_id: String,
    container_id: String,
    sandbox: PathBuf,
    pid: Option<u32>,
    state: ExecutorState,
    conn: Option<Connection>,
    /// Tasks waiting for the executor to subscribe.
    queued: Vec<v1::TaskInfo>,
    /// Tasks sent to the executor, by id.
    launched: BTreeMap<String, Task>,
    completed: Vec<Task>,
}

pub struct Agent {
    config: Config,
    agent_id: Option<String>,
    start_time: f64,
    link: Option<mpsc::Sender<AgentToMaster>>,
    frameworks: BTreeMap<String, v1::FrameworkInfo>,
    executors: BTreeMap<ExecutorKey, Executor>,
    completed_executors: VecDeque<Executor>,
    updates: StatusUpdateManager,
    handle: Handle,
    next_conn: u64,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    valid_status_updates: u64,
    invalid_status_updates: u64,
    framework_messages: u64,
    launch_errors: u64,
    terminal: BTreeMap<&'static str, u64>,
}

impl Agent {
    /// Starts the agent loop.
    pub fn spawn(config: Config) -> Handle {
        let (tx, rx) = mpsc::channel(4096);
        let handle = Handle { tx };
        let agent = Agent {
            config,
            agent_id: None,
            start_time: now_secs(),
            link: None,
            frameworks: BTreeMap::new(),
            executors: BTreeMap::new(),
            completed_executors: VecDeque::new(),
            updates: StatusUpdateManager::default(),
            handle: handle.clone(),
            next_conn: 1,
            counters: Counters::default(),
        };
        tokio::spawn(agent.run(rx));
        handle
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = retry.tick() => {
                    for update in self.updates.due(Instant::now()) {
                        self.send_to_master(agent_to_master::Message::StatusUpdate(update));
                    }
                }
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::LinkUp { tx, reply } => {
                self.link = Some(tx);
                let _ = reply.send(self.register_message());
            }
            Command::LinkDown => self.link = None,
            Command::FromMaster(message) => self.master_message(*message),
            Command::ExecutorSubscribe { call, format, reply } => {
                let _ = reply.send(self.executor_subscribe(call, format));
            }
            Command::ExecutorCall { call, reply } => {
                let _ = reply.send(self.executor_call(call));
            }
            Command::ExecutorStreamClosed { key, conn } => self.executor_stream_closed(&key, conn),
            Command::ExecutorExited {
                key,
                container_id,
                status,
            } => self.executor_exited(&key, &container_id, status),
            Command::RegistrationTimeout { key, container_id } => {
                self.registration_timeout(&key, &container_id)
            }
            Command::ShutdownTimeout { key, container_id } => {
                self.shutdown_timeout(&key, &container_id)
            }
            Command::State { reply } => {
                let _ = reply.send(self.state_json());
            }
            Command::Metrics { reply } => {
                let _ = reply.send(self.metrics_json());
            }
        }
    }

    fn agent_info(&self) -> v1::AgentInfo {
        let mut info = self.config.agent_info.clone();
        info.id = self.agent_id.as_ref().map(|id| v1::AgentId { value: id.clone() });
        info
    }

    /// The registration message: the agent as it is now, with what it runs,
    /// so a master that lost track can rebuild its view.
    fn register_message(&self) -> RegisterAgent {
        let agent_id = self.agent_id.clone().unwrap_or_default();
        let mut tasks = Vec::new();
        let mut executors = Vec::new();
        for ((fid, _), executor) in &self.executors {
            executors.push(executor.info.clone());
            let live = executor
                .launched
                .values()
                .map(|t| (&t.info, t.state))
                .chain(executor.queued.iter().map(|t| (t, v1::TaskState::TaskStaging)));
            for (info, state) in live {
                tasks.push(v1::Task {
                    name: info.name.clone(),
                    task_id: info.task_id.clone(),
                    framework_id: v1::FrameworkId { value: fid.clone() },
                    executor_id: Some(executor.info.executor_id.clone()),
                    agent_id: v1::AgentId { value: agent_id.clone() },
                    state: state as i32,
                    resources: info.resources.clone(),
                    ..Default::default()
                });
            }
        }
        RegisterAgent {
            agent_info: self.agent_info(),
            version: mesos_proto::MESOS_VERSION.to_string(),
            pid: Some(self.config.pid.clone()),
            frameworks: self.frameworks.values().cloned().collect(),
            executors,
            tasks,
            capabilities: vec![],
        }
    }

    /// Queues a message to the master; false when there is no link (status
    /// updates are resent when it comes back).
    fn send_to_master(&self, message: agent_to_master::Message) -> bool {
        let Some(link) = &self.link else {
            return false;
        };
        link.try_send(AgentToMaster {
            message: Some(message),
        })
        .is_ok()
    }

    /// Sends an event to a subscribed executor.
    fn send_to_executor(&mut self, key: &ExecutorKey, event: &executor::Event) -> bool {
        let Some(conn) = self.executors.get(key).and_then(|e| e.conn.as_ref()) else {
            return false;
        };
        let record = mesos_proto::recordio::frame(&mesos_proto::codec::encode(conn.format, event));
        conn.tx.try_send(record).is_ok()
    }
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

pub fn is_terminal(state: v1::TaskState) -> bool {
    use v1::TaskState::*;
    matches!(
        state,
        TaskFinished | TaskFailed | TaskKilled | TaskError | TaskLost | TaskDropped | TaskGone | TaskGoneByOperator
    )
}
