//! What the agent loop checkpoints, and when. The loop only decides and
//! encodes; the [`Checkpointer`](crate::checkpoint::Checkpointer) thread
//! does the writing, in submission order.

use std::path::PathBuf;

use mesos_proto::internal::v1::StatusUpdate;
use mesos_proto::v1;

use super::{Agent, Command, ExecutorKey};
use crate::checkpoint::encode;
use crate::status_updates::{ack_record, update_record};

impl Agent {
    fn checkpoints(&self, framework_id: &str) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.checkpoint == Some(true))
    }

    /// The master's operations changed the agent's resources: checkpoint
    /// the new set (before anything uses it, as the writer keeps order),
    /// create new volumes and delete destroyed ones.
    pub(super) fn checkpoint_resources(&mut self, resources: Vec<v1::Resource>) {
        let checkpointed = mesos_resources::Resources::from(resources);
        if checkpointed == self.checkpointed {
            return;
        }
        let static_total =
            mesos_resources::Resources::from(self.config.agent_info.resources.clone());
        if let Err(e) = crate::volumes::total(&static_total, &checkpointed) {
            tracing::error!("ignoring the master's resources: {e}");
            return;
        }
        tracing::info!(resources = %checkpointed, "checkpointing the master's reservations and volumes");
        let record = mesos_proto::internal::v1::CheckpointResources {
            resources: checkpointed.clone().into_vec(),
        };
        self.checkpointer
            .write(self.meta.resources_info(), encode(&record));
        let before = std::mem::replace(&mut self.checkpointed, checkpointed.clone());
        let work_dir = self.config.work_dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::volumes::sync_dirs(&work_dir, &before, &checkpointed)
        });
    }

    /// `slave.info` and `meta/slaves/latest`, once the master named the agent.
    pub(super) fn checkpoint_agent(&self) {
        let Some(agent_id) = &self.agent_id else {
            return;
        };
        self.checkpointer.write(
            self.meta.agent_info(agent_id),
            encode(&self.static_agent_info()),
        );
        self.checkpointer
            .link(PathBuf::from(agent_id), self.meta.latest_agent());
    }

    /// The run directory of the executor's current run, if its framework
    /// checkpoints.
    pub(super) fn checkpoint_run(&self, key: &ExecutorKey) -> Option<PathBuf> {
        if !self.checkpoints(&key.framework_id) {
            return None;
        }
        let agent_id = self.agent_id.as_deref()?;
        let executor = self.executor(key)?;
        Some(self.meta.run(
            agent_id,
            &key.framework_id,
            &key.executor_id,
            &executor.container_id,
        ))
    }

    /// Before the fork: framework, executor and run.
    pub(super) fn checkpoint_launch(&mut self, key: &ExecutorKey) {
        let (Some(agent_id), Some(run)) = (self.agent_id.as_deref(), self.checkpoint_run(key))
        else {
            return;
        };
        let fid = &key.framework_id;
        let first = self.checkpointed_frameworks.insert(fid.clone());
        let (Some(framework), Some(executor)) =
            (self.frameworks.get(&key.framework_id), self.executor(key))
        else {
            return;
        };
        if first {
            self.checkpointer.write(
                self.meta.framework_info(agent_id, fid),
                encode(&framework.info),
            );
            // Mesos records the scheduler's libprocess pid; HTTP
            // frameworks have none.
            self.checkpointer
                .write(self.meta.framework_pid(agent_id, fid), Vec::new());
        }
        self.checkpointer.write(
            self.meta.executor_info(agent_id, fid, &key.executor_id),
            encode(&executor.info),
        );
        self.checkpointer.link(
            PathBuf::from(&executor.container_id),
            run.with_file_name("latest"),
        );
    }

    pub(super) fn checkpoint_task(&self, key: &ExecutorKey, task: &v1::TaskInfo) {
        if let Some(run) = self.checkpoint_run(key) {
            self.checkpointer
                .write(self.meta.task_info(&run, &task.task_id.value), encode(task));
        }
    }

    /// The run is over: recovery will not look for its process.
    pub(super) fn checkpoint_sentinel(&self, key: &ExecutorKey) {
        if let Some(run) = self.checkpoint_run(key) {
            self.checkpointer
                .write(self.meta.sentinel(&run), Vec::new());
        }
    }

    /// Appends an UPDATE to the task's log (if its framework checkpoints
    /// and the task belongs to a current run) and remembers the log for
    /// the acknowledgement. False if the task has no log (its framework
    /// does not checkpoint).
    pub(super) fn checkpoint_update(&mut self, update: &StatusUpdate) -> bool {
        let fid = &update.framework_id.value;
        let tid = &update.status.task_id.value;
        let task_key = (fid.clone(), tid.clone());
        let path = match self.update_logs.get(&task_key) {
            Some(path) => Some(path.clone()),
            None => update
                .executor_id
                .as_ref()
                .and_then(|eid| {
                    self.checkpoint_run(&ExecutorKey {
                        framework_id: fid.clone(),
                        executor_id: eid.value.clone(),
                    })
                })
                .map(|run| self.meta.task_updates(&run, tid)),
        };
        if let Some(path) = path {
            self.checkpointer
                .append(path.clone(), encode(&update_record(update)));
            self.update_logs.insert(task_key, path);
            return true;
        }
        false
    }

    /// Runs `command` on the loop once every checkpoint written so far is
    /// on disk.
    pub(super) fn once_durable(&self, command: Command) {
        let durable = self.checkpointer.durable();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            if durable.await.is_ok() {
                handle.notify(command);
            }
        });
    }

    /// Appends an ACK to the task's log; false if the task has none.
    pub(super) fn checkpoint_ack(&mut self, acked: &StatusUpdate) -> bool {
        let task_key = (
            acked.framework_id.value.clone(),
            acked.status.task_id.value.clone(),
        );
        let Some(path) = self.update_logs.get(&task_key).cloned() else {
            return false;
        };
        let uuid = acked.status.uuid.as_deref().unwrap_or_default();
        self.checkpointer.append(path, encode(&ack_record(uuid)));
        if acked.status.state().is_terminal() {
            self.update_logs.remove(&task_key);
        }
        true
    }
}
