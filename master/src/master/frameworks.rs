//! Scheduler API calls: subscription, offers accepted and declined, kills,
//! acknowledgements, reconciliation, messages, teardown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesos_plugin_api::allocator::FrameworkSpec;
use mesos_proto::codec::Format;
use mesos_proto::internal::v1::{self as internal, master_to_agent};
use mesos_proto::v1::scheduler::{Call, Event, call, event};
use mesos_proto::v1::{self, TaskState, task_status::Reason, task_status::Source};
use mesos_resources::Resources;
use tokio::sync::mpsc;

use super::{Connection, EVENT_QUEUE, Framework, HEARTBEAT_INTERVAL, Master, Subscription, Task};
use crate::error::ApiError;
use crate::wire;

/// `Filters.refuse_seconds` when a framework gives none.
const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
/// Mesos caps refusals at a year.
const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Statuses kept per task in the state view.
const MAX_STATUSES: usize = 16;

fn refuse_duration(filters: Option<&v1::Filters>) -> Duration {
    let seconds = filters.and_then(|f| f.refuse_seconds).unwrap_or(5.0);
    if !seconds.is_finite() || seconds < 0.0 {
        return DEFAULT_REFUSE;
    }
    Duration::from_secs_f64(seconds).min(MAX_REFUSE)
}

