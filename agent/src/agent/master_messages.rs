//! Registration with the master and the messages it sends.

use std::time::Instant;

use mesos_proto::internal::v1::{
    AgentRegistered, AgentToMaster, FrameworkToExecutor, Ping, RegisterAgent, StatusUpdateAck,
    agent_to_master, master_to_agent,
};
use mesos_proto::v1::{self, executor, task_status::Source};
use tokio::sync::mpsc;

use super::model::FrameworkState;
use super::{Agent, CAPABILITIES, Command, ExecutorKey, Link};
use crate::status_updates::Acked;

impl Agent {
    /// A fresh connection: RegisterAgent must be its first message.
    pub(super) fn link_up(&mut self, tx: mpsc::Sender<AgentToMaster>) {
        if self.is_recovering() {
            tracing::info!(
                "connected to the master; registering once recovered executors resubscribed"
            );
            self.link = Link::Held(tx);
            return;
        }
        self.register(tx);
    }

    /// Sends RegisterAgent on a fresh link.
    pub(super) fn register(&mut self, tx: mpsc::Sender<AgentToMaster>) {
        let register = agent_to_master::Message::Register(self.register_message());
        if self.push_to_link(&tx, register) {
            tracing::info!(agent = ?self.agent_id, "registering with the master");
            self.link = Link::Registering(tx);
        }
    }

    pub(super) fn master_message(&mut self, message: master_to_agent::Message) {
        match message {
            master_to_agent::Message::Registered(registered) => self.registered(registered),
            master_to_agent::Message::Ping(ping) => {
                let pong = agent_to_master::Message::Ping(Ping {
                    sequence: ping.sequence,
                });
                if let Link::Registering(tx) | Link::Registered(tx) = &self.link {
                    self.push_to_link(tx, pong);
                }
            }
            master_to_agent::Message::RunTask(run) => self.run_task(run.framework, run.task),
            master_to_agent::Message::RunTaskGroup(run) => {
                self.run_task_group(run.framework, run.executor, run.task_group)
            }
            master_to_agent::Message::KillTask(kill) => {
                self.kill_task(&kill.framework_id.value, &kill.task_id, kill.kill_policy)
            }
            master_to_agent::Message::StatusUpdateAck(ack) => self.status_update_ack(ack),
            master_to_agent::Message::FrameworkMessage(message) => self.framework_message(message),
            master_to_agent::Message::ShutdownFramework(shutdown) => {
                self.shutdown_framework(&shutdown.framework_id.value)
            }
            master_to_agent::Message::CheckpointResources(checkpoint) => {
                self.checkpoint_resources(checkpoint.resources)
            }
            master_to_agent::Message::ShutdownExecutor(shutdown) => {
                let key = ExecutorKey {
                    framework_id: shutdown.framework_id.value,
                    executor_id: shutdown.executor_id.value,
                };
                tracing::info!(%key, "shutdown requested by the framework");
                self.shutdown_executor(&key);
            }
        }
    }

