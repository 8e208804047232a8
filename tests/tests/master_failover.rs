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