pub(super) fn has_capability(
    info: &v1::FrameworkInfo,
    wanted: v1::framework_info::capability::Type,
) -> bool {
    info.capabilities.iter().any(|c| c.r#type() == wanted)
}

/// The role a framework's resources are allocated to. Frameworks without
/// MULTI_ROLE use `role` (default `*`); MULTI_ROLE ones their first role.
pub(super) fn framework_roles(info: &v1::FrameworkInfo, multi_role: bool) -> Vec<String> {
    if multi_role && !info.roles.is_empty() {
        info.roles.clone()
    } else {
        vec![info.role.clone().unwrap_or_else(|| "*".to_string())]
    }
}

impl Master {
    pub(super) fn subscribe(
        &mut self,
        call: Call,
        format: Format,
    ) -> Result<Subscription, ApiError> {
        let subscribe = call
            .subscribe
            .ok_or_else(|| ApiError::bad_request("Expecting 'subscribe' to be present"))?;
        let mut info = subscribe.framework_info;
        let requested_id = info
            .id
            .as_ref()
            .map(|id| id.value.clone())
            .filter(|v| !v.is_empty());
        let multi_role = has_capability(&info, v1::framework_info::capability::Type::MultiRole);
        let roles = framework_roles(&info, multi_role);
        if let Some(problem) = roles.iter().find_map(|r| validate_role(r).err()) {
            return Ok(refused_subscription(format, &problem));
        }
        if let Some(problem) = self.unlisted_role(&roles) {
            return Ok(refused_subscription(format, &problem));
        }

        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let stream_id = uuid::Uuid::new_v4().to_string();
        let now = wire::now_secs();
        let mut added = false;
        let id = match requested_id {
            Some(id) if self.frameworks.contains_key(id.as_str()) => {
                // Failover or reconnection: the new stream replaces the old
                // one (dropping the old sender ends the old stream).
                let framework = self.frameworks.get_mut(&id).ok_or_else(|| {
                    ApiError::new(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "framework vanished",
                    )
                })?;
                info.id = Some(wire::framework_id(&id));
                framework.info = info;
                framework.conn = Some(Connection {
                    stream_id: stream_id.clone(),
                    format,
                    tx,
                });
                framework.reregistered_time = Some(now);
                framework.failover_deadline = None;
                framework.unregistered_time = None;
                self.allocator.set_framework_active(&id, true);
                tracing::info!(framework = %id, "framework re-subscribed");
                id
            }
            requested => {
                let id = match requested {
                    // A framework the master does not know yet (it restarted):
                    // admit it under its own ID.
                    Some(id) => id,
                    None => {
                        let id = format!("{}-{:04}", self.id, self.next_framework);
                        self.next_framework += 1;
                        id
                    }
                };
                mesos_proto::ids::validate_id(&id)
                    .map_err(|e| ApiError::bad_request(format!("Invalid framework ID: {e}")))?;
                info.id = Some(wire::framework_id(&id));
                let partition_aware =
                    has_capability(&info, v1::framework_info::capability::Type::PartitionAware);
                self.allocator.add_framework(
                    FrameworkSpec {
                        id: id.clone(),
                        roles: roles.clone(),
                        suppressed_roles: subscribe.suppressed_roles.clone(),
                    },
                    &[],
                );
                self.frameworks.insert(
                    id.clone(),
                    Framework {
                        id: id.clone(),
                        info,
                        role: roles.first().cloned().unwrap_or_else(|| "*".to_string()),
                        multi_role,
                        partition_aware,
                        conn: Some(Connection {
                            stream_id: stream_id.clone(),
                            format,
                            tx,
                        }),
                        registered_time: now,
                        reregistered_time: None,
                        unregistered_time: None,
                        failover_deadline: None,
                        offers: Default::default(),
                        tasks: Default::default(),
                        completed_tasks: Default::default(),
                    },
                );
                tracing::info!(framework = %id, "framework subscribed");
                added = true;
                id
            }
        };

        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: wire::framework_id(&id),
                heartbeat_interval_seconds: Some(HEARTBEAT_INTERVAL.as_secs_f64()),
                master_info: Some(self.config.master_info.clone()),
            }),
            ..Default::default()
        };
        self.publish_framework(&id, added);
        self.send_event(&id, &subscribed);
        self.send_event(
            &id,
            &Event {
                r#type: Some(event::Type::Heartbeat as i32),
                ..Default::default()
            },
        );
        self.allocate_soon = true;
        Ok(Subscription {
            framework_id: id,
            stream_id,
            events,
        })
    }

    /// `--roles` (deprecated whitelist): a role outside it is refused; the
    /// default role `*` is always allowed.
    pub(super) fn unlisted_role(&self, roles: &[String]) -> Option<String> {
        let (_, listed) = self.config.flags.iter().find(|(k, _)| k == "roles")?;
        let listed = crate::allocator::parse_roles(listed);
        if listed.is_empty() {
            return None;
        }
        let role = roles.iter().find(|r| *r != "*" && !listed.contains(r))?;
        Some(format!(
            "Role '{role}' is not present in the master's --roles ({})",
            listed.join(",")
        ))
    }

    pub(super) fn subscription_closed(&mut self, framework_id: &str, stream_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework.conn.as_ref().map(|c| c.stream_id.as_str()) != Some(stream_id) {
            return; // an old stream, already replaced
        }
        framework.conn = None;
        framework.unregistered_time = Some(wire::now_secs());
        let timeout = framework.info.failover_timeout.unwrap_or(0.0);
        let timeout = if timeout.is_finite() && timeout > 0.0 {
            Duration::from_secs_f64(timeout.min(MAX_REFUSE.as_secs_f64()))
        } else {
            Duration::ZERO
        };
        framework.failover_deadline = Some(Instant::now() + timeout);
        tracing::info!(framework = framework_id, ?timeout, "framework disconnected");
        self.allocator.set_framework_active(framework_id, false);
        let offers: Vec<String> = framework.offers.iter().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, None, false);
        }
        self.publish_framework(framework_id, false);
    }

    /// Frameworks whose failover timeout ran out are removed.
    pub(super) fn expire_frameworks(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.failover_deadline.is_some_and(|d| d <= now))
            .map(|f| f.id.clone())
            .collect();
        for id in expired {
            tracing::info!(framework = %id, "framework failover timeout elapsed; removing it");
            self.remove_framework(&id);
        }
    }

    pub(super) fn scheduler_call(
        &mut self,
        call: Call,
        stream_id: Option<String>,
    ) -> Result<(), ApiError> {
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|id| id.value.clone())
            .ok_or_else(|| ApiError::bad_request("Expecting 'framework_id' to be present"))?;
        let framework = self
            .frameworks
            .get(&framework_id)
            .ok_or_else(|| ApiError::bad_request("Framework cannot be found"))?;
        let conn = framework
            .conn
            .as_ref()
            .ok_or_else(|| ApiError::forbidden("Framework is not subscribed"))?;
        match stream_id {
            None => {
                return Err(ApiError::bad_request(
                    "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
                ));
            }
            Some(s) if s != conn.stream_id => {
                return Err(ApiError::bad_request(format!(
                    "The stream ID '{s}' included in this request didn't match the stream ID \
                     currently associated with framework ID {framework_id}"
                )));
            }
            Some(_) => {}
        }

        use call::Type;
        match call.r#type() {
            Type::Teardown => {
                self.remove_framework(&framework_id);
            }
            Type::Accept => {
                if let Some(accept) = call.accept {
                    self.accept(&framework_id, accept);
                }
            }
            Type::Decline => {
                if let Some(decline) = call.decline {
                    let refuse = refuse_duration(decline.filters.as_ref());
                    for offer_id in &decline.offer_ids {
                        if self.offer_belongs_to(&offer_id.value, &framework_id) {
                            self.remove_offer(&offer_id.value, Some(refuse), false);
                        }
                    }
                }
            }
            Type::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                self.allocator.revive(&framework_id, &roles);
                self.allocate_soon = true;
            }
            Type::Suppress => {
                let roles = call.suppress.map(|s| s.roles).unwrap_or_default();
                self.allocator.suppress(&framework_id, &roles);
            }
            Type::Kill => {
                if let Some(kill) = call.kill {
                    self.kill(&framework_id, kill);
                }
            }
            Type::Acknowledge => {
                if let Some(ack) = call.acknowledge {
                    self.acknowledge(&framework_id, ack);
                }
            }
            Type::Reconcile => {
                let tasks = call.reconcile.map(|r| r.tasks).unwrap_or_default();
                self.reconcile(&framework_id, &tasks);
            }
            Type::Message => {
                if let Some(message) = call.message {
                    self.framework_message(&framework_id, message);
                }
            }
            // Mesos's allocator ignores requests, and this master never sends
            // inverse offers, so these have nothing to act on.
            Type::Request | Type::AcceptInverseOffers | Type::DeclineInverseOffers => {}
            Type::Shutdown => {
                let shutdown = call
                    .shutdown
                    .ok_or_else(|| ApiError::bad_request("Expecting 'shutdown' to be present"))?;
                self.shutdown_executor(&framework_id, shutdown);
            }
            // Operations never carry feedback here (no operation IDs are
            // tracked), so there is nothing to acknowledge.
            Type::AcknowledgeOperationStatus => {}
            Type::ReconcileOperations => {
                let operations = call
                    .reconcile_operations
                    .map(|r| r.operations)
                    .unwrap_or_default();
                self.reconcile_operations(&framework_id, operations);
            }
            Type::UpdateFramework => {
                let update = call.update_framework.ok_or_else(|| {
                    ApiError::bad_request("Expecting 'update_framework' to be present")
                })?;
                self.update_framework(&framework_id, update)?;
            }
            Type::Subscribe | Type::Unknown => {
                return Err(ApiError::new(
                    http::StatusCode::NOT_IMPLEMENTED,
                    "Received an unexpected call type",
                ));
            }
        }
        Ok(())
    }

    fn offer_belongs_to(&self, offer_id: &str, framework_id: &str) -> bool {
        self.offers
            .get(offer_id)
            .is_some_and(|o| o.framework_id == framework_id)
    }

    fn accept(&mut self, framework_id: &str, accept: call::Accept) {
        let refuse = refuse_duration(accept.filters.as_ref());
        let launches: Vec<v1::TaskInfo> = accept
            .operations
            .iter()
            .filter(|op| op.r#type() == v1::offer::operation::Type::Launch)
            .filter_map(|op| op.launch.as_ref())
            .flat_map(|l| l.task_infos.iter().cloned())
            .collect();

        // Every offer must be outstanding, ours, unique and on one agent;
        // otherwise nothing is launched (as Mesos does).
        let mut error = None;
        let mut agent_id: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for offer_id in &accept.offer_ids {
            if !seen.insert(offer_id.value.as_str()) {
                error = Some(format!("Duplicate offer {} in ACCEPT", offer_id.value));
                continue;
            }
            match self.offers.get(&offer_id.value) {
                None => error = Some(format!("Offer {} is no longer valid", offer_id.value)),
                Some(o) if o.framework_id != framework_id => {
                    error = Some(format!("Offer {} has invalid framework", offer_id.value))
                }
                Some(o) => match &agent_id {
                    Some(a) if *a != o.agent_id => {
                        error =
                            Some("Aggregated offers must belong to one single agent".to_string())
                    }
                    _ => agent_id = Some(o.agent_id.clone()),
                },
            }
        }
        if accept.offer_ids.is_empty() {
            error = Some("No offers specified".to_string());
        }

        // Take the valid offers out either way: an ACCEPT consumes them.
        let mut taken: Vec<(String, Resources)> = Vec::new();
        for offer_id in &accept.offer_ids {
            if self.offer_belongs_to(&offer_id.value, framework_id)
                && let Some(offer) = self.take_offer(&offer_id.value)
            {
                taken.push((offer.agent_id, offer.resources));
            }
        }

        let Some(agent_id) = agent_id.filter(|_| error.is_none()) else {
            let message = error.unwrap_or_else(|| "No offers specified".to_string());
            let lost = if self.is_partition_aware(framework_id) {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            for task in &launches {
                self.send_master_update(
                    framework_id,
                    &task.task_id,
                    None,
                    lost,
                    Reason::InvalidOffers,
                    &message,
                );
            }
            let now = Instant::now();
            for (agent, resources) in taken {
                self.allocator.recover_resources(
                    framework_id,
                    &agent,
                    &resources,
                    Some(refuse),
                    now,
                );
            }
            return;
        };
        let mut offered = Resources::default();
        for (_, resources) in &taken {
            offered.add(resources);
        }

        let hooks = self.config.hooks.clone();
        let offered_list = if hooks.is_empty() {
            Vec::new()
        } else {
            offered.as_slice().to_vec()
        };
        let mut remaining = offered;
        for operation in accept.operations {
            match operation.r#type() {
                v1::offer::operation::Type::Launch => {
                    for mut task in operation.launch.map(|l| l.task_infos).unwrap_or_default() {
                        // Before the checks, as in Mesos: the decorated
                        // resources are what is checked and booked.
                        hooks.decorate_launch_resources(&mut task, &offered_list);
                        self.launch(framework_id, &agent_id, task, &mut remaining);
                    }
                }
                v1::offer::operation::Type::LaunchGroup => {
                    if let Some(group) = operation.launch_group {
                        self.launch_group(framework_id, &agent_id, group, &mut remaining);
                    }
                }
                v1::offer::operation::Type::Reserve
                | v1::offer::operation::Type::Unreserve
                | v1::offer::operation::Type::Create
                | v1::offer::operation::Type::Destroy => {
                    self.offer_operation(framework_id, &agent_id, &operation, &mut remaining);
                }
                other => {
                    tracing::warn!(
                        framework = framework_id,
                        operation = other.as_str_name(),
                        "offer operation not supported; ignored"
                    );
                }
            }
        }
        if !remaining.is_empty() {
            self.allocator.recover_resources(
                framework_id,
                &agent_id,
                &remaining,
                Some(refuse),
                Instant::now(),
            );
        }
    }

    fn is_partition_aware(&self, framework_id: &str) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| f.partition_aware)
    }

    /// Validates one task against what is left of the offers and sends it to
    /// the agent, or answers TASK_ERROR saying why not.
    fn launch(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        task: v1::TaskInfo,
        remaining: &mut Resources,
    ) {
        let needed = match self.validate_task(framework_id, agent_id, &task, remaining) {
            Ok(needed) => needed,
            Err(message) => {
                tracing::info!(framework = framework_id, task = %task.task_id.value, %message, "invalid task");
                self.counters.tasks_error += 1;
                self.send_master_update(
                    framework_id,
                    &task.task_id,
                    None,
                    TaskState::TaskError,
                    Reason::TaskInvalid,
                    &message,
                );
                return;
            }
        };
        *remaining = remaining.checked_sub(&needed).unwrap_or_default();
        let Some(framework) = self.record_task(framework_id, agent_id, &task, needed) else {
            return;
        };
        let mut task = task;
        if !self.config.hooks.is_empty()
            && let Some(agent) = self.agents.get(agent_id)
        {
            // As in Mesos, the agent's copy only: the master's record keeps
            // the framework's labels.
            self.config
                .hooks
                .decorate_launch(&mut task, &framework, &agent.info);
        }
        let run = internal::RunTask { framework, task };
        self.counters.tasks_launched += 1;
        if !self.send_to_agent(agent_id, master_to_agent::Message::RunTask(Box::new(run))) {
            tracing::warn!(
                agent = agent_id,
                "could not reach the agent to launch a task"
            );
        }
    }

    /// Books a validated task (and its executor) on its framework and
    /// agent, taking `needed` from the offer; returns the framework's info
    /// for the agent.
    pub(super) fn record_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        task: &v1::TaskInfo,
        needed: Resources,
    ) -> Option<v1::FrameworkInfo> {
        let framework = self.frameworks.get_mut(framework_id)?;
        let agent = self.agents.get_mut(agent_id)?;
        if let Some(executor) = &task.executor {
            let mut executor = executor.clone();
            executor.framework_id = Some(wire::framework_id(framework_id));
            agent
                .executors
                .entry((framework_id.to_string(), executor.executor_id.value.clone()))
                .or_insert(executor);
        }
        agent
            .tasks
            .insert((framework_id.to_string(), task.task_id.value.clone()));
        let role = framework.role.clone();
        let task_resources = wire::incoming(&task.resources);
        let proto = v1::Task {
            name: task.name.clone(),
            task_id: task.task_id.clone(),
            framework_id: wire::framework_id(framework_id),
            executor_id: task.executor.as_ref().map(|e| e.executor_id.clone()),
            agent_id: wire::agent_id(agent_id),
            state: TaskState::TaskStaging as i32,
            resources: wire::outgoing(&task_resources, &role, framework.multi_role),
            labels: task.labels.clone(),
            discovery: task.discovery.clone().map(Box::new),
            container: task.container.clone().map(Box::new),
            health_check: task.health_check.clone().map(Box::new),
            kill_policy: task.kill_policy,
            user: framework.info.user.clone().into(),
            ..Default::default()
        };
        framework.tasks.insert(
            task.task_id.value.clone(),
            Arc::new(Task::new(proto, needed)),
        );
        let info = framework.info.clone();
        self.publish_task_added(framework_id, &task.task_id.value);
        Some(info)
    }

    /// The resources a task takes from the offer (its own plus those of a
    /// custom executor not yet running on the agent), or why it is invalid.
    fn validate_task(
        &self,
        framework_id: &str,
        agent_id: &str,
        task: &v1::TaskInfo,
        remaining: &Resources,
    ) -> Result<Resources, String> {
        mesos_proto::ids::validate_id(&task.task_id.value)
            .map_err(|e| format!("Task ID '{}' is invalid: {e}", task.task_id.value))?;
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| "Framework is gone".to_string())?;
        if framework.tasks.contains_key(&task.task_id.value) {
            return Err(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.agent_id.value != agent_id {
            return Err(format!(
                "Task uses agent ID {} which does not match offer's agent ID {agent_id}",
                task.agent_id.value
            ));
        }
        if task.executor.is_some() == task.command.is_some() {
            return Err(
                "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                    .to_string(),
            );
        }
        let mut needed = wire::incoming(&task.resources);
        if needed.is_empty() {
            return Err("Task uses no resources".to_string());
        }
        if let Some(executor) = &task.executor {
            mesos_proto::ids::validate_id(&executor.executor_id.value).map_err(|e| {
                format!(
                    "Executor ID '{}' is invalid: {e}",
                    executor.executor_id.value
                )
            })?;
            if let Some(fid) = &executor.framework_id
                && fid.value != framework_id
            {
                return Err("ExecutorInfo has an invalid FrameworkID".to_string());
            }
            let running = self.agents.get(agent_id).is_some_and(|a| {
                a.executors
                    .contains_key(&(framework_id.to_string(), executor.executor_id.value.clone()))
            });
            if !running {
                needed.add(&wire::incoming(&executor.resources));
            }
        }
        if !remaining.contains(&needed) {
            return Err(format!(
                "Task uses more resources {needed} than available {remaining}"
            ));
        }
        Ok(needed)
    }

    /// An update the master itself generates (invalid task, kill of an unknown
    /// task, reconciliation). It carries no uuid: nothing to acknowledge.
    pub(super) fn send_master_update(
        &mut self,
        framework_id: &str,
        task_id: &v1::TaskId,
        agent_id: Option<&str>,
        state: TaskState,
        reason: Reason,
        message: &str,
    ) {
        let status = v1::TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message: Some(message.to_string()),
            source: Some(Source::Master as i32),
            reason: Some(reason as i32),
            agent_id: agent_id.map(wire::agent_id),
            timestamp: Some(wire::now_secs()),
            ..Default::default()
        };
        self.send_update_event(framework_id, status);
    }

    pub(super) fn send_update_event(&mut self, framework_id: &str, status: v1::TaskStatus) -> bool {
        let event = Event {
            r#type: Some(event::Type::Update as i32),
            update: Some(event::Update { status }),
            ..Default::default()
        };
        self.send_event(framework_id, &event)
    }

    fn kill(&mut self, framework_id: &str, kill: call::Kill) {
        let task_id = kill.task_id.value.clone();
        let agent = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&task_id))
            .filter(|t| !t.proto.state().is_terminal())
            .map(|t| t.proto.agent_id.value.clone());
        match agent {
            Some(agent_id) => {
                let message = master_to_agent::Message::KillTask(internal::KillTask {
                    framework_id: wire::framework_id(framework_id),
                    task_id: kill.task_id,
                    kill_policy: kill.kill_policy,
                });
                if !self.send_to_agent(&agent_id, message) {
                    tracing::warn!(agent = %agent_id, task = %task_id, "agent unreachable; kill not delivered");
                }
            }
            None => {
                let state = if self.is_partition_aware(framework_id) {
                    TaskState::TaskUnknown
                } else {
                    TaskState::TaskLost
                };
                self.send_master_update(
                    framework_id,
                    &kill.task_id,
                    kill.agent_id.as_ref().map(|a| a.value.as_str()),
                    state,
                    Reason::Reconciliation,
                    "Attempted to kill an unknown task",
                );
            }
        }
    }

    fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge) {
        let agent_id = ack.agent_id.value.clone();
        let task_id = ack.task_id.value.clone();
        let message = master_to_agent::Message::StatusUpdateAck(internal::StatusUpdateAck {
            framework_id: wire::framework_id(framework_id),
            task_id: ack.task_id,
            uuid: ack.uuid.clone(),
        });
        if !self.send_to_agent(&agent_id, message) {
            tracing::info!(agent = %agent_id, task = %task_id, "acknowledgement for an unreachable agent dropped");
        }
        // A terminal task leaves the active set once its terminal update is
        // acknowledged.
        let done = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&task_id))
            .is_some_and(|t| {
                t.proto.state().is_terminal()
                    && t.proto.status_update_uuid.as_deref() == Some(ack.uuid.as_slice())
            });
        if done {
            self.complete_task(framework_id, &task_id);
        }
    }

    /// Moves a task to the framework's completed tasks.
    pub(super) fn complete_task(&mut self, framework_id: &str, task_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.remove(task_id) else {
            return;
        };
        if let Some(agent) = self.agents.get_mut(&task.proto.agent_id.value) {
            agent
                .tasks
                .remove(&(framework_id.to_string(), task_id.to_string()));
        }
        if !task.recovered {
            self.allocator.recover_resources(
                framework_id,
                &task.proto.agent_id.value,
                &task.resources,
                None,
                Instant::now(),
            );
        }
        framework
            .completed_tasks
            .push_back(Arc::new(Arc::unwrap_or_clone(task).proto));
        while framework.completed_tasks.len() > self.config.max_completed_tasks_per_framework {
            framework.completed_tasks.pop_front();
        }
    }

    fn reconcile(&mut self, framework_id: &str, tasks: &[call::reconcile::Task]) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let unknown = if framework.partition_aware {
            TaskState::TaskUnknown
        } else {
            TaskState::TaskLost
        };
        let reconciled: Vec<v1::TaskStatus> = if tasks.is_empty() {
            framework.tasks.values().map(|t| latest_status(t)).collect()
        } else {
            tasks
                .iter()
                .map(|t| match framework.tasks.get(&t.task_id.value) {
                    Some(task) => latest_status(task),
                    None => v1::TaskStatus {
                        task_id: t.task_id.clone(),
                        state: unknown as i32,
                        message: Some("Reconciliation: Task is unknown".to_string()),
                        source: Some(Source::Master as i32),
                        reason: Some(Reason::Reconciliation as i32),
                        agent_id: t.agent_id.clone(),
                        timestamp: Some(wire::now_secs()),
                        ..Default::default()
                    },
                })
                .collect()
        };
        for status in reconciled {
            self.send_update_event(framework_id, status);
        }
    }

    fn framework_message(&mut self, framework_id: &str, message: call::Message) {
        let agent_id = message.agent_id.value.clone();
        let forward = master_to_agent::Message::FrameworkMessage(internal::FrameworkToExecutor {
            framework_id: wire::framework_id(framework_id),
            executor_id: message.executor_id,
            data: message.data,
        });
        if !self.send_to_agent(&agent_id, forward) {
            tracing::info!(agent = %agent_id, "framework message for an unreachable agent dropped");
        }
    }

    /// Removes a framework: its offers go back, its executors are shut down,
    /// its tasks are killed, and it moves to the completed frameworks.
    pub(super) fn remove_framework(&mut self, framework_id: &str) {
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        tracing::info!(framework = framework_id, "removing framework");
        for offer in std::mem::take(&mut framework.offers) {
            self.offers.remove(&offer);
            for agent in self.agents.values_mut() {
                agent.offers.remove(&offer);
            }
        }
        let mut agents_involved = std::collections::BTreeSet::new();
        for task in framework.tasks.values() {
            agents_involved.insert(task.proto.agent_id.value.clone());
        }
        for agent in self.agents.values_mut() {
            agent.executors.retain(|(fid, _), _| {
                let ours = fid == framework_id;
                if ours {
                    agents_involved.insert(agent.id.clone());
                }
                !ours
            });
            agent.tasks.retain(|(fid, _)| fid != framework_id);
        }
        for agent_id in agents_involved {
            self.send_to_agent(
                &agent_id,
                master_to_agent::Message::ShutdownFramework(internal::ShutdownFramework {
                    framework_id: wire::framework_id(framework_id),
                }),
            );
        }
        self.allocator.remove_framework(framework_id);
        for (_, task) in std::mem::take(&mut framework.tasks) {
            let mut task = Arc::unwrap_or_clone(task);
            if !task.proto.state().is_terminal() {
                let status = v1::TaskStatus {
                    task_id: task.proto.task_id.clone(),
                    state: TaskState::TaskKilled as i32,
                    message: Some("Framework was removed".to_string()),
                    source: Some(Source::Master as i32),
                    reason: Some(Reason::FrameworkRemoved as i32),
                    agent_id: Some(task.proto.agent_id.clone()),
                    executor_id: task.proto.executor_id.clone(),
                    timestamp: Some(wire::now_secs()),
                    ..Default::default()
                };
                record_status(&mut task, &status);
                self.counters.tasks_killed += 1;
                self.publish_task_updated_of(framework_id, &task.proto);
            }
            framework.completed_tasks.push_back(Arc::new(task.proto));
        }
        self.publish_framework_removed(&framework.info);
        framework.conn = None;
        framework.failover_deadline = None;
        framework.unregistered_time = Some(wire::now_secs());
        self.completed_frameworks.push_back(framework);
        while self.completed_frameworks.len() > self.config.max_completed_frameworks {
            self.completed_frameworks.pop_front();
        }
    }
}

