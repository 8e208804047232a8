//! Calls from executors (`/api/v1/executor`), after the HTTP layer decoded
//! them.

use mesos_proto::codec::Format;
use mesos_proto::internal::v1::{ExecutorToFramework, agent_to_master};
use mesos_proto::v1::{self, TaskState, executor, task_status::Source};
use tokio::sync::mpsc;

use super::{Agent, Connection, ExecutorKey, ExecutorState, ExecutorSubscription, Task, is_terminal};
use crate::error::ApiError;

/// Events queued for one executor before it counts as stuck.
const EVENT_QUEUE: usize = 1024;

impl Agent {
    fn find_executor(&self, call: &executor::Call) -> Result<ExecutorKey, ApiError> {
        let key = (call.framework_id.value.clone(), call.executor_id.value.clone());
        if !self.frameworks.contains_key(&key.0) {
            return Err(ApiError::bad_request("Framework cannot be found"));
        }
        if !self.executors.contains_key(&key) {
            return Err(ApiError::bad_request("Executor cannot be found"));
        }
        Ok(key)
    }

    pub(super) fn executor_subscribe(
        &mut self,
        call: executor::Call,
        format: Format,
    ) -> Result<ExecutorSubscription, ApiError> {
        let key = self.find_executor(&call)?;
        let framework_info = self
            .frameworks
            .get(&key.0)
            .cloned()
            .ok_or_else(|| ApiError::bad_request("Framework cannot be found"))?;
        let agent_info = self.agent_info();
        let conn_id = self.next_conn;
        self.next_conn += 1;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let Some(executor) = self.executors.get_mut(&key) else {
            return Err(ApiError::bad_request("Executor cannot be found"));
        };
        if executor.state == ExecutorState::Terminating {
            return Err(ApiError::bad_request("Executor is terminating"));
        }
        executor.conn = Some(Connection {
            id: conn_id,
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
        let queued: Vec<v1::TaskInfo> = executor.queued.drain(..).collect();
        for task in &queued {
            executor.launched.insert(
                task.task_id.value.clone(),
                Task {
                    info: task.clone(),
                    state: TaskState::TaskStaging,
                },
            );
        }
        tracing::info!(framework = %key.0, executor = %key.1, "executor subscribed");
        self.send_to_executor(&key, &subscribed);
        for task in queued {
            let launch = executor::Event {
                r#type: Some(executor::event::Type::Launch as i32),
                launch: Some(executor::event::Launch { task }),
                ..Default::default()
            };
            self.send_to_executor(&key, &launch);
        }
        Ok(ExecutorSubscription {
            events: rx,
            conn: conn_id,
        })
    }

    pub(super) fn executor_stream_closed(&mut self, key: &ExecutorKey, conn: u64) {
        if let Some(executor) = self.executors.get_mut(key)
            && executor.conn.as_ref().is_some_and(|c| c.id == conn)
        {
            tracing::info!(framework = %key.0, executor = %key.1, "executor disconnected");
            executor.conn = None;
        }
    }

    pub(super) fn executor_call(&mut self, call: executor::Call) -> Result<(), ApiError> {
        let key = self.find_executor(&call)?;
        if self.executors.get(&key).is_some_and(|e| e.conn.is_none()) {
            return Err(ApiError::new(http::StatusCode::FORBIDDEN, "Executor is not subscribed"));
        }
        match call.r#type() {
            executor::call::Type::Heartbeat => Ok(()),
            executor::call::Type::Update => {
                let update = call
                    .update
                    .ok_or_else(|| ApiError::bad_request("Expecting 'update' to be present"))?;
                self.executor_update(&key, update.status)
            }
            executor::call::Type::Message => {
                let message = call
                    .message
                    .ok_or_else(|| ApiError::bad_request("Expecting 'message' to be present"))?;
                self.counters.framework_messages += 1;
                self.send_to_master(agent_to_master::Message::ExecutorMessage(ExecutorToFramework {
                    framework_id: call.framework_id,
                    executor_id: call.executor_id,
                    data: message.data,
                }));
                Ok(())
            }
            executor::call::Type::Subscribe | executor::call::Type::Unknown => Err(ApiError::new(
                http::StatusCode::NOT_IMPLEMENTED,
                "Received an unexpected call type",
            )),
        }
    }

    /// An executor's status update, checked as Mesos checks it.
    fn executor_update(&mut self, key: &ExecutorKey, mut status: v1::TaskStatus) -> Result<(), ApiError> {
        let invalid = |agent: &mut Agent, message: String| {
            agent.counters.invalid_status_updates += 1;
            Err(ApiError::bad_request(message))
        };
        match status.uuid.as_deref() {
            Some(uuid) if uuid.len() == 16 => {}
            _ => return invalid(self, "Expecting 'uuid' to be present and a valid UUID".into()),
        }
        if status.source() != Source::Executor {
            return invalid(self, "Received update from an executor with source other than SOURCE_EXECUTOR".into());
        }
        if status.state() == TaskState::TaskStaging {
            return invalid(self, "Received TASK_STAGING from an executor, which is not allowed".into());
        }
        if let Some(id) = &status.executor_id
            && id.value != key.1
        {
            return invalid(self, format!("ExecutorID in the status ('{}') does not match the caller", id.value));
        }
        status.executor_id = Some(v1::ExecutorId { value: key.1.clone() });
        if let Some(executor) = self.executors.get_mut(key)
            && let Some(task) = executor.launched.get_mut(&status.task_id.value)
        {
            task.state = status.state();
            if is_terminal(task.state)
                && let Some(done) = executor.launched.remove(&status.task_id.value)
            {
                executor.completed.push(done);
            }
        }
        self.counters.valid_status_updates += 1;
        self.forward_update(&key.0, status);
        Ok(())
    }
}
