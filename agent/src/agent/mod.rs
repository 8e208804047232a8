//! The agent's state and the one task that owns it. HTTP handlers, the
//! master link, process watchers and timers send [`Command`]s; nothing
//! else touches the state, and no handler ever waits on anything but the
//! reply to its own command. Slow work (forking, file I/O) runs in tasks
//! of its own that report back with a command.

mod checkpointing;
mod containers;
mod docker;
mod executor_calls;
mod executors;
mod limits;
mod master_messages;
mod metrics;
mod model;
mod operator_state;
mod recovery;
mod state_json;
mod task_groups;
mod tasks;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use mesos_proto::codec::Format;
use mesos_proto::internal::v1::{AgentToMaster, agent_to_master, master_to_agent};
use mesos_proto::v1::{self, executor};
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::{Checkpointer, Meta};
use crate::error::ApiError;
use crate::status_updates::StatusUpdateManager;
pub use containers::ContainerView;
use model::{Counters, Framework};
pub use recovery::{Recovered, load as recover};

/// Labels the isolators added to a container's tasks: key, optional value.
pub(crate) type Labels = Vec<(String, Option<String>)>;

/// How often subscribed executors get a HEARTBEAT event. Mesos waits 30
/// minutes; a short interval makes a vanished executor's connection fail
/// (and be noticed) soon.
const EXECUTOR_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// How often due status update retries are looked for.
const RETRY_TICK: Duration = Duration::from_secs(1);
/// Commands queued for the agent loop.
const COMMAND_QUEUE: usize = 4096;

/// Capabilities the agent announces (and honours: it passes allocation
/// and refined reservation info through untouched).
pub const CAPABILITIES: [v1::agent_info::capability::Type; 3] = [
    v1::agent_info::capability::Type::MultiRole,
    v1::agent_info::capability::Type::HierarchicalRole,
    v1::agent_info::capability::Type::ReservationRefinement,
];

/// Everything the agent loop needs from flags and startup.
#[derive(Debug, Clone)]
pub struct Config {
    pub work_dir: PathBuf,
    /// Without `id`: the master assigns it.
    pub agent_info: v1::AgentInfo,
    /// `slave(1)@ip:port`.
    pub pid: String,
    /// `ip:port`, for executors.
    pub endpoint: String,
    pub launcher_dir: PathBuf,
    pub registration_timeout: Duration,
    pub shutdown_grace_period: Duration,
    pub recovery_timeout: Duration,
    pub reregistration_timeout: Duration,
    /// `--executor_environment_variables`: replaces the inherited environment.
    pub executor_base_env: Option<BTreeMap<String, String>>,
    pub switch_user: bool,
    pub http_command_executor: bool,
    /// Every flag's effective value, for `/state`.
    pub flags: Vec<(String, String)>,
    /// Deletes the sandboxes of finished executors.
    pub gc: crate::gc::Gc,
    /// `--isolation`, built.
    pub isolation: crate::isolation::Isolation,
    /// How often limits no kernel enforces are checked
    /// (`--container_disk_watch_interval`).
    pub limit_watch_interval: Duration,
    /// `--image_providers`: container images, when enabled.
    pub images: Option<crate::images::Images>,
    /// `--hooks`, resolved.
    pub hooks: mesos_plugin_api::hooks::Hooks,
    /// `--containerizers`, in order.
    pub containerizers: Vec<String>,
    /// `--oci_runtime`, when `oci` is among them.
    pub oci: Option<crate::oci::OciRuntime>,
    pub docker: DockerConfig,
    /// Containers nested in executors' (destroyed with them).
    pub nested: crate::nested::NestedContainers,
    /// Fetches executors' URIs into their sandboxes before they start.
    pub fetcher: crate::fetcher::Fetcher,
    /// Reservations and persistent volumes checkpointed by an earlier
    /// run, already checked against `agent_info.resources`.
    pub checkpointed_resources: mesos_resources::Resources,
}

/// What the docker executor needs from the agent's flags.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub socket: PathBuf,
    pub stop_timeout: Duration,
    /// `--sandbox_directory`: where the sandbox appears in containers.
    pub sandbox_directory: PathBuf,
    pub enable_cfs: bool,
    /// `--docker_kill_orphans`.
    pub kill_orphans: bool,
}

