//! `/master/state` in Mesos's legacy JSON shape, and the agent, framework
//! and task entries the older endpoints share with it.
//!
//! At scale the state is large (20k agents, 200k tasks: about 100 MB of
//! JSON), so it is not built inside the master loop. The loop takes a
//! [`StateSnapshot`]: tasks are shared (`Arc`), everything else is small
//! and cloned. The snapshot is rendered on a blocking thread, written
//! straight to bytes through `Serialize` views rather than through a
//! `serde_json::Value` per field, while the loop goes on making offers.

use std::collections::HashMap;
use std::sync::Arc;

use mesos_proto::json::to_json;
use mesos_proto::v1;
use mesos_resources::{Resources, StateJson, StateTotals, attributes_state_json, reserved_role};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::{Agent, Framework, Master, Task};
use crate::wire;

/// What an agent entry shows, taken from the loop.
#[derive(Debug, Clone)]
pub(super) struct AgentView {
    id: String,
    hostname: String,
    port: i32,
    attributes: Vec<v1::Attribute>,
    pid: String,
    registered_time: f64,
    reregistered_time: Option<f64>,
    total: Resources,
    offered: Resources,
    active: bool,
    version: String,
}

/// What a framework entry shows, taken from the loop.
#[derive(Debug, Clone)]
pub(super) struct FrameworkView {
    id: String,
    info: v1::FrameworkInfo,
    role: String,
    multi_role: bool,
    connected: bool,
    registered_time: f64,
    reregistered_time: Option<f64>,
    unregistered_time: Option<f64>,
    tasks: Vec<Arc<Task>>,
    completed_tasks: Vec<Arc<v1::Task>>,
    offers: Vec<OfferView>,
    /// (agent, executor) of its custom executors.
    executors: Vec<(String, v1::ExecutorInfo)>,
}

#[derive(Debug, Clone)]
struct OfferView {
    id: String,
    agent_id: String,
    resources: Resources,
}

/// Everything `/master/state` shows; [`StateSnapshot::render`] is the
/// expensive part and runs off the loop.
#[derive(Debug)]
pub struct StateSnapshot {
    /// The small top-level fields, in order.
    head: Map<String, Value>,
    agents: Vec<AgentView>,
    frameworks: Vec<FrameworkView>,
    completed_frameworks: Vec<FrameworkView>,
    recovered_agents: Vec<Value>,
}

/// Tasks rendered as one unit of work.
const TASK_CHUNK: usize = 4096;
/// Render threads at most: the loop and the HTTP server need the rest.
const MAX_RENDER_THREADS: usize = 4;

/// One part of the document, rendered on its own (in parallel with the
/// others) and then put in place.
enum Piece<'a> {
    /// The `slaves` array.
    Agents,
    /// Comma-separated task objects of one framework.
    Tasks(&'a [Arc<Task>]),
}

