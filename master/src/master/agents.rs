//! Agents: registration over the internal link, liveness, status updates,
//! executor messages, and removal of agents that stopped answering.

use std::collections::HashMap;
use std::time::Instant;

use mesos_plugin_api::allocator::AgentSpec;
use mesos_proto::internal::v1::{self as internal, agent_to_master, master_to_agent};
use mesos_proto::v1::scheduler::{Event, event};
use mesos_proto::v1::{self, TaskState, task_status::Reason, task_status::Source};
use mesos_resources::Resources;

use super::adoption::Reported;
use super::frameworks::record_status;
use super::{Agent, AgentLink, Master};
use crate::error::ApiError;
use crate::registry::Change;
use crate::wire;

impl Master {
    /// An agent opened its link and sent RegisterAgent. Returns its ID.
    pub(super) fn agent_connected(
        &mut self,
        register: internal::RegisterAgent,
        link: AgentLink,
    ) -> Result<String, ApiError> {
        let mut info = register.agent_info;
        if info.hostname.is_empty() {
            return Err(ApiError::bad_request("Agent hostname is empty"));
        }
        if let Some(id) = info
            .id
            .as_ref()
            .filter(|id| self.gone_agents.contains(&id.value))
        {
            return Err(ApiError::forbidden(format!(
                "Agent {} was marked gone by an operator and cannot rejoin",
                id.value
            )));
        }
        let now = Instant::now();
        let now_secs = wire::now_secs();
        let mut added = false;
        let known = info
            .id
            .as_ref()
            .map(|id| id.value.clone())
            .filter(|id| self.agents.contains_key(id));
        let agent_id = match known {
            Some(id) => {
                let agent = self
                    .agents
                    .get_mut(&id)
                    .ok_or_else(|| ApiError::unavailable("agent vanished"))?;
                agent.link = Some(link.clone());
                agent.last_seen = now;
                agent.reregistered_time = Some(now_secs);
                agent.version = register.version;
                self.allocator.set_agent_active(&id, true);
                tracing::info!(
                    agent = %id,
                    recovered = register.reregister.unwrap_or(false),
                    tasks = register.tasks.len(),
                    "agent re-registered"
                );
                self.reconcile_agent_tasks(&id, &register.tasks);
                id
            }
            None => {
                let id = match info
                    .id
                    .as_ref()
                    .map(|i| i.value.clone())
                    .filter(|v| !v.is_empty())
                {
                    // An agent this master has not seen (the master restarted,
                    // or removed it as unreachable): it keeps its ID.
                    Some(id) => id,
                    None => {
                        let id = format!("{}-S{}", self.id, self.next_agent);
                        self.next_agent += 1;
                        id
                    }
                };
                self.unreachable_agents.remove(&id);
                let pid = register
                    .pid
                    .clone()
                    .unwrap_or_else(|| format!("slave(1)@{}:{}", info.hostname, info.port()));
                // An agent at the same address under another ID restarted
                // without its state (or with incompatible resources): the
                // old one is gone, with its tasks (Mesos does the same).
                let replaced = self.agent_pids.get(&pid).filter(|old| **old != id).cloned();
                if let Some(old) = replaced {
                    tracing::warn!(agent = %old, new = %id, %pid, "a new agent registered at the address of an old one; removing the old one");
                    self.remove_agent(
                        &old,
                        Reason::AgentRestarted,
                        "Agent restarted as a new agent",
                    );
                    self.unreachable_agents.remove(&old);
                    self.record(Change::Remove(old));
                }
                info.id = Some(wire::agent_id(&id));
                let total = wire::incoming(&info.resources);
                let adopted = self.adopt(
                    &id,
                    &Reported {
                        frameworks: &register.frameworks,
                        executors: &register.executors,
                        tasks: &register.tasks,
                    },
                );
                self.allocator.add_agent(
                    AgentSpec {
                        id: id.clone(),
                        hostname: info.hostname.clone(),
                        total: total.clone(),
                    },
                    &adopted.used,
                );
                tracing::info!(agent = %id, %pid, resources = %total, "agent registered");
                self.agent_pids.insert(pid.clone(), id.clone());
                self.agents.insert(
                    id.clone(),
                    Agent {
                        id: id.clone(),
                        info,
                        pid,
                        version: register.version,
                        total,
                        link: Some(link.clone()),
                        last_seen: now,
                        last_ping_sent: now,
                        ping_sequence: 0,
                        registered_time: now_secs,
                        reregistered_time: None,
                        offers: Default::default(),
                        executors: adopted.executors,
                        tasks: adopted.tasks.clone(),
                    },
                );
                self.announce_adopted(&adopted.tasks);
                if let Some(agent) = self.agents.get(&id) {
                    self.record(Change::Admit(agent.info.clone()));
                }
                self.recovered_agents.remove(&id);
                self.counters.agent_registrations += 1;
                added = true;
                id
            }
        };
        let registered = master_to_agent::Message::Registered(internal::AgentRegistered {
            agent_id: wire::agent_id(&agent_id),
            master_info: self.config.master_info.clone(),
            ping_interval_seconds: Some(self.config.agent_ping_timeout.as_secs_f64()),
        });
        self.send_to_agent(&agent_id, registered);
        if added {
            self.publish_agent_added(&agent_id);
        } else {
            // This master's view of the reservations and volumes wins over
            // what a restarted agent remembers (an update may have been
            // lost with the old connection).
            self.checkpoint_agent_resources(&agent_id);
        }
        self.allocate_soon = true;
        Ok(agent_id)
    }

