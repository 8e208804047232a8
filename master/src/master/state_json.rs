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

use bytes::Bytes;
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
/// Agents rendered as one unit of work.
const AGENT_CHUNK: usize = 2048;
/// Render threads at most: the loop and the HTTP server need the rest.
const MAX_RENDER_THREADS: usize = 4;

/// Some tasks of a framework rendered, with the resources they use.
struct TaskChunk<'a> {
    /// Comma-separated task objects (a slice of a `tasks` array).
    json: Vec<u8>,
    used: StateTotals<'a>,
    used_by_agent: HashMap<&'a str, StateTotals<'a>>,
}

/// A task's entry, kept with the task until it changes.
#[derive(Debug)]
pub(crate) struct RenderedTask {
    json: Box<[u8]>,
    /// Its resources, summed as the state shows them.
    resources: StateTotals<'static>,
}

impl RenderedTask {
    fn of(task: &v1::Task) -> Self {
        let resources = StateTotals::of(task.resources.iter());
        let mut json = Vec::with_capacity(448);
        let _ = serde_json::to_writer(
            &mut json,
            &TaskJson {
                task,
                resources: &resources,
            },
        );
        Self {
            json: json.into_boxed_slice(),
            resources: resources.into_owned(),
        }
    }
}

impl<'a> TaskChunk<'a> {
    /// One pass over the tasks: at scale the cost is in reaching each
    /// task's memory, so everything that needs a task is done then.
    fn render(tasks: &'a [Arc<Task>]) -> Self {
        let mut chunk = TaskChunk {
            json: Vec::with_capacity(448 * tasks.len()),
            used: StateTotals::default(),
            used_by_agent: HashMap::new(),
        };
        for (i, task) in tasks.iter().enumerate() {
            if i > 0 {
                chunk.json.push(b',');
            }
            let rendered = task.rendered.get_or_init(|| RenderedTask::of(&task.proto));
            chunk.json.extend_from_slice(&rendered.json);
            if !task.recovered {
                chunk
                    .used_by_agent
                    .entry(task.proto.agent_id.value.as_str())
                    .or_default()
                    .merge(&rendered.resources);
                chunk.used.merge(&rendered.resources);
            }
        }
        chunk
    }
}

impl StateSnapshot {
    /// The JSON document. At 200k tasks rendering takes a core over half a
    /// second, so it is spread over a few threads: first the tasks in
    /// chunks (summing what each framework and agent uses on the way),
    /// then the agents in chunks; the buffers are then joined.
    pub fn render(&self) -> Vec<u8> {
        self.render_parts().concat()
    }

    /// The document in parts to send one after the other: the large
    /// rendered pieces are not copied into one buffer.
    pub fn render_parts(&self) -> Vec<Bytes> {
        let frameworks: Vec<&FrameworkView> = self
            .frameworks
            .iter()
            .chain(&self.completed_frameworks)
            .collect();
        let pieces: Vec<(usize, &[Arc<Task>])> = frameworks
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.tasks.chunks(TASK_CHUNK).map(move |c| (i, c)))
            .collect();
        let chunks = in_parallel(&pieces, |(_, tasks)| TaskChunk::render(tasks));
        let mut used_by_framework = vec![StateTotals::default(); frameworks.len()];
        let mut used_by_agent: HashMap<&str, StateTotals<'_>> =
            HashMap::with_capacity(self.agents.len());
        for ((i, _), chunk) in pieces.iter().zip(&chunks) {
            used_by_framework[*i].merge(&chunk.used);
            for (agent, used) in &chunk.used_by_agent {
                used_by_agent.entry(agent).or_default().merge(used);
            }
        }
        let none = StateTotals::default();
        let mut agents: Vec<&AgentView> = self.agents.iter().collect();
        agents.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let agents: Vec<&[&AgentView]> = agents.chunks(AGENT_CHUNK).collect();
        let agents = in_parallel(&agents, |views| {
            let mut out = Vec::with_capacity(1024 * views.len());
            for (i, view) in views.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let used = used_by_agent.get(view.id.as_str()).unwrap_or(&none);
                let _ = serde_json::to_writer(&mut out, &AgentJson { view, used });
            }
            out
        });

        let mut out = Parts::default();
        // Writing to a Vec cannot fail and every value serializes.
        out.small.push(b'{');
        for (key, value) in &self.head {
            let _ = serde_json::to_writer(&mut out.small, key);
            out.small.push(b':');
            let _ = serde_json::to_writer(&mut out.small, value);
            out.small.push(b',');
        }
        out.small.extend_from_slice(b"\"slaves\":");
        out.array(agents);
        out.small.extend_from_slice(b",\"recovered_slaves\":");
        let _ = serde_json::to_writer(&mut out.small, &self.recovered_agents);
        let mut chunks = chunks.into_iter().map(|c| c.json);
        let mut frameworks = frameworks.iter().zip(&used_by_framework);
        for (name, count) in [
            ("frameworks", self.frameworks.len()),
            ("completed_frameworks", self.completed_frameworks.len()),
        ] {
            out.small
                .extend_from_slice(format!(",\"{name}\":[").as_bytes());
            for (i, (framework, used)) in frameworks.by_ref().take(count).enumerate() {
                if i > 0 {
                    out.small.push(b',');
                }
                let tasks = chunks
                    .by_ref()
                    .take(framework.tasks.len().div_ceil(TASK_CHUNK));
                write_framework(&mut out, framework, used, tasks);
            }
            out.small.push(b']');
        }
        out.small
            .extend_from_slice(b",\"orphan_tasks\":[],\"unregistered_frameworks\":[]}");
        out.finish()
    }
}

