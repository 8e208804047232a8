//! Limits the isolators enforce, as the framework sees them: a task that
//! fails in a container that hit a limit (an OOM kill in its memory
//! cgroup) fails with Mesos's limitation reason, whoever noticed first, and
//! an executor ended by one takes its tasks down with that reason. Limits
//! the kernel does not enforce (disk/du's quota) are watched: every
//! `--container_disk_watch_interval` the isolators are asked about each
//! running container, off the loop, and one over a limit is destroyed.

use std::sync::atomic::Ordering;

use mesos_plugin_api::isolator::{Limitation, LimitationKind};
use mesos_proto::v1::{self, TaskState, task_status::Reason};

use super::model::{ExecutorState, Termination};
use super::{Agent, Command, ExecutorKey, executors::destroy};

fn reason_of(limitation: &Limitation) -> Reason {
    match limitation.kind {
        LimitationKind::Memory => Reason::ContainerLimitationMemory,
        LimitationKind::Disk => Reason::ContainerLimitationDisk,
        LimitationKind::Other => Reason::ContainerLimitation,
    }
}

impl Agent {
    fn limitation(&self, key: &ExecutorKey) -> Option<Limitation> {
        if self.config.isolation.is_empty() {
            return None;
        }
        let executor = self.executor(key)?;
        self.config.isolation.limitation(&executor.container_id)
    }

    /// An executor's TASK_FAILED from a container over a limit says so.
    pub(super) fn explain_failure(&self, key: &ExecutorKey, status: &mut v1::TaskStatus) {
        if status.state() != TaskState::TaskFailed {
            return;
        }
        if let Some(limitation) = self.limitation(key) {
            status.reason = Some(reason_of(&limitation) as i32);
            status.message = Some(match status.message.take() {
                Some(original) => format!("{}; {original}", limitation.message),
                None => limitation.message,
            });
        }
    }

    /// Why an executor that exited on its own ended: a limit, if it hit one.
    pub(super) fn limit_termination(&self, key: &ExecutorKey) -> Option<Termination> {
        let limitation = self.limitation(key)?;
        Some(Termination {
            state: Some(TaskState::TaskFailed),
            reason: reason_of(&limitation),
            message: limitation.message,
        })
    }

    /// Asks the isolators about every running container on the blocking
    /// pool; what is over a limit comes back as [`Command::LimitReached`].
    pub(super) fn watch_limits(&self) {
        if self.config.isolation.is_empty() {
            return;
        }
        let running: Vec<(ExecutorKey, String)> = self
            .frameworks
            .iter()
            .flat_map(|(framework_id, f)| {
                f.executors.iter().map(move |(executor_id, e)| {
                    let key = ExecutorKey {
                        framework_id: framework_id.clone(),
                        executor_id: executor_id.clone(),
                    };
                    (key, e)
                })
            })
            .filter(|(_, e)| e.pid.is_some() && e.state != ExecutorState::Terminating)
            .map(|(key, e)| (key, e.container_id.clone()))
            .collect();
        let busy = self.watching_limits.clone();
        if running.is_empty() || busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let (isolation, handle) = (self.config.isolation.clone(), self.handle.clone());
        tokio::spawn(async move {
            let reached = tokio::task::spawn_blocking(move || {
                running
                    .into_iter()
                    .filter_map(|(key, id)| {
                        let limitation = isolation.limitation(&id)?;
                        Some((key, id, limitation))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            busy.store(false, Ordering::Release);
            for (key, container_id, limitation) in reached {
                let command = Command::LimitReached {
                    key,
                    container_id,
                    limitation,
                };
                if handle.send(command).await.is_err() {
                    return;
                }
            }
        });
    }

    /// A container over a limit is destroyed; its tasks fail with the
    /// limitation's reason.
    pub(super) fn limit_reached(
        &mut self,
        key: &ExecutorKey,
        container_id: &str,
        limitation: Limitation,
    ) {
        let Some(executor) = self
            .executor_mut(key)
            .filter(|e| e.container_id == container_id && e.state != ExecutorState::Terminating)
        else {
            return;
        };
        tracing::warn!(%key, container = container_id, "{}; destroying the container", limitation.message);
        executor.termination = Some(Termination {
            state: Some(TaskState::TaskFailed),
            reason: reason_of(&limitation),
            message: limitation.message,
        });
        executor.state = ExecutorState::Terminating;
        if let Some(pid) = executor.pid {
            destroy(pid);
        }
    }

    /// After a restart: the isolators drop what they kept for containers
    /// that did not survive, and their rootfs go.
    pub(super) fn recover_isolation(&self) {
        let live: Vec<String> = self
            .frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .filter(|e| e.pid.is_some())
            .map(|e| e.container_id.clone())
            .collect();
        let (isolation, images) = (self.config.isolation.clone(), self.config.images.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(images) = images {
                images.recover(&live);
            }
            isolation.recover(&live);
        });
    }
}
