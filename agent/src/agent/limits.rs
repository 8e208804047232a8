//! Limits the isolators enforce, as the framework sees them: a task that
//! fails in a container that hit a limit (an OOM kill in its memory
//! cgroup) fails with Mesos's limitation reason, whoever noticed first, and
//! an executor ended by one takes its tasks down with that reason.

use mesos_plugin_api::isolator::{Limitation, LimitationKind};
use mesos_proto::v1::{self, TaskState, task_status::Reason};

use super::model::Termination;
use super::{Agent, ExecutorKey};

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
