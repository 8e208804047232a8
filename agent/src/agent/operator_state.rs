//! The agent's state as typed operator API messages (`GET_STATE`,
//! `GET_FRAMEWORKS`, `GET_EXECUTORS`, `GET_TASKS`).

use mesos_proto::v1::{self, agent::response};

use super::Agent;
use super::model::{Executor, Framework, Task};

impl Agent {
    pub(super) fn operator_state(&self) -> response::GetState {
        let agent_id = v1::AgentId {
            value: self.agent_id.clone().unwrap_or_default(),
        };
        let mut tasks = response::GetTasks::default();
        let mut executors = response::GetExecutors::default();
        let mut frameworks = response::GetFrameworks::default();
        let framework_entry = |f: &Framework| response::get_frameworks::Framework {
            framework_info: f.info.clone(),
        };
        let executor_entry = |e: &Executor| response::get_executors::Executor {
            executor_info: e.info.clone(),
        };
        for framework in self.frameworks.values() {
            frameworks.frameworks.push(framework_entry(framework));
            for executor in framework.executors.values() {
                executors.executors.push(executor_entry(executor));
                for info in &executor.queued {
                    tasks
                        .queued_tasks
                        .push(task(&Task::new(info.clone()), executor, &agent_id));
                }
                for t in executor.launched.values() {
                    let list = if t.state.is_terminal() {
                        &mut tasks.terminated_tasks
                    } else {
                        &mut tasks.launched_tasks
                    };
                    list.push(task(t, executor, &agent_id));
                }
                for t in &executor.completed {
                    tasks.completed_tasks.push(task(t, executor, &agent_id));
                }
            }
            for executor in &framework.completed_executors {
                executors.completed_executors.push(executor_entry(executor));
                for t in executor.launched.values().chain(&executor.completed) {
                    tasks.completed_tasks.push(task(t, executor, &agent_id));
                }
            }
        }
        for framework in &self.completed_frameworks {
            frameworks
                .completed_frameworks
                .push(framework_entry(framework));
        }
        response::GetState {
            get_tasks: Some(tasks),
            get_executors: Some(executors),
            get_frameworks: Some(frameworks),
        }
    }

    pub(super) fn operator_agent_info(&self) -> v1::AgentInfo {
        self.agent_info()
    }
}

fn task(t: &Task, executor: &Executor, agent_id: &v1::AgentId) -> v1::Task {
    let info = &t.info;
    v1::Task {
        name: info.name.clone(),
        task_id: info.task_id.clone(),
        framework_id: executor.info.framework_id.clone().unwrap_or_default(),
        // The command executor is the agent's business, not the framework's.
        executor_id: (!executor.command_executor).then(|| executor.info.executor_id.clone()),
        agent_id: agent_id.clone(),
        state: t.state as i32,
        resources: info.resources.clone(),
        statuses: t
            .statuses
            .iter()
            .map(|(state, timestamp)| v1::TaskStatus {
                task_id: info.task_id.clone(),
                state: *state as i32,
                timestamp: Some(*timestamp),
                agent_id: Some(agent_id.clone()),
                ..Default::default()
            })
            .collect(),
        labels: info.labels.clone(),
        discovery: info.discovery.clone().map(Box::new),
        container: info.container.clone().map(Box::new),
        health_check: info.health_check.clone().map(Box::new),
        kill_policy: info.kill_policy,
        user: info.command.as_ref().and_then(|c| c.user.clone()),
        ..Default::default()
    }
}
