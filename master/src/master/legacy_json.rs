//! The older read-only master endpoints (`/master/frameworks`, `/slaves`,
//! `/tasks`, `/roles`, `/state-summary`) in Mesos's JSON shapes, built from
//! the same pieces as `/master/state`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mesos_proto::v1::{self, TaskState};
use mesos_resources::Resources;
use serde_json::{Map, Value, json};

use super::state_json::task_json;
use super::{Agent, Framework, Master};

/// Mesos's default page size for `/master/tasks`.
pub const TASK_LIMIT: usize = 100;

/// Which legacy view to build, with its query parameters.
#[derive(Debug, Clone)]
pub enum LegacyView {
    StateSummary,
    Frameworks { framework_id: Option<String> },
    Slaves { slave_id: Option<String> },
    Tasks(TaskQuery),
    Roles,
}

/// `/master/tasks` parameters.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    pub limit: usize,
    pub offset: usize,
    /// Oldest first; Mesos's default is newest first.
    pub ascending: bool,
    pub framework_id: Option<String>,
    pub task_id: Option<String>,
}

impl Default for TaskQuery {
    fn default() -> Self {
        Self {
            limit: TASK_LIMIT,
            offset: 0,
            ascending: false,
            framework_id: None,
            task_id: None,
        }
    }
}

/// The task states `/master/state-summary` counts, under their names.
const SUMMARY_STATES: [TaskState; 10] = [
    TaskState::TaskStaging,
    TaskState::TaskStarting,
    TaskState::TaskRunning,
    TaskState::TaskKilling,
    TaskState::TaskFinished,
    TaskState::TaskKilled,
    TaskState::TaskFailed,
    TaskState::TaskLost,
    TaskState::TaskError,
    TaskState::TaskUnreachable,
];

/// Counts of tasks per state, plus the other side's IDs.
#[derive(Default)]
struct Summary<'a> {
    states: HashMap<TaskState, u64>,
    peers: BTreeSet<&'a str>,
}

impl Summary<'_> {
    fn write(&self, map: &mut Map<String, Value>, peers_field: &str) {
        for state in SUMMARY_STATES {
            map.insert(
                state.as_str_name().to_string(),
                json!(self.states.get(&state).copied().unwrap_or(0)),
            );
        }
        map.insert(peers_field.to_string(), json!(self.peers));
    }
}

fn with_fields(mut value: Value, add: impl FnOnce(&mut Map<String, Value>)) -> Value {
    if let Value::Object(map) = &mut value {
        add(map);
    }
    value
}

/// Scalar resources as `{name: amount}`, as Mesos shows quantities.
fn quantities(resources: &Resources) -> Value {
    let mut out: BTreeMap<&str, f64> = BTreeMap::new();
    for r in resources.iter() {
        if let Some(s) = &r.scalar {
            *out.entry(r.name.as_str()).or_default() += s.value;
        }
    }
    json!(out)
}

impl Master {
    pub(super) fn legacy_json(&self, view: LegacyView) -> Value {
        match view {
            LegacyView::StateSummary => self.state_summary_json(),
            LegacyView::Frameworks { framework_id } => self.frameworks_json(framework_id),
            LegacyView::Slaves { slave_id } => self.slaves_json(slave_id),
            LegacyView::Tasks(query) => self.tasks_json(&query),
            LegacyView::Roles => self.roles_json(),
        }
    }

    pub(super) fn sorted_agents(&self) -> Vec<&Agent> {
        let mut agents: Vec<&Agent> = self.agents.values().collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    }

    pub(super) fn sorted_frameworks(&self) -> Vec<&Framework> {
        let mut frameworks: Vec<&Framework> = self.frameworks.values().collect();
        frameworks.sort_by(|a, b| a.id.cmp(&b.id));
        frameworks
    }

    fn state_summary_json(&self) -> Value {
        let info = &self.config.master_info;
        let mut per_agent: HashMap<&str, Summary> = HashMap::new();
        let mut per_framework: HashMap<&str, Summary> = HashMap::new();
        for framework in self.frameworks.values() {
            let tasks = framework
                .tasks
                .values()
                .map(|t| &t.proto)
                .chain(framework.completed_tasks.iter().map(|t| &**t));
            for task in tasks {
                let agent = task.agent_id.value.as_str();
                let a = per_agent.entry(agent).or_default();
                *a.states.entry(task.state()).or_default() += 1;
                a.peers.insert(framework.id.as_str());
                let f = per_framework.entry(framework.id.as_str()).or_default();
                *f.states.entry(task.state()).or_default() += 1;
                f.peers.insert(agent);
            }
        }
        let used = self.used_per_agent();
        let empty = Summary::default();
        let slaves: Vec<Value> = self
            .sorted_agents()
            .into_iter()
            .map(|a| {
                let summary = per_agent.get(a.id.as_str()).unwrap_or(&empty);
                with_fields(self.agent_json(a, used.get(a.id.as_str())), |map| {
                    summary.write(map, "framework_ids")
                })
            })
            .collect();
        let frameworks: Vec<Value> = self
            .sorted_frameworks()
            .into_iter()
            .map(|f| {
                let summary = per_framework.get(f.id.as_str()).unwrap_or(&empty);
                let full = self.framework_json(f);
                let mut map = Map::new();
                // The summary leaves out the per-task detail.
                for key in [
                    "id",
                    "name",
                    "used_resources",
                    "offered_resources",
                    "capabilities",
                    "hostname",
                    "webui_url",
                    "active",
                    "connected",
                    "recovered",
                    "role",
                    "roles",
                    "principal",
                ] {
                    if let Some(v) = full.get(key) {
                        map.insert(key.to_string(), v.clone());
                    }
                }
                summary.write(&mut map, "slave_ids");
                Value::Object(map)
            })
            .collect();
        let mut summary = json!({
            "hostname": info.hostname,
            "slaves": slaves,
            "frameworks": frameworks,
        });
        if let (Some(cluster), Value::Object(map)) = (&self.config.cluster, &mut summary) {
            map.insert("cluster".into(), json!(cluster));
        }
        summary
    }