/// A document as a list of buffers: small pieces are written into
/// `small`, large ones are moved in whole.
#[derive(Default)]
struct Parts {
    done: Vec<Bytes>,
    small: Vec<u8>,
}

impl Parts {
    fn large(&mut self, part: Vec<u8>) {
        if !self.small.is_empty() {
            self.done.push(Bytes::from(std::mem::take(&mut self.small)));
        }
        self.done.push(Bytes::from(part));
    }

    /// A JSON array of comma-separated parts.
    fn array(&mut self, parts: impl IntoIterator<Item = Vec<u8>>) {
        self.small.push(b'[');
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                self.small.push(b',');
            }
            self.large(part);
        }
        self.small.push(b']');
    }

    fn finish(mut self) -> Vec<Bytes> {
        if !self.small.is_empty() {
            self.done.push(Bytes::from(self.small));
        }
        self.done
    }
}

/// `render` of each piece, on up to [`MAX_RENDER_THREADS`] threads; the
/// results are in the pieces' order.
fn in_parallel<P: Sync, R: Send>(pieces: &[P], render: impl Fn(&P) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_RENDER_THREADS)
        .min(pieces.len());
    if threads <= 1 {
        return pieces.iter().map(&render).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
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
    done.into_iter().map(|(_, r)| r).collect()
}

/// A framework object with its `tasks` (rendered apart, in chunks) last.
fn write_framework(
    out: &mut Parts,
    framework: &FrameworkView,
    used: &StateTotals<'_>,
    tasks: impl Iterator<Item = Vec<u8>>,
) {
    let entry = FrameworkJson {
        view: framework,
        used,
    };
    let _ = serde_json::to_writer(&mut out.small, &entry);
    // The object is compact and ends with its closing brace: reopen it.
    if out.small.last() == Some(&b'}') {
        out.small.pop();
    }
    out.small.extend_from_slice(b",\"tasks\":");
    out.array(tasks);
    out.small.push(b'}');
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
            // Sorted by the render, off the loop.
            agents: self.agents.values().map(|a| self.agent_entry(a)).collect(),
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
        let tasks = TaskChunk::render(&view.tasks);
        let mut out = Parts::default();
        write_framework(&mut out, &view, &tasks.used, std::iter::once(tasks.json));
        serde_json::from_slice(&out.finish().concat()).unwrap_or(Value::Null)
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

/// A framework entry without its tasks; `used` sums them.
struct FrameworkJson<'a> {
    view: &'a FrameworkView,
    used: &'a StateTotals<'a>,
}

impl Serialize for FrameworkJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.view;
        let info = &f.info;
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
        let offered = StateTotals::of(offered);
        let mut both = self.used.clone();
        both.merge(&offered);
        map.serialize_entry("used_resources", self.used)?;
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
            &Seq(f.completed_tasks.iter().map(|t| CompletedTaskJson(t))),
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
    serde_json::to_value(TaskJson {
        task,
        resources: &StateTotals::of(task.resources.iter()),
    })
    .unwrap_or(Value::Null)
}

struct TaskJson<'a> {
    task: &'a v1::Task,
    /// The task's resources, summed.
    resources: &'a StateTotals<'a>,
}

impl Serialize for TaskJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let task = self.task;
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
        map.serialize_entry("resources", self.resources)?;
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

/// A completed task's entry (completed tasks are few and not cached).
struct CompletedTaskJson<'a>(&'a v1::Task);

