//! The master loop's side of the operator API: protobuf views of its
//! state (GET_STATE and its parts), the operator calls that change it
//! (TEARDOWN, MARK_AGENT_GONE), and the SUBSCRIBE event stream.
//!
//! Events are built only while someone subscribes, encoded once per format
//! (not once per subscriber) and queued without waiting: a subscriber whose
//! queue is full is dropped rather than allowed to stall the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use mesos_proto::codec::{self, Format};
use mesos_proto::internal::v1::{self as internal, master_to_agent};
use mesos_proto::recordio;
use mesos_proto::v1::master::{Call, Event, Response, call, event, response};
use mesos_proto::v1::{self, TaskState, task_status::Reason, task_status::Source};
use mesos_resources::Resources;
use tokio::sync::mpsc;

use super::frameworks::record_status;
use super::{Agent, Framework, HEARTBEAT_INTERVAL, Master};
use crate::error::ApiError;
use crate::wire;

/// Events queued for one operator subscriber before it counts as too slow
/// and is disconnected.
const SUBSCRIBER_QUEUE: usize = 4 * 1024;

/// Agent capabilities this master assumes (agents do not report them on the
/// internal link); the same list `/master/state` shows.
const AGENT_CAPABILITIES: [v1::agent_info::capability::Type; 3] = [
    v1::agent_info::capability::Type::MultiRole,
    v1::agent_info::capability::Type::HierarchicalRole,
    v1::agent_info::capability::Type::ReservationRefinement,
];

/// One SUBSCRIBE stream.
#[derive(Debug)]
pub(crate) struct OperatorSubscriber {
    format: Format,
    tx: mpsc::Sender<Bytes>,
}

pub(crate) fn time_info(secs: f64) -> v1::TimeInfo {
    // Saturates on absurd values instead of wrapping.
    v1::TimeInfo {
        nanoseconds: (secs * 1e9) as i64,
    }
}

