//! The master's state and the one task that owns it.
//!
//! Everything mutable lives in [`Master`], driven by a single loop fed by a
//! channel: HTTP handlers and agent links send [`Command`]s and await the
//! reply. No lock is held across an await, nothing clones the whole state
//! per request, and commands are drained in batches so that an allocation
//! runs once per batch, not once per event.

mod adoption;
mod agents;
mod framework_calls;
mod frameworks;
mod legacy_json;
mod metrics;
mod offers;
mod operations;
mod operator;
mod state_json;
mod task_groups;
mod weights_quota;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_plugin_api::allocator::Allocator;
use mesos_proto::codec::Format;
use mesos_proto::internal::v1::{MasterToAgent, RegisterAgent, agent_to_master};
use mesos_proto::v1::{self, scheduler};
use mesos_resources::Resources;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
pub use legacy_json::{LegacyView, TaskQuery};
pub use metrics::Counters;
pub use state_json::StateSnapshot;

/// Mesos's DEFAULT_HEARTBEAT_INTERVAL for scheduler streams.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Events queued for one subscriber before it counts as stuck and is
/// disconnected (it will re-subscribe), so a slow framework never blocks the
/// master or makes it hoard memory without bound. Deep enough for a burst
/// of one update per task of a large launch (a few hundred bytes each).
const EVENT_QUEUE: usize = 256 * 1024;

/// Commands processed per batch before the loop looks at its timers again.
const BATCH: usize = 1024;

/// What the master needs to know that does not change while it runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub master_info: v1::MasterInfo,
    pub allocation_interval: Duration,
    pub offer_timeout: Option<Duration>,
    pub agent_ping_timeout: Duration,
    pub max_agent_ping_timeouts: u32,
    /// How long a restarted master waits for the registry's agents.
    pub agent_reregister_timeout: Duration,
    /// `--weights`, until an operator changes them.
    pub weights: Vec<(String, f64)>,
    pub max_completed_frameworks: usize,
    pub max_completed_tasks_per_framework: usize,
    pub cluster: Option<String>,
    /// Effective flags, for `/flags` and `/master/state`.
    pub flags: Vec<(String, String)>,
    /// `--hooks`.
    pub hooks: mesos_plugin_api::hooks::Hooks,
}

/// A request to the master loop.
pub enum Command {
    Subscribe {
        call: scheduler::Call,
        format: Format,
        reply: oneshot::Sender<Result<Subscription, ApiError>>,
    },
    Call {
        call: scheduler::Call,
        stream_id: Option<String>,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    SubscriptionClosed {
        framework_id: String,
        stream_id: String,
    },
    AgentConnected {
        register: Box<RegisterAgent>,
        link: AgentLink,
        reply: oneshot::Sender<Result<String, ApiError>>,
    },
    AgentMessage {
        agent_id: String,
        conn: u64,
        message: agent_to_master::Message,
    },
    AgentDisconnected {
        agent_id: String,
        conn: u64,
    },
    /// `/master/state`: a snapshot, rendered by the caller off the loop.
    State {
        reply: oneshot::Sender<StateSnapshot>,
    },
    Metrics {
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// One of the older read-only JSON endpoints.
    Legacy {
        view: LegacyView,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// An operator API call that reads or changes the master's state;
    /// `None` answers 200 with no body.
    Operator {
        call: mesos_proto::v1::master::Call,
        reply: oneshot::Sender<Result<Option<mesos_proto::v1::master::Response>, ApiError>>,
    },
    /// An operator SUBSCRIBE: RecordIO frames of `master::Event` in `format`.
    OperatorSubscribe {
        format: Format,
        reply: oneshot::Sender<mpsc::Receiver<Bytes>>,
    },
}

/// A framework's event stream, handed to the HTTP layer.
#[derive(Debug)]
pub struct Subscription {
    pub framework_id: String,
    pub stream_id: String,
    /// RecordIO frames, already encoded in the subscriber's format.
    pub events: mpsc::Receiver<Bytes>,
}

/// The master's side of an agent's gRPC stream.
#[derive(Debug, Clone)]
pub struct AgentLink {
    /// Distinguishes successive connections of one agent, so a late
    /// message from a dead stream is not mistaken for the live one.
    pub conn: u64,
    pub tx: mpsc::Sender<Result<MasterToAgent, tonic::Status>>,
}

/// Cheap handle used by the HTTP layer and the agent links.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

impl Handle {
    /// Sends a command and waits for its reply.
    pub async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ApiError::unavailable("Master is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("Master is shutting down"))
    }

    /// Sends a command without waiting for a reply, with backpressure.
    pub async fn send(&self, command: Command) -> Result<(), ApiError> {
        self.tx
            .send(command)
            .await
            .map_err(|_| ApiError::unavailable("Master is shutting down"))
    }

    /// Sends a command that has no reply; losing it at shutdown is fine.
    pub fn notify(&self, command: Command) {
        // Full: deliver it from a task rather than drop a state change.
        if let Err(mpsc::error::TrySendError::Full(command)) = self.tx.try_send(command) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(command).await;
            });
        }
    }
}