impl DockerConfig {
    /// What `mesos-docker-executor` needs from the agent's flags.
    pub fn executor_env(&self) -> [(&'static str, String); 4] {
        [
            ("MESOS_DOCKER_SOCKET", self.socket.display().to_string()),
            (
                "MESOS_DOCKER_STOP_TIMEOUT",
                mesos_flags::Duration(self.stop_timeout).to_string(),
            ),
            (
                "MESOS_SANDBOX_DIRECTORY",
                self.sandbox_directory.display().to_string(),
            ),
            ("MESOS_CGROUPS_ENABLE_CFS", self.enable_cfs.to_string()),
        ]
    }
}

/// Identifies an executor: (framework id, executor id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExecutorKey {
    pub framework_id: String,
    pub executor_id: String,
}

impl fmt::Display for ExecutorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "executor '{}' of framework {}",
            self.executor_id, self.framework_id
        )
    }
}

pub enum Command {
    /// The link dialled the master; RegisterAgent goes first on `tx`.
    LinkUp {
        tx: mpsc::Sender<AgentToMaster>,
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
    /// The HTTP layer rejected an executor's UPDATE (for the metrics).
    InvalidStatusUpdate,
    ExecutorStreamClosed {
        key: ExecutorKey,
        conn: u64,
    },
    /// The isolators prepared container `container_id` and answered
    /// labels for its tasks; sent before the executor is forked, so that
    /// it never subscribes to tasks without them.
    IsolatorLabels {
        key: ExecutorKey,
        container_id: String,
        labels: Labels,
    },
    ExecutorLaunched {
        key: ExecutorKey,
        container_id: String,
        /// The pid, or why the launch failed.
        result: Result<u32, String>,
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
    /// An isolator's watch found the container over a limit.
    LimitReached {
        key: ExecutorKey,
        container_id: String,
        limitation: mesos_plugin_api::isolator::Limitation,
    },
    /// The acknowledgement of an executor's update is on disk: tell the
    /// executor (which resends the update until then).
    AcknowledgeExecutor {
        key: ExecutorKey,
        task_id: v1::TaskId,
        uuid: Vec<u8>,
    },
    /// A checkpointed update's record is on disk: it may go to the master
    /// (one sent earlier could be forgotten by a crash, and come back from
    /// the executor as a new update the master already has).
    ForwardUpdate {
        framework_id: String,
        task_id: String,
    },
    /// A recovered executor's process is gone (it is not the agent's
    /// child, so this comes from polling).
    RecoveredExecutorGone {
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
    Containers {
        reply: oneshot::Sender<Vec<ContainerView>>,
    },
    /// The agent is going away for good: every executor is killed now.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// The state for the operator API, and the agent's info.
    OperatorState {
        reply: oneshot::Sender<(v1::agent::response::GetState, v1::AgentInfo)>,
    },
}

/// An executor's event stream, handed to the HTTP layer.
#[derive(Debug)]
pub struct ExecutorSubscription {
    /// RecordIO frames in the format the executor accepts.
    pub events: mpsc::Receiver<Bytes>,
    /// Identifies this connection when it closes.
    pub conn: u64,
}

#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

impl Handle {
    fn shutting_down() -> ApiError {
        ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "Agent is shutting down",
        )
    }

    /// Sends a command and waits for its reply.
    pub async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Self::shutting_down())?;
        rx.await.map_err(|_| Self::shutting_down())
    }

    /// Sends a command, waiting for room in the queue (keeps order with
    /// the caller's other commands).
    pub async fn send(&self, command: Command) -> Result<(), ApiError> {
        self.tx
            .send(command)
            .await
            .map_err(|_| Self::shutting_down())
    }

    /// Fire and forget, for callers that cannot wait (drop guards, timers).
    pub fn notify(&self, command: Command) {
        if let Err(mpsc::error::TrySendError::Full(command)) = self.tx.try_send(command) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(command).await;
            });
        }
    }

    /// Delivers `command` after `delay`.
    pub(crate) fn notify_after(&self, delay: Duration, command: Command) {
        let handle = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            handle.notify(command);
        });
    }
}

