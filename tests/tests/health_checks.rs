//! Health checks and generalized checks run by the command executor,
//! through a real master and agent: a COMMAND health check that turns
//! unhealthy kills its task, an HTTP health check against a server the
//! task runs, a TCP check whose result changes, and a malformed check that
//! fails its task with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::Duration;

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState, check_info, health_check, task_status::Reason};
use mesos_tests::cluster::Cluster;
use mesos_tests::framework::Framework;

/// A command task (0.1 cpus, 32 MB) with the offer's first port in `$PORT`.
fn task(offer: &v1::Offer, id: &str, command: &str) -> (v1::TaskInfo, u32) {
    let port = offer
        .resources
        .iter()
        .find(|r| r.name == "ports")
        .and_then(|r| r.ranges.as_ref())
        .and_then(|r| r.range.first())
        .map(|r| u32::try_from(r.begin).unwrap())
        .expect("a port in the offer");
    let info = v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![
            scalar("cpus", 0.1),
            scalar("mem", 32.0),
            v1::Resource {
                name: "ports".into(),
                r#type: v1::value::Type::Ranges as i32,
                ranges: Some(v1::value::Ranges {
                    range: vec![v1::value::Range {
                        begin: u64::from(port),
                        end: u64::from(port),
                    }],
                }),
                ..Default::default()
            },
        ],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            environment: Some(v1::Environment {
                variables: vec![v1::environment::Variable {
                    name: "PORT".into(),
                    value: Some(port.to_string()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    (info, port)
}

fn fast(kind: health_check::Type) -> v1::HealthCheck {
    v1::HealthCheck {
        r#type: Some(kind as i32),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.2),
        timeout_seconds: Some(2.0),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(2),
        ..Default::default()
    }
}

/// Updates of the task until it is terminal or `stop` says so.
async fn follow(
    framework: &mut Framework,
    mut stop: impl FnMut(&v1::TaskStatus) -> bool,
) -> Vec<v1::TaskStatus> {
    let mut seen: Vec<v1::TaskStatus> = Vec::new();
    loop {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}; so far: {seen:#?}"));
        let done = status.state().is_terminal() || stop(&status);
        seen.push(status);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_health_check_kills_its_task() {
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "health", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    // Healthy until the task creates `sick`.
    let (mut info, _) = task(&offer, "patient", "sleep 1; touch sick; sleep 1000");
    info.health_check = Some(v1::HealthCheck {
        command: Some(v1::CommandInfo {
            value: Some("test ! -e sick".into()),
            ..Default::default()
        }),
        ..fast(health_check::Type::Command)
    });
    framework
        .client
        .launch(&offer.id, vec![info], None)
        .await
        .unwrap();
    let seen = follow(&mut framework, |_| false).await;
    let health: Vec<Option<bool>> = seen
        .iter()
        .filter(|s| s.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32))
        .map(|s| s.healthy)
        .collect();
    assert_eq!(
        health,
        vec![Some(true), Some(false), Some(false)],
        "{seen:#?}"
    );
    let last = seen.last().unwrap();
    assert_eq!(last.state(), TaskState::TaskKilled, "{last:?}");
    assert_eq!(last.healthy, Some(false), "{last:?}");
    assert!(
        last.message
            .as_deref()
            .unwrap_or_default()
            .contains("health check"),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_health_check_and_a_tcp_check_report_what_the_task_serves() {
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "health", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    // The server starts after a second: the TCP check sees it come up.
    let (mut info, port) = task(
        &offer,
        "web",
        "sleep 1; exec python3 -m http.server --bind 127.0.0.1 $PORT",
    );
    info.health_check = Some(v1::HealthCheck {
        http: Some(health_check::HttpCheckInfo {
            port,
            path: Some("/".into()),
            ..Default::default()
        }),
        // The server's start-up is in the grace period.
        grace_period_seconds: Some(30.0),
        ..fast(health_check::Type::Http)
    });
    info.check = Some(v1::CheckInfo {
        r#type: Some(check_info::Type::Tcp as i32),
        tcp: Some(check_info::Tcp { port }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.2),
        timeout_seconds: Some(2.0),
        ..Default::default()
    });
    framework
        .client
        .launch(&offer.id, vec![info], None)
        .await
        .unwrap();
    // Until the health check passed and the check saw the port accept.
    let (mut healthy, mut accepted) = (false, false);
    let seen = follow(&mut framework, |s| {
        healthy |= s.healthy == Some(true);
        accepted |= tcp_result(s) == Some(true);
        healthy && accepted
    })
    .await;
    let running = seen
        .iter()
        .find(|s| s.state() == TaskState::TaskRunning)
        .unwrap();
    assert!(running.check_status.is_some(), "{running:?}");
    assert_eq!(tcp_result(running), None, "no result yet: {running:?}");
    let last = seen.last().unwrap();
    assert_eq!(last.state(), TaskState::TaskRunning, "{seen:#?}");
    assert!(
        seen.iter()
            .filter(|s| tcp_result(s).is_some())
            .all(|s| s.reason == Some(Reason::TaskCheckStatusUpdated as i32)
                || s.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32)),
        "{seen:#?}"
    );

    framework
        .client
        .kill(&v1::TaskId {
            value: "web".into(),
        })
        .await
        .unwrap();
    let end = follow(&mut framework, |_| false).await;
    assert_eq!(end.last().unwrap().state(), TaskState::TaskKilled);
}

fn tcp_result(status: &v1::TaskStatus) -> Option<bool> {
    status.check_status.as_ref()?.tcp.as_ref()?.succeeded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_health_check_fails_its_task_with_the_reason() {
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "health", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    let (mut info, _) = task(&offer, "broken", "sleep 1000");
    // HTTP without the port to probe.
    info.health_check = Some(fast(health_check::Type::Http));
    framework
        .client
        .launch(&offer.id, vec![info], None)
        .await
        .unwrap();
    let seen = follow(&mut framework, |_| false).await;
    let last = seen.last().unwrap();
    assert_eq!(last.state(), TaskState::TaskFailed, "{seen:#?}");
    assert!(
        last.message
            .as_deref()
            .unwrap_or_default()
            .contains("'http'"),
        "{last:?}"
    );
}
