//! Calls from executors (`/api/v1/executor`), already decoded and
//! validated by the HTTP layer.

use std::collections::HashSet;

use http::StatusCode;
use mesos_proto::codec::Format;
use mesos_proto::internal::v1::{ExecutorToFramework, agent_to_master};
use mesos_proto::v1::{self, executor};
use tokio::sync::mpsc;

use super::model::{Connection, ExecutorState, Task};
use super::tasks::agent_status;
use super::{Agent, ExecutorKey, ExecutorSubscription, frame};
use crate::error::ApiError;

/// Events queued for one executor; one that falls this far behind loses
/// events (and is logged).
const EVENT_QUEUE: usize = 1024;

impl Agent {
    fn caller(&self, call: &executor::Call) -> Result<ExecutorKey, ApiError> {
        let key = ExecutorKey {
            framework_id: call.framework_id.value.clone(),
            executor_id: call.executor_id.value.clone(),
        };
        let framework = self
            .frameworks
            .get(&key.framework_id)
            .ok_or_else(|| ApiError::bad_request("Framework cannot be found"))?;
        if !framework.executors.contains_key(&key.executor_id) {
            return Err(ApiError::bad_request("Executor cannot be found"));
        }
        Ok(key)
    }

    /// SUBSCRIBE: the new connection replaces any earlier one. The stream
    /// starts with SUBSCRIBED, then LAUNCH for every task that waited.
    pub(super) fn executor_subscribe(
        &mut self,
        call: executor::Call,
        format: Format,
    ) -> Result<ExecutorSubscription, ApiError> {
        let key = self.caller(&call)?;
        let unacknowledged = call.subscribe.clone().unwrap_or_default();
        let framework_info = self
            .frameworks
            .get(&key.framework_id)
            .map(|f| f.info.clone())
            .ok_or_else(|| ApiError::bad_request("Framework cannot be found"))?;
        let agent_info = self.agent_info();
        let conn = self.next_conn;
        self.next_conn += 1;
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let Some(executor) = self.executor_mut(&key) else {
            return Err(ApiError::bad_request("Executor cannot be found"));
        };
        if executor.state == ExecutorState::Terminating {
            // Mesos answers a terminating executor's subscription with
            // SHUTDOWN and closes the stream.
            tracing::warn!(%key, "terminating executor subscribed; telling it to shut down");
            let shutdown = executor::Event {
                r#type: Some(executor::event::Type::Shutdown as i32),
                ..Default::default()
            };
            let _ = tx.try_send(frame(format, &shutdown));
            return Ok(ExecutorSubscription { events, conn });
        }
        if executor.conn.is_some() {
            tracing::info!(%key, "executor resubscribed; closing its previous stream");
        }
        executor.conn = Some(Connection {
            id: conn,
            format,
            tx,
        });
        executor.state = ExecutorState::Running;
        let subscribed = executor::Event {
            r#type: Some(executor::event::Type::Subscribed as i32),
            subscribed: Some(executor::event::Subscribed {
                executor_info: executor.info.clone(),
                framework_info,
                agent_info,
                container_id: Some(v1::ContainerId {
                    value: executor.container_id.clone(),
                    parent: None,
                }),
            }),
            ..Default::default()
        };
        let queued = std::mem::take(&mut executor.queued);
        let groups = std::mem::take(&mut executor.queued_groups);
        for task in &queued {
            executor
                .launched
                .insert(task.task_id.value.clone(), Task::new(task.clone()));
        }
        tracing::info!(%key, tasks = queued.len(), "executor subscribed");
        self.send_to_executor(&key, &subscribed);
        for launch in super::task_groups::launch_events(queued, &groups) {
            self.send_to_executor(&key, &launch);
        }
        self.merge_unacknowledged(&key, unacknowledged);
        Ok(ExecutorSubscription { events, conn })
    }

