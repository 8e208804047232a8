//! Messages from the master.

use std::time::Instant;

use mesos_proto::internal::v1::{Ping, agent_to_master, master_to_agent};
use mesos_proto::v1::{TaskState, executor, task_status::Reason, task_status::Source};

use super::Agent;
use crate::status_updates::Acked;

impl Agent {
    pub(super) fn master_message(&mut self, message: master_to_agent::Message) {
        match message {
            master_to_agent::Message::Registered(registered) => {
                let id = registered.agent_id.value;
                if self.agent_id.as_deref() != Some(id.as_str()) {
                    tracing::info!(agent = %id, "registered with master {}", registered.master_info.id);
                } else {
                    tracing::info!(agent = %id, "re-registered with master {}", registered.master_info.id);
                }
                self.agent_id = Some(id);
                for update in self.updates.heads(Instant::now()) {
                    self.send_to_master(agent_to_master::Message::StatusUpdate(update));
                }
            }
            master_to_agent::Message::Ping(ping) => {
                self.send_to_master(agent_to_master::Message::Ping(Ping {
                    sequence: ping.sequence,
                }));
            }
            master_to_agent::Message::RunTask(run) => self.run_task(run.framework, run.task),
            master_to_agent::Message::KillTask(kill) => {
                self.kill_task(&kill.framework_id.value, kill.task_id, kill.kill_policy)
            }
            master_to_agent::Message::StatusUpdateAck(ack) => {
                let acked = self.updates.acknowledge(
                    &ack.framework_id.value,
                    &ack.task_id.value,
                    &ack.uuid,
                    Instant::now(),
                );
                match acked {
                    Acked::Head { acked, next } => {
                        if acked.status.source() == Source::Executor
                            && let Some(executor_id) = &acked.executor_id
                        {
                            let key = (ack.framework_id.value.clone(), executor_id.value.clone());
                            let event = executor::Event {
                                r#type: Some(executor::event::Type::Acknowledged as i32),
                                acknowledged: Some(executor::event::Acknowledged {
                                    task_id: ack.task_id.clone(),
                                    uuid: ack.uuid.clone(),
                                }),
                                ..Default::default()
                            };
                            self.send_to_executor(&key, &event);
                        }
                        if let Some(next) = next {
                            self.send_to_master(agent_to_master::Message::StatusUpdate(*next));
                        }
                    }
                    Acked::Ignored => {
                        tracing::debug!(task = %ack.task_id.value, "acknowledgement for no pending update ignored");
                    }
                }
            }
            master_to_agent::Message::FrameworkMessage(message) => {
                let key = (message.framework_id.value, message.executor_id.value);
                let event = executor::Event {
                    r#type: Some(executor::event::Type::Message as i32),
                    message: Some(executor::event::Message { data: message.data }),
                    ..Default::default()
                };
                if !self.send_to_executor(&key, &event) {
                    tracing::info!(executor = %key.1, "framework message for an executor that is not subscribed dropped");
                }
            }
            master_to_agent::Message::ShutdownFramework(shutdown) => {
                self.shutdown_framework(&shutdown.framework_id.value)
            }
        }
    }

    fn kill_task(
        &mut self,
        framework_id: &str,
        task_id: mesos_proto::v1::TaskId,
        kill_policy: Option<mesos_proto::v1::KillPolicy>,
    ) {
        let found = self.executors.iter().find_map(|(key, e)| {
            if key.0 != framework_id {
                return None;
            }
            if e.queued.iter().any(|t| t.task_id == task_id) {
                Some((key.clone(), true))
            } else if e.launched.contains_key(&task_id.value) {
                Some((key.clone(), false))
            } else {
                None
            }
        });
        match found {
            Some((key, true)) => {
                // Never reached the executor: the agent reports the kill.
                let mut now_idle = false;
                if let Some(executor) = self.executors.get_mut(&key) {
                    executor.queued.retain(|t| t.task_id != task_id);
                    now_idle = executor.queued.is_empty() && executor.launched.is_empty();
                }
                self.generate_update(
                    framework_id,
                    &task_id,
                    Some(&key.1),
                    TaskState::TaskKilled,
                    Reason::TaskKilledDuringLaunch,
                    "Killed before delivery to the executor",
                );
                if now_idle {
                    self.shutdown_executor(&key);
                }
            }
            Some((key, false)) => {
                let event = executor::Event {
                    r#type: Some(executor::event::Type::Kill as i32),
                    kill: Some(executor::event::Kill { task_id, kill_policy }),
                    ..Default::default()
                };
                self.send_to_executor(&key, &event);
            }
            None => {
                tracing::info!(framework = framework_id, task = %task_id.value, "kill for an unknown task");
                self.generate_update(
                    framework_id,
                    &task_id,
                    None,
                    TaskState::TaskLost,
                    Reason::TaskUnknown,
                    "Task is unknown to the agent",
                );
            }
        }
    }
}
