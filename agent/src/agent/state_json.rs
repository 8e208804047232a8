//! The agent's `/state` and `/metrics/snapshot`.

use mesos_proto::json::to_json;
use mesos_proto::v1;
use mesos_resources::{Resources, attributes_state_json, state_json};
use serde_json::{Map, Value, json};

use super::{Agent, Executor, ExecutorState, Task, now_secs};

fn task_json(task: &Task, framework_id: &str, executor_id: &str, agent_id: &str) -> Value {
    json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": framework_id,
        "executor_id": executor_id,
        "slave_id": agent_id,
        "state": task.state.as_str_name(),
        "resources": state_json(&Resources::from(task.info.resources.clone())),
    })
}

impl Agent {
    fn executor_json(&self, executor: &Executor) -> Value {
        let agent_id = self.agent_id.clone().unwrap_or_default();
        let (fid, eid) = (&executor.framework_id, &executor.info.executor_id.value);
        let mut resources = Resources::from(executor.info.resources.clone());
        for task in executor.launched.values() {
            resources.add(&Resources::from(task.info.resources.clone()));
        }
        let queued: Vec<Value> = executor
            .queued
            .iter()
            .map(|t| {
                json!({
                    "id": t.task_id.value,
                    "name": t.name,
                    "slave_id": agent_id,
                    "resources": state_json(&Resources::from(t.resources.clone())),
                })
            })
            .collect();
        json!({
            "id": eid,
            "name": executor.info.name.clone().unwrap_or_default(),
            "source": executor.info.source.clone().unwrap_or_default(),
            "container": executor.container_id,
            "directory": executor.sandbox.display().to_string(),
            "resources": state_json(&resources),
            "tasks": executor.launched.values().map(|t| task_json(t, fid, eid, &agent_id)).collect::<Vec<_>>(),
            "queued_tasks": queued,
            "completed_tasks": executor.completed.iter().map(|t| task_json(t, fid, eid, &agent_id)).collect::<Vec<_>>(),
        })
    }

    fn framework_json(&self, info: &v1::FrameworkInfo, executors: Vec<Value>, completed: Vec<Value>) -> Value {
        json!({
            "id": info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
            "name": info.name,
            "user": info.user,
            "failover_timeout": info.failover_timeout.unwrap_or(0.0),
            "checkpoint": info.checkpoint.unwrap_or(false),
            "hostname": info.hostname.clone().unwrap_or_default(),
            "role": info.role.clone().unwrap_or_else(|| "*".to_string()),
            "executors": executors,
            "completed_executors": completed,
        })
    }

    pub(super) fn state_json(&self) -> Value {
        let resources = Resources::from(self.config.agent_info.resources.clone());
        let flags: Map<String, Value> = self
            .config
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let frameworks: Vec<Value> = self
            .frameworks
            .iter()
            .map(|(fid, info)| {
                let executors = self
                    .executors
                    .values()
                    .filter(|e| e.framework_id == *fid)
                    .map(|e| self.executor_json(e))
                    .collect();
                let completed = self
                    .completed_executors
                    .iter()
                    .filter(|e| e.framework_id == *fid)
                    .map(|e| self.executor_json(e))
                    .collect();
                self.framework_json(info, executors, completed)
            })
            .collect();
        json!({
            "version": mesos_proto::MESOS_VERSION,
            "build_date": "",
            "build_time": 0,
            "build_user": "",
            "start_time": self.start_time,
            "id": self.agent_id.clone().unwrap_or_default(),
            "pid": self.config.pid,
            "hostname": self.config.agent_info.hostname,
            "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
            "resources": state_json(&resources),
            "unreserved_resources_full": self
                .config
                .agent_info
                .resources
                .iter()
                .map(to_json)
                .collect::<Vec<_>>(),
            "attributes": attributes_state_json(&self.config.agent_info.attributes),
            "flags": flags,
            "frameworks": frameworks,
            "completed_frameworks": [],
        })
    }

    pub(super) fn metrics_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: f64| {
            m.insert(k.to_string(), json!(v));
        };
        let mut by_state = std::collections::BTreeMap::new();
        for e in self.executors.values() {
            for t in e.launched.values() {
                *by_state.entry(t.state).or_insert(0u64) += 1;
            }
            *by_state.entry(v1::TaskState::TaskStaging).or_insert(0) += e.queued.len() as u64;
        }
        let live = |s: v1::TaskState| by_state.get(&s).copied().unwrap_or(0) as f64;
        let terminal = |name: &str| self.counters.terminal.get(name).copied().unwrap_or(0) as f64;
        let executors_in = |s: ExecutorState| self.executors.values().filter(|e| e.state == s).count() as f64;
        put("slave/registered", if self.agent_id.is_some() && self.link.is_some() { 1.0 } else { 0.0 });
        put("slave/uptime_secs", now_secs() - self.start_time);
        put("slave/frameworks_active", self.frameworks.len() as f64);
        put("slave/tasks_staging", live(v1::TaskState::TaskStaging));
        put("slave/tasks_starting", live(v1::TaskState::TaskStarting));
        put("slave/tasks_running", live(v1::TaskState::TaskRunning));
        put("slave/tasks_killing", live(v1::TaskState::TaskKilling));
        put("slave/tasks_finished", terminal("TASK_FINISHED"));
        put("slave/tasks_failed", terminal("TASK_FAILED"));
        put("slave/tasks_killed", terminal("TASK_KILLED"));
        put("slave/tasks_lost", terminal("TASK_LOST"));
        put("slave/tasks_gone", terminal("TASK_GONE"));
        put("slave/executors_registering", executors_in(ExecutorState::Registering));
        put("slave/executors_running", executors_in(ExecutorState::Running));
        put("slave/executors_terminating", executors_in(ExecutorState::Terminating));
        put("slave/executors_terminated", self.completed_executors.len() as f64);
        put("slave/valid_status_updates", self.counters.valid_status_updates as f64);
        put("slave/invalid_status_updates", self.counters.invalid_status_updates as f64);
        put("slave/valid_framework_messages", self.counters.framework_messages as f64);
        put("slave/container_launch_errors", self.counters.launch_errors as f64);
        let total = Resources::from(self.config.agent_info.resources.clone());
        let mut used = Resources::default();
        for e in self.executors.values() {
            for t in e.launched.values() {
                used.add(&Resources::from(t.info.resources.clone()));
            }
            for t in &e.queued {
                used.add(&Resources::from(t.resources.clone()));
            }
        }
        for name in ["cpus", "gpus", "mem", "disk"] {
            let (t, u) = (total.scalar(name), used.scalar(name));
            put(&format!("slave/{name}_total"), t);
            put(&format!("slave/{name}_used"), u);
            put(&format!("slave/{name}_percent"), if t > 0.0 { u / t } else { 0.0 });
        }
        Value::Object(m)
    }
}