impl StateSnapshot {
    /// The JSON document. Rendering 200k tasks takes a core about half a
    /// second, so the agents and chunks of tasks are written into their
    /// own buffers on a few threads and the buffers joined.
    pub fn render(&self) -> Vec<u8> {
        let all = || self.frameworks.iter().chain(&self.completed_frameworks);
        let mut pieces = vec![Piece::Agents];
        for framework in all() {
            pieces.extend(framework.tasks.chunks(TASK_CHUNK).map(Piece::Tasks));
        }
        let mut rendered = render_pieces(&pieces, |piece| match piece {
            Piece::Agents => self.agents_json(),
            Piece::Tasks(tasks) => tasks_json(tasks),
        })
        .into_iter();
        let size: usize = 64 * 1024 + rendered.as_slice().iter().map(Vec::len).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        // Writing to a Vec cannot fail and every value serializes.
        out.push(b'{');
        for (key, value) in &self.head {
            let _ = serde_json::to_writer(&mut out, key);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, value);
            out.push(b',');
        }
        out.extend_from_slice(b"\"slaves\":");
        out.append(&mut rendered.next().unwrap_or_default());
        out.extend_from_slice(b",\"recovered_slaves\":");
        let _ = serde_json::to_writer(&mut out, &self.recovered_agents);
        for (name, frameworks) in [
            ("frameworks", &self.frameworks),
            ("completed_frameworks", &self.completed_frameworks),
        ] {
            out.extend_from_slice(format!(",\"{name}\":[").as_bytes());
            for (i, framework) in frameworks.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let chunks = framework.tasks.len().div_ceil(TASK_CHUNK);
                write_framework(&mut out, framework, rendered.by_ref().take(chunks));
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"orphan_tasks\":[],\"unregistered_frameworks\":[]}");
        out
    }

    fn agents_json(&self) -> Vec<u8> {
        // Resources in use per agent, from the tasks (not kept by the
        // loop): entries are gathered, and summed only as they are written.
        let mut used: HashMap<&str, StateTotals<'_>> = HashMap::with_capacity(self.agents.len());
        for task in self.frameworks.iter().flat_map(|f| &f.tasks) {
            if !task.recovered {
                let totals = used.entry(task.proto.agent_id.value.as_str()).or_default();
                for r in task.resources.iter() {
                    totals.add(r);
                }
            }
        }
        let none = StateTotals::default();
        let slaves = Seq(self.agents.iter().map(|view| AgentJson {
            view,
            used: used.get(view.id.as_str()).unwrap_or(&none),
        }));
        let mut out = Vec::with_capacity(1024 * self.agents.len());
        let _ = serde_json::to_writer(&mut out, &slaves);
        out
    }
}

/// Renders every piece, on up to [`MAX_RENDER_THREADS`] threads; the
/// results are in the pieces' order.
fn render_pieces<P: Sync>(pieces: &[P], render: impl Fn(&P) -> Vec<u8> + Sync) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_RENDER_THREADS)
        .min(pieces.len());
    if threads <= 1 {
        return pieces.iter().map(&render).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Vec<u8>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(piece) = pieces.get(i) else {
                            return mine;
                        };
                        mine.push((i, render(piece)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, bytes)| bytes).collect()
}

/// Tasks as comma-separated objects (a slice of a `tasks` array).
fn tasks_json(tasks: &[Arc<Task>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(448 * tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, &TaskJson(&task.proto));
    }
    out
}

/// A framework object with its `tasks` (rendered apart, in chunks) last.
fn write_framework(
    out: &mut Vec<u8>,
    framework: &FrameworkView,
    chunks: impl Iterator<Item = Vec<u8>>,
) {
    let _ = serde_json::to_writer(&mut *out, &FrameworkJson(framework));
    // The object is compact and ends with its closing brace: reopen it.
    if out.last() == Some(&b'}') {
        out.pop();
    }
    out.extend_from_slice(b",\"tasks\":[");
    for (i, mut chunk) in chunks.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.append(&mut chunk);
    }
    out.extend_from_slice(b"]}");
}

