//! An executor's session with its agent over the v1 executor API, shared
//! by the command, default and docker executors.
//!
//! Updates are kept until acknowledged. For a checkpointing framework
//! (`MESOS_CHECKPOINT=1`, which sets `MESOS_RECOVERY_TIMEOUT`) the session
//! outlives an agent restart: when the event stream breaks it resubscribes,
//! backing off up to half of `MESOS_SUBSCRIPTION_BACKOFF_MAX`, for the
//! recovery timeout, and the SUBSCRIBE carries every update not yet
//! acknowledged and every task none of whose updates is.

use std::time::Duration;

use mesos_proto::v1::{self, TaskState, executor, task_status::Source};
use tokio::time::Instant;

use crate::command_executor::{ClientError, EventStream, ExecutorClient, ExecutorError, Settings};

/// First delay before resubscribing to a restarting agent.
const FIRST_RESUBSCRIBE: Duration = Duration::from_millis(50);

pub struct Session {
    client: ExecutorClient,
    events: Option<EventStream>,
    recovery_timeout: Option<Duration>,
    backoff_max: Duration,
    /// Tasks none of whose updates is acknowledged yet.
    tasks: Vec<v1::TaskInfo>,
    /// Updates sent but not acknowledged, oldest first.
    unacknowledged: Vec<v1::TaskStatus>,
    disconnected: Option<Disconnected>,
    /// When the current subscription started.
    subscribed_at: Instant,
    /// A resubscription in flight. It runs as a task of its own so that a
    /// caller's select dropping `next` cannot cut a SUBSCRIBE off halfway.
    attempt: Option<tokio::task::JoinHandle<Result<EventStream, ClientError>>>,
    /// The uuids of the updates the attempt in flight carries: one sent
    /// while it was under way is not in it and goes after it.
    attempt_carries: Vec<Vec<u8>>,
}

/// The agent went away; resubscribing.
struct Disconnected {
    since: Instant,
    retry_at: Instant,
    backoff: Duration,
}

impl Session {
    /// Subscribes to the agent.
    pub async fn subscribe(settings: &Settings) -> Result<Self, ExecutorError> {
        let client = ExecutorClient::new(
            &settings.endpoint,
            &settings.framework_id,
            &settings.executor_id,
        );
        let events = client.subscribe(Vec::new(), Vec::new()).await?;
        Ok(Self {
            client,
            events: Some(events),
            recovery_timeout: settings.recovery_timeout,
            backoff_max: settings.subscription_backoff_max,
            tasks: Vec::new(),
            unacknowledged: Vec::new(),
            disconnected: None,
            subscribed_at: Instant::now(),
            attempt: None,
            attempt_carries: Vec::new(),
        })
    }

    /// When to stop waiting for an acknowledgement due by `deadline`: never
    /// while the agent is away, and not before a fresh subscription had
    /// time to deliver it.
    pub fn ack_deadline(&self, deadline: Option<Instant>, wait: Duration) -> Option<Instant> {
        let deadline = deadline?;
        self.events.as_ref()?;
        Some(deadline.max(self.subscribed_at + wait))
    }

    /// The next event. While the agent is away this resubscribes (it is
    /// cancel-safe: a select may drop it between attempts). `None` when the
    /// agent ended the session and it cannot be resumed.
    pub async fn next(&mut self) -> Result<Option<executor::Event>, ExecutorError> {
        loop {
            if let Some(events) = self.events.as_mut() {
                let why = match events.next().await {
                    Ok(Some(event)) => {
                        self.observe(&event);
                        return Ok(Some(event));
                    }
                    Ok(None) => "the agent closed the event stream".to_string(),
                    Err(e) => e.to_string(),
                };
                self.events = None;
                if self.recovery_timeout.is_none() {
                    tracing::warn!("{why}; exiting");
                    return Ok(None);
                }
                tracing::warn!("{why}; resubscribing");
                let now = Instant::now();
                self.disconnected = Some(Disconnected {
                    since: now,
                    retry_at: now + FIRST_RESUBSCRIBE,
                    backoff: FIRST_RESUBSCRIBE,
                });
            }
            if self.attempt.is_none() {
                let retry_at = self
                    .disconnected
                    .as_ref()
                    .map_or_else(Instant::now, |d| d.retry_at);
                tokio::time::sleep_until(retry_at).await;
                let (client, tasks, updates) = (
                    self.client.clone(),
                    self.tasks.clone(),
                    self.unacknowledged.clone(),
                );
                self.attempt_carries = updates.iter().filter_map(|u| u.uuid.clone()).collect();
                self.attempt = Some(tokio::spawn(async move {
                    client.subscribe(tasks, updates).await
                }));
            }
            if let Some(attempt) = self.attempt.as_mut() {
                let result = attempt.await;
                self.attempt = None;
                let result = result.map_err(|e| ClientError::Http {
                    url: "SUBSCRIBE".into(),
                    reason: e.to_string(),
                });
                self.resubscribed(result.and_then(|r| r))?;
                if self.events.is_some() {
                    self.send_late_updates().await;
                }
            }
        }
    }

