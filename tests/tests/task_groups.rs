//! Task groups (LAUNCH_GROUP) through a real master and agent: the default
//! executor runs each task in a container nested in its own, with its
//! sandbox under the executor's `containers/`; a group lives and dies
//! together; invalid groups are refused whole.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{
    self, TaskState, framework_info, scheduler, scheduler::event, task_status::Reason,
};
use mesos_tests::cluster::Cluster;

async fn subscribe(cluster: &Cluster) -> (SchedulerClient, EventStream, v1::Offer) {
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "pods".into(),
            capabilities: vec![framework_info::Capability {
                r#type: Some(framework_info::capability::Type::TaskKillingState as i32),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let offer = loop {
        if let Some(offers) = next(&mut events).await.offers {
            break offers.offers.into_iter().next().unwrap();
        }
    };
    (client, events, offer)
}

async fn next(events: &mut EventStream) -> scheduler::Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        if event.r#type() != event::Type::Heartbeat {
            return event;
        }
    }
}

fn executor() -> v1::ExecutorInfo {
    v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Default as i32),
        executor_id: v1::ExecutorId {
            value: "pod".into(),
        },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        ..Default::default()
    }
}

fn task(offer: &v1::Offer, id: &str, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 16.0)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Every state each task goes through until all of `ids` are terminal.
async fn run_to_end(
    client: &SchedulerClient,
    events: &mut EventStream,
    ids: &[&str],
) -> BTreeMap<String, Vec<v1::TaskStatus>> {
    let mut seen: BTreeMap<String, Vec<v1::TaskStatus>> = BTreeMap::new();
    while !ids.iter().all(|id| {
        seen.get(*id)
            .and_then(|s| s.last())
            .is_some_and(|s| s.state().is_terminal())
    }) {
        if let Some(update) = next(events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            seen.entry(update.status.task_id.value.clone())
                .or_default()
                .push(update.status);
        }
    }
    seen
}

fn states(statuses: &[v1::TaskStatus]) -> Vec<TaskState> {
    statuses.iter().map(|s| s.state()).collect()
}