#[derive(Debug)]
pub(crate) struct Connection {
    stream_id: String,
    format: Format,
    tx: mpsc::Sender<Bytes>,
}

/// Shared with `/master/state` snapshots, which serialize off the loop;
/// changed copy-on-write (through [`Task::edit`]) while a snapshot holds it.
#[derive(Debug)]
pub(crate) struct Task {
    /// The state view, as `/master/state` and reconciliation show it.
    proto: v1::Task,
    /// What the task holds, normalised; returned once it is terminal.
    resources: Resources,
    /// Its resources went back to the allocator already.
    recovered: bool,
    /// Its `/master/state` entry, made by the first render that needs it
    /// and dropped by any change: a running task seldom changes, and
    /// rendering 200k tasks anew for every request took most of a second.
    rendered: std::sync::OnceLock<state_json::RenderedTask>,
}

impl Task {
    pub(crate) fn new(proto: v1::Task, resources: Resources) -> Self {
        Self {
            proto,
            resources,
            recovered: false,
            rendered: std::sync::OnceLock::new(),
        }
    }

    /// The task to change: copied if a snapshot shares it, and its
    /// rendered entry dropped.
    pub(crate) fn edit(task: &mut Arc<Task>) -> &mut Task {
        let task = Arc::make_mut(task);
        task.rendered = std::sync::OnceLock::new();
        task
    }
}

