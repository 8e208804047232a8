//! Recovery after an agent restart (`--recover=reconnect`, Mesos's
//! default): the checkpoints are read before the agent loop starts, the
//! agent keeps its ID if its resources and attributes did not change, live
//! executors of checkpointing frameworks get
//! `--executor_reregistration_timeout` to resubscribe, and the agent
//! re-registers with the master once they have (or their time is up).
//! Unacknowledged updates are replayed from the update logs and resent
//! after re-registration.

use std::time::{Duration, Instant};

use mesos_proto::v1::{self, TaskState, task_status::Reason};

use super::model::{Executor, ExecutorState, Framework, Task, Termination};
use super::tasks::{COMMAND_EXECUTOR, DOCKER_EXECUTOR};
use super::{Agent, Command, ExecutorKey, Handle, Link};
use crate::checkpoint::{
    self, AgentState, CheckpointError, FrameworkState, Meta, current_boot_id, read_agent,
};
use crate::launcher;
use crate::sandbox::{self, RunIds};
use crate::status_updates::replay;

/// How often a recovered executor (not the agent's child, so it cannot be
/// waited for) is checked for life.
const RECOVERED_POLL: Duration = Duration::from_secs(1);

/// What the checkpoints gave back.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The ID to re-register with; `None` registers as a new agent.
    pub agent_id: Option<String>,
    pub frameworks: Vec<FrameworkState>,
}

/// Reads the checkpoints (blocking: run it off the async threads). With
/// `cleanup`, or when the agent's resources or attributes changed, every
/// old executor is killed and the agent starts as a new one. With
/// `strict`, an unreadable `slave.info` stops the agent.
pub fn load(
    meta: &Meta,
    info: &v1::AgentInfo,
    cleanup: bool,
    strict: bool,
) -> Result<Recovered, CheckpointError> {
    let boot_id = current_boot_id();
    let previous_boot = std::fs::read_to_string(meta.boot_id())
        .ok()
        .map(|s| s.trim().to_string());
    let rebooted = previous_boot.is_some() && previous_boot != boot_id;
    let state = match read_agent(meta) {
        Ok(state) => state,
        Err(e) if strict => return Err(e),
        Err(e) => {
            tracing::error!("starting as a new agent: {e}");
            None
        }
    };
    if let Some(boot_id) = &boot_id {
        checkpoint::write_atomically(&meta.boot_id(), format!("{boot_id}\n").as_bytes(), true)
            .map_err(|e| CheckpointError::io(&meta.boot_id(), e))?;
    }
    let Some(mut state) = state else {
        return Ok(Recovered::default());
    };
    let incompatible = incompatibility(&state.info, info);
    if cleanup || incompatible.is_some() {
        match incompatible {
            Some(what) => tracing::warn!(
                agent = %state.agent_id,
                "{what} changed since the last run; killing the old executors and \
                 registering as a new agent"
            ),
            None => tracing::info!(
                agent = %state.agent_id,
                "--recover=cleanup: killing the old executors and registering as a new agent"
            ),
        }
        if !rebooted {
            kill_all(&state);
        }
        let _ = std::fs::remove_file(meta.latest_agent());
        return Ok(Recovered::default());
    }
    if rebooted {
        tracing::info!("the host rebooted since the last run: no executor survived");
    }
    // From here on a pid means a live executor.
    for framework in &mut state.frameworks {
        for executor in &mut framework.executors {
            if let Some(run) = &mut executor.run {
                run.pid = run
                    .pid
                    .filter(|pid| !rebooted && launcher::leads_session(*pid));
            }
        }
    }
    let executors: usize = state.frameworks.iter().map(|f| f.executors.len()).sum();
    tracing::info!(
        agent = %state.agent_id, frameworks = state.frameworks.len(), executors,
        "recovered checkpointed state"
    );
    Ok(Recovered {
        agent_id: Some(state.agent_id),
        frameworks: state.frameworks,
    })
}

