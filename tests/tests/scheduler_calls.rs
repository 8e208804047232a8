//! Scheduler calls beyond launching: offer timeouts and rescinds,
//! reconciliation, declines with filters, SHUTDOWN, UPDATE_FRAMEWORK and
//! RECONCILE_OPERATIONS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};

async fn subscribe(cluster: &Cluster) -> (SchedulerClient, EventStream) {
    let mut client = SchedulerClient::new(&cluster.master);
    let events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "calls".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    (client, events)
}

/// The next event other than a heartbeat.
async fn next(events: &mut EventStream) -> scheduler::Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        if event.r#type() != event::Type::Heartbeat {
            return event;
        }
    }
}

async fn next_offer(events: &mut EventStream) -> v1::Offer {
    loop {
        let event = next(events).await;
        if let Some(offers) = event.offers {
            return offers.offers.into_iter().next().expect("an offer");
        }
    }
}

#[tokio::test]
async fn unused_offers_are_rescinded_after_the_offer_timeout() {
    let cluster = Cluster::start_with(Options {
        master_flags: vec![
            "--allocation_interval=100ms".into(),
            "--offer_timeout=300ms".into(),
        ],
        ..Options::default()
    });
    let (_client, mut events) = subscribe(&cluster).await;
    let offer = next_offer(&mut events).await;
    let event = next(&mut events).await;
    assert_eq!(event.r#type(), event::Type::Rescind);
    assert_eq!(event.rescind.unwrap().offer_id, offer.id);
    // The resources come back in a new offer.
    let again = next_offer(&mut events).await;
    assert_ne!(again.id, offer.id);
    assert_eq!(again.resources, offer.resources);
}

#[tokio::test]
async fn declined_resources_are_filtered_for_refuse_seconds() {
    let cluster = Cluster::start();
    let (client, mut events) = subscribe(&cluster).await;
    let offer = next_offer(&mut events).await;
    client.decline(&offer.id, 1.0).await.unwrap();
    let declined_at = Instant::now();
    let again = next_offer(&mut events).await;
    assert!(
        declined_at.elapsed() >= Duration::from_millis(900),
        "re-offered after {:?}, before the filter expired",
        declined_at.elapsed()
    );
    assert_eq!(again.resources, offer.resources);
}

#[tokio::test]
async fn reconciliation_reports_known_and_unknown_tasks() {
    let cluster = Cluster::start();
    let (client, mut events) = subscribe(&cluster).await;
    let offer = next_offer(&mut events).await;
    let task = v1::TaskInfo {
        name: "sleeper".into(),
        task_id: v1::TaskId {
            value: "sleeper".into(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some("sleep 1000".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.launch(&offer.id, vec![task], None).await.unwrap();
    loop {
        let event = next(&mut events).await;
        if let Some(update) = event.update {
            client.acknowledge(&update.status).await.unwrap();
            if update.status.state() == TaskState::TaskRunning {
                break;
            }
        }
    }

    let reconcile = |tasks: Vec<&str>| scheduler::Call {
        r#type: Some(scheduler::call::Type::Reconcile as i32),
        reconcile: Some(scheduler::call::Reconcile {
            tasks: tasks
                .into_iter()
                .map(|t| scheduler::call::reconcile::Task {
                    task_id: v1::TaskId { value: t.into() },
                    agent_id: None,
                })
                .collect(),
        }),
        ..Default::default()
    };
    // Explicit: a known task and an unknown one.
    client
        .call(reconcile(vec!["sleeper", "ghost"]))
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 2 {
        if let Some(update) = next(&mut events).await.update {
            let s = update.status;
            assert!(
                s.uuid.is_none(),
                "reconciliation updates are not acknowledged"
            );
            assert_eq!(s.reason(), v1::task_status::Reason::Reconciliation);
            seen.insert(s.task_id.value.clone(), s.state());
        }
    }
    assert_eq!(seen["sleeper"], TaskState::TaskRunning);
    assert_eq!(seen["ghost"], TaskState::TaskLost);

    // Implicit: every task the master knows of this framework.
    client.call(reconcile(vec![])).await.unwrap();
    let status = loop {
        if let Some(update) = next(&mut events).await.update {
            break update.status;
        }
    };
    assert_eq!(status.task_id.value, "sleeper");
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert_eq!(status.agent_id, Some(offer.agent_id.clone()));

    // TEARDOWN kills it; the master frees its resources.
    client.teardown().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.metric("master/cpus_used") != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "resources still in use after teardown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cluster.state()["completed_frameworks"][0]["completed_tasks"][0]["state"],
        "TASK_KILLED"
    );
}

/// Launches `sleep 1000` as task `id` and waits until it runs.
async fn run_sleeper(client: &SchedulerClient, events: &mut EventStream, id: &str) -> v1::Offer {
    let offer = next_offer(events).await;
    let task = v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some("sleep 1000".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.launch(&offer.id, vec![task], None).await.unwrap();
    loop {
        if let Some(update) = next(events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            if update.status.state() == TaskState::TaskRunning {
                return offer;
            }
        }
    }
}

#[tokio::test]
async fn shutdown_ends_an_executor_and_its_task() {
    let cluster = Cluster::start();
    let (client, mut events) = subscribe(&cluster).await;
    let offer = run_sleeper(&client, &mut events, "doomed").await;
    client
        .call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Shutdown as i32),
            shutdown: Some(scheduler::call::Shutdown {
                // A command task's executor has the task's ID.
                executor_id: v1::ExecutorId {
                    value: "doomed".into(),
                },
                agent_id: offer.agent_id.clone(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    loop {
        if let Some(update) = next(&mut events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            let state = update.status.state();
            if state.is_terminal() {
                assert_eq!(state, TaskState::TaskKilled, "{:?}", update.status);
                break;
            }
        }
    }
}

#[tokio::test]
async fn update_framework_renames_and_moves_roles_but_keeps_the_user() {
    let cluster = Cluster::start();
    let (client, mut events) = subscribe(&cluster).await;
    let offer = run_sleeper(&client, &mut events, "stays").await;
    let update = |info: v1::FrameworkInfo| scheduler::Call {
        r#type: Some(scheduler::call::Type::UpdateFramework as i32),
        update_framework: Some(scheduler::call::UpdateFramework {
            framework_info: info,
            suppressed_roles: vec![],
            offer_constraints: None,
        }),
        ..Default::default()
    };
    let info = v1::FrameworkInfo {
        user: String::new(),
        name: "renamed".into(),
        id: client.framework_id().cloned(),
        role: Some("dev".into()),
        ..Default::default()
    };
    client.call(update(info.clone())).await.unwrap();
    let state = cluster.state();
    let framework = &state["frameworks"][0];
    assert_eq!(framework["name"], "renamed", "{framework}");
    assert_eq!(framework["role"], "dev", "{framework}");
    assert_eq!(
        framework["tasks"].as_array().unwrap().len(),
        1,
        "tasks stay"
    );
    // Offers keep coming, now for the new role.
    let again = next_offer(&mut events).await;
    assert_eq!(again.agent_id, offer.agent_id);
    assert_eq!(
        again.allocation_info, None,
        "not MULTI_ROLE: no allocation_info"
    );

    let changed_user = client
        .call(update(v1::FrameworkInfo {
            user: "someone-else".into(),
            ..info
        }))
        .await;
    assert!(
        changed_user
            .as_ref()
            .is_err_and(|e| e.to_string().contains("400")),
        "{changed_user:?}"
    );
}

#[tokio::test]
async fn reconcile_operations_reports_unknown_operations() {
    let cluster = Cluster::start();
    let (client, mut events) = subscribe(&cluster).await;
    client
        .call(scheduler::Call {
            r#type: Some(scheduler::call::Type::ReconcileOperations as i32),
            reconcile_operations: Some(scheduler::call::ReconcileOperations {
                operations: vec![scheduler::call::reconcile_operations::Operation {
                    operation_id: v1::OperationId {
                        value: "op-1".into(),
                    },
                    agent_id: None,
                    resource_provider_id: None,
                }],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    loop {
        let event = next(&mut events).await;
        if let Some(update) = event.update_operation_status {
            assert_eq!(update.status.operation_id.as_ref().unwrap().value, "op-1");
            assert_eq!(update.status.state(), v1::OperationState::OperationUnknown);
            break;
        }
    }
}