impl Clone for Task {
    /// A copy is made to be changed: it does not keep the rendered entry.
    fn clone(&self) -> Self {
        Self {
            proto: self.proto.clone(),
            resources: self.resources.clone(),
            recovered: self.recovered,
            rendered: std::sync::OnceLock::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Framework {
    id: String,
    info: v1::FrameworkInfo,
    role: String,
    multi_role: bool,
    partition_aware: bool,
    conn: Option<Connection>,
    registered_time: f64,
    reregistered_time: Option<f64>,
    unregistered_time: Option<f64>,
    /// Set while disconnected: removed if not back by then.
    failover_deadline: Option<Instant>,
    offers: BTreeSet<String>,
    tasks: BTreeMap<String, Arc<Task>>,
    completed_tasks: VecDeque<Arc<v1::Task>>,
}

#[derive(Debug)]
pub(crate) struct Agent {
    id: String,
    info: v1::AgentInfo,
    pid: String,
    version: String,
    total: Resources,
    link: Option<AgentLink>,
    last_seen: Instant,
    last_ping_sent: Instant,
    ping_sequence: u64,
    registered_time: f64,
    reregistered_time: Option<f64>,
    offers: BTreeSet<String>,
    /// (framework, executor) -> executor, for custom executors.
    executors: BTreeMap<(String, String), v1::ExecutorInfo>,
    /// (framework, task) of every task the master knows on this agent.
    tasks: BTreeSet<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Offer {
    id: String,
    framework_id: String,
    agent_id: String,
    resources: Resources,
    created: Instant,
}

pub struct Master {
    config: Config,
    id: String,
    start_time: f64,
    allocator: Box<dyn Allocator>,
    frameworks: HashMap<String, Framework>,
    completed_frameworks: VecDeque<Framework>,
    agents: HashMap<String, Agent>,
    /// Agent IDs by pid, to find an agent that restarted as a new one at
    /// the same address without scanning every agent.
    agent_pids: HashMap<String, String>,
    unreachable_agents: BTreeMap<String, f64>,
    offers: HashMap<String, Offer>,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
    counters: Counters,
    /// Agents an operator marked gone: never admitted again.
    gone_agents: BTreeSet<String>,
    operator_subscribers: Vec<operator::OperatorSubscriber>,
    /// Something happened that deserves an allocation before the next tick
    /// (a framework or agent arrived, a framework revived).
    allocate_soon: bool,
    /// Where admissions and removals of agents are persisted.
    registry: Option<crate::registry::Writer>,
    /// Agents of the registry that have not re-registered since this master
    /// started, and when they stop being waited for.
    recovered_agents: BTreeMap<String, v1::AgentInfo>,
    reregister_deadline: Option<Instant>,
    /// Role weights other than 1, and quota per role.
    weights: BTreeMap<String, f64>,
    quota: BTreeMap<String, v1::quota::QuotaConfig>,
}

impl Master {
    pub fn new(config: Config, allocator: Box<dyn Allocator>) -> Self {
        Self {
            id: config.master_info.id.clone(),
            start_time: crate::wire::now_secs(),
            allocator,
            frameworks: HashMap::new(),
            completed_frameworks: VecDeque::new(),
            agents: HashMap::new(),
            agent_pids: HashMap::new(),
            unreachable_agents: BTreeMap::new(),
            offers: HashMap::new(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
            counters: Counters::default(),
            gone_agents: BTreeSet::new(),
            operator_subscribers: Vec::new(),
            allocate_soon: false,
            registry: None,
            recovered_agents: BTreeMap::new(),
            reregister_deadline: None,
            weights: config.weights.iter().cloned().collect(),
            quota: BTreeMap::new(),
            config,
        }
    }

    /// Starts from the registry a previous master left: its agents are
    /// expected back within `--agent_reregister_timeout`, its unreachable
    /// and gone agents stay so.
    pub fn with_registry(
        mut self,
        registry: mesos_proto::internal::v1::Registry,
        writer: crate::registry::Writer,
    ) -> Self {
        for agent in registry.agents {
            if let Some(id) = agent.id.as_ref().map(|i| i.value.clone()) {
                self.recovered_agents.insert(id, agent);
            }
        }
        for unreachable in registry.unreachable {
            self.unreachable_agents
                .insert(unreachable.id.value, unreachable.time);
        }
        self.gone_agents
            .extend(registry.gone.into_iter().map(|g| g.value));
        self.restore_weights_and_quota(registry.weights, registry.quota_configs);
        if !self.recovered_agents.is_empty() {
            tracing::info!(
                agents = self.recovered_agents.len(),
                timeout = ?self.config.agent_reregister_timeout,
                "waiting for the registry's agents to re-register"
            );
            self.reregister_deadline = Some(Instant::now() + self.config.agent_reregister_timeout);
        }
        self.registry = Some(writer);
        self
    }

    pub(super) fn record(&self, change: crate::registry::Change) {
        if let Some(registry) = &self.registry {
            registry.record(change);
        }
    }

    /// Registry agents that did not come back in time are unreachable.
    fn expire_recovered_agents(&mut self, now: Instant) {
        if self.reregister_deadline.is_none_or(|d| d > now) {
            return;
        }
        self.reregister_deadline = None;
        let time = crate::wire::now_secs();
        for (id, _) in std::mem::take(&mut self.recovered_agents) {
            tracing::warn!(agent = %id, "agent did not re-register in time; it is unreachable");
            self.unreachable_agents.insert(id.clone(), time);
            self.record(crate::registry::Change::Unreachable { id, time });
        }
    }

    /// Starts the loop and returns the handle to it.
    pub fn spawn(self) -> Handle {
        let (tx, rx) = mpsc::channel(BATCH * 4);
        tokio::spawn(self.run(rx));
        Handle { tx }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        use tokio::time::{MissedTickBehavior, interval};
        let mut allocation = interval(self.config.allocation_interval);
        allocation.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let housekeeping_period = (self.config.agent_ping_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut housekeeping = interval(housekeeping_period);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heartbeat = interval(HEARTBEAT_INTERVAL);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    self.handle(command);
                    for _ in 1..BATCH {
                        match rx.try_recv() {
                            Ok(command) => self.handle(command),
                            Err(_) => break,
                        }
                    }
                    if self.allocate_soon {
                        self.allocate();
                    }
                }
                _ = allocation.tick() => self.allocate(),
                _ = housekeeping.tick() => self.housekeeping(Instant::now()),
                _ = heartbeat.tick() => self.heartbeat(),
            }
        }
        tracing::info!("master loop stopped");
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                call,
                format,
                reply,
            } => {
                let _ = reply.send(self.subscribe(call, format));
            }
            Command::Call {
                call,
                stream_id,
                reply,
            } => {
                let _ = reply.send(self.scheduler_call(call, stream_id));
            }
            Command::SubscriptionClosed {
                framework_id,
                stream_id,
            } => self.subscription_closed(&framework_id, &stream_id),
            Command::AgentConnected {
                register,
                link,
                reply,
            } => {
                let _ = reply.send(self.agent_connected(*register, link));
            }
            Command::AgentMessage {
                agent_id,
                conn,
                message,
            } => self.agent_message(&agent_id, conn, message),
            Command::AgentDisconnected { agent_id, conn } => {
                self.agent_disconnected(&agent_id, conn)
            }
            Command::State { reply } => {
                let _ = reply.send(self.state_snapshot());
            }
            Command::Metrics { reply } => {
                let _ = reply.send(self.metrics_json());
            }
            Command::Legacy { view, reply } => {
                let _ = reply.send(self.legacy_json(view));
            }
            Command::Operator { call, reply } => {
                use v1::master::call::Type;
                let kind = call.r#type();
                if let Some(render) = self.deferred_reply(kind) {
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(Ok(Some(render())));
                    });
                    return;
                }
                let answer = self.operator_call(call);
                let stored = match kind {
                    Type::UpdateWeights => Some(self.weights_change()),
                    Type::UpdateQuota => Some(self.quota_change()),
                    _ => None,
                };
                match (stored, &answer, &self.registry) {
                    // Answered once the registry holds the change.
                    (Some(change), Ok(_), Some(registry)) => {
                        let on_disk = registry.record_durably(change);
                        tokio::spawn(async move {
                            let answer = match on_disk.await {
                                Ok(()) => answer,
                                Err(_) => Err(ApiError::unavailable(
                                    "the registry could not store the change",
                                )),
                            };
                            let _ = reply.send(answer);
                        });
                    }
                    _ => {
                        let _ = reply.send(answer);
                    }
                }
            }
            Command::OperatorSubscribe { format, reply } => {
                let _ = reply.send(self.operator_subscribe(format));
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        self.expire_recovered_agents(now);
        self.expire_offers(now);
        self.check_agents(now);
        self.expire_frameworks(now);
    }

    fn heartbeat(&mut self) {
        let event = scheduler::Event {
            r#type: Some(scheduler::event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let ids: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.conn.is_some())
            .map(|f| f.id.clone())
            .collect();
        for id in ids {
            self.send_event(&id, &event);
        }
        self.publish_heartbeat();
    }

    /// Encodes and queues an event for a framework. Returns false if the
    /// framework is not connected (the event is dropped, as Mesos drops
    /// events for disconnected HTTP frameworks; status updates are retried
    /// by the agent).
    fn send_event(&mut self, framework_id: &str, event: &scheduler::Event) -> bool {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return false;
        };
        let Some(conn) = framework.conn.as_ref() else {
            return false;
        };
        let record = mesos_proto::recordio::frame(&mesos_proto::codec::encode(conn.format, event));
        match conn.tx.try_send(record) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    framework = framework_id,
                    "event queue full; disconnecting the framework so it re-subscribes"
                );
                let stream_id = conn.stream_id.clone();
                self.subscription_closed(framework_id, &stream_id);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let stream_id = conn.stream_id.clone();
                self.subscription_closed(framework_id, &stream_id);
                false
            }
        }
    }

    /// Sends a message down an agent's stream; false if it is not connected.
    fn send_to_agent(
        &self,
        agent_id: &str,
        message: mesos_proto::internal::v1::master_to_agent::Message,
    ) -> bool {
        let Some(link) = self.agents.get(agent_id).and_then(|a| a.link.as_ref()) else {
            return false;
        };
        let sent = link
            .tx
            .try_send(Ok(MasterToAgent {
                message: Some(message),
            }))
            .is_ok();
        if !sent {
            tracing::warn!(
                agent = agent_id,
                "agent stream is full or closed; message dropped"
            );
        }
        sent
    }
}