/// What makes the old agent ID unusable (Mesos's `equal` policy, for what
/// this agent advertises).
fn incompatibility(old: &v1::AgentInfo, new: &v1::AgentInfo) -> Option<&'static str> {
    if old.resources != new.resources {
        Some("--resources")
    } else if old.attributes != new.attributes {
        Some("--attributes")
    } else if old.hostname != new.hostname {
        Some("the hostname")
    } else if old.port != new.port {
        Some("the port")
    } else {
        None
    }
}

fn kill_all(state: &AgentState) {
    for framework in &state.frameworks {
        for executor in &framework.executors {
            if let Some(pid) = executor
                .run
                .as_ref()
                .filter(|r| !r.completed)
                .and_then(|r| r.pid)
                && launcher::leads_session(pid)
            {
                let killed = launcher::destroy_session(pid);
                tracing::info!(executor = %executor.id, pid, killed, "killed an old executor");
            }
        }
    }
}

impl Agent {
    /// Rebuilds the agent's model from what [`load`] read (where a run's
    /// pid is set only if its executor is alive).
    pub(super) fn restore(&mut self, recovered: Recovered) {
        let Some(agent_id) = recovered.agent_id else {
            return;
        };
        self.agent_id = Some(agent_id.clone());
        self.reregister = true;
        let now = Instant::now();
        let mut framework_ids = Vec::new();
        let mut gone = Vec::new();
        for state in recovered.frameworks {
            let mut info = state.info;
            info.id = Some(v1::FrameworkId {
                value: state.id.clone(),
            });
            self.frameworks
                .insert(state.id.clone(), Framework::new(info));
            self.checkpointed_frameworks.insert(state.id.clone());
            framework_ids.push(state.id.clone());
            for executor in state.executors {
                let Some(run) = executor.run else { continue };
                let key = ExecutorKey {
                    framework_id: state.id.clone(),
                    executor_id: executor.id.clone(),
                };
                let run_dir = self
                    .meta
                    .run(&agent_id, &state.id, &executor.id, &run.container_id);
                let mut launched = std::collections::BTreeMap::new();
                for task in run.tasks {
                    let replayed = replay(&task.records);
                    let task_id = task.info.task_id.value.clone();
                    if !replayed.terminated {
                        self.update_logs.insert(
                            (state.id.clone(), task_id.clone()),
                            self.meta.task_updates(&run_dir, &task_id),
                        );
                    }
                    let task_state = replayed
                        .latest
                        .as_ref()
                        .map(|u| u.status.state())
                        .unwrap_or(TaskState::TaskStaging);
                    self.updates.restore(&state.id, &task_id, replayed, now);
                    let mut task = Task::new(task.info);
                    task.state = task_state;
                    launched.insert(task_id, task);
                }
                let Some(info) = executor.info else {
                    if let Some(pid) = run.pid.filter(|_| !run.completed) {
                        super::executors::destroy(pid);
                    }
                    continue;
                };
                if run.completed {
                    continue;
                }
                let command_executor = info
                    .command
                    .as_ref()
                    .and_then(|c| c.value.as_deref())
                    .is_some_and(|v| v.ends_with(COMMAND_EXECUTOR) || v.ends_with(DOCKER_EXECUTOR));
                let sandbox = sandbox::run_dir(
                    &self.config.work_dir,
                    &RunIds {
                        agent_id: &agent_id,
                        framework_id: &state.id,
                        executor_id: &executor.id,
                        container_id: &run.container_id,
                    },
                );
                let (finished, launched): (Vec<Task>, Vec<Task>) = launched
                    .into_values()
                    .partition(|t: &Task| t.state.is_terminal());
                let lost = self.gone_state(&state.id);
                let Some(framework) = self.frameworks.get_mut(&state.id) else {
                    continue;
                };
                framework.executors.insert(
                    executor.id.clone(),
                    Executor {
                        info,
                        command_executor,
                        container_id: run.container_id.clone(),
                        sandbox,
                        pid: run.pid,
                        state: ExecutorState::Registering,
                        conn: None,
                        queued: Vec::new(),
                        queued_groups: Vec::new(),
                        launched: launched
                            .into_iter()
                            .map(|t| (t.info.task_id.value.clone(), t))
                            .collect(),
                        completed: finished.into(),
                        termination: None,
                        recovered: true,
                    },
                );
                match run.pid {
                    Some(pid) => {
                        tracing::info!(%key, pid, "waiting for the executor to resubscribe");
                        watch_recovered(
                            self.handle.clone(),
                            key.clone(),
                            run.container_id.clone(),
                            pid,
                        );
                        self.handle.notify_after(
                            self.config.reregistration_timeout,
                            Command::RegistrationTimeout {
                                key,
                                container_id: run.container_id,
                            },
                        );
                    }
                    None => gone.push((key, lost)),
                }
            }
        }
        // Only now: ending an executor may archive its framework.
        for (key, lost) in gone {
            tracing::warn!(%key, "executor is gone; its tasks are lost");
            if let Some(executor) = self.executor_mut(&key) {
                executor.termination = Some(Termination {
                    state: Some(lost),
                    reason: Reason::ExecutorTerminated,
                    message: "Executor terminated while the agent was down".to_string(),
                });
            }
            self.executor_terminated(&key, None);
        }
        for framework_id in framework_ids {
            self.remove_framework_if_idle(&framework_id);
        }
    }