/// The master link as the agent loop sees it.
enum Link {
    Down,
    /// Connected, but recovered executors have not all resubscribed yet;
    /// the agent registers once they have (or their time is up).
    Held(mpsc::Sender<AgentToMaster>),
    /// RegisterAgent sent; nothing else goes until AgentRegistered.
    Registering(mpsc::Sender<AgentToMaster>),
    Registered(mpsc::Sender<AgentToMaster>),
}

pub struct Agent {
    config: Config,
    agent_id: Option<String>,
    master_hostname: Option<String>,
    start_time: f64,
    link: Link,
    frameworks: BTreeMap<String, Framework>,
    completed_frameworks: VecDeque<Framework>,
    updates: StatusUpdateManager,
    meta: Meta,
    checkpointer: Checkpointer,
    /// The update log of each task with a checkpointed stream.
    update_logs: HashMap<(String, String), PathBuf>,
    /// Recovered from checkpoints: the next registration re-registers.
    reregister: bool,
    /// Frameworks whose `framework.info` is written.
    checkpointed_frameworks: std::collections::HashSet<String>,
    handle: Handle,
    next_conn: u64,
    counters: Counters,
    /// Launches in progress (fetching or forking), by container ID: set to
    /// give one up.
    launches: HashMap<String, tokio::sync::watch::Sender<bool>>,
    /// A limit watch is under way: the next tick skips rather than
    /// stacking walks of the same sandboxes.
    watching_limits: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What the master's operations made of the agent's resources
    /// (reservations, persistent volumes), on top of `--resources`.
    checkpointed: mesos_resources::Resources,
}

