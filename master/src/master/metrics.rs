//! `/metrics/snapshot` under Mesos's metric names.

use mesos_proto::v1::TaskState;
use serde_json::{Map, Value, json};

use super::Master;
use crate::wire;

/// Monotonic counters; gauges are computed from the state when asked.
#[derive(Debug, Default)]
pub struct Counters {
    pub tasks_launched: u64,
    pub tasks_finished: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub tasks_lost: u64,
    pub tasks_error: u64,
    pub tasks_dropped: u64,
    pub tasks_gone: u64,
    pub tasks_unreachable: u64,
    pub offers_sent: u64,
    pub valid_status_updates: u64,
    pub framework_messages: u64,
    pub agent_registrations: u64,
    pub agent_removals: u64,
}

impl Counters {
    pub fn count_terminal(&mut self, state: TaskState) {
        match state {
            TaskState::TaskFinished => self.tasks_finished += 1,
            TaskState::TaskFailed => self.tasks_failed += 1,
            TaskState::TaskKilled => self.tasks_killed += 1,
            TaskState::TaskLost => self.tasks_lost += 1,
            TaskState::TaskError => self.tasks_error += 1,
            TaskState::TaskDropped => self.tasks_dropped += 1,
            TaskState::TaskGone => self.tasks_gone += 1,
            TaskState::TaskUnreachable => self.tasks_unreachable += 1,
            _ => {}
        }
    }
}

impl Master {
    pub(super) fn metrics_json(&self) -> Value {
        let c = &self.counters;
        let mut m = Map::new();
        let mut put = |k: &str, v: f64| {
            m.insert(k.to_string(), json!(v));
        };
        let connected = self
            .frameworks
            .values()
            .filter(|f| f.conn.is_some())
            .count();
        let agents_connected = self.agents.values().filter(|a| a.link.is_some()).count();
        let mut by_state = std::collections::HashMap::new();
        for f in self.frameworks.values() {
            for t in f.tasks.values() {
                *by_state.entry(t.proto.state()).or_insert(0u64) += 1;
            }
        }
        let live = |s: TaskState| by_state.get(&s).copied().unwrap_or(0) as f64;

        put("master/elected", 1.0);
        put("master/uptime_secs", wire::now_secs() - self.start_time);
        put("master/slaves_active", agents_connected as f64);
        put("master/slaves_inactive", 0.0);
        put("master/slaves_connected", agents_connected as f64);
        put(
            "master/slaves_disconnected",
            (self.agents.len() - agents_connected) as f64,
        );
        put(
            "master/slaves_unreachable",
            self.unreachable_agents.len() as f64,
        );
        put("master/frameworks_active", connected as f64);
        put(
            "master/frameworks_inactive",
            (self.frameworks.len() - connected) as f64,
        );
        put("master/frameworks_connected", connected as f64);
        put(
            "master/frameworks_disconnected",
            (self.frameworks.len() - connected) as f64,
        );
        put("master/outstanding_offers", self.offers.len() as f64);
        put("master/tasks_staging", live(TaskState::TaskStaging));
        put("master/tasks_starting", live(TaskState::TaskStarting));
        put("master/tasks_running", live(TaskState::TaskRunning));
        put("master/tasks_killing", live(TaskState::TaskKilling));
        put("master/tasks_finished", c.tasks_finished as f64);
        put("master/tasks_failed", c.tasks_failed as f64);
        put("master/tasks_killed", c.tasks_killed as f64);
        put("master/tasks_lost", c.tasks_lost as f64);
        put("master/tasks_error", c.tasks_error as f64);
        put("master/tasks_dropped", c.tasks_dropped as f64);
        put("master/tasks_gone", c.tasks_gone as f64);
        put("master/tasks_unreachable", live(TaskState::TaskUnreachable));
        put("master/valid_status_updates", c.valid_status_updates as f64);
        put("master/invalid_status_updates", 0.0);
        put(
            "master/messages_executor_to_framework",
            c.framework_messages as f64,
        );
        put("master/slave_registrations", c.agent_registrations as f64);
        put("master/slave_removals", c.agent_removals as f64);

        let mut total = mesos_resources::Resources::default();
        let mut used = mesos_resources::Resources::default();
        for agent in self.agents.values() {
            total.add(&agent.total);
        }
        for held in self.used_per_agent().values() {
            used.add(held);
        }
        for name in ["cpus", "gpus", "mem", "disk"] {
            let t = total.scalar(name);
            let u = used.scalar(name);
            put(&format!("master/{name}_total"), t);
            put(&format!("master/{name}_used"), u);
            put(
                &format!("master/{name}_percent"),
                if t > 0.0 { u / t } else { 0.0 },
            );
        }
        put("allocator/offers_sent", c.offers_sent as f64);
        Value::Object(m)
    }
}