    /// A (re)subscribing executor's unacknowledged tasks and updates, as
    /// Mesos merges them: tasks the agent lost track of are adopted,
    /// updates it never got are processed (duplicates are recognised by
    /// uuid), and a task the agent launched during its restart that the
    /// executor never heard of is lost rather than left in silence.
    fn merge_unacknowledged(&mut self, key: &ExecutorKey, subscribe: executor::call::Subscribe) {
        let mut known: HashSet<String> = HashSet::new();
        for task in subscribe.unacknowledged_tasks {
            known.insert(task.task_id.value.clone());
            let Some(executor) = self.executor_mut(key) else {
                return;
            };
            let tracked = executor.launched.contains_key(&task.task_id.value)
                || executor
                    .completed
                    .iter()
                    .any(|t| t.info.task_id == task.task_id);
            if !tracked {
                tracing::info!(%key, task = %task.task_id.value, "adopting a task the executor runs");
                executor
                    .launched
                    .insert(task.task_id.value.clone(), Task::new(task.clone()));
                self.checkpoint_task(key, &task);
            }
        }
        // A recovered command executor whose task the agent could not
        // recover (its checkpoint was damaged) and that does not say what it
        // runs has nothing to do for it.
        let orphaned = self.executor(key).is_some_and(|e| {
            e.recovered
                && e.command_executor
                && e.launched.is_empty()
                && e.queued.is_empty()
                && e.completed.is_empty()
        });
        for update in subscribe.unacknowledged_updates {
            let mut status = update.status;
            if status.uuid.as_ref().is_none_or(|u| u.len() != 16)
                || status.state() == v1::TaskState::TaskStaging
            {
                tracing::warn!(%key, task = %status.task_id.value, "invalid unacknowledged update ignored");
                continue;
            }
            known.insert(status.task_id.value.clone());
            status.executor_id = Some(v1::ExecutorId {
                value: key.executor_id.clone(),
            });
            self.status_update(&key.framework_id, status);
        }
        let Some(executor) = self.executor(key).filter(|e| e.recovered) else {
            return;
        };
        let unknown: Vec<v1::TaskId> = executor
            .launched
            .values()
            .filter(|t| {
                t.state == v1::TaskState::TaskStaging && !known.contains(&t.info.task_id.value)
            })
            .map(|t| t.info.task_id.clone())
            .collect();
        let lost = self.lost_state(&key.framework_id);
        if orphaned {
            tracing::warn!(%key, "recovered command executor has no task the agent knows; shutting it down");
            self.shutdown_executor(key);
        }
        for task_id in unknown {
            let status = agent_status(
                &task_id,
                Some(&key.executor_id),
                lost,
                v1::task_status::Reason::AgentRestarted,
                "Task launched during agent restart",
            );
            self.status_update(&key.framework_id, status);
        }
    }

    pub(super) fn executor_stream_closed(&mut self, key: &ExecutorKey, conn: u64) {
        if let Some(executor) = self.executor_mut(key)
            && executor.conn.as_ref().is_some_and(|c| c.id == conn)
        {
            tracing::info!(%key, "executor disconnected");
            executor.conn = None;
        }
    }

    /// UPDATE and MESSAGE (HEARTBEAT and UNKNOWN never get here).
    pub(super) fn executor_call(&mut self, call: executor::Call) -> Result<(), ApiError> {
        let key = self.caller(&call)?;
        if self
            .executor(&key)
            .is_some_and(|e| e.state == ExecutorState::Registering)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "Executor is not subscribed",
            ));
        }
        match (call.r#type(), call.update, call.message) {
            (executor::call::Type::Update, Some(update), _) => {
                let mut status = update.status;
                status.executor_id = Some(call.executor_id);
                self.explain_failure(&key, &mut status);
                self.status_update(&key.framework_id, status);
                Ok(())
            }
            (executor::call::Type::Message, _, Some(message)) => {
                self.counters.valid_framework_messages += 1;
                self.send_to_master(agent_to_master::Message::ExecutorMessage(
                    ExecutorToFramework {
                        framework_id: call.framework_id,
                        executor_id: call.executor_id,
                        data: message.data,
                    },
                ));
                Ok(())
            }
            _ => Err(ApiError::bad_request("Unexpected call")),
        }
    }
}