impl Agent {
    /// Starts the agent loop with what was recovered from the checkpoints.
    pub fn spawn(config: Config, checkpointer: Checkpointer, recovered: Recovered) -> Handle {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let handle = Handle { tx };
        let mut agent = Agent {
            meta: Meta::new(&config.work_dir),
            checkpointed: config.checkpointed_resources.clone(),
            config,
            checkpointer,
            update_logs: HashMap::new(),
            reregister: false,
            checkpointed_frameworks: Default::default(),
            agent_id: None,
            master_hostname: None,
            start_time: now_secs(),
            link: Link::Down,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            updates: StatusUpdateManager::default(),
            handle: handle.clone(),
            next_conn: 1,
            counters: Counters::default(),
            launches: HashMap::new(),
            watching_limits: std::sync::Arc::default(),
        };
        agent.restore(recovered);
        agent.kill_docker_orphans();
        agent.recover_isolation();
        tokio::spawn(agent.run(rx));
        handle
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut retry = tokio::time::interval(RETRY_TICK);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(EXECUTOR_HEARTBEAT_INTERVAL);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut limits = tokio::time::interval(self.config.limit_watch_interval);
        limits.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = retry.tick() => self.retry_status_updates(),
                _ = heartbeat.tick() => self.heartbeat_executors(),
                _ = limits.tick() => self.watch_limits(),
            }
        }
    }

    fn handle(&mut self, command: Command) {
        self.dispatch(command);
        if matches!(self.link, Link::Held(_)) {
            self.maybe_finish_recovery();
        }
    }

    fn dispatch(&mut self, command: Command) {
        match command {
            Command::LinkUp { tx } => self.link_up(tx),
            Command::LinkDown => {
                if !matches!(self.link, Link::Down) {
                    tracing::info!("disconnected from the master");
                }
                self.link = Link::Down;
            }
            Command::FromMaster(message) => self.master_message(*message),
            Command::ExecutorSubscribe {
                call,
                format,
                reply,
            } => {
                let _ = reply.send(self.executor_subscribe(call, format));
            }
            Command::ExecutorCall { call, reply } => {
                let _ = reply.send(self.executor_call(call));
            }
            Command::InvalidStatusUpdate => self.counters.invalid_status_updates += 1,
            Command::ExecutorStreamClosed { key, conn } => self.executor_stream_closed(&key, conn),
            Command::IsolatorLabels {
                key,
                container_id,
                labels,
            } => self.label_tasks(&key, &container_id, &labels),
            Command::ExecutorLaunched {
                key,
                container_id,
                result,
            } => self.executor_launched(&key, &container_id, result),
            Command::ExecutorExited {
                key,
                container_id,
                status,
            } => self.executor_exited(&key, &container_id, status),
            Command::RegistrationTimeout { key, container_id } => {
                self.registration_timeout(&key, &container_id)
            }
            Command::LimitReached {
                key,
                container_id,
                limitation,
            } => self.limit_reached(&key, &container_id, limitation),
            Command::AcknowledgeExecutor { key, task_id, uuid } => {
                self.acknowledge_executor(&key, &task_id, uuid)
            }
            Command::ForwardUpdate {
                framework_id,
                task_id,
            } => self.forward_update(&framework_id, &task_id),
            Command::RecoveredExecutorGone { key, container_id } => {
                self.executor_exited(&key, &container_id, None)
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
            Command::Containers { reply } => {
                let _ = reply.send(self.containers());
            }
            Command::Shutdown { reply } => {
                self.destroy_all();
                let _ = reply.send(());
            }
            Command::OperatorState { reply } => {
                let _ = reply.send((self.operator_state(), self.operator_agent_info()));
            }
        }
    }

    /// The agent as the master sees it: static resources with the
    /// master's operations applied.
    fn agent_info(&self) -> v1::AgentInfo {
        let mut info = self.static_agent_info();
        info.resources = self.total_resources().into_vec();
        info
    }

    /// The agent as its flags describe it: what `slave.info` records and a
    /// restarted agent compares itself with.
    fn static_agent_info(&self) -> v1::AgentInfo {
        let mut info = self.config.agent_info.clone();
        info.id = self
            .agent_id
            .as_ref()
            .map(|id| v1::AgentId { value: id.clone() });
        info
    }

    fn total_resources(&self) -> mesos_resources::Resources {
        let static_total =
            mesos_resources::Resources::from(self.config.agent_info.resources.clone());
        // Checked when it was taken in; fall back to the static resources
        // rather than report nothing.
        crate::volumes::total(&static_total, &self.checkpointed).unwrap_or(static_total)
    }

    fn is_registered(&self) -> bool {
        matches!(self.link, Link::Registered(_))
    }

    /// Queues a message to a master that registered the agent; false when
    /// there is none (status updates are resent on registration).
    fn send_to_master(&self, message: agent_to_master::Message) -> bool {
        let Link::Registered(tx) = &self.link else {
            return false;
        };
        self.push_to_link(tx, message)
    }

    fn push_to_link(
        &self,
        tx: &mpsc::Sender<AgentToMaster>,
        message: agent_to_master::Message,
    ) -> bool {
        match tx.try_send(AgentToMaster {
            message: Some(message),
        }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("the link to the master is congested; message dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn executor(&self, key: &ExecutorKey) -> Option<&model::Executor> {
        self.frameworks
            .get(&key.framework_id)?
            .executors
            .get(&key.executor_id)
    }

    fn executor_mut(&mut self, key: &ExecutorKey) -> Option<&mut model::Executor> {
        self.frameworks
            .get_mut(&key.framework_id)?
            .executors
            .get_mut(&key.executor_id)
    }

    /// Sends an event to a subscribed executor; false if it is not
    /// connected (or so far behind that its queue is full).
    fn send_to_executor(&mut self, key: &ExecutorKey, event: &executor::Event) -> bool {
        let Some(executor) = self.executor_mut(key) else {
            return false;
        };
        let Some(conn) = &executor.conn else {
            return false;
        };
        match conn.tx.try_send(frame(conn.format, event)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(%key, "executor is not reading its events; event dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                executor.conn = None;
                false
            }
        }
    }

    fn heartbeat_executors(&mut self) {
        let event = executor::Event {
            r#type: Some(executor::event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let connected: Vec<ExecutorKey> = self
            .frameworks
            .iter()
            .flat_map(|(fid, framework)| {
                framework
                    .executors
                    .iter()
                    .filter(|(_, e)| e.conn.is_some())
                    .map(move |(eid, _)| ExecutorKey {
                        framework_id: fid.clone(),
                        executor_id: eid.clone(),
                    })
            })
            .collect();
        for key in connected {
            self.send_to_executor(&key, &event);
        }
    }
}

/// One event as a RecordIO record.
fn frame(format: Format, event: &executor::Event) -> Bytes {
    mesos_proto::recordio::frame(&mesos_proto::codec::encode(format, event))
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