    /// The outcome of one resubscription attempt. An agent that answers
    /// but does not know this executor (it did not recover it), or one that
    /// stays away past the recovery timeout, ends the executor.
    fn resubscribed(
        &mut self,
        result: Result<EventStream, ClientError>,
    ) -> Result<(), ExecutorError> {
        let pending = self.unacknowledged.len();
        match result {
            Ok(stream) => {
                tracing::info!(unacknowledged = pending, "resubscribed to the agent");
                self.events = Some(stream);
                self.disconnected = None;
                self.subscribed_at = Instant::now();
                Ok(())
            }
            Err(e @ ClientError::Status { .. }) => Err(e.into()),
            Err(e) => {
                let (Some(timeout), Some(d)) = (self.recovery_timeout, &mut self.disconnected)
                else {
                    return Err(e.into());
                };
                let now = Instant::now();
                if now.duration_since(d.since) >= timeout {
                    tracing::error!(
                        ?timeout,
                        "the agent did not come back within the recovery timeout"
                    );
                    return Err(e.into());
                }
                // Half the maximum: the agent gives recovered executors
                // MESOS_SUBSCRIPTION_BACKOFF_MAX (its reregistration
                // timeout) to come back, so at least one attempt falls in
                // that window however long the agent was away.
                let cap = (self.backoff_max / 2).max(FIRST_RESUBSCRIBE);
                d.backoff = (d.backoff * 2).min(cap);
                d.retry_at = now + d.backoff;
                tracing::debug!("resubscription failed ({e}); retrying in {:?}", d.backoff);
                Ok(())
            }
        }
    }

    /// Updates sent while the resubscription was under way, which its
    /// SUBSCRIBE did not carry: without this they would wait for the next
    /// disconnection.
    async fn send_late_updates(&mut self) {
        let carried = std::mem::take(&mut self.attempt_carries);
        let late: Vec<v1::TaskStatus> = self
            .unacknowledged
            .iter()
            .filter(|u| u.uuid.as_ref().is_none_or(|id| !carried.contains(id)))
            .cloned()
            .collect();
        for status in late {
            if let Err(e) = self.client.update(status).await {
                tracing::warn!(
                    "status update not delivered ({e}); it goes with the next subscription"
                );
            }
        }
    }

    /// ACKNOWLEDGED events settle what the session keeps.
    fn observe(&mut self, event: &executor::Event) {
        if let Some(ack) = &event.acknowledged {
            self.unacknowledged
                .retain(|u| u.uuid.as_deref() != Some(ack.uuid.as_slice()));
            self.tasks.retain(|t| t.task_id != ack.task_id);
        }
    }

    /// Remembers a task handed to this executor until one of its updates is
    /// acknowledged, so a restarted agent hears of it.
    pub fn track(&mut self, task: &v1::TaskInfo) {
        self.tasks.push(task.clone());
    }

    /// Sends a status update of the task's state; returns its uuid.
    pub async fn update(
        &mut self,
        task_id: &v1::TaskId,
        state: TaskState,
        message: Option<String>,
        container: Option<&v1::ContainerId>,
    ) -> Result<Vec<u8>, ExecutorError> {
        self.send(v1::TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message,
            container_status: container.map(|c| v1::ContainerStatus {
                container_id: Some(c.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
    }

    /// Sends `status` as the executor's, with a fresh uuid (returned). It
    /// is kept until acknowledged; while the agent is away it waits for
    /// the resubscription.
    pub async fn send(&mut self, mut status: v1::TaskStatus) -> Result<Vec<u8>, ExecutorError> {
        let uuid = mesos_proto::ids::new_uuid_bytes();
        status.source = Some(Source::Executor as i32);
        status.timestamp = Some(crate::agent::now_secs());
        status.uuid = Some(uuid.clone());
        self.unacknowledged.push(status.clone());
        if self.events.is_none() {
            return Ok(uuid);
        }
        if let Err(e) = self.client.update(status).await {
            if self.recovery_timeout.is_none() {
                return Err(e.into());
            }
            tracing::warn!("status update not delivered ({e}); it goes with the next subscription");
        }
        Ok(uuid)
    }
}
