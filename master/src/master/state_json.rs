//! `/master/state` in Mesos's legacy JSON shape.

use mesos_proto::json::to_json;
use mesos_proto::v1;
use mesos_resources::{Resources, attributes_state_json, state_json};
use serde_json::{Map, Value, json};

use super::{Agent, Framework, Master};
use crate::wire;

impl Master {
    pub(super) fn state_json(&self) -> Value {
        let info = &self.config.master_info;
        let flags: Map<String, Value> = self
            .config
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut agents: Vec<&Agent> = self.agents.values().collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        let mut frameworks: Vec<&Framework> = self.frameworks.values().collect();
        frameworks.sort_by(|a, b| a.id.cmp(&b.id));
        let active = self.agents.values().filter(|a| a.link.is_some()).count();
        let used = self.used_per_agent();
        let mut state = json!({
            "version": mesos_proto::MESOS_VERSION,
            "build_date": crate::BUILD_DATE,
            "build_time": 0,
            "build_user": "",
            "start_time": self.start_time,
            "elected_time": self.start_time,
            "id": self.id,
            "pid": info.pid,
            "hostname": info.hostname,
            "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
            "activated_slaves": active,
            "deactivated_slaves": self.agents.len() - active,
            "unreachable_slaves": self.unreachable_agents.len(),
            "leader": info.pid,
            "leader_info": to_json(info),
            "flags": flags,
            "slaves": agents
                .iter()
                .map(|a| self.agent_json(a, used.get(a.id.as_str())))
                .collect::<Vec<_>>(),
            "recovered_slaves": self.recovered_agents_json(),
            "frameworks": frameworks.iter().map(|f| self.framework_json(f)).collect::<Vec<_>>(),
            "completed_frameworks": self
                .completed_frameworks
                .iter()
                .map(|f| self.framework_json(f))
                .collect::<Vec<_>>(),
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        });
        if let (Some(cluster), Value::Object(map)) = (&self.config.cluster, &mut state) {
            map.insert("cluster".into(), json!(cluster));
        }
        state
    }

