//! The docker containerizer across an agent crash: `kill -9` the agent with
//! a checkpointed DOCKER task running and start it again; the task keeps
//! running in its container, is measured by the Engine and can be killed.
//! A `mesos-` container with its sandbox in the agent's work directory and
//! no executor is an orphan and removed; another agent's is left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use mesos_docker::{Engine, RunSpec};
use mesos_proto::v1::{self, TaskState, container_info};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::docker::{self, BUSYBOX};
use mesos_tests::framework::Framework;
use serde_json::Value;

fn busybox() -> v1::ContainerInfo {
    v1::ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(container_info::DockerInfo {
            image: BUSYBOX.into(),
            network: Some(container_info::docker_info::Network::None as i32),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Starts `mesos-<id>` running `sleep 1000` with its sandbox bound from
/// `sandbox`, as an agent would have.
async fn start_container(engine: &Engine, id: &str, sandbox: &Path) {
    std::fs::create_dir_all(sandbox).unwrap();
    let container = busybox();
    let command = v1::CommandInfo {
        value: Some("sleep 1000".into()),
        ..Default::default()
    };
    let config = mesos_docker::container_config(&RunSpec {
        container: &container,
        command: Some(&command),
        resources: &[],
        labels: None,
        sandbox,
        sandbox_directory: Path::new("/mnt/mesos/sandbox"),
        env: BTreeMap::new(),
        enable_cfs: false,
    })
    .unwrap();
    engine
        .run(&mesos_docker::container_name(id), config)
        .await
        .unwrap();
}

/// Container id -> running, of the Engine's `mesos-` containers.
async fn containers(engine: &Engine) -> BTreeMap<String, bool> {
    engine
        .mesos_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.container_id, c.running))
        .collect()
}

/// The running `mesos-` container other than `except` whose sandbox is
/// under `dir`.
async fn container_under(engine: &Engine, dir: &Path, except: &str) -> Option<String> {
    engine
        .mesos_containers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| {
            c.running && c.container_id != except && c.mounts.iter().any(|m| m.starts_with(dir))
        })
        .map(|c| c.container_id)
}

async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn master_state(cluster: &Cluster) -> Value {
    cluster.state()
}

fn agent_json(cluster: &Cluster, path: &str) -> Value {
    let response = mesos_tests::raw_http::get(&cluster.agents[0], path).unwrap();
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_task_survives_an_agent_kill9_and_orphans_are_removed() {
    let Some(engine) = docker::require().await else {
        return;
    };
    let mut cluster = Cluster::start_with(Options {
        agent_flags: vec!["--containerizers=docker,mesos".into()],
        ..Options::default()
    });
    let work_dir = cluster.agent_work_dir(0).canonicalize().unwrap();
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (orphan, foreign) = (format!("orphan-{unique}"), format!("foreign-{unique}"));
    start_container(&engine, &orphan, &work_dir.join("slaves/lost/runs/x")).await;
    let elsewhere = tempfile::tempdir().unwrap();
    start_container(&engine, &foreign, elsewhere.path()).await;

    let mut framework = Framework::subscribe(&cluster.master, "docker-recovery", true)
        .await
        .unwrap();
    let ids = vec!["sleeper".to_string()];
    framework
        .launch_running_in(&ids, "sleep 1000", Some(busybox()))
        .await
        .unwrap();
    let task_container = container_under(&engine, &work_dir, &orphan)
        .await
        .expect("the task's container");

    // The Engine measures the container for /monitor/statistics.
    let stats = agent_json(&cluster, "/monitor/statistics");
    let entry = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "sleeper")
        .unwrap_or_else(|| panic!("sleeper missing from {stats}"));
    let s = &entry["statistics"];
    assert!(s["mem_total_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
    assert_eq!(s["mem_limit_bytes"].as_u64(), Some(4 * 1024 * 1024), "{s}");

    let agent_id = master_state(&cluster)["slaves"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    cluster.kill_agent(0);
    wait_for("the master to notice", Duration::from_secs(10), || async {
        master_state(&cluster)["slaves"][0]["active"] == false
    })
    .await;
    cluster.restart_agent(0, &[]).unwrap();
    wait_for("re-registration", Duration::from_secs(20), || async {
        let state = master_state(&cluster);
        state["slaves"][0]["id"] == agent_id.as_str() && state["slaves"][0]["active"] == true
    })
    .await;
    let task = &master_state(&cluster)["frameworks"][0]["tasks"][0];
    assert_eq!(task["state"], "TASK_RUNNING", "{task}");

    wait_for("the orphan's removal", Duration::from_secs(20), || async {
        !containers(&engine).await.contains_key(&orphan)
    })
    .await;
    let now = containers(&engine).await;
    assert_eq!(
        now.get(&task_container),
        Some(&true),
        "the task's container runs on"
    );
    assert_eq!(
        now.get(&foreign),
        Some(&true),
        "another agent's container is left alone"
    );

    // The recovered docker executor still owns its container.
    framework
        .client
        .kill(&v1::TaskId {
            value: "sleeper".into(),
        })
        .await
        .unwrap();
    loop {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap();
        match status.state() {
            TaskState::TaskKilled => break,
            TaskState::TaskRunning | TaskState::TaskStarting | TaskState::TaskKilling => {}
            other => panic!("unexpected {}: {:?}", other.as_str_name(), status.message),
        }
    }
    wait_for(
        "the task's container to go",
        Duration::from_secs(20),
        || async { !containers(&engine).await.contains_key(&task_container) },
    )
    .await;
    engine
        .remove(&mesos_docker::container_name(&foreign))
        .await
        .unwrap();
}
