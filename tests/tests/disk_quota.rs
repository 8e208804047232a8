//! `disk/du` with `--enforce_container_disk_quota`, through a real master
//! and agent: a task whose sandbox outgrows its `disk` resource fails with
//! REASON_CONTAINER_LIMITATION_DISK, while a task within its quota runs
//! on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::Duration;

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState, task_status::Reason};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;

/// A task with `disk_mb` of disk that writes `write_mb` into its sandbox
/// and stays.
fn task(id: &str, disk_mb: f64, write_mb: u32) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        resources: vec![
            scalar("cpus", 0.1),
            scalar("mem", 32.0),
            scalar("disk", disk_mb),
        ],
        command: Some(v1::CommandInfo {
            value: Some(format!(
                "dd if=/dev/zero of=data bs=1M count={write_mb} 2>/dev/null && sleep 1000"
            )),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An agent enforcing disk quotas, checked every 100 ms.
fn cluster() -> Cluster {
    Cluster::start_with(Options {
        agent_flags: vec![
            "--isolation=posix/cpu,posix/mem,disk/du".into(),
            "--enforce_container_disk_quota=true".into(),
            "--container_disk_watch_interval=100ms".into(),
        ],
        ..Options::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_writing_past_its_disk_quota_fails_with_the_disk_limitation() {
    let cluster = cluster();
    let mut framework = Framework::subscribe(&cluster.master, "disk", false)
        .await
        .unwrap();
    framework
        .launch_tasks(vec![task("over", 2.0, 8), task("within", 64.0, 1)])
        .await
        .unwrap();
    // Until the one failed and the other runs, in whichever order.
    let (mut failed, mut running) = (None, false);
    while failed.is_none() || !running {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        match status.task_id.value.as_str() {
            "over" if status.state().is_terminal() => failed = Some(status),
            "within" => {
                assert!(!status.state().is_terminal(), "{status:?}");
                running = status.state() == TaskState::TaskRunning;
            }
            _ => {}
        }
    }
    let failed = failed.unwrap();
    assert_eq!(failed.state(), TaskState::TaskFailed, "{failed:?}");
    assert_eq!(
        failed.reason(),
        Reason::ContainerLimitationDisk,
        "{failed:?}"
    );
    let message = failed.message.unwrap_or_default();
    assert!(message.contains("exceeds quota (2MB)"), "{message}");
    // The other task's 1 MB is within its quota: it runs on.
    let later = framework.next_update(Duration::from_millis(500)).await;
    assert!(later.is_err(), "no further update: {later:?}");
}

/// A DEFAULT executor's container is sized for its whole task group, and
/// grows when a second group joins it: under the quota, neither group's
/// writes exceed what their tasks hold together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_groups_container_holds_every_task_and_grows_with_the_next_group() {
    let cluster = cluster();
    let executor = v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Default as i32),
        executor_id: v1::ExecutorId {
            value: "pod".into(),
        },
        resources: vec![
            scalar("cpus", 0.1),
            scalar("mem", 32.0),
            scalar("disk", 1.0),
        ],
        ..Default::default()
    };
    let mut framework = Framework::subscribe(&cluster.master, "disk-groups", false)
        .await
        .unwrap();
    // 1 MB for the executor, 1 + 16 for the first group: 12 MB fit only
    // if the container counts the group's second task too.
    let groups = [
        vec![task("small", 1.0, 0), task("writer", 16.0, 12)],
        // Another 16 MB, and another 12 MB written: 24 MB fit only if the
        // container grew.
        vec![task("joiner", 16.0, 12)],
    ];
    for group in groups {
        let ids: Vec<String> = group.iter().map(|t| t.task_id.value.clone()).collect();
        let offer = framework.offer().await.unwrap();
        let tasks = group
            .into_iter()
            .map(|mut t| {
                t.agent_id = offer.agent_id.clone();
                t
            })
            .collect();
        framework
            .client
            .launch_group(&offer.id, executor.clone(), tasks)
            .await
            .unwrap();
        let mut running = std::collections::BTreeSet::new();
        while running.len() < ids.len() {
            let status = framework
                .next_update(Duration::from_secs(60))
                .await
                .unwrap();
            assert!(!status.state().is_terminal(), "{status:?}");
            if status.state() == TaskState::TaskRunning {
                running.insert(status.task_id.value);
            }
        }
    }
    // Several watches later, nothing was over its quota.
    let later = framework.next_update(Duration::from_secs(1)).await;
    assert!(later.is_err(), "no further update: {later:?}");
}