    fn frameworks_json(&self, framework_id: Option<String>) -> Value {
        let wanted = |f: &Framework| framework_id.as_ref().is_none_or(|id| *id == f.id);
        json!({
            "frameworks": self
                .sorted_frameworks()
                .into_iter()
                .filter(|f| wanted(f))
                .map(|f| self.framework_json(f))
                .collect::<Vec<_>>(),
            "completed_frameworks": self
                .completed_frameworks
                .iter()
                .filter(|f| wanted(f))
                .map(|f| self.framework_json(f))
                .collect::<Vec<_>>(),
            "unregistered_frameworks": [],
        })
    }

    fn slaves_json(&self, slave_id: Option<String>) -> Value {
        let used = self.used_per_agent();
        json!({
            "slaves": self
                .sorted_agents()
                .into_iter()
                .filter(|a| slave_id.as_ref().is_none_or(|id| *id == a.id))
                .map(|a| self.agent_json(a, used.get(a.id.as_str())))
                .collect::<Vec<_>>(),
            "recovered_slaves": self.recovered_agents_json(),
        })
    }

    /// Active and completed tasks of every framework, ordered by when they
    /// were first reported, one page of them.
    fn tasks_json(&self, query: &TaskQuery) -> Value {
        let mut tasks: Vec<&v1::Task> = self
            .frameworks
            .values()
            .chain(self.completed_frameworks.iter())
            .filter(|f| query.framework_id.as_ref().is_none_or(|id| *id == f.id))
            .flat_map(|f| {
                f.tasks
                    .values()
                    .map(|t| &t.proto)
                    .chain(f.completed_tasks.iter().map(|t| &**t))
            })
            .filter(|t| {
                query
                    .task_id
                    .as_ref()
                    .is_none_or(|id| *id == t.task_id.value)
            })
            .collect();
        // Tasks without a status yet count as oldest, as in Mesos.
        let first_seen = |t: &v1::Task| {
            t.statuses
                .first()
                .map(|s| s.timestamp.unwrap_or(0.0))
                .unwrap_or(f64::NEG_INFINITY)
        };
        tasks.sort_by(|a, b| first_seen(a).total_cmp(&first_seen(b)));
        if !query.ascending {
            tasks.reverse();
        }
        let page: Vec<Value> = tasks
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(task_json)
            .collect();
        json!({ "tasks": page })
    }

    fn roles_json(&self) -> Value {
        let mut offered: HashMap<String, Resources> = HashMap::new();
        let mut allocated: HashMap<String, Resources> = HashMap::new();
        for framework in self.frameworks.values() {
            let a = allocated.entry(framework.role.clone()).or_default();
            for task in framework.tasks.values().filter(|t| !t.recovered) {
                a.add(&task.resources);
            }
            let o = offered.entry(framework.role.clone()).or_default();
            for offer in framework.offers.iter().filter_map(|id| self.offers.get(id)) {
                o.add(&offer.resources);
            }
        }
        let mut reserved: HashMap<String, Resources> = HashMap::new();
        for agent in self.agents.values() {
            for r in agent.total.iter() {
                if let Some(role) = mesos_resources::reserved_role(r) {
                    reserved
                        .entry(role.to_string())
                        .or_default()
                        .add(&Resources::from(vec![r.clone()]));
                }
            }
        }
        let none = Resources::default();
        let roles: Vec<Value> = self
            .roles()
            .into_iter()
            .map(|role| {
                let a = allocated.get(&role.name).unwrap_or(&none);
                let o = offered.get(&role.name).unwrap_or(&none);
                let mut both = a.clone();
                both.add(o);
                json!({
                    "name": role.name,
                    "weight": role.weight,
                    "frameworks": role.frameworks.iter().map(|f| f.value.clone()).collect::<Vec<_>>(),
                    "resources": quantities(&both),
                    "allocated": quantities(a),
                    "offered": quantities(o),
                    "reserved": quantities(reserved.get(&role.name).unwrap_or(&none)),
                    "quota": {
                        "role": role.name,
                        "guarantee": {},
                        "limit": {},
                        "consumed": quantities(a),
                    },
                })
            })
            .collect();
        json!({ "roles": roles })
    }
}
