//! `/metrics/snapshot`: the agent's metrics under Mesos's names.

use mesos_proto::v1::TaskState;
use mesos_resources::Resources;
use serde_json::{Map, Value, json};

use super::model::ExecutorState;
use super::{Agent, now_secs};

impl Agent {
    pub(super) fn metrics_json(&self) -> Value {
        let mut metrics = Map::new();
        let mut put = |name: &str, value: f64| {
            metrics.insert(name.to_string(), json!(value));
        };
        let executors = || self.frameworks.values().flat_map(|f| f.executors.values());
        let live_tasks = |state: TaskState| {
            executors()
                .map(|e| {
                    let queued = if state == TaskState::TaskStaging {
                        e.queued.len()
                    } else {
                        0
                    };
                    e.launched.values().filter(|t| t.state == state).count() + queued
                })
                .sum::<usize>() as f64
        };
        let executors_in =
            |state: ExecutorState| executors().filter(|e| e.state == state).count() as f64;
        let c = &self.counters;

        put(
            "slave/registered",
            if self.is_registered() { 1.0 } else { 0.0 },
        );
        put("slave/uptime_secs", now_secs() - self.start_time);
        put("slave/frameworks_active", self.frameworks.len() as f64);
        put("slave/tasks_staging", live_tasks(TaskState::TaskStaging));
        put("slave/tasks_starting", live_tasks(TaskState::TaskStarting));
        put("slave/tasks_running", live_tasks(TaskState::TaskRunning));
        put("slave/tasks_killing", live_tasks(TaskState::TaskKilling));
        put("slave/tasks_finished", c.tasks_finished as f64);
        put("slave/tasks_failed", c.tasks_failed as f64);
        put("slave/tasks_killed", c.tasks_killed as f64);
        put("slave/tasks_lost", c.tasks_lost as f64);
        put("slave/tasks_gone", c.tasks_gone as f64);
        put(
            "slave/executors_registering",
            executors_in(ExecutorState::Registering),
        );
        put(
            "slave/executors_running",
            executors_in(ExecutorState::Running),
        );
        put(
            "slave/executors_terminating",
            executors_in(ExecutorState::Terminating),
        );
        put("slave/executors_terminated", c.executors_terminated as f64);
        put("slave/executors_preempted", 0.0);
        put("slave/valid_status_updates", c.valid_status_updates as f64);
        put(
            "slave/invalid_status_updates",
            c.invalid_status_updates as f64,
        );
        put(
            "slave/valid_framework_messages",
            c.valid_framework_messages as f64,
        );
        put(
            "slave/invalid_framework_messages",
            c.invalid_framework_messages as f64,
        );
        put(
            "slave/container_launch_errors",
            c.container_launch_errors as f64,
        );
        put("slave/recovery_errors", 0.0);

        let total = self.total_resources();
        let used = Resources::from(self.allocated_resources());
        for name in ["cpus", "gpus", "mem", "disk"] {
            let (t, u) = (total.scalar(name), used.scalar(name));
            put(&format!("slave/{name}_total"), t);
            put(&format!("slave/{name}_used"), u);
            put(
                &format!("slave/{name}_percent"),
                if t > 0.0 { u / t } else { 0.0 },
            );
        }
        Value::Object(metrics)
    }
}
