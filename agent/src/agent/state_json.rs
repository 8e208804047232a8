//! `/state`, in the shape of Mesos's legacy agent endpoint.

use std::collections::BTreeMap;

use mesos_proto::json::to_json;
use mesos_proto::v1;
use mesos_resources::{Resources, attributes_state_json, state_json};
use serde_json::{Map, Value, json};

use super::model::{Executor, Framework, Task};
use super::{Agent, CAPABILITIES};

impl Agent {
    pub(super) fn state_json(&self) -> Value {
        let agent_id = self.agent_id.clone().unwrap_or_default();
        let resources = &self.total_resources().into_vec();
        let (reserved, unreserved) = split_by_reservation(resources);
        let (reserved_allocated, unreserved_allocated) =
            split_by_reservation(&self.allocated_resources());
        let flags: Map<String, Value> = self
            .config
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let frameworks: Vec<Value> = self
            .frameworks
            .values()
            .map(|f| framework_json(f, &agent_id))
            .collect();
        let completed_frameworks: Vec<Value> = self
            .completed_frameworks
            .iter()
            .map(|f| framework_json(f, &agent_id))
            .collect();
        let capabilities: Vec<&str> = CAPABILITIES.iter().map(|c| c.as_str_name()).collect();
        let mut state = json!({
            "version": mesos_proto::MESOS_VERSION,
            "build_date": "",
            "build_time": 0,
            "build_user": "",
            "start_time": self.start_time,
            "id": agent_id,
            "pid": self.config.pid,
            "hostname": self.config.agent_info.hostname,
            "capabilities": capabilities,
            "resources": flat(resources),
            "reserved_resources": by_role(&reserved, flat),
            "unreserved_resources": flat(&unreserved),
            "reserved_resources_full": by_role(&reserved, full),
            "unreserved_resources_full": full(&unreserved),
            "reserved_resources_allocated": by_role(&reserved_allocated, flat),
            "unreserved_resources_allocated": flat(&unreserved_allocated),
            "resource_providers": [],
            "attributes": attributes_state_json(&self.config.agent_info.attributes),
            "flags": flags,
            "frameworks": frameworks,
            "completed_frameworks": completed_frameworks,
        });
        if let (Some(hostname), Value::Object(object)) = (&self.master_hostname, &mut state) {
            object.insert("master_hostname".into(), json!(hostname));
        }
        state
    }

    /// The resources of every task handed to the agent and not finished.
    pub(super) fn allocated_resources(&self) -> Vec<v1::Resource> {
        let mut total = Resources::default();
        for executor in self.frameworks.values().flat_map(|f| f.executors.values()) {
            total.add(&executor_resources(executor));
            for task in &executor.queued {
                total.add(&Resources::from(task.resources.clone()));
            }
        }
        total.into_vec()
    }
}

/// An executor's own resources plus those of its live tasks.
pub(super) fn executor_resources(executor: &Executor) -> Resources {
    let mut total = Resources::from(executor.info.resources.clone());
    for task in executor.launched.values() {
        total.add(&Resources::from(task.info.resources.clone()));
    }
    total
}

fn framework_json(framework: &Framework, agent_id: &str) -> Value {
    let info = &framework.info;
    let mut out = json!({
        "id": info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "name": info.name,
        "user": info.user,
        "failover_timeout": info.failover_timeout.unwrap_or(0.0),
        "checkpoint": info.checkpoint.unwrap_or(false),
        "hostname": info.hostname.clone().unwrap_or_default(),
        "capabilities": info
            .capabilities
            .iter()
            .map(|c| c.r#type().as_str_name())
            .collect::<Vec<_>>(),
        "executors": framework
            .executors
            .values()
            .map(|e| executor_json(e, agent_id))
            .collect::<Vec<_>>(),
        "completed_executors": framework
            .completed_executors
            .iter()
            .map(|e| executor_json(e, agent_id))
            .collect::<Vec<_>>(),
    });
    let Value::Object(object) = &mut out else {
        return out;
    };
    if framework.has_capability(v1::framework_info::capability::Type::MultiRole) {
        object.insert("roles".into(), json!(info.roles));
    } else {
        object.insert(
            "role".into(),
            json!(info.role.clone().unwrap_or_else(|| "*".into())),
        );
    }
    if let Some(principal) = &info.principal {
        object.insert("principal".into(), json!(principal));
    }
    out
}

fn executor_json(executor: &Executor, agent_id: &str) -> Value {
    let framework_id = executor.framework_id();
    let executor_id = &executor.info.executor_id.value;
    let mut out = json!({
        "id": executor_id,
        "name": executor.info.name.clone().unwrap_or_default(),
        "source": executor.info.source.clone().unwrap_or_default(),
        "container": executor.container_id,
        "directory": executor.sandbox.display().to_string(),
        "resources": state_json(&executor_resources(executor)),
        "tasks": executor
            .launched
            .values()
            .map(|t| task_json(t, framework_id, executor_id, agent_id))
            .collect::<Vec<_>>(),
        "queued_tasks": executor
            .queued
            .iter()
            .map(|t| queued_task_json(t, agent_id))
            .collect::<Vec<_>>(),
        "completed_tasks": executor
            .completed
            .iter()
            .map(|t| task_json(t, framework_id, executor_id, agent_id))
            .collect::<Vec<_>>(),
    });
    if let Value::Object(object) = &mut out {
        if let Some(role) = allocation_role(&executor.info.resources) {
            object.insert("role".into(), json!(role));
        }
        if let Some(labels) = &executor.info.labels {
            object.insert("labels".into(), to_json(labels)["labels"].clone());
        }
        if let Some(kind) = executor.info.r#type {
            object.insert(
                "type".into(),
                json!(
                    v1::executor_info::Type::try_from(kind)
                        .unwrap_or_default()
                        .as_str_name()
                ),
            );
        }
    }
    out
}

