//! The agent survives its own crash: `kill -9` it with checkpointed tasks
//! running (or launching), start it again, and nothing is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_proto::v1::TaskState;
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::{Framework, task_ids};

const RESOURCES: &str = "cpus:8;mem:8192;disk:4096;ports:[31000-32000]";

fn options() -> Options {
    Options {
        agent_resources: RESOURCES.into(),
        ..Options::default()
    }
}

/// Task id -> (state, agent id) in the master's `/master/state`.
fn master_tasks(cluster: &Cluster) -> BTreeMap<String, (String, String)> {
    let state = cluster.state();
    let mut out = BTreeMap::new();
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for task in framework["tasks"].as_array().into_iter().flatten() {
            out.insert(
                task["id"].as_str().unwrap_or_default().to_string(),
                (
                    task["state"].as_str().unwrap_or_default().to_string(),
                    task["slave_id"].as_str().unwrap_or_default().to_string(),
                ),
            );
        }
    }
    out
}

/// (id, active) of each agent the master knows.
fn master_agents(cluster: &Cluster) -> Vec<(String, bool)> {
    cluster.state()["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["active"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            files_named(&path, name, out);
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
}

/// Kills every task and waits for each TASK_KILLED at the scheduler.
async fn kill_all(framework: &mut Framework, ids: &[String]) {
    for id in ids {
        framework
            .client
            .kill(&mesos_proto::v1::TaskId { value: id.clone() })
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
            // Earlier updates may come again (at least once).
            TaskState::TaskKilling | TaskState::TaskRunning | TaskState::TaskStarting => {}
            other => panic!(
                "{}: unexpected {}",
                status.task_id.value,
                other.as_str_name()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_running_tasks_survive_an_agent_kill9() {
    let mut cluster = Cluster::start_with(options());
    let mut framework = Framework::subscribe(&cluster.master, "recovery", true)
        .await
        .unwrap();
    let ids = task_ids("sleeper", 50);
    framework.launch_running(&ids, "sleep 1000").await.unwrap();
    let agents = master_agents(&cluster);
    assert_eq!(agents.len(), 1);
    let agent_id = agents[0].0.clone();

    cluster.kill_agent(0);
    wait_for("the master to notice", Duration::from_secs(10), || {
        master_agents(&cluster).iter().all(|(_, active)| !active)
    });
    cluster.restart_agent(0, &[]).unwrap();
    wait_for("re-registration", Duration::from_secs(20), || {
        master_agents(&cluster) == vec![(agent_id.clone(), true)]
    });
    let tasks = master_tasks(&cluster);
    assert_eq!(tasks.len(), 50);
    for (id, (state, agent)) in &tasks {
        assert_eq!(state, "TASK_RUNNING", "{id}");
        assert_eq!(agent, &agent_id, "{id}");
    }
    // The agent reconnected every executor: killing goes through them.
    kill_all(&mut framework, &ids).await;
    wait_for("the executors to exit", Duration::from_secs(20), || {
        cluster.sandbox_processes().is_empty()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_launch_never_leaves_a_task_silent() {
    let mut cluster = Cluster::start_with(options());
    let mut framework = Framework::subscribe(&cluster.master, "launch-crash", true)
        .await
        .unwrap();
    let ids = task_ids("launching", 20);
    framework.launch(&ids, "sleep 1000").await.unwrap();
    // The first update means launches are under way: some executors are
    // running, others being forked or not started.
    let first = framework
        .next_update(Duration::from_secs(30))
        .await
        .unwrap();
    cluster.kill_agent(0);
    cluster.restart_agent(0, &[]).unwrap();

    // Each task ends up running or gets a terminal update.
    let mut states: BTreeMap<String, TaskState> = BTreeMap::new();
    states.insert(first.task_id.value.clone(), first.state());
    let settled = |states: &BTreeMap<String, TaskState>| {
        ids.iter().all(|id| {
            states
                .get(id)
                .is_some_and(|s| *s == TaskState::TaskRunning || s.is_terminal())
        })
    };
    while !settled(&states) {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("silence: {e}; states so far: {states:?}"));
        let previous = states.get(&status.task_id.value);
        assert!(
            previous.is_none_or(|p| !p.is_terminal()),
            "an update after a terminal one: {status:?}"
        );
        let state = status.state();
        states.insert(status.task_id.value, state);
    }
    let running: Vec<String> = states
        .iter()
        .filter(|(_, s)| **s == TaskState::TaskRunning)
        .map(|(id, _)| id.clone())
        .collect();
    eprintln!("after the crash: {states:?}");
    kill_all(&mut framework, &running).await;
    // No executor is left behind, whatever became of its task.
    wait_for("the executors to exit", Duration::from_secs(20), || {
        cluster.sandbox_processes().is_empty()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_resources_give_a_new_agent_and_kill_old_executors() {
    restart_as_a_new_agent("--resources=cpus:4;mem:4096;disk:4096").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_cleanup_gives_a_new_agent_and_kills_old_executors() {
    restart_as_a_new_agent("--recover=cleanup").await;
}

/// Restarts the agent with `flag`, which must make it start over.
async fn restart_as_a_new_agent(flag: &str) {
    let mut cluster = Cluster::start_with(options());
    let mut framework = Framework::subscribe(&cluster.master, "incompatible", true)
        .await
        .unwrap();
    let ids = task_ids("old", 3);
    framework.launch_running(&ids, "sleep 1000").await.unwrap();
    let old_id = master_agents(&cluster)[0].0.clone();
    assert!(
        cluster.sandbox_processes().len() >= 6,
        "3 executors, 3 tasks"
    );

    cluster.kill_agent(0);
    cluster.restart_agent(0, &[flag.to_string()]).unwrap();
    wait_for("a new agent", Duration::from_secs(20), || {
        master_agents(&cluster)
            .iter()
            .any(|(id, active)| *active && *id != old_id)
    });
    // The old agent's tasks are lost, and their processes gone.
    let mut lost = 0;
    while lost < ids.len() {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(status.state(), TaskState::TaskLost, "{status:?}");
        lost += 1;
    }
    assert!(cluster.sandbox_processes().is_empty());
    let tasks = master_tasks(&cluster);
    assert!(
        tasks.values().all(|(state, _)| state != "TASK_RUNNING"),
        "{tasks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_task_checkpoint_costs_only_its_task() {
    let mut cluster = Cluster::start_with(options());
    let mut framework = Framework::subscribe(&cluster.master, "corrupt", true)
        .await
        .unwrap();
    let ids = task_ids("t", 3);
    framework.launch_running(&ids, "sleep 1000").await.unwrap();
    // Let the acknowledgements reach the executors: an executor that still
    // holds its task as unacknowledged gives it back to the agent on
    // resubscribing, which would repair the damage this test is about.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let agent_id = master_agents(&cluster)[0].0.clone();
    cluster.kill_agent(0);

    let mut infos = Vec::new();
    files_named(
        &cluster.agent_work_dir(0).join("meta"),
        "task.info",
        &mut infos,
    );
    assert_eq!(infos.len(), 3, "{infos:?}");
    let victim = infos
        .iter()
        .find(|p| p.parent().is_some_and(|d| d.ends_with("t-1")))
        .unwrap()
        .clone();
    std::fs::write(&victim, b"\x10\0\0\0garbage, not a TaskInfo").unwrap();

    cluster.restart_agent(0, &[]).unwrap();
    wait_for("re-registration", Duration::from_secs(20), || {
        master_agents(&cluster) == vec![(agent_id.clone(), true)]
    });
    // The lost task is reported; the others keep running (updates whose
    // acknowledgement the crash cut off may come again: at least once).
    loop {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap();
        // Lost by the master (the agent does not report it), or killed
        // with its executor, which has nothing to do for the agent.
        if status.task_id.value == "t-1"
            && matches!(status.state(), TaskState::TaskLost | TaskState::TaskKilled)
        {
            break;
        }
        assert!(
            matches!(
                status.state(),
                TaskState::TaskStarting | TaskState::TaskRunning
            ),
            "{status:?}"
        );
    }
    let tasks = master_tasks(&cluster);
    for id in ["t-0", "t-2"] {
        assert_eq!(tasks[id].0, "TASK_RUNNING", "{tasks:?}");
    }
    let log = std::fs::read_to_string(cluster.dir.path().join("agent-0.log")).unwrap();
    let named = log
        .lines()
        .any(|l| l.contains("ERROR") && l.contains(&victim.display().to_string()));
    assert!(
        named,
        "no error naming {} in the agent log",
        victim.display()
    );
    kill_all(&mut framework, &["t-0".to_string(), "t-2".to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_made_while_the_agent_is_down_is_delivered() {
    let mut cluster = Cluster::start_with(options());
    let mut framework = Framework::subscribe(&cluster.master, "agent-down", true)
        .await
        .unwrap();
    let ids = task_ids("short", 2);
    framework.launch_running(&ids, "sleep 2").await.unwrap();
    cluster.kill_agent(0);
    // The tasks finish while the agent is away; their executors keep the
    // TASK_FINISHED updates and resend them when they resubscribe.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.restart_agent(0, &[]).unwrap();
    let mut finished = Vec::new();
    while finished.len() < ids.len() {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap();
        match status.state() {
            TaskState::TaskFinished => finished.push(status.task_id.value),
            // A resent, not yet acknowledged, earlier update.
            TaskState::TaskRunning | TaskState::TaskStarting => {}
            other => panic!(
                "{}: unexpected {}",
                status.task_id.value,
                other.as_str_name()
            ),
        }
    }
    finished.sort();
    assert_eq!(finished, ids);
    wait_for("the executors to exit", Duration::from_secs(20), || {
        cluster.sandbox_processes().is_empty()
    });
}