#[tokio::test]
async fn a_group_runs_its_tasks_in_nested_containers() {
    let cluster = Cluster::start();
    let (client, mut events, offer) = subscribe(&cluster).await;
    let tasks = vec![
        task(&offer, "web", "echo web > who; sleep 1"),
        task(&offer, "sidecar", "echo sidecar > who; sleep 1"),
    ];
    client
        .launch_group(&offer.id, executor(), tasks)
        .await
        .unwrap();
    let seen = run_to_end(&client, &mut events, &["web", "sidecar"]).await;
    for id in ["web", "sidecar"] {
        assert_eq!(
            states(&seen[id]),
            vec![
                TaskState::TaskStarting,
                TaskState::TaskRunning,
                TaskState::TaskFinished
            ],
            "{id}: {:?}",
            seen[id]
        );
        let nested = seen[id][1]
            .container_status
            .as_ref()
            .unwrap()
            .container_id
            .as_ref()
            .unwrap();
        assert!(nested.parent.is_some(), "{id} runs in a nested container");
    }

    // Each task wrote into its own nested sandbox under the executor's.
    let state = cluster.state();
    let agent_state: serde_json::Value =
        mesos_cli::http_get::get_json(&format!("http://{}/state", cluster.agents[0]))
            .await
            .unwrap();
    // The framework may already be archived: the agent drops it with its
    // last executor.
    let executor_dir = ["frameworks", "completed_frameworks"]
        .iter()
        .flat_map(|key| agent_state[*key].as_array().cloned().unwrap_or_default())
        .flat_map(|f| {
            ["executors", "completed_executors"]
                .iter()
                .flat_map(|key| f[*key].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .find(|e| e["id"] == "pod")
        .map(|e| e["directory"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no executor in {agent_state}"));
    let mut written = Vec::new();
    for entry in std::fs::read_dir(format!("{executor_dir}/containers")).unwrap() {
        written.push(std::fs::read_to_string(entry.unwrap().path().join("who")).unwrap());
    }
    written.sort();
    assert_eq!(written, vec!["sidecar\n", "web\n"]);
    assert_eq!(
        state["frameworks"][0]["completed_tasks"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{state}"
    );
}

#[tokio::test]
async fn a_failing_task_takes_its_group_down() {
    let cluster = Cluster::start();
    let (client, mut events, offer) = subscribe(&cluster).await;
    let tasks = vec![
        task(&offer, "crasher", "sleep 0.5; exit 3"),
        task(&offer, "server", "exec sleep 1000"),
    ];
    client
        .launch_group(&offer.id, executor(), tasks)
        .await
        .unwrap();
    let seen = run_to_end(&client, &mut events, &["crasher", "server"]).await;
    let crasher = seen["crasher"].last().unwrap();
    assert_eq!(crasher.state(), TaskState::TaskFailed);
    assert!(crasher.message().contains("status 3"), "{crasher:?}");
    assert_eq!(
        states(&seen["server"]),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskKilled
        ]
    );
}

#[tokio::test]
async fn killing_one_task_kills_the_group() {
    let cluster = Cluster::start();
    let (client, mut events, offer) = subscribe(&cluster).await;
    let tasks = vec![
        task(&offer, "a", "exec sleep 1000"),
        task(&offer, "b", "exec sleep 1000"),
    ];
    client
        .launch_group(&offer.id, executor(), tasks)
        .await
        .unwrap();
    let mut running = 0;
    while running < 2 {
        if let Some(update) = next(&mut events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            if update.status.state() == TaskState::TaskRunning {
                running += 1;
            }
        }
    }
    client
        .kill(&v1::TaskId { value: "a".into() })
        .await
        .unwrap();
    let seen = run_to_end(&client, &mut events, &["a", "b"]).await;
    for id in ["a", "b"] {
        assert_eq!(
            seen[id].last().unwrap().state(),
            TaskState::TaskKilled,
            "{id}: {:?}",
            seen[id]
        );
    }
}

#[tokio::test]
async fn an_invalid_group_is_refused_whole() {
    let cluster = Cluster::start();
    let (client, mut events, offer) = subscribe(&cluster).await;
    let mut bad = task(&offer, "bad", "true");
    bad.executor = Some(executor());
    let tasks = vec![task(&offer, "good", "true"), bad];
    client
        .launch_group(&offer.id, executor(), tasks)
        .await
        .unwrap();
    let seen = run_to_end(&client, &mut events, &["good", "bad"]).await;
    for id in ["good", "bad"] {
        let status = &seen[id][0];
        assert_eq!(seen[id].len(), 1);
        assert_eq!(status.state(), TaskState::TaskError);
        assert_eq!(status.reason(), Reason::TaskGroupInvalid);
        assert!(
            status
                .message()
                .contains("'TaskInfo.executor' must not be set"),
            "{status:?}"
        );
    }
}

#[tokio::test]
async fn a_task_failing_its_health_check_takes_its_group_down() {
    let cluster = Cluster::start();
    let (client, mut events, offer) = subscribe(&cluster).await;
    let mut sick = task(&offer, "sick", "sleep 1000");
    sick.health_check = Some(v1::HealthCheck {
        r#type: Some(v1::health_check::Type::Command as i32),
        command: Some(v1::CommandInfo {
            value: Some("exit 1".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.2),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(2),
        ..Default::default()
    });
    let tasks = vec![sick, task(&offer, "sibling", "sleep 1000")];
    client
        .launch_group(&offer.id, executor(), tasks)
        .await
        .unwrap();
    let seen = run_to_end(&client, &mut events, &["sick", "sibling"]).await;
    let health: Vec<Option<bool>> = seen["sick"]
        .iter()
        .filter(|s| s.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32))
        .map(|s| s.healthy)
        .collect();
    assert_eq!(
        health,
        vec![Some(false), Some(false)],
        "{:#?}",
        seen["sick"]
    );
    let last = seen["sick"].last().unwrap();
    assert_eq!(last.state(), TaskState::TaskKilled, "{last:?}");
    assert_eq!(last.healthy, Some(false), "{last:?}");
    assert_eq!(
        seen["sibling"].last().unwrap().state(),
        TaskState::TaskKilled
    );
}