impl Master {
    /// Takes what `/master/state` shows: cheap enough for the loop.
    pub(super) fn state_snapshot(&self) -> StateSnapshot {
        let info = &self.config.master_info;
        let flags: Map<String, Value> = self
            .config
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let active = self.agents.values().filter(|a| a.link.is_some()).count();
        let mut head = Map::new();
        let mut put = |key: &str, value: Value| {
            head.insert(key.to_string(), value);
        };
        put("version", json!(mesos_proto::MESOS_VERSION));
        put("build_date", json!(crate::BUILD_DATE));
        put("build_time", json!(0));
        put("build_user", json!(""));
        put("start_time", json!(self.start_time));
        put("elected_time", json!(self.start_time));
        put("id", json!(self.id));
        put("pid", json!(info.pid));
        put("hostname", json!(info.hostname));
        put(
            "capabilities",
            json!(["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"]),
        );
        put("activated_slaves", json!(active));
        put("deactivated_slaves", json!(self.agents.len() - active));
        put("unreachable_slaves", json!(self.unreachable_agents.len()));
        put("leader", json!(info.pid));
        put("leader_info", to_json(info));
        put("flags", Value::Object(flags));
        if let Some(cluster) = &self.config.cluster {
            put("cluster", json!(cluster));
        }
        let mut frameworks: Vec<FrameworkView> = self
            .sorted_frameworks()
            .into_iter()
            .map(|f| self.framework_entry(f))
            .collect();
        // Custom executors, gathered once rather than per framework.
        let index: HashMap<&str, usize> = frameworks
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.as_str(), i))
            .collect();
        let mut executors: Vec<(usize, String, v1::ExecutorInfo)> = Vec::new();
        for agent in self.agents.values() {
            for ((fid, _), executor) in &agent.executors {
                if let Some(&i) = index.get(fid.as_str()) {
                    executors.push((i, agent.id.clone(), executor.clone()));
                }
            }
        }
        for (i, agent, executor) in executors {
            frameworks[i].executors.push((agent, executor));
        }
        StateSnapshot {
            head,
            agents: self
                .sorted_agents()
                .into_iter()
                .map(|a| self.agent_entry(a))
                .collect(),
            frameworks,
            completed_frameworks: self
                .completed_frameworks
                .iter()
                .map(|f| self.framework_entry(f))
                .collect(),
            recovered_agents: self.recovered_agents_json(),
        }
    }

    pub(super) fn agent_entry(&self, agent: &Agent) -> AgentView {
        AgentView {
            id: agent.id.clone(),
            hostname: agent.info.hostname.clone(),
            port: agent.info.port(),
            attributes: agent.info.attributes.clone(),
            pid: agent.pid.clone(),
            registered_time: agent.registered_time,
            reregistered_time: agent.reregistered_time,
            total: agent.total.clone(),
            offered: self.agent_offered(&agent.id),
            active: agent.link.is_some(),
            version: agent.version.clone(),
        }
    }

    /// A framework's view without its custom executors (see
    /// [`Master::framework_executors`]).
    fn framework_entry(&self, framework: &Framework) -> FrameworkView {
        FrameworkView {
            id: framework.id.clone(),
            info: framework.info.clone(),
            role: framework.role.clone(),
            multi_role: framework.multi_role,
            connected: framework.conn.is_some(),
            registered_time: framework.registered_time,
            reregistered_time: framework.reregistered_time,
            unregistered_time: framework.unregistered_time,
            tasks: framework.tasks.values().cloned().collect(),
            completed_tasks: framework.completed_tasks.iter().cloned().collect(),
            offers: framework
                .offers
                .iter()
                .filter_map(|id| self.offers.get(id))
                .map(|o| OfferView {
                    id: o.id.clone(),
                    agent_id: o.agent_id.clone(),
                    resources: o.resources.clone(),
                })
                .collect(),
            executors: Vec::new(),
        }
    }

    /// A framework's view with its custom executors, for one framework.
    fn framework_executors(&self, framework: &Framework) -> FrameworkView {
        let mut view = self.framework_entry(framework);
        for agent in self.agents.values() {
            for ((fid, _), executor) in &agent.executors {
                if *fid == framework.id {
                    view.executors.push((agent.id.clone(), executor.clone()));
                }
            }
        }
        view
    }

    /// An agent entry of the older endpoints.
    pub(super) fn agent_json(&self, agent: &Agent, used: Option<&Resources>) -> Value {
        let view = self.agent_entry(agent);
        let used = StateTotals::of(used.into_iter().flat_map(|u| u.iter()));
        serde_json::to_value(AgentJson {
            view: &view,
            used: &used,
        })
        .unwrap_or(Value::Null)
    }

    /// A framework entry of the older endpoints.
    pub(super) fn framework_json(&self, framework: &Framework) -> Value {
        let view = self.framework_executors(framework);
        let mut out = Vec::new();
        write_framework(&mut out, &view, std::iter::once(tasks_json(&view.tasks)));
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }

    /// Agents of the registry not yet back since this master started.
    pub(super) fn recovered_agents_json(&self) -> Vec<Value> {
        self.recovered_agents.values().map(to_json).collect()
    }
}

struct AgentJson<'a> {
    view: &'a AgentView,
    used: &'a StateTotals<'a>,
}