    pub(super) fn agent_json(&self, agent: &Agent, used: Option<&Resources>) -> Value {
        let used = used.cloned().unwrap_or_default();
        let offered = self.agent_offered(&agent.id);
        let (reserved, unreserved) = split_reserved(&agent.total);
        let mut slave = json!({
            "id": agent.id,
            "hostname": agent.info.hostname,
            "port": agent.info.port(),
            "attributes": attributes_state_json(&agent.info.attributes),
            "pid": agent.pid,
            "registered_time": agent.registered_time,
            "resources": state_json(&agent.total),
            "used_resources": state_json(&used),
            "offered_resources": state_json(&offered),
            "reserved_resources": reserved,
            "unreserved_resources": state_json(&unreserved),
            "active": agent.link.is_some(),
            "deactivated": false,
            "version": agent.version,
            "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        });
        if let (Some(t), Value::Object(map)) = (agent.reregistered_time, &mut slave) {
            map.insert("reregistered_time".into(), json!(t));
        }
        slave
    }

    pub(super) fn framework_json(&self, framework: &Framework) -> Value {
        let info = &framework.info;
        let mut used = Resources::default();
        for task in framework.tasks.values().filter(|t| !t.recovered) {
            used.add(&task.resources);
        }
        let mut offered = Resources::default();
        let offers: Vec<Value> = framework
            .offers
            .iter()
            .filter_map(|id| self.offers.get(id))
            .map(|o| {
                offered.add(&o.resources);
                json!({
                    "id": o.id,
                    "framework_id": o.framework_id,
                    "slave_id": o.agent_id,
                    "allocation_info": {"role": framework.role},
                    "resources": state_json(&o.resources),
                })
            })
            .collect();
        let mut both = used.clone();
        both.add(&offered);
        let capabilities: Vec<&str> = info
            .capabilities
            .iter()
            .map(|c| c.r#type().as_str_name())
            .collect();
        let mut executors = Vec::new();
        for agent in self.agents.values() {
            for ((fid, _), executor) in &agent.executors {
                if *fid == framework.id {
                    let mut e = to_json(executor);
                    if let Value::Object(map) = &mut e {
                        map.insert("slave_id".into(), json!(agent.id));
                    }
                    executors.push(e);
                }
            }
        }
        let mut value = json!({
            "id": framework.id,
            "name": info.name,
            "used_resources": state_json(&used),
            "offered_resources": state_json(&offered),
            "resources": state_json(&both),
            "capabilities": capabilities,
            "hostname": info.hostname.clone().unwrap_or_default(),
            "webui_url": info.webui_url.clone().unwrap_or_default(),
            "active": framework.conn.is_some(),
            "connected": framework.conn.is_some(),
            "recovered": false,
            "user": info.user,
            "failover_timeout": info.failover_timeout.unwrap_or(0.0),
            "checkpoint": info.checkpoint.unwrap_or(false),
            "registered_time": framework.registered_time,
            "unregistered_time": framework.unregistered_time.unwrap_or(0.0),
            "tasks": framework.tasks.values().map(|t| task_json(&t.proto)).collect::<Vec<_>>(),
            "unreachable_tasks": [],
            "completed_tasks": framework.completed_tasks.iter().map(task_json).collect::<Vec<_>>(),
            "offers": offers,
            "executors": executors,
            "offer_constraints": {},
        });
        if let Value::Object(map) = &mut value {
            if framework.multi_role {
                map.insert("roles".into(), json!(info.roles));
            } else {
                map.insert("role".into(), json!(framework.role));
            }
            if let Some(p) = &info.principal {
                map.insert("principal".into(), json!(p));
            }
            if let Some(t) = framework.reregistered_time {
                map.insert("reregistered_time".into(), json!(t));
            }
            if let Some(labels) = &info.labels {
                map.insert("labels".into(), to_json(labels)["labels"].clone());
            }
        }
        value
    }
}

/// A task entry: Mesos's task JSON with resources flattened.
pub fn task_json(task: &v1::Task) -> Value {
    let resources = Resources::from(task.resources.clone());
    let role = task
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        .or_else(|| task.resources.iter().find_map(|r| r.role.clone()))
        .unwrap_or_else(|| "*".to_string());
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let mut status = json!({
                "state": wire::task_state_name(s.state()),
                "timestamp": s.timestamp.unwrap_or(0.0),
            });
            if let Value::Object(map) = &mut status {
                if let Some(cs) = &s.container_status {
                    map.insert("container_status".into(), to_json(cs));
                }
                if let Some(h) = s.healthy {
                    map.insert("healthy".into(), json!(h));
                }
                if let Some(labels) = &s.labels {
                    map.insert("labels".into(), to_json(labels)["labels"].clone());
                }
            }
            status
        })
        .collect();
    let mut value = json!({
        "id": task.task_id.value,
        "name": task.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
        "slave_id": task.agent_id.value,
        "state": wire::task_state_name(task.state()),
        "resources": state_json(&resources),
        "role": role,
        "statuses": statuses,
    });
    if let Value::Object(map) = &mut value {
        if let Some(user) = &task.user {
            map.insert("user".into(), json!(user));
        }
        if let Some(labels) = &task.labels {
            map.insert("labels".into(), to_json(labels)["labels"].clone());
        }
        if let Some(c) = &task.container {
            map.insert("container".into(), to_json(c));
        }
        if let Some(d) = &task.discovery {
            map.insert("discovery".into(), to_json(d));
        }
        if let Some(h) = &task.health_check {
            map.insert("health_check".into(), to_json(h));
        }
    }
    value
}

/// Reserved resources per role, and the unreserved rest.
fn split_reserved(total: &Resources) -> (Value, Resources) {
    let mut per_role: std::collections::BTreeMap<String, Vec<v1::Resource>> = Default::default();
    let mut unreserved = Vec::new();
    for r in total.iter() {
        match mesos_resources::reserved_role(r) {
            Some(role) => per_role
                .entry(role.to_string())
                .or_default()
                .push(r.clone()),
            None => unreserved.push(r.clone()),
        }
    }
    let reserved: Map<String, Value> = per_role
        .into_iter()
        .map(|(role, res)| (role, state_json(&Resources::from(res))))
        .collect();
    (Value::Object(reserved), Resources::from(unreserved))
}

impl Master {
    /// Agents of the registry not yet back since this master started.
    pub(super) fn recovered_agents_json(&self) -> Vec<Value> {
        self.recovered_agents.values().map(to_json).collect()
    }
}