    /// Tasks the master believes run on a re-registering agent that the agent
    /// does not report are gone.
    fn reconcile_agent_tasks(&mut self, agent_id: &str, reported: &[v1::Task]) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let missing: Vec<(String, String)> = agent
            .tasks
            .iter()
            .filter(|(fid, tid)| {
                !reported
                    .iter()
                    .any(|t| t.framework_id.value == *fid && t.task_id.value == *tid)
            })
            .cloned()
            .collect();
        for (framework_id, task_id) in missing {
            self.lose_task(
                &framework_id,
                &task_id,
                agent_id,
                Reason::AgentRestarted,
                "Task is unknown to the agent",
            );
        }
    }

    pub(super) fn agent_message(
        &mut self,
        agent_id: &str,
        conn: u64,
        message: agent_to_master::Message,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if agent.link.as_ref().map(|l| l.conn) != Some(conn) {
            return; // from a stream that has since been replaced
        }
        agent.last_seen = Instant::now();
        match message {
            agent_to_master::Message::Ping(_) => {}
            agent_to_master::Message::Register(_) => {
                tracing::warn!(
                    agent = agent_id,
                    "duplicate RegisterAgent on an open link ignored"
                );
            }
            agent_to_master::Message::StatusUpdate(update) => self.status_update(agent_id, update),
            agent_to_master::Message::ExecutorMessage(message) => {
                let event = Event {
                    r#type: Some(event::Type::Message as i32),
                    message: Some(event::Message {
                        agent_id: wire::agent_id(agent_id),
                        executor_id: message.executor_id,
                        data: message.data,
                    }),
                    ..Default::default()
                };
                self.counters.framework_messages += 1;
                self.send_event(&message.framework_id.value, &event);
            }
            agent_to_master::Message::ExecutorExited(exited) => {
                self.executor_exited(agent_id, exited)
            }
        }
    }

    fn status_update(&mut self, agent_id: &str, update: internal::StatusUpdate) {
        let framework_id = update.framework_id.value.clone();
        let mut status = update.status;
        status.agent_id = Some(wire::agent_id(agent_id));
        if status.executor_id.is_none() {
            status.executor_id = update.executor_id;
        }
        let Some(framework) = self.frameworks.get_mut(&framework_id) else {
            // Nobody will ever acknowledge it; release the agent's retries.
            tracing::info!(framework = %framework_id, "status update for an unknown framework; acknowledging it");
            if let Some(uuid) = status.uuid.clone() {
                self.send_to_agent(
                    agent_id,
                    master_to_agent::Message::StatusUpdateAck(internal::StatusUpdateAck {
                        framework_id: update.framework_id,
                        task_id: status.task_id.clone(),
                        uuid,
                    }),
                );
            }
            return;
        };
        self.counters.valid_status_updates += 1;
        let state = status.state();
        let mut recover = None;
        let mut changed = false;
        if let Some(task) = framework.tasks.get_mut(&status.task_id.value) {
            let task = super::Task::edit(task);
            let was_terminal = task.proto.state().is_terminal();
            let before = task.proto.state;
            record_status(task, &status);
            if let Some(latest) = update.latest_state {
                task.proto.state = latest;
            }
            // The task's state is the agent's latest (an update still in
            // flight may be older), so a terminal state is counted, and its
            // resources freed, when the latest one says so.
            let current = task.proto.state();
            changed = task.proto.state != before;
            if current.is_terminal() && !was_terminal {
                self.counters.count_terminal(current);
            }
            if current.is_terminal() && !task.recovered {
                task.recovered = true;
                recover = Some(task.resources.clone());
            }
        }
        if let Some(resources) = recover {
            self.allocator.recover_resources(
                &framework_id,
                agent_id,
                &resources,
                None,
                Instant::now(),
            );
        }
        let needs_ack = status.uuid.is_some();
        let task_id = status.task_id.value.clone();
        if changed {
            self.publish_task_updated(&framework_id, &task_id);
        }
        self.send_update_event(&framework_id, status);
        if state.is_terminal() && !needs_ack {
            self.complete_task(&framework_id, &task_id);
        }
    }

    fn executor_exited(&mut self, agent_id: &str, exited: internal::ExecutorExited) {
        let framework_id = exited.framework_id.value.clone();
        let key = (framework_id.clone(), exited.executor_id.value.clone());
        let executor = self
            .agents
            .get_mut(agent_id)
            .and_then(|a| a.executors.remove(&key));
        if let Some(executor) = executor {
            let resources = wire::incoming(&executor.resources);
            if !resources.is_empty() {
                self.allocator.recover_resources(
                    &framework_id,
                    agent_id,
                    &resources,
                    None,
                    Instant::now(),
                );
            }
        }
        let event = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(wire::agent_id(agent_id)),
                executor_id: Some(exited.executor_id),
                status: Some(exited.status.unwrap_or_default()),
            }),
            ..Default::default()
        };
        self.send_event(&framework_id, &event);
    }

    pub(super) fn agent_disconnected(&mut self, agent_id: &str, conn: u64) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if agent.link.as_ref().map(|l| l.conn) != Some(conn) {
            return;
        }
        agent.link = None;
        tracing::warn!(
            agent = agent_id,
            "agent disconnected; waiting for it to come back"
        );
        self.allocator.set_agent_active(agent_id, false);
        let offers: Vec<String> = agent.offers.iter().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, None, true);
        }
    }

    /// Pings connected agents and removes those silent for longer than
    /// `agent_ping_timeout * max_agent_ping_timeouts`.
    pub(super) fn check_agents(&mut self, now: Instant) {
        let timeout = self.config.agent_ping_timeout;
        let deadline = timeout * self.config.max_agent_ping_timeouts.max(1);
        let mut gone = Vec::new();
        let mut to_ping = Vec::new();
        for agent in self.agents.values_mut() {
            if now.duration_since(agent.last_seen) >= deadline {
                gone.push(agent.id.clone());
            } else if agent.link.is_some()
                && now.duration_since(agent.last_ping_sent) >= timeout / 2
            {
                agent.last_ping_sent = now;
                agent.ping_sequence += 1;
                to_ping.push((agent.id.clone(), agent.ping_sequence));
            }
        }
        for (id, sequence) in to_ping {
            self.send_to_agent(
                &id,
                master_to_agent::Message::Ping(internal::Ping {
                    sequence: Some(sequence),
                }),
            );
        }
        for id in gone {
            tracing::warn!(agent = %id, "agent unreachable; its tasks are lost");
            self.remove_agent(&id, Reason::AgentRemoved, "Agent is unreachable");
        }
    }

    /// Removes an agent; its tasks are lost and every framework is told.
    pub(super) fn remove_agent(&mut self, agent_id: &str, reason: Reason, message: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let offers: Vec<String> = agent.offers.iter().cloned().collect();
        let tasks: Vec<(String, String)> = agent.tasks.iter().cloned().collect();
        let frameworks: std::collections::BTreeSet<String> =
            self.frameworks.keys().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, None, true);
        }
        for (framework_id, task_id) in tasks {
            self.lose_task(&framework_id, &task_id, agent_id, reason, message);
        }
        self.allocator.remove_agent(agent_id);
        let removed = self.agents.remove(agent_id);
        if let Some(agent) = &removed
            && self
                .agent_pids
                .get(&agent.pid)
                .is_some_and(|id| id == agent_id)
        {
            self.agent_pids.remove(&agent.pid);
        }
        let info = removed.map(|agent| agent.info);
        let time = wire::now_secs();
        self.unreachable_agents.insert(agent_id.to_string(), time);
        self.record(Change::Unreachable {
            id: agent_id.to_string(),
            time,
        });
        self.counters.agent_removals += 1;
        self.publish_agent_removed(agent_id);
        // Mesos tells every framework an agent was lost.
        let event = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(wire::agent_id(agent_id)),
                ..Default::default()
            }),
            ..Default::default()
        };
        for framework_id in frameworks {
            self.send_event(&framework_id, &event);
        }
        if let Some(info) = info {
            self.config.hooks.agent_lost(&info);
        }
    }

    /// The master declares a task lost (TASK_UNREACHABLE for partition-aware
    /// frameworks) and tells its framework.
    fn lose_task(
        &mut self,
        framework_id: &str,
        task_id: &str,
        agent_id: &str,
        reason: Reason,
        message: &str,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let state = if framework.partition_aware {
            TaskState::TaskUnreachable
        } else {
            TaskState::TaskLost
        };
        let Some(task) = framework.tasks.get_mut(task_id).map(super::Task::edit) else {
            return;
        };
        let status = v1::TaskStatus {
            task_id: task.proto.task_id.clone(),
            state: state as i32,
            message: Some(message.to_string()),
            source: Some(Source::Master as i32),
            reason: Some(reason as i32),
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
                Instant::now(),
            );
        }
        self.counters.count_terminal(state);
        self.publish_task_updated(framework_id, task_id);
        self.send_update_event(framework_id, status);
        if state == TaskState::TaskLost {
            self.complete_task(framework_id, task_id);
        }
    }

    /// What the tasks on each agent hold, in one pass over the tasks.
    pub(super) fn used_per_agent(&self) -> HashMap<&str, Resources> {
        let mut used: HashMap<&str, Resources> = HashMap::new();
        for framework in self.frameworks.values() {
            for task in framework.tasks.values().filter(|t| !t.recovered) {
                used.entry(task.proto.agent_id.value.as_str())
                    .or_default()
                    .add(&task.resources);
            }
        }
        used
    }

    pub(super) fn agent_offered(&self, agent_id: &str) -> Resources {
        let mut offered = Resources::default();
        if let Some(agent) = self.agents.get(agent_id) {
            for id in &agent.offers {
                if let Some(offer) = self.offers.get(id) {
                    offered.add(&offer.resources);
                }
            }
        }
        offered
    }
}