    fn registered(&mut self, registered: AgentRegistered) {
        self.link = match std::mem::replace(&mut self.link, Link::Down) {
            Link::Registering(tx) => Link::Registered(tx),
            other => {
                tracing::warn!("AgentRegistered outside of a registration ignored");
                self.link = other;
                return;
            }
        };
        let id = registered.agent_id.value;
        let master = registered.master_info.id;
        match self.agent_id.as_deref() {
            None => tracing::info!(agent = %id, %master, "registered with the master"),
            Some(old) if old == id => {
                tracing::info!(agent = %id, %master, "re-registered with the master")
            }
            Some(old) => tracing::warn!(
                agent = %id, previous = old, %master,
                "the master gave this agent a new ID"
            ),
        }
        let new_id = self.agent_id.as_deref() != Some(id.as_str());
        self.agent_id = Some(id.clone());
        if new_id {
            self.checkpoint_agent();
            let (work_dir, agent_id) = (self.config.work_dir.clone(), id.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = crate::sandbox::link_latest_agent(&work_dir, &agent_id) {
                    tracing::warn!("cannot update slaves/latest: {e}");
                }
            });
        }
        self.reregister = true;
        self.master_hostname = registered.master_info.hostname;
        for update in self.updates.heads(Instant::now()) {
            self.send_to_master(agent_to_master::Message::StatusUpdate(update));
        }
    }

    /// The agent as it is now, with what it runs, so that a master that
    /// lost track of it (failover, restart) can rebuild its view.
    fn register_message(&self) -> RegisterAgent {
        let agent_id = v1::AgentId {
            value: self.agent_id.clone().unwrap_or_default(),
        };
        let mut executors = Vec::new();
        let mut tasks = Vec::new();
        let running = self
            .frameworks
            .values()
            .filter(|f| f.state == FrameworkState::Running);
        for framework in running.clone() {
            let framework_id = framework.info.id.clone().unwrap_or_default();
            // Finished tasks whose terminal update the framework has not
            // acknowledged yet are still the agent's to report (Mesos's
            // terminated tasks), or the master would think them lost.
            let unacknowledged = |t: &&super::model::Task| {
                self.updates
                    .has_pending(&framework_id.value, &t.info.task_id.value)
            };
            for executor in framework.executors.values() {
                executors.push(executor.info.clone());
            }
            let executors = framework
                .executors
                .values()
                .chain(framework.completed_executors.iter());
            for executor in executors {
                let launched = executor
                    .launched
                    .values()
                    .chain(executor.completed.iter().filter(unacknowledged))
                    .map(|t| (&t.info, t.state));
                let queued = executor
                    .queued
                    .iter()
                    .map(|t| (t, v1::TaskState::TaskStaging));
                for (info, state) in launched.chain(queued) {
                    tasks.push(v1::Task {
                        name: info.name.clone(),
                        task_id: info.task_id.clone(),
                        framework_id: framework_id.clone(),
                        executor_id: Some(executor.info.executor_id.clone()),
                        agent_id: agent_id.clone(),
                        state: state as i32,
                        resources: info.resources.clone(),
                        kill_policy: info.kill_policy,
                        labels: info.labels.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        RegisterAgent {
            agent_info: self.agent_info(),
            version: mesos_proto::MESOS_VERSION.to_string(),
            pid: Some(self.config.pid.clone()),
            frameworks: running.map(|f| f.info.clone()).collect(),
            executors,
            tasks,
            reregister: Some(self.reregister),
            capabilities: CAPABILITIES
                .iter()
                .map(|c| v1::agent_info::Capability {
                    r#type: Some(*c as i32),
                })
                .collect(),
        }
    }

    pub(super) fn retry_status_updates(&mut self) {
        if !self.is_registered() {
            return;
        }
        for update in self.updates.due(Instant::now()) {
            tracing::debug!(
                task = %update.status.task_id.value,
                state = update.status.state().as_str_name(),
                "resending unacknowledged status update"
            );
            self.send_to_master(agent_to_master::Message::StatusUpdate(update));
        }
    }

    fn status_update_ack(&mut self, ack: StatusUpdateAck) {
        let (framework_id, task_id) = (&ack.framework_id.value, &ack.task_id.value);
        match self
            .updates
            .acknowledge(framework_id, task_id, &ack.uuid, Instant::now())
        {
            Acked::Head { acked, next } => {
                let checkpointed = self.checkpoint_ack(&acked);
                if acked.status.source() == Source::Executor
                    && let Some(executor_id) = &acked.executor_id
                {
                    let key = ExecutorKey {
                        framework_id: framework_id.clone(),
                        executor_id: executor_id.value.clone(),
                    };
                    if checkpointed {
                        // The executor drops the update once acknowledged:
                        // only when the log says so, or a crash in between
                        // would lose it.
                        self.once_durable(Command::AcknowledgeExecutor {
                            key,
                            task_id: ack.task_id.clone(),
                            uuid: ack.uuid.clone(),
                        });
                    } else {
                        self.acknowledge_executor(&key, &ack.task_id, ack.uuid.clone());
                    }
                }
                match next {
                    // Its record may still be on its way to the disk.
                    Some(_) if checkpointed => self.forward_once_durable(framework_id, task_id),
                    Some(next) => {
                        self.send_to_master(agent_to_master::Message::StatusUpdate(*next));
                    }
                    None => {}
                }
            }
            Acked::Duplicate => tracing::info!(
                task = %task_id, framework = %framework_id,
                "ignoring a duplicate acknowledgement"
            ),
            Acked::NotHead => tracing::info!(
                task = %task_id, framework = %framework_id,
                "ignoring an acknowledgement of an update that is not the pending one (duplicate?)"
            ),
            Acked::UnknownTask => tracing::info!(
                task = %task_id, framework = %framework_id,
                "ignoring an acknowledgement for a task with no pending update"
            ),
        }
    }

    /// ACKNOWLEDGED to the executor that sent the update.
    pub(super) fn acknowledge_executor(
        &mut self,
        key: &ExecutorKey,
        task_id: &v1::TaskId,
        uuid: Vec<u8>,
    ) {
        let event = executor::Event {
            r#type: Some(executor::event::Type::Acknowledged as i32),
            acknowledged: Some(executor::event::Acknowledged {
                task_id: task_id.clone(),
                uuid,
            }),
            ..Default::default()
        };
        self.send_to_executor(key, &event);
    }

    fn framework_message(&mut self, message: FrameworkToExecutor) {
        let key = ExecutorKey {
            framework_id: message.framework_id.value,
            executor_id: message.executor_id.value,
        };
        let event = executor::Event {
            r#type: Some(executor::event::Type::Message as i32),
            message: Some(executor::event::Message { data: message.data }),
            ..Default::default()
        };
        if self.send_to_executor(&key, &event) {
            self.counters.valid_framework_messages += 1;
        } else {
            self.counters.invalid_framework_messages += 1;
            tracing::info!(%key, "dropping a framework message: the executor is not subscribed");
        }
    }
}