impl Serialize for CompletedTaskJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TaskJson {
            task: self.0,
            resources: &StateTotals::of(self.0.resources.iter()),
        }
        .serialize(serializer)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn task(framework: &str, id: usize, agent: &str, recovered: bool) -> Arc<Task> {
        let resources = mesos_resources::parse_resources("cpus:0.5;mem:32", "*").unwrap();
        let mut task = Task::new(
            v1::Task {
                name: format!("t{id}"),
                task_id: v1::TaskId {
                    value: format!("t{id}"),
                },
                framework_id: v1::FrameworkId {
                    value: framework.into(),
                },
                agent_id: v1::AgentId {
                    value: agent.into(),
                },
                state: v1::TaskState::TaskRunning as i32,
                resources: resources.clone(),
                ..Default::default()
            },
            Resources::from(resources),
        );
        task.recovered = recovered;
        Arc::new(task)
    }

    fn framework(id: &str, tasks: Vec<Arc<Task>>) -> FrameworkView {
        FrameworkView {
            id: id.into(),
            info: v1::FrameworkInfo {
                name: id.into(),
                ..Default::default()
            },
            role: "*".into(),
            multi_role: false,
            connected: true,
            registered_time: 1.0,
            reregistered_time: None,
            unregistered_time: None,
            tasks,
            completed_tasks: Vec::new(),
            offers: Vec::new(),
            executors: Vec::new(),
        }
    }

    fn agent(id: &str) -> AgentView {
        AgentView {
            id: id.into(),
            hostname: id.into(),
            port: 5051,
            attributes: Vec::new(),
            pid: format!("slave(1)@{id}:5051"),
            registered_time: 1.0,
            reregistered_time: None,
            total: Resources::from(
                mesos_resources::parse_resources("cpus:10000;mem:1000000", "*").unwrap(),
            ),
            offered: Resources::default(),
            active: true,
            version: "1.11.0".into(),
        }
    }

    /// Enough tasks and agents for several chunks of each, so the joins
    /// and the sums across chunks are exercised.
    #[test]
    fn the_document_joins_its_chunks_and_sums_across_them() {
        let tasks = 2 * TASK_CHUNK + 7;
        let agents = AGENT_CHUNK + 3;
        let agent_of = |i: usize| format!("a{}", i % agents);
        let busy: Vec<Arc<Task>> = (0..tasks)
            // The last task's resources went back already: not in use.
            .map(|i| task("f1", i, &agent_of(i), i == tasks - 1))
            .collect();
        let snapshot = StateSnapshot {
            head: Map::from_iter([("version".to_string(), json!("1.11.0"))]),
            agents: (0..agents).map(|i| agent(&format!("a{i}"))).collect(),
            frameworks: vec![framework("f1", busy), framework("f2", Vec::new())],
            completed_frameworks: vec![framework("f0", vec![task("f0", 0, "a0", true)])],
            recovered_agents: Vec::new(),
        };
        let state: Value = serde_json::from_slice(&snapshot.render()).unwrap();
        assert_eq!(state["version"], "1.11.0");
        let frameworks = state["frameworks"].as_array().unwrap();
        assert_eq!(frameworks.len(), 2);
        let f1 = &frameworks[0];
        let ids: Vec<&str> = f1["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..tasks).map(|i| format!("t{i}")).collect();
        assert_eq!(ids, expected, "every task, in order");
        let in_use = (tasks - 1) as f64;
        assert_eq!(f1["used_resources"]["cpus"], json!(0.5 * in_use));
        assert_eq!(f1["used_resources"]["mem"], json!(32.0 * in_use));
        assert_eq!(frameworks[1]["tasks"], json!([]));
        assert_eq!(frameworks[1]["used_resources"]["cpus"], json!(0.0));
        assert_eq!(state["completed_frameworks"][0]["id"], "f0");
        assert_eq!(state["completed_frameworks"][0]["tasks"][0]["id"], "t0");

        let slaves = state["slaves"].as_array().unwrap();
        assert_eq!(slaves.len(), agents);
        let ids: Vec<&str> = slaves.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert!(ids.is_sorted(), "agents by ID");
        for slave in slaves {
            let i: usize = slave["id"].as_str().unwrap()[1..].parse().unwrap();
            let running = (0..tasks - 1).filter(|t| t % agents == i).count() as f64;
            assert_eq!(
                slave["used_resources"]["mem"],
                json!(32.0 * running),
                "a{i}"
            );
        }
        assert_eq!(state["orphan_tasks"], json!([]));
    }

    /// The entry kept with a task is dropped when the task changes, shared
    /// with a snapshot or not.
    #[test]
    fn a_changed_task_is_rendered_anew() {
        let state_of = |task: &Arc<Task>| {
            let snapshot = StateSnapshot {
                head: Map::new(),
                agents: Vec::new(),
                frameworks: vec![framework("f1", vec![task.clone()])],
                completed_frameworks: Vec::new(),
                recovered_agents: Vec::new(),
            };
            let state: Value = serde_json::from_slice(&snapshot.render()).unwrap();
            state["frameworks"][0]["tasks"][0]["state"].clone()
        };
        let mut task = task("f1", 0, "a0", false);
        assert_eq!(state_of(&task), "TASK_RUNNING");
        assert!(task.rendered.get().is_some(), "kept after a render");
        // Not shared: changed in place.
        Task::edit(&mut task).proto.state = v1::TaskState::TaskKilling as i32;
        assert_eq!(state_of(&task), "TASK_KILLING");
        // Shared with a snapshot: copied, and the copy rendered anew.
        let held = task.clone();
        Task::edit(&mut task).proto.state = v1::TaskState::TaskFinished as i32;
        assert_eq!(state_of(&task), "TASK_FINISHED");
        assert_eq!(state_of(&held), "TASK_KILLING");
    }
}