fn reply(kind: response::Type) -> Response {
    Response {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn event_of(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// Tasks taken from the loop for GET_TASKS and GET_STATE.
#[derive(Default)]
struct TasksSnapshot {
    live: Vec<Arc<super::Task>>,
    completed: Vec<Arc<v1::Task>>,
}

impl TasksSnapshot {
    fn render(&self) -> response::GetTasks {
        let (unreachable, live): (Vec<_>, Vec<_>) = self
            .live
            .iter()
            .partition(|t| t.proto.state() == TaskState::TaskUnreachable);
        response::GetTasks {
            pending_tasks: Vec::new(),
            tasks: live.into_iter().map(|t| t.proto.clone()).collect(),
            unreachable_tasks: unreachable.into_iter().map(|t| t.proto.clone()).collect(),
            completed_tasks: self.completed.iter().map(|t| (**t).clone()).collect(),
            orphan_tasks: Vec::new(),
        }
    }
}

impl Master {
    /// Answers the operator calls that need the master's state. `Ok(None)`
    /// answers 200 with no body.
    pub(super) fn operator_call(&mut self, call: Call) -> Result<Option<Response>, ApiError> {
        use call::Type as T;
        use response::Type as R;
        Ok(Some(match call.r#type() {
            T::GetState => Response {
                get_state: Some(self.get_state()),
                ..reply(R::GetState)
            },
            T::GetAgents => Response {
                get_agents: Some(self.get_agents()),
                ..reply(R::GetAgents)
            },
            T::GetFrameworks => Response {
                get_frameworks: Some(self.get_frameworks()),
                ..reply(R::GetFrameworks)
            },
            T::GetExecutors => Response {
                get_executors: Some(self.get_executors()),
                ..reply(R::GetExecutors)
            },
            T::GetTasks => Response {
                get_tasks: Some(self.get_tasks()),
                ..reply(R::GetTasks)
            },
            T::GetWeights => Response {
                get_weights: Some(response::GetWeights {
                    weight_infos: self.weight_infos(),
                }),
                ..reply(R::GetWeights)
            },
            T::GetQuota => Response {
                get_quota: Some(response::GetQuota {
                    status: self.quota_status(),
                }),
                ..reply(R::GetQuota)
            },
            T::UpdateWeights => {
                let update = call.update_weights.ok_or_else(|| {
                    ApiError::bad_request("Expecting 'update_weights' to be present")
                })?;
                self.update_weights(update)?;
                return Ok(None);
            }
            T::UpdateQuota => {
                let update = call.update_quota.ok_or_else(|| {
                    ApiError::bad_request("Expecting 'update_quota' to be present")
                })?;
                self.update_quota(update)?;
                return Ok(None);
            }
            T::GetRoles => Response {
                get_roles: Some(response::GetRoles {
                    roles: self.roles(),
                }),
                ..reply(R::GetRoles)
            },
            T::GetMaster => Response {
                get_master: Some(response::GetMaster {
                    master_info: Some(self.config.master_info.clone()),
                    start_time: Some(self.start_time),
                    elected_time: Some(self.start_time),
                }),
                ..reply(R::GetMaster)
            },
            T::Teardown => {
                let id = call
                    .teardown
                    .ok_or_else(|| ApiError::bad_request("Expecting 'teardown' to be present"))?
                    .framework_id
                    .value;
                if id.is_empty() {
                    return Err(ApiError::bad_request(
                        "Expecting 'teardown.framework_id.value' to be non-empty",
                    ));
                }
                self.operator_teardown(&id)?;
                return Ok(None);
            }
            T::ReserveResources | T::UnreserveResources | T::CreateVolumes | T::DestroyVolumes => {
                let body = super::operations::OperatorOperation::from_call(&call)?;
                self.operator_operation(call.r#type(), body)?;
                return Ok(None);
            }
            T::MarkAgentGone => {
                let id = call
                    .mark_agent_gone
                    .ok_or_else(|| {
                        ApiError::bad_request("Expecting 'mark_agent_gone' to be present")
                    })?
                    .agent_id
                    .value;
                if id.is_empty() {
                    return Err(ApiError::bad_request(
                        "Expecting 'mark_agent_gone.agent_id.value' to be non-empty",
                    ));
                }
                self.mark_agent_gone(&id)?;
                return Ok(None);
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    format!("'{}' is not served by the master loop", other.as_str_name()),
                ));
            }
        }))
    }

    pub(super) fn get_state(&self) -> response::GetState {
        response::GetState {
            get_tasks: Some(self.get_tasks()),
            get_executors: Some(self.get_executors()),
            get_frameworks: Some(self.get_frameworks()),
            get_agents: Some(self.get_agents()),
        }
    }

    fn get_agents(&self) -> response::GetAgents {
        let used = self.used_per_agent();
        let mut agents: Vec<&Agent> = self.agents.values().collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        response::GetAgents {
            agents: agents
                .into_iter()
                .map(|a| self.agent_view(a, used.get(a.id.as_str())))
                .collect(),
            recovered_agents: Vec::new(),
        }
    }

    fn agent_view(&self, agent: &Agent, used: Option<&Resources>) -> response::get_agents::Agent {
        response::get_agents::Agent {
            agent_info: agent.info.clone(),
            active: agent.link.is_some(),
            deactivated: Some(false),
            version: agent.version.clone(),
            pid: Some(agent.pid.clone()),
            registered_time: Some(time_info(agent.registered_time)),
            reregistered_time: agent.reregistered_time.map(time_info),
            total_resources: agent.total.clone().into_vec(),
            allocated_resources: used.cloned().unwrap_or_default().into_vec(),
            offered_resources: self.agent_offered(&agent.id).into_vec(),
            capabilities: AGENT_CAPABILITIES
                .iter()
                .map(|c| v1::agent_info::Capability {
                    r#type: Some(*c as i32),
                })
                .collect(),
            drain_info: None,
            estimated_drain_start_time: None,
        }
    }

    fn get_frameworks(&self) -> response::GetFrameworks {
        let mut frameworks: Vec<&Framework> = self.frameworks.values().collect();
        frameworks.sort_by(|a, b| a.id.cmp(&b.id));
        response::GetFrameworks {
            frameworks: frameworks
                .into_iter()
                .map(|f| self.framework_view(f))
                .collect(),
            completed_frameworks: self
                .completed_frameworks
                .iter()
                .map(|f| self.framework_view(f))
                .collect(),
            recovered_frameworks: Vec::new(),
        }
    }

    pub(super) fn framework_view(
        &self,
        framework: &Framework,
    ) -> response::get_frameworks::Framework {
        let mut allocated = Resources::default();
        for task in framework.tasks.values().filter(|t| !t.recovered) {
            allocated.add(&task.resources);
        }
        let mut offered = Resources::default();
        let offers = framework
            .offers
            .iter()
            .filter_map(|id| self.offers.get(id))
            .map(|o| {
                offered.add(&o.resources);
                let hostname = self
                    .agents
                    .get(&o.agent_id)
                    .map(|a| a.info.hostname.clone())
                    .unwrap_or_default();
                v1::Offer {
                    id: v1::OfferId {
                        value: o.id.clone(),
                    },
                    framework_id: wire::framework_id(&o.framework_id),
                    agent_id: wire::agent_id(&o.agent_id),
                    hostname,
                    resources: wire::outgoing(&o.resources, &framework.role, framework.multi_role),
                    allocation_info: framework.multi_role.then(|| v1::resource::AllocationInfo {
                        role: Some(framework.role.clone()),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let connected = framework.conn.is_some();
        response::get_frameworks::Framework {
            framework_info: framework.info.clone(),
            active: connected,
            connected,
            recovered: false,
            registered_time: Some(time_info(framework.registered_time)),
            reregistered_time: framework.reregistered_time.map(time_info),
            unregistered_time: framework.unregistered_time.map(time_info),
            offers,
            inverse_offers: Vec::new(),
            allocated_resources: wire::outgoing(&allocated, &framework.role, framework.multi_role),
            offered_resources: wire::outgoing(&offered, &framework.role, framework.multi_role),
            offer_constraints: None,
        }
    }

    fn get_executors(&self) -> response::GetExecutors {
        let mut agents: Vec<&Agent> = self.agents.values().collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        response::GetExecutors {
            executors: agents
                .into_iter()
                .flat_map(|agent| {
                    agent
                        .executors
                        .values()
                        .map(|e| response::get_executors::Executor {
                            executor_info: e.clone(),
                            agent_id: wire::agent_id(&agent.id),
                        })
                })
                .collect(),
            orphan_executors: Vec::new(),
        }
    }

    fn get_tasks(&self) -> response::GetTasks {
        self.tasks_snapshot().render()
    }

    /// Every task, shared: cheap for the loop, rendered by the caller.
    fn tasks_snapshot(&self) -> TasksSnapshot {
        let mut frameworks: Vec<&Framework> = self.frameworks.values().collect();
        frameworks.sort_by(|a, b| a.id.cmp(&b.id));
        let mut snapshot = TasksSnapshot::default();
        for framework in frameworks
            .into_iter()
            .chain(self.completed_frameworks.iter())
        {
            snapshot.live.extend(framework.tasks.values().cloned());
            snapshot
                .completed
                .extend(framework.completed_tasks.iter().cloned());
        }
        snapshot
    }

    /// GET_STATE and GET_TASKS copy every task: at scale that is too
    /// long for the loop, so the loop takes a snapshot and the copies are
    /// made on the blocking pool. `None` for other calls.
    pub(super) fn deferred_reply(
        &self,
        kind: call::Type,
    ) -> Option<Box<dyn FnOnce() -> Response + Send>> {
        if !matches!(kind, call::Type::GetTasks | call::Type::GetState) {
            return None;
        }
        let tasks = self.tasks_snapshot();
        match kind {
            call::Type::GetTasks => Some(Box::new(move || Response {
                get_tasks: Some(tasks.render()),
                ..reply(response::Type::GetTasks)
            })),
            call::Type::GetState => {
                let executors = self.get_executors();
                let frameworks = self.get_frameworks();
                let agents = self.get_agents();
                Some(Box::new(move || Response {
                    get_state: Some(response::GetState {
                        get_tasks: Some(tasks.render()),
                        get_executors: Some(executors),
                        get_frameworks: Some(frameworks),
                        get_agents: Some(agents),
                    }),
                    ..reply(response::Type::GetState)
                }))
            }
            _ => None,
        }
    }

    /// Every role with a framework subscribed to it (Mesos also lists roles
    /// with a weight or quota; there are none of those yet). Weights are 1.
    pub(super) fn roles(&self) -> Vec<v1::Role> {
        let mut roles: BTreeMap<String, (BTreeSet<String>, Resources)> = BTreeMap::new();
        for framework in self.frameworks.values() {
            let names = super::frameworks::framework_roles(&framework.info, framework.multi_role);
            for name in names {
                roles
                    .entry(name)
                    .or_default()
                    .0
                    .insert(framework.id.clone());
            }
            let entry = roles.entry(framework.role.clone()).or_default();
            for task in framework.tasks.values().filter(|t| !t.recovered) {
                entry.1.add(&task.resources);
            }
            for offer in framework.offers.iter().filter_map(|id| self.offers.get(id)) {
                entry.1.add(&offer.resources);
            }
        }
        roles
            .into_iter()
            .map(|(name, (frameworks, resources))| v1::Role {
                resources: wire::outgoing(&resources, &name, true),
                weight: self.weight_of(&name),
                name,
                frameworks: frameworks.iter().map(|f| wire::framework_id(f)).collect(),
            })
            .collect()
    }

    /// TEARDOWN: the framework is removed as if it had torn itself down.
    fn operator_teardown(&mut self, framework_id: &str) -> Result<(), ApiError> {
        if !self.frameworks.contains_key(framework_id) {
            return Err(ApiError::bad_request(format!(
                "Framework '{framework_id}' is not active"
            )));
        }
        tracing::info!(framework = framework_id, "operator tore the framework down");
        self.remove_framework(framework_id);
        Ok(())
    }

    /// MARK_AGENT_GONE: the agent will not come back. Its tasks end as
    /// TASK_GONE_BY_OPERATOR (TASK_LOST for frameworks that are not
    /// partition aware), it is told to shut its frameworks down, its link is
    /// closed, and its ID is refused from now on.
    fn mark_agent_gone(&mut self, agent_id: &str) -> Result<(), ApiError> {
        if self.gone_agents.contains(agent_id) {
            return Ok(()); // Mesos answers a repeated mark with success too.
        }
        let Some(agent) = self.agents.get(agent_id) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Agent '{agent_id}' not found"),
            ));
        };
        tracing::info!(agent = agent_id, "operator marked the agent gone");
        let frameworks: BTreeSet<String> = agent
            .tasks
            .iter()
            .map(|(f, _)| f.clone())
            .chain(agent.executors.keys().map(|(f, _)| f.clone()))
            .collect();
        let tasks: Vec<(String, String)> = agent.tasks.iter().cloned().collect();
        for framework_id in frameworks {
            self.send_to_agent(
                agent_id,
                master_to_agent::Message::ShutdownFramework(internal::ShutdownFramework {
                    framework_id: wire::framework_id(&framework_id),
                }),
            );
        }
        for (framework_id, task_id) in tasks {
            self.gone_task(&framework_id, &task_id, agent_id);
        }
        self.gone_agents.insert(agent_id.to_string());
        self.remove_agent(
            agent_id,
            Reason::AgentRemovedByOperator,
            "Agent marked gone",
        );
        self.unreachable_agents.remove(agent_id);
        self.record(crate::registry::Change::Gone(agent_id.to_string()));
        Ok(())
    }

    fn gone_task(&mut self, framework_id: &str, task_id: &str, agent_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let state = if framework.partition_aware {
            TaskState::TaskGoneByOperator
        } else {
            TaskState::TaskLost
        };
        let Some(task) = framework.tasks.get_mut(task_id).map(super::Task::edit) else {
            return;
        };
        if task.proto.state().is_terminal() {
            return;
        }
        let status = v1::TaskStatus {
            task_id: task.proto.task_id.clone(),
            state: state as i32,
            message: Some("Agent was marked gone by an operator".to_string()),
            source: Some(Source::Master as i32),
            reason: Some(Reason::AgentRemovedByOperator as i32),
            agent_id: Some(wire::agent_id(agent_id)),
            executor_id: task.proto.executor_id.clone(),
            timestamp: Some(wire::now_secs()),
            ..Default::default()
        };
        record_status(task, &status);
        let recover = (!task.recovered).then(|| task.resources.clone());
        task.recovered = true;
        if let Some(resources) = recover {
            self.allocator.recover_resources(
                framework_id,
                agent_id,
                &resources,
                None,
                std::time::Instant::now(),
            );
        }
        self.counters.count_terminal(state);
        self.publish_task_updated(framework_id, task_id);
        self.send_update_event(framework_id, status);
        // Nothing on the agent will ever acknowledge it.
        self.complete_task(framework_id, task_id);
    }

    /// A new SUBSCRIBE stream: SUBSCRIBED with the whole state, then a
    /// heartbeat, then changes as they happen.
    pub(super) fn operator_subscribe(&mut self, format: Format) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let subscribed = Event {
            subscribed: Some(event::Subscribed {
                get_state: Some(self.get_state()),
                heartbeat_interval_seconds: Some(HEARTBEAT_INTERVAL.as_secs_f64()),
            }),
            ..event_of(event::Type::Subscribed)
        };
        for event in [subscribed, event_of(event::Type::Heartbeat)] {
            // The queue is new and larger than two records.
            let _ = tx.try_send(recordio::frame(&codec::encode(format, &event)));
        }
        tracing::info!(
            subscribers = self.operator_subscribers.len() + 1,
            "operator subscribed to master events"
        );
        self.operator_subscribers
            .push(OperatorSubscriber { format, tx });
        rx
    }

    /// Queues an event for every subscriber, encoding it at most once per
    /// format, and forgets subscribers that are gone or too slow.
    pub(super) fn publish(&mut self, event: &Event) {
        if self.operator_subscribers.is_empty() {
            return;
        }
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        self.operator_subscribers.retain(|s| {
            let slot = match s.format {
                Format::Json => 0,
                Format::Protobuf => 1,
            };
            let record = encoded[slot]
                .get_or_insert_with(|| recordio::frame(&codec::encode(s.format, event)))
                .clone();
            match s.tx.try_send(record) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("operator subscriber cannot keep up; disconnecting it");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    pub(super) fn publish_heartbeat(&mut self) {
        self.publish(&event_of(event::Type::Heartbeat));
    }

    pub(super) fn publish_task_added(&mut self, framework_id: &str, task_id: &str) {
        if self.operator_subscribers.is_empty() {
            return;
        }
        let Some(task) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(task_id))
        else {
            return;
        };
        let event = Event {
            task_added: Some(event::TaskAdded {
                task: task.proto.clone(),
            }),
            ..event_of(event::Type::TaskAdded)
        };
        self.publish(&event);
    }

    /// The task's latest status and state, as they now are.
    pub(super) fn publish_task_updated(&mut self, framework_id: &str, task_id: &str) {
        if self.operator_subscribers.is_empty() {
            return;
        }
        let Some(task) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(task_id))
        else {
            return;
        };
        let event = task_updated(framework_id, &task.proto);
        self.publish(&event);
    }

    /// [`Master::publish_task_updated`] for a task no longer in the books.
    pub(super) fn publish_task_updated_of(&mut self, framework_id: &str, task: &v1::Task) {
        if !self.operator_subscribers.is_empty() {
            self.publish(&task_updated(framework_id, task));
        }
    }

    pub(super) fn publish_agent_added(&mut self, agent_id: &str) {
        if self.operator_subscribers.is_empty() {
            return;
        }
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let used = self.used_per_agent();
        let event = Event {
            agent_added: Some(event::AgentAdded {
                agent: self.agent_view(agent, used.get(agent_id)),
            }),
            ..event_of(event::Type::AgentAdded)
        };
        self.publish(&event);
    }

    pub(super) fn publish_agent_removed(&mut self, agent_id: &str) {
        let event = Event {
            agent_removed: Some(event::AgentRemoved {
                agent_id: wire::agent_id(agent_id),
            }),
            ..event_of(event::Type::AgentRemoved)
        };
        self.publish(&event);
    }

    /// FRAMEWORK_ADDED (`added`) or FRAMEWORK_UPDATED.
    pub(super) fn publish_framework(&mut self, framework_id: &str, added: bool) {
        if self.operator_subscribers.is_empty() {
            return;
        }
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework = self.framework_view(framework);
        let event = if added {
            Event {
                framework_added: Some(event::FrameworkAdded { framework }),
                ..event_of(event::Type::FrameworkAdded)
            }
        } else {
            Event {
                framework_updated: Some(event::FrameworkUpdated { framework }),
                ..event_of(event::Type::FrameworkUpdated)
            }
        };
        self.publish(&event);
    }

    pub(super) fn publish_framework_removed(&mut self, info: &v1::FrameworkInfo) {
        let event = Event {
            framework_removed: Some(event::FrameworkRemoved {
                framework_info: info.clone(),
            }),
            ..event_of(event::Type::FrameworkRemoved)
        };
        self.publish(&event);
    }
}

fn task_updated(framework_id: &str, task: &v1::Task) -> Event {
    let mut status = task
        .statuses
        .last()
        .cloned()
        .unwrap_or_else(|| v1::TaskStatus {
            task_id: task.task_id.clone(),
            state: task.state,
            ..Default::default()
        });
    status.data = None;
    Event {
        task_updated: Some(event::TaskUpdated {
            framework_id: wire::framework_id(framework_id),
            status,
            state: task.state,
        }),
        ..event_of(event::Type::TaskUpdated)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;
    use crate::master::Config;

    fn master() -> Master {
        let config = Config {
            master_info: v1::MasterInfo {
                id: "m".into(),
                ..Default::default()
            },
            allocation_interval: Duration::from_secs(1),
            offer_timeout: None,
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            weights: Vec::new(),
            max_completed_frameworks: 50,
            max_completed_tasks_per_framework: 1000,
            cluster: None,
            flags: Vec::new(),
            hooks: Default::default(),
        };
        let allocator = crate::allocator::by_name("HierarchicalDRF").unwrap();
        Master::new(config, allocator)
    }

    fn decode(format: Format, frame: &Bytes) -> Event {
        let mut decoder = recordio::Decoder::default();
        decoder.push(frame);
        let record = decoder.next_record().unwrap().unwrap();
        codec::decode(format, &record).unwrap()
    }

    #[test]
    fn a_subscriber_starts_with_the_state_and_a_heartbeat() {
        let mut master = master();
        let mut events = master.operator_subscribe(Format::Protobuf);
        let first = decode(Format::Protobuf, &events.try_recv().unwrap());
        assert_eq!(first.r#type(), event::Type::Subscribed);
        let subscribed = first.subscribed.unwrap();
        assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
        let state = subscribed.get_state.unwrap();
        assert!(state.get_agents.unwrap().agents.is_empty());
        let second = decode(Format::Protobuf, &events.try_recv().unwrap());
        assert_eq!(second.r#type(), event::Type::Heartbeat);
        assert!(events.try_recv().is_err());
    }

    #[test]
    fn a_slow_subscriber_is_dropped_and_a_gone_one_forgotten() {
        let mut master = master();
        let mut fast = master.operator_subscribe(Format::Json);
        let mut slow = master.operator_subscribe(Format::Protobuf);
        let gone = master.operator_subscribe(Format::Json);
        drop(gone);
        master.publish_heartbeat();
        assert_eq!(master.operator_subscribers.len(), 2);
        while fast.try_recv().is_ok() {}

        for _ in 0..SUBSCRIBER_QUEUE {
            master.publish_heartbeat();
            let heartbeat = decode(Format::Json, &fast.try_recv().unwrap());
            assert_eq!(heartbeat.r#type(), event::Type::Heartbeat);
        }
        assert_eq!(master.operator_subscribers.len(), 1);
        // The slow one got what fit, then its stream ended.
        let mut received = 0;
        loop {
            match slow.try_recv() {
                Ok(_) => received += 1,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => panic!("stream left open"),
            }
        }
        assert_eq!(received, SUBSCRIBER_QUEUE);
        // The fast one is still served.
        master.publish_agent_removed("a");
        let removed = decode(Format::Json, &fast.try_recv().unwrap());
        assert_eq!(removed.agent_removed.unwrap().agent_id.value, "a");
    }

    #[test]
    fn unknown_targets_of_operator_calls_are_refused() {
        let mut master = master();
        let teardown = Call {
            r#type: Some(call::Type::Teardown as i32),
            teardown: Some(call::Teardown {
                framework_id: wire::framework_id("nope"),
            }),
            ..Default::default()
        };
        let e = master.operator_call(teardown).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let gone = Call {
            r#type: Some(call::Type::MarkAgentGone as i32),
            mark_agent_gone: Some(call::MarkAgentGone {
                agent_id: wire::agent_id("nope"),
            }),
            ..Default::default()
        };
        let e = master.operator_call(gone).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let missing = Call {
            r#type: Some(call::Type::MarkAgentGone as i32),
            ..Default::default()
        };
        let e = master.operator_call(missing).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("mark_agent_gone"), "{}", e.message);
    }
}
