//! A small v1 scheduler for tests and benches: launches command tasks on
//! whatever is offered, acknowledges every update, and hands the updates
//! to the caller.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler::event};

pub struct Framework {
    pub client: SchedulerClient,
    events: EventStream,
    offers: Vec<v1::Offer>,
}

impl Framework {
    /// Subscribes a framework; `checkpoint` asks agents to checkpoint its
    /// tasks (so they survive an agent restart).
    pub async fn subscribe(master: &str, name: &str, checkpoint: bool) -> anyhow::Result<Self> {
        let mut client = SchedulerClient::new(master);
        let events = client
            .subscribe(v1::FrameworkInfo {
                user: String::new(),
                name: name.into(),
                checkpoint: Some(checkpoint),
                ..Default::default()
            })
            .await?;
        Ok(Self {
            client,
            events,
            offers: Vec::new(),
        })
    }

    /// Subscribes again under the same framework ID (a scheduler failing
    /// over, or coming back to a restarted master). Pending offers are
    /// forgotten.
    pub async fn resubscribe(&mut self, master: &str, name: &str) -> anyhow::Result<()> {
        let id = self
            .client
            .framework_id()
            .cloned()
            .context("the framework has no ID yet")?;
        let mut client = SchedulerClient::new(master);
        self.events = client
            .subscribe(v1::FrameworkInfo {
                user: String::new(),
                name: name.into(),
                id: Some(id),
                ..Default::default()
            })
            .await?;
        self.client = client;
        self.offers.clear();
        Ok(())
    }

    /// The next event, acknowledging updates and keeping offers.
    async fn next(&mut self, timeout: Duration) -> anyhow::Result<Option<v1::TaskStatus>> {
        let event = tokio::time::timeout(timeout, self.events.next())
            .await
            .context("no event in time")??
            .context("the master closed the event stream")?;
        match event.r#type() {
            event::Type::Offers => {
                self.offers.extend(event.offers.context("offers")?.offers);
                Ok(None)
            }
            event::Type::Rescind => {
                let id = event.rescind.context("rescind")?.offer_id;
                self.offers.retain(|o| o.id != id);
                Ok(None)
            }
            event::Type::Update => {
                let status = event.update.context("update")?.status;
                self.client.acknowledge(&status).await?;
                Ok(Some(status))
            }
            _ => Ok(None),
        }
    }

    /// The next status update.
    pub async fn next_update(&mut self, timeout: Duration) -> anyhow::Result<v1::TaskStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(status) = self.next(left).await? {
                return Ok(status);
            }
        }
    }

    /// The next offer (updates arriving meanwhile are an error).
    pub async fn offer(&mut self) -> anyhow::Result<v1::Offer> {
        while self.offers.is_empty() {
            if let Some(status) = self.next(Duration::from_secs(30)).await? {
                bail!("unexpected update while waiting for an offer: {status:?}");
            }
        }
        Ok(self.offers.remove(0))
    }

    /// The next offer; updates arriving meanwhile are acknowledged and
    /// added to `updates`.
    pub async fn offer_amid_updates(
        &mut self,
        updates: &mut Vec<v1::TaskStatus>,
    ) -> anyhow::Result<v1::Offer> {
        while self.offers.is_empty() {
            updates.extend(self.next(Duration::from_secs(30)).await?);
        }
        Ok(self.offers.remove(0))
    }

    /// Launches `ids.len()` tasks running `command` (0.01 cpus, 4 MB each)
    /// as offers come, without waiting for them to start.
    pub async fn launch(&mut self, ids: &[String], command: &str) -> anyhow::Result<()> {
        self.launch_in(ids, command, None).await
    }

    /// [`Framework::launch`], the tasks in `container`.
    pub async fn launch_in(
        &mut self,
        ids: &[String],
        command: &str,
        container: Option<v1::ContainerInfo>,
    ) -> anyhow::Result<()> {
        let mut left: Vec<String> = ids.to_vec();
        while !left.is_empty() {
            let offer = self.offer().await?;
            let fit = left.len().min(cpus_of(&offer).div_euclid(0.01) as usize);
            let tasks: Vec<v1::TaskInfo> = left
                .drain(..fit)
                .map(|id| v1::TaskInfo {
                    name: id.clone(),
                    task_id: v1::TaskId { value: id },
                    agent_id: offer.agent_id.clone(),
                    resources: vec![scalar("cpus", 0.01), scalar("mem", 4.0)],
                    command: Some(v1::CommandInfo {
                        value: Some(command.into()),
                        ..Default::default()
                    }),
                    container: container.clone(),
                    ..Default::default()
                })
                .collect();
            self.client.launch(&offer.id, tasks, None).await?;
        }
        Ok(())
    }

    /// Launches the tasks and waits until each is TASK_RUNNING.
    pub async fn launch_running(&mut self, ids: &[String], command: &str) -> anyhow::Result<()> {
        self.launch_running_in(ids, command, None).await
    }

    /// [`Framework::launch_running`], the tasks in `container`.
    pub async fn launch_running_in(
        &mut self,
        ids: &[String],
        command: &str,
        container: Option<v1::ContainerInfo>,
    ) -> anyhow::Result<()> {
        self.launch_in(ids, command, container).await?;
        let mut states: BTreeMap<String, TaskState> = BTreeMap::new();
        while ids
            .iter()
            .any(|id| states.get(id) != Some(&TaskState::TaskRunning))
        {
            let status = self.next_update(Duration::from_secs(60)).await?;
            let state = status.state();
            if state.is_terminal() {
                bail!(
                    "task {} ended during launch: {status:?}",
                    status.task_id.value
                );
            }
            states.insert(status.task_id.value, state);
        }
        Ok(())
    }
}

impl Framework {
    /// Launches `tasks` as they are (their agent ID set from the offer) on
    /// the next offer, without waiting for them to start.
    pub async fn launch_tasks(&mut self, mut tasks: Vec<v1::TaskInfo>) -> anyhow::Result<()> {
        while self.offers.is_empty() {
            if let Some(status) = self.next(Duration::from_secs(30)).await? {
                bail!("unexpected update while launching: {status:?}");
            }
        }
        let offer = self.offers.remove(0);
        for task in &mut tasks {
            task.agent_id = offer.agent_id.clone();
        }
        self.client.launch(&offer.id, tasks, None).await?;
        Ok(())
    }

    /// Waits for a terminal update of each of `ids`; returns them by task ID.
    pub async fn wait_terminal(
        &mut self,
        ids: &[&str],
    ) -> anyhow::Result<BTreeMap<String, v1::TaskStatus>> {
        let mut done = BTreeMap::new();
        while ids.iter().any(|id| !done.contains_key(*id)) {
            let status = self.next_update(Duration::from_secs(60)).await?;
            if status.state().is_terminal() {
                done.insert(status.task_id.value.clone(), status);
            }
        }
        Ok(done)
    }
}

pub fn cpus_of(offer: &v1::Offer) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == "cpus")
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
        .sum()
}

/// `prefix-0 .. prefix-(n-1)`.
pub fn task_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}
