//! Reading the checkpoints back after a restart. Damage is contained: a
//! file that cannot be read or decoded is logged with its path and costs
//! only what it describes (one task, one executor, one framework), never
//! the rest of the agent's state.

use std::path::Path;

use mesos_proto::internal::v1::StatusUpdateRecord;
use mesos_proto::v1;

use super::records::{decode_all, decode_one};
use super::{CheckpointError, Meta};

#[derive(Debug)]
pub struct AgentState {
    pub agent_id: String,
    pub info: v1::AgentInfo,
    pub frameworks: Vec<FrameworkState>,
}

#[derive(Debug)]
pub struct FrameworkState {
    pub id: String,
    pub info: v1::FrameworkInfo,
    pub executors: Vec<ExecutorState>,
}

#[derive(Debug)]
pub struct ExecutorState {
    pub id: String,
    /// `None` when `executor.info` is unreadable: the executor cannot be
    /// recovered, only killed.
    pub info: Option<v1::ExecutorInfo>,
    /// The latest run; `None` if there is none.
    pub run: Option<RunState>,
}

#[derive(Debug)]
pub struct RunState {
    pub container_id: String,
    /// `None` if the agent died before the fork was checkpointed.
    pub pid: Option<u32>,
    /// The run ended before the restart (`executor.sentinel`); only its
    /// unacknowledged updates are left to deliver.
    pub completed: bool,
    pub tasks: Vec<TaskState>,
}

#[derive(Debug)]
pub struct TaskState {
    pub info: v1::TaskInfo,
    pub records: Vec<StatusUpdateRecord>,
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|e| CheckpointError::io(path, e))
}

fn read_info<M: prost::Message + Default>(path: &Path) -> Result<M, CheckpointError> {
    decode_one(path, &read(path)?)
}

/// Names of the entries of `dir` (none if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name != "latest" && !name.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// The agent ID `meta/slaves/latest` points at, if any.
pub fn latest_agent(meta: &Meta) -> Option<String> {
    let target = std::fs::read_link(meta.latest_agent()).ok()?;
    target.file_name()?.to_str().map(str::to_string)
}

/// Everything checkpointed for the agent `meta/slaves/latest` names;
/// `Ok(None)` when there is nothing (a first start). An unreadable
/// `slave.info` is an error: without it nothing can be trusted.
pub fn read_agent(meta: &Meta) -> Result<Option<AgentState>, CheckpointError> {
    let Some(agent_id) = latest_agent(meta) else {
        return Ok(None);
    };
    let info: v1::AgentInfo = read_info(&meta.agent_info(&agent_id))?;
    let mut frameworks = Vec::new();
    for framework_id in entries(&meta.agent(&agent_id).join("frameworks")) {
        let path = meta.framework_info(&agent_id, &framework_id);
        match read_info::<v1::FrameworkInfo>(&path) {
            Ok(framework_info) => frameworks.push(FrameworkState {
                executors: read_executors(meta, &agent_id, &framework_id),
                id: framework_id,
                info: framework_info,
            }),
            Err(e) => tracing::error!("framework {framework_id} not recovered: {e}"),
        }
    }
    Ok(Some(AgentState {
        agent_id,
        info,
        frameworks,
    }))
}

fn read_executors(meta: &Meta, agent: &str, framework: &str) -> Vec<ExecutorState> {
    let dir = meta.framework(agent, framework).join("executors");
    entries(&dir)
        .into_iter()
        .map(|executor_id| {
            let path = meta.executor_info(agent, framework, &executor_id);
            let info = read_info::<v1::ExecutorInfo>(&path)
                .inspect_err(|e| {
                    tracing::error!(
                        "executor '{executor_id}' of framework {framework} not recovered \
                         (it will be killed): {e}"
                    )
                })
                .ok();
            let runs = meta.executor(agent, framework, &executor_id).join("runs");
            let run = std::fs::read_link(runs.join("latest"))
                .ok()
                .and_then(|t| t.file_name()?.to_str().map(str::to_string))
                .map(|container_id| read_run(meta, &runs.join(&container_id), container_id));
            ExecutorState {
                id: executor_id,
                info,
                run,
            }
        })
        .collect()
}