impl Serialize for AgentJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let a = self.view;
        let (reserved, unreserved) = split_reserved(&a.total);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &a.id)?;
        map.serialize_entry("hostname", &a.hostname)?;
        map.serialize_entry("port", &a.port)?;
        map.serialize_entry("attributes", &attributes_state_json(&a.attributes))?;
        map.serialize_entry("pid", &a.pid)?;
        map.serialize_entry("registered_time", &a.registered_time)?;
        if let Some(t) = a.reregistered_time {
            map.serialize_entry("reregistered_time", &t)?;
        }
        map.serialize_entry("resources", &StateJson(a.total.iter()))?;
        map.serialize_entry("used_resources", &self.used)?;
        map.serialize_entry("offered_resources", &StateJson(a.offered.iter()))?;
        let reserved: Vec<(&str, StateJson<_>)> = reserved
            .iter()
            .map(|(role, r)| (*role, StateJson(r.iter())))
            .collect();
        map.serialize_entry("reserved_resources", &Pairs(&reserved))?;
        map.serialize_entry("unreserved_resources", &StateJson(unreserved.iter()))?;
        map.serialize_entry("active", &a.active)?;
        map.serialize_entry("deactivated", &false)?;
        map.serialize_entry("version", &a.version)?;
        map.serialize_entry(
            "capabilities",
            &["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        )?;
        map.end()
    }
}

struct FrameworkJson<'a>(&'a FrameworkView);

impl Serialize for FrameworkJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let info = &f.info;
        let used = f
            .tasks
            .iter()
            .filter(|t| !t.recovered)
            .flat_map(|t| t.resources.iter());
        let offered = f.offers.iter().flat_map(|o| o.resources.iter());
        let capabilities: Vec<&str> = info
            .capabilities
            .iter()
            .map(|c| c.r#type().as_str_name())
            .collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &f.id)?;
        map.serialize_entry("name", &info.name)?;
        if f.multi_role {
            map.serialize_entry("roles", &info.roles)?;
        } else {
            map.serialize_entry("role", &f.role)?;
        }
        if let Some(p) = &info.principal {
            map.serialize_entry("principal", p)?;
        }
        let used = StateTotals::of(used);
        let offered = StateTotals::of(offered);
        let mut both = used.clone();
        both.merge(&offered);
        map.serialize_entry("used_resources", &used)?;
        map.serialize_entry("offered_resources", &offered)?;
        map.serialize_entry("resources", &both)?;
        map.serialize_entry("capabilities", &capabilities)?;
        map.serialize_entry("hostname", info.hostname.as_deref().unwrap_or_default())?;
        map.serialize_entry("webui_url", info.webui_url.as_deref().unwrap_or_default())?;
        map.serialize_entry("active", &f.connected)?;
        map.serialize_entry("connected", &f.connected)?;
        map.serialize_entry("recovered", &false)?;
        map.serialize_entry("user", &info.user)?;
        map.serialize_entry("failover_timeout", &info.failover_timeout.unwrap_or(0.0))?;
        map.serialize_entry("checkpoint", &info.checkpoint.unwrap_or(false))?;
        map.serialize_entry("registered_time", &f.registered_time)?;
        if let Some(t) = f.reregistered_time {
            map.serialize_entry("reregistered_time", &t)?;
        }
        map.serialize_entry("unregistered_time", &f.unregistered_time.unwrap_or(0.0))?;
        if let Some(labels) = &info.labels {
            map.serialize_entry("labels", &to_json(labels)["labels"])?;
        }
        // "tasks" is written after the object (see `write_framework`).
        map.serialize_entry("unreachable_tasks", &[(); 0])?;
        map.serialize_entry(
            "completed_tasks",
            &Seq(f.completed_tasks.iter().map(|t| TaskJson(t))),
        )?;
        let offers: Vec<OfferJson<'_>> = f
            .offers
            .iter()
            .map(|offer| OfferJson {
                offer,
                framework_id: &f.id,
                role: &f.role,
            })
            .collect();
        map.serialize_entry("offers", &offers)?;
        let executors: Vec<Value> = f
            .executors
            .iter()
            .map(|(agent_id, executor)| {
                let mut e = to_json(executor);
                if let Value::Object(map) = &mut e {
                    map.insert("slave_id".into(), json!(agent_id));
                }
                e
            })
            .collect();
        map.serialize_entry("executors", &executors)?;
        map.serialize_entry("offer_constraints", &Map::new())?;
        map.end()
    }
}

