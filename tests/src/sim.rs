//! Simulated agents: thousands of agents in one process, each speaking the
//! real internal link to a real master. An agent registers with the
//! resources it is given, answers pings, reports every task it is sent as
//! TASK_RUNNING at once and every kill as TASK_KILLED. For benches and
//! scale tests of the master; there are no executors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesos_proto::internal::v1::agent_link_client::AgentLinkClient;
use mesos_proto::internal::v1::{
    self as internal, AgentToMaster, agent_to_master, master_to_agent,
};
use mesos_proto::v1::{self, TaskState, task_status::Source};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Agents sharing one HTTP/2 connection (well under the server's stream
/// limit).
const AGENTS_PER_CONNECTION: usize = 100;

/// Counters of what the simulated agents did.
#[derive(Debug, Default)]
pub struct Counters {
    pub registered: AtomicUsize,
    pub tasks_started: AtomicUsize,
}

pub struct SimAgents {
    pub counters: Arc<Counters>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimAgents {
    /// Starts `n` agents against `master` (`host:port`), each with
    /// `resources` (Mesos's text or JSON format). Agent `i` calls itself `sim-<i>`.
    /// `ids` gives agents the IDs they re-register with (a master failover).
    pub async fn start(
        master: &str,
        n: usize,
        resources: &str,
        ids: Option<&[String]>,
    ) -> anyhow::Result<Self> {
        let parsed = mesos_resources::parse_resources(resources, "*")?;
        let counters = Arc::new(Counters::default());
        let mut tasks = Vec::with_capacity(n);
        let mut channel = None;
        for i in 0..n {
            if i % AGENTS_PER_CONNECTION == 0 {
                let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{master}"))?
                    .tcp_nodelay(true);
                channel = Some(endpoint.connect().await?);
            }
            let channel = channel.clone().expect("a connection");
            let info = v1::AgentInfo {
                hostname: format!("sim-{i}"),
                port: Some(5051),
                resources: parsed.clone(),
                id: ids
                    .and_then(|ids| ids.get(i))
                    .map(|id| v1::AgentId { value: id.clone() }),
                ..Default::default()
            };
            let counters = counters.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = run_agent(channel, info, i, counters).await {
                    eprintln!("sim-{i}: {e}");
                }
            }));
        }
        Ok(Self { counters, tasks })
    }

    pub fn registered(&self) -> usize {
        self.counters.registered.load(Ordering::Relaxed)
    }

    /// Waits until every agent is registered.
    pub async fn wait_registered(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.registered() < self.tasks.len() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{} of {} agents registered",
                self.registered(),
                self.tasks.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

impl Drop for SimAgents {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run_agent(
    channel: Channel,
    info: v1::AgentInfo,
    i: usize,
    counters: Arc<Counters>,
) -> anyhow::Result<()> {
    let mut client = AgentLinkClient::new(channel);
    let (tx, rx) = mpsc::channel::<AgentToMaster>(1024);
    let send = |message: agent_to_master::Message| AgentToMaster {
        message: Some(message),
    };
    tx.send(send(agent_to_master::Message::Register(
        internal::RegisterAgent {
            agent_info: info,
            version: mesos_proto::MESOS_VERSION.to_string(),
            pid: Some(format!("slave(1)@sim-{i}:5051")),
            ..Default::default()
        },
    )))
    .await?;
    let mut inbound = client.attach(ReceiverStream::new(rx)).await?.into_inner();
    let mut agent_id = None;
    while let Some(message) = inbound.message().await? {
        let Some(message) = message.message else {
            continue;
        };
        match message {
            master_to_agent::Message::Registered(registered) => {
                agent_id = Some(registered.agent_id);
                counters.registered.fetch_add(1, Ordering::Relaxed);
            }
            master_to_agent::Message::Ping(ping) => {
                tx.send(send(agent_to_master::Message::Ping(ping))).await?;
            }
            master_to_agent::Message::RunTask(run) => {
                counters.tasks_started.fetch_add(1, Ordering::Relaxed);
                let update = status(
                    &run.framework,
                    &run.task.task_id,
                    TaskState::TaskRunning,
                    &agent_id,
                );
                tx.send(send(agent_to_master::Message::StatusUpdate(update)))
                    .await?;
            }
            master_to_agent::Message::KillTask(kill) => {
                let framework = v1::FrameworkInfo {
                    id: Some(kill.framework_id.clone()),
                    ..Default::default()
                };
                let update = status(&framework, &kill.task_id, TaskState::TaskKilled, &agent_id);
                tx.send(send(agent_to_master::Message::StatusUpdate(update)))
                    .await?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn status(
    framework: &v1::FrameworkInfo,
    task_id: &v1::TaskId,
    state: TaskState,
    agent_id: &Option<v1::AgentId>,
) -> internal::StatusUpdate {
    let uuid = mesos_proto::ids::new_uuid_bytes();
    internal::StatusUpdate {
        framework_id: framework.id.clone().unwrap_or_default(),
        status: v1::TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            source: Some(Source::Executor as i32),
            agent_id: agent_id.clone(),
            uuid: Some(uuid),
            timestamp: Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default(),
            ),
            ..Default::default()
        },
        executor_id: None,
        latest_state: Some(state as i32),
    }
}