fn read_run(meta: &Meta, run: &Path, container_id: String) -> RunState {
    let pid_path = meta.forked_pid(run);
    let pid = match std::fs::read_to_string(&pid_path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) => Some(pid),
            Err(e) => {
                tracing::error!(path = %pid_path.display(), "corrupt pid checkpoint: {e}");
                None
            }
        },
        Err(_) => None,
    };
    let mut tasks = Vec::new();
    for task_id in entries(&run.join("tasks")) {
        match read_task(meta, run, &task_id) {
            Ok(task) => tasks.push(task),
            Err(e) => tracing::error!("task '{task_id}' not recovered: {e}"),
        }
    }
    RunState {
        completed: meta.sentinel(run).exists(),
        container_id,
        pid,
        tasks,
    }
}

fn read_task(meta: &Meta, run: &Path, task_id: &str) -> Result<TaskState, CheckpointError> {
    let info: v1::TaskInfo = read_info(&meta.task_info(run, task_id))?;
    let updates = meta.task_updates(run, task_id);
    let records = match std::fs::read(&updates) {
        Ok(bytes) => decode_all(&updates, &bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CheckpointError::io(&updates, e)),
    };
    Ok(TaskState { info, records })
}

#[cfg(test)]
mod tests {
    use super::super::{Checkpointer, encode};
    use super::*;
    use crate::status_updates::update_record;
    use mesos_proto::internal::v1::StatusUpdate;

    fn task(id: &str) -> v1::TaskInfo {
        v1::TaskInfo {
            name: id.into(),
            task_id: v1::TaskId { value: id.into() },
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_was_written_and_contains_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = Meta::new(tmp.path());
        assert!(read_agent(&meta).unwrap().is_none(), "first start");
        let c = Checkpointer::spawn(tmp.path()).unwrap();
        let agent = v1::AgentInfo {
            hostname: "h".into(),
            ..Default::default()
        };
        c.write(meta.agent_info("S1"), encode(&agent));
        c.link("S1".into(), meta.latest_agent());
        let fw = v1::FrameworkInfo {
            user: "u".into(),
            name: "f".into(),
            checkpoint: Some(true),
            ..Default::default()
        };
        c.write(meta.framework_info("S1", "F"), encode(&fw));
        for e in ["E1", "E2"] {
            c.write(
                meta.executor_info("S1", "F", e),
                encode(&v1::ExecutorInfo::default()),
            );
            let run = meta.run("S1", "F", e, "C");
            c.link("C".into(), run.with_file_name("latest"));
            c.write(meta.forked_pid(&run), b"4242\n".to_vec());
            c.write(meta.task_info(&run, e), encode(&task(e)));
            let update = StatusUpdate {
                framework_id: v1::FrameworkId { value: "F".into() },
                status: v1::TaskStatus {
                    task_id: v1::TaskId { value: e.into() },
                    state: v1::TaskState::TaskRunning as i32,
                    uuid: Some(vec![1; 16]),
                    ..Default::default()
                },
                executor_id: None,
                latest_state: None,
            };
            c.append(meta.task_updates(&run, e), encode(&update_record(&update)));
        }
        // E2's second task is garbage; E2's first task and E1 are intact.
        let run2 = meta.run("S1", "F", "E2", "C");
        c.write(
            meta.task_info(&run2, "bad"),
            b"\x05\0\0\0\xff\xff\xff\xff\xff".to_vec(),
        );
        c.flush_blocking();

        let state = read_agent(&meta).unwrap().unwrap();
        assert_eq!(state.agent_id, "S1");
        assert_eq!(state.info, agent);
        let executors = &state.frameworks[0].executors;
        assert_eq!(executors.len(), 2);
        for e in executors {
            let run = e.run.as_ref().unwrap();
            assert_eq!(run.pid, Some(4242));
            assert_eq!(run.tasks.len(), 1, "{}", e.id);
            assert_eq!(run.tasks[0].info.task_id.value, e.id);
            assert_eq!(run.tasks[0].records.len(), 1);
        }

        // A broken slave.info is an error naming it.
        std::fs::write(meta.agent_info("S1"), b"\x01").unwrap();
        let err = read_agent(&meta).unwrap_err();
        assert!(err.to_string().contains("slave.info"), "{err}");
    }
}