struct OfferJson<'a> {
    offer: &'a OfferView,
    framework_id: &'a str,
    role: &'a str,
}

impl Serialize for OfferJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("id", &self.offer.id)?;
        map.serialize_entry("framework_id", self.framework_id)?;
        map.serialize_entry("slave_id", &self.offer.agent_id)?;
        map.serialize_entry("allocation_info", &json!({"role": self.role}))?;
        map.serialize_entry("resources", &StateJson(self.offer.resources.iter()))?;
        map.end()
    }
}

/// A task entry: Mesos's task JSON with resources flattened.
pub fn task_json(task: &v1::Task) -> Value {
    serde_json::to_value(TaskJson(task)).unwrap_or(Value::Null)
}

struct TaskJson<'a>(&'a v1::Task);

impl Serialize for TaskJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let task = self.0;
        let role = task
            .resources
            .iter()
            .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.as_deref()))
            .or_else(|| task.resources.iter().find_map(|r| r.role.as_deref()))
            .unwrap_or("*");
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &task.task_id.value)?;
        map.serialize_entry("name", &task.name)?;
        map.serialize_entry("framework_id", &task.framework_id.value)?;
        map.serialize_entry(
            "executor_id",
            task.executor_id.as_ref().map_or("", |e| e.value.as_str()),
        )?;
        map.serialize_entry("slave_id", &task.agent_id.value)?;
        map.serialize_entry("state", wire::task_state_name(task.state()))?;
        map.serialize_entry("resources", &StateJson(task.resources.iter()))?;
        map.serialize_entry("role", role)?;
        map.serialize_entry("statuses", &Seq(task.statuses.iter().map(StatusJson)))?;
        if let Some(user) = &task.user {
            map.serialize_entry("user", user)?;
        }
        if let Some(labels) = &task.labels {
            map.serialize_entry("labels", &to_json(labels)["labels"])?;
        }
        if let Some(c) = &task.container {
            map.serialize_entry("container", &to_json(&**c))?;
        }
        if let Some(d) = &task.discovery {
            map.serialize_entry("discovery", &to_json(&**d))?;
        }
        if let Some(h) = &task.health_check {
            map.serialize_entry("health_check", &to_json(&**h))?;
        }
        map.end()
    }
}

struct StatusJson<'a>(&'a v1::TaskStatus);

impl Serialize for StatusJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("state", wire::task_state_name(s.state()))?;
        map.serialize_entry("timestamp", &s.timestamp.unwrap_or(0.0))?;
        if let Some(cs) = &s.container_status {
            map.serialize_entry("container_status", &to_json(cs))?;
        }
        if let Some(h) = s.healthy {
            map.serialize_entry("healthy", &h)?;
        }
        if let Some(labels) = &s.labels {
            map.serialize_entry("labels", &to_json(labels)["labels"])?;
        }
        map.end()
    }
}

/// The items of an iterator as a JSON array, without collecting them.
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}

/// Key-value pairs as a JSON object.
struct Pairs<'a, V>(&'a [(&'a str, V)]);

impl<V: Serialize> Serialize for Pairs<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Reserved resources per role, and the unreserved rest.
fn split_reserved(total: &Resources) -> (Vec<(&str, Resources)>, Resources) {
    let mut per_role: std::collections::BTreeMap<&str, Vec<v1::Resource>> = Default::default();
    let mut unreserved = Vec::new();
    for r in total.iter() {
        match reserved_role(r) {
            Some(role) => per_role.entry(role).or_default().push(r.clone()),
            None => unreserved.push(r.clone()),
        }
    }
    let reserved = per_role
        .into_iter()
        .map(|(role, res)| (role, Resources::from(res)))
        .collect();
    (reserved, Resources::from(unreserved))
}
