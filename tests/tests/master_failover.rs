//! The master restarts (`kill -9`, same port and flags, in-memory
//! registry) under running tasks: the agent re-registers with its ID and
//! reports what it runs, the master adopts the tasks, the framework is
//! known (disconnected) until its scheduler subscribes again, and then
//! it can kill its tasks as before.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::Cluster;
use mesos_tests::framework::{Framework, task_ids};
use serde_json::Value;

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A JSON call to the operator API.
fn operator(cluster: &Cluster, body: &str) -> mesos_tests::raw_http::Response {
    mesos_tests::raw_http::request(
        &cluster.master,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap()
}

fn running_tasks(state: &Value) -> usize {
    state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["state"] == "TASK_RUNNING")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_survive_a_master_restart_and_stay_killable() {
    let mut cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "failover", false)
        .await
        .unwrap();
    let ids = task_ids("survivor", 3);
    framework.launch_running(&ids, "sleep 1000").await.unwrap();
    let agent_id = cluster.state()["slaves"][0]["id"].clone();

    cluster.kill_master();
    cluster.restart_master().unwrap();
    wait_for(
        "the agent's tasks at the new master",
        Duration::from_secs(20),
        || {
            let state = cluster.state();
            state["slaves"][0]["id"] == agent_id && running_tasks(&state) == 3
        },
    );
    let state = cluster.state();
    let recovered = &state["frameworks"][0];
    assert_eq!(
        recovered["id"].as_str(),
        framework.client.framework_id().map(|f| f.value.as_str()),
        "{recovered}"
    );
    assert_eq!(recovered["active"], false, "no scheduler yet: {recovered}");

    framework
        .resubscribe(&cluster.master, "failover")
        .await
        .unwrap();
    wait_for("the scheduler back", Duration::from_secs(10), || {
        cluster.state()["frameworks"][0]["active"] == true
    });
    for id in &ids {
        framework
            .client
            .kill(&v1::TaskId { value: id.clone() })
            .await
            .unwrap();
    }
    let mut killed = 0;
    while killed < ids.len() {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap();
        match status.state() {
            TaskState::TaskKilled => killed += 1,
            TaskState::TaskKilling | TaskState::TaskRunning => {}
            other => panic!("{}: {}", status.task_id.value, other.as_str_name()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_master_remembers_its_agents_in_the_registry() {
    let mut cluster = Cluster::start_with(mesos_tests::cluster::Options {
        agents: 2,
        master_flags: vec![
            "--allocation_interval=100ms".into(),
            "--registry=replicated_log".into(),
            "--agent_reregister_timeout=3secs".into(),
        ],
        ..Default::default()
    });
    // Agent i's ID, found by its address.
    let state = cluster.state();
    let ids: Vec<Value> = cluster
        .agents
        .iter()
        .map(|address| {
            state["slaves"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| {
                    a["pid"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(address.as_str()))
                })
                .map(|a| a["id"].clone())
                .unwrap_or_else(|| panic!("no agent at {address}: {state}"))
        })
        .collect();
    let registry = cluster.dir.path().join("master/registry");
    wait_for("the registry file", Duration::from_secs(10), || {
        registry.exists()
    });
    let weights = operator(
        &cluster,
        r#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"analytics","weight":3}]}}"#,
    );
    assert_eq!(weights.status, 200, "{}", weights.text());

    // Agent 1 stays down across the master's restart.
    cluster.kill_agent(1);
    cluster.kill_master();
    cluster.restart_master().unwrap();
    let slave_1 = |state: &Value| {
        state["slaves"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["id"] == ids[1])
    };
    wait_for("agent 0 back", Duration::from_secs(20), || {
        let state = cluster.state();
        state["slaves"][0]["id"] == ids[0] && !slave_1(&state)
    });
    // The absent agent is known from the registry and waited for...
    let state = cluster.state();
    let recovered: Vec<&Value> = state["recovered_slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"]["value"])
        .collect();
    assert_eq!(recovered, vec![&ids[1]], "{state}");
    assert_eq!(state["unreachable_slaves"], 0);
    // The weights an operator set survived too.
    let read = operator(&cluster, r#"{"type":"GET_WEIGHTS"}"#);
    let read: Value = serde_json::from_slice(&read.body).unwrap();
    assert_eq!(
        read["get_weights"]["weight_infos"],
        serde_json::json!([{"role": "analytics", "weight": 3.0}]),
        "{read}"
    );
    // ...until --agent_reregister_timeout, when it becomes unreachable.
    wait_for("agent 1 unreachable", Duration::from_secs(10), || {
        let state = cluster.state();
        state["unreachable_slaves"] == 1
            && state["recovered_slaves"]
                .as_array()
                .is_some_and(|r| r.is_empty())
    });
}