/// Mesos answers a SUBSCRIBE whose FrameworkInfo it refuses with a stream
/// holding one ERROR event, then closes it.
fn refused_subscription(format: Format, message: &str) -> Subscription {
    let (tx, events) = mpsc::channel(1);
    let error = Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: message.to_string(),
        }),
        ..Default::default()
    };
    let record = mesos_proto::recordio::frame(&mesos_proto::codec::encode(format, &error));
    // The channel has room for this one record; the sender is dropped at
    // once, which ends the stream after it.
    let _ = tx.try_send(record);
    Subscription {
        framework_id: String::new(),
        stream_id: uuid::Uuid::new_v4().to_string(),
        events,
    }
}

/// The latest known status of a task, for reconciliation (no uuid).
fn latest_status(task: &Task) -> v1::TaskStatus {
    let mut status = task
        .proto
        .statuses
        .last()
        .cloned()
        .unwrap_or_else(|| v1::TaskStatus {
            task_id: task.proto.task_id.clone(),
            ..Default::default()
        });
    status.state = task.proto.state;
    status.uuid = None;
    status.source = Some(Source::Master as i32);
    status.reason = Some(Reason::Reconciliation as i32);
    status.agent_id = Some(task.proto.agent_id.clone());
    status.timestamp = Some(wire::now_secs());
    status
}

/// Role names as Mesos accepts them.
pub(super) fn validate_role(role: &str) -> Result<(), String> {
    if role.is_empty() {
        return Err("Role name cannot be empty".into());
    }
    if role == "*" {
        return Ok(());
    }
    if role == "." || role == ".." || role.starts_with('-') {
        return Err(format!("Role '{role}' is invalid"));
    }
    if role
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '*')
    {
        return Err(format!("Role '{role}' contains invalid characters"));
    }
    Ok(())
}

pub(super) fn record_status(task: &mut Task, status: &v1::TaskStatus) {
    task.proto.state = status.state;
    task.proto.status_update_state = Some(status.state);
    task.proto.status_update_uuid = status.uuid.clone();
    let mut kept = status.clone();
    // Data can be large and is not part of the state view.
    kept.data = None;
    task.proto.statuses.push(kept);
    if task.proto.statuses.len() > MAX_STATUSES {
        task.proto.statuses.remove(0);
    }
}