    /// Recovered executors still expected to resubscribe.
    pub(super) fn is_recovering(&self) -> bool {
        self.frameworks.values().any(|f| {
            f.executors
                .values()
                .any(|e| e.recovered && e.state == ExecutorState::Registering)
        })
    }

    /// Registers with the master once no recovered executor is pending.
    pub(super) fn maybe_finish_recovery(&mut self) {
        if !matches!(self.link, Link::Held(_)) || self.is_recovering() {
            return;
        }
        if let Link::Held(tx) = std::mem::replace(&mut self.link, Link::Down) {
            tracing::info!("executor recovery done");
            self.register(tx);
        }
    }
}

/// Reports the recovered executor's end once its process is gone.
fn watch_recovered(handle: Handle, key: ExecutorKey, container_id: String, pid: u32) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RECOVERED_POLL).await;
            let alive = tokio::task::spawn_blocking(move || launcher::leads_session(pid))
                .await
                .unwrap_or(false);
            if !alive {
                handle.notify(Command::RecoveredExecutorGone { key, container_id });
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpointer, encode};

    fn info(cpus: f64) -> v1::AgentInfo {
        v1::AgentInfo {
            hostname: "h".into(),
            port: Some(5051),
            resources: vec![v1::Resource {
                name: "cpus".into(),
                r#type: v1::value::Type::Scalar as i32,
                scalar: Some(v1::value::Scalar { value: cpus }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_id_is_kept_only_when_compatible_and_not_cleaning_up() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = Meta::new(tmp.path());
        let fresh = load(&meta, &info(1.0), false, true).unwrap();
        assert!(fresh.agent_id.is_none(), "first start");
        assert!(meta.boot_id().exists());

        let writer = Checkpointer::spawn(&meta.root).unwrap();
        let checkpoint = || {
            let mut old = info(1.0);
            old.id = Some(v1::AgentId { value: "S1".into() });
            writer.write(meta.agent_info("S1"), encode(&old));
            writer.link("S1".into(), meta.latest_agent());
            writer.flush_blocking();
        };
        checkpoint();
        // The checkpoint has the ID; the info built from the flags never does.
        let same = info(1.0);
        assert_eq!(
            load(&meta, &same, false, true).unwrap().agent_id.as_deref(),
            Some("S1")
        );
        assert!(
            load(&meta, &same, true, true).unwrap().agent_id.is_none(),
            "cleanup"
        );
        assert!(
            !meta.latest_agent().exists(),
            "cleanup forgets the old agent"
        );

        checkpoint();
        assert!(
            load(&meta, &info(2.0), false, true)
                .unwrap()
                .agent_id
                .is_none()
        );

        // A damaged slave.info stops a strict agent and not a lenient one.
        checkpoint();
        std::fs::write(meta.agent_info("S1"), b"\x09").unwrap();
        let err = load(&meta, &same, false, true).unwrap_err();
        assert!(err.to_string().contains("slave.info"), "{err}");
        assert!(load(&meta, &same, false, false).unwrap().agent_id.is_none());
    }
}