fn task_json(task: &Task, framework_id: &str, executor_id: &str, agent_id: &str) -> Value {
    let info = &task.info;
    let mut out = json!({
        "id": info.task_id.value,
        "name": info.name,
        "framework_id": framework_id,
        "executor_id": executor_id,
        "slave_id": agent_id,
        "state": task.state.as_str_name(),
        "resources": state_json(&Resources::from(info.resources.clone())),
        "statuses": task
            .statuses
            .iter()
            .map(|(state, timestamp)| json!({"state": state.as_str_name(), "timestamp": timestamp}))
            .collect::<Vec<_>>(),
    });
    if let Value::Object(object) = &mut out {
        if let Some(role) = allocation_role(&info.resources) {
            object.insert("role".into(), json!(role));
        }
        if let Some(labels) = &info.labels {
            object.insert("labels".into(), to_json(labels)["labels"].clone());
        }
    }
    out
}

fn queued_task_json(info: &v1::TaskInfo, agent_id: &str) -> Value {
    let mut out = json!({
        "id": info.task_id.value,
        "name": info.name,
        "slave_id": agent_id,
        "resources": state_json(&Resources::from(info.resources.clone())),
    });
    if let Value::Object(object) = &mut out {
        if let Some(role) = allocation_role(&info.resources) {
            object.insert("role".into(), json!(role));
        }
        if let Some(command) = &info.command {
            object.insert("command".into(), to_json(command));
        }
        if let Some(executor) = &info.executor {
            object.insert("executor_id".into(), json!(executor.executor_id.value));
        }
    }
    out
}

/// The role the resources were allocated to (MULTI_ROLE frameworks).
fn allocation_role(resources: &[v1::Resource]) -> Option<String> {
    resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref()?.role.clone())
}

/// The role a resource is reserved for, `None` when unreserved.
fn reservation_role(resource: &v1::Resource) -> Option<String> {
    let role = match resource.reservations.last() {
        Some(reservation) => reservation.role.clone(),
        None => resource.role.clone(),
    }?;
    (role != "*").then_some(role)
}

fn split_by_reservation(
    resources: &[v1::Resource],
) -> (BTreeMap<String, Vec<v1::Resource>>, Vec<v1::Resource>) {
    let mut reserved: BTreeMap<String, Vec<v1::Resource>> = BTreeMap::new();
    let mut unreserved = Vec::new();
    for resource in resources {
        match reservation_role(resource) {
            Some(role) => reserved.entry(role).or_default().push(resource.clone()),
            None => unreserved.push(resource.clone()),
        }
    }
    (reserved, unreserved)
}

/// `{"cpus":1,"mem":64,...}`.
fn flat(resources: &[v1::Resource]) -> Value {
    state_json(&Resources::from(resources.to_vec()))
}

/// Every resource in its protobuf JSON form.
fn full(resources: &[v1::Resource]) -> Value {
    Value::Array(resources.iter().map(to_json).collect())
}

fn by_role(
    reserved: &BTreeMap<String, Vec<v1::Resource>>,
    render: impl Fn(&[v1::Resource]) -> Value,
) -> Value {
    Value::Object(
        reserved
            .iter()
            .map(|(role, resources)| (role.clone(), render(resources)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(name: &str, value: f64, role: Option<&str>) -> v1::Resource {
        v1::Resource {
            name: name.into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value }),
            role: role.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn reserved_resources_are_grouped_by_role() {
        let resources = vec![
            scalar("cpus", 2.0, Some("*")),
            scalar("cpus", 1.0, Some("web")),
            scalar("mem", 64.0, None),
        ];
        let (reserved, unreserved) = split_by_reservation(&resources);
        assert_eq!(unreserved.len(), 2);
        assert_eq!(reserved.keys().collect::<Vec<_>>(), vec!["web"]);
        let rendered = by_role(&reserved, flat);
        assert_eq!(rendered["web"]["cpus"], json!(1.0));
    }
}
