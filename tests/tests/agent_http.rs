//! The agent's read-only HTTP surface over its containers, through a real
//! master and agent: `/files/*` serving a running task's sandbox (and
//! nothing outside it), `/monitor/statistics` and `/containers` measuring
//! it, and finished sandboxes garbage collected after `--gc_delay`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::raw_http;
use serde_json::Value;

async fn subscribe(cluster: &Cluster) -> (SchedulerClient, EventStream) {
    let mut client = SchedulerClient::new(&cluster.master);
    let events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "agent-http".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    (client, events)
}

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

/// Launches one command task on the first offer and waits for `until`.
async fn run_task(cluster: &Cluster, id: &str, command: &str, until: TaskState) -> SchedulerClient {
    let (client, mut events) = subscribe(cluster).await;
    let offer = loop {
        if let Some(offers) = next(&mut events).await.offers {
            break offers.offers.into_iter().next().expect("an offer");
        }
    };
    let task = v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.5), scalar("mem", 64.0)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.launch(&offer.id, vec![task], None).await.unwrap();
    loop {
        if let Some(update) = next(&mut events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            let state = update.status.state();
            if state == until {
                return client;
            }
            assert!(
                !state.is_terminal(),
                "task ended {state:?}: {:?}",
                update.status.message
            );
        }
    }
}

fn get(cluster: &Cluster, path: &str) -> raw_http::Response {
    raw_http::get(&cluster.agents[0], path).unwrap()
}

fn get_json(cluster: &Cluster, path: &str) -> Value {
    let response = get(cluster, path);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    serde_json::from_slice(&response.body).unwrap()
}

/// The (framework id, sandbox directory) of the agent's executor `id`, live
/// or completed.
fn executor_dir(cluster: &Cluster, id: &str) -> (String, String) {
    let state = get_json(cluster, "/state");
    // A framework whose last executor ended is archived at once.
    let frameworks = ["frameworks", "completed_frameworks"]
        .iter()
        .flat_map(|key| state[*key].as_array().cloned().unwrap_or_default());
    for framework in frameworks {
        for key in ["executors", "completed_executors"] {
            for executor in framework[key].as_array().into_iter().flatten() {
                if executor["id"] == id {
                    return (
                        framework["id"].as_str().unwrap().to_string(),
                        executor["directory"].as_str().unwrap().to_string(),
                    );
                }
            }
        }
    }
    panic!("no executor {id} in {state}");
}

#[tokio::test]
async fn files_serve_a_running_sandbox_and_nothing_outside_it() {
    let cluster = Cluster::start();
    let _client = run_task(
        &cluster,
        "writer",
        "echo hello-sandbox; printf 'some data' > out.txt; mkdir d; \
         ln -s /etc/passwd passwd; ln -s ../../../../../../../../../../../etc/hostname up; \
         ln -s out.txt alias; exec sleep 1000",
        TaskState::TaskRunning,
    )
    .await;
    let (framework_id, dir) = executor_dir(&cluster, "writer");
    // The command may still be writing: wait for its last file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&dir).join("alias").exists() {
        assert!(Instant::now() < deadline, "task never wrote its files");
        std::thread::sleep(Duration::from_millis(50));
    }

    let listing = get_json(&cluster, &format!("/files/browse?path={dir}"));
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    for name in ["alias", "d", "out.txt", "passwd", "stderr", "stdout", "up"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let d = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("/d"))
        .unwrap();
    assert!(d["mode"].as_str().unwrap().starts_with('d'), "{d}");

    // Host path and Mesos's virtual path name the same file.
    let read = get_json(
        &cluster,
        &format!("/files/read?path={dir}/out.txt&offset=0"),
    );
    assert_eq!(read["data"], "some data");
    assert_eq!(read["offset"], 0);
    let virtual_path = format!("/frameworks/{framework_id}/executors/writer/runs/latest");
    let read = get_json(
        &cluster,
        &format!("/files/read?path={virtual_path}/alias&offset=5&length=2"),
    );
    assert_eq!(read["data"], "da");
    let size = get_json(
        &cluster,
        &format!("/files/read?path={virtual_path}/out.txt"),
    );
    assert_eq!(size, serde_json::json!({"offset": 9, "data": ""}));

    let download = get(&cluster, &format!("/files/download?path={dir}/stdout"));
    assert_eq!(download.status, 200);
    assert!(
        download.text().contains("hello-sandbox"),
        "{}",
        download.text()
    );
    assert!(
        download
            .header("content-disposition")
            .unwrap()
            .contains("stdout")
    );

    // Every way out is refused.
    for (path, status) in [
        (format!("{dir}/passwd"), 403),
        (format!("{dir}/up"), 403),
        (format!("{dir}/../../../../../../../etc/passwd"), 403),
        (format!("{virtual_path}/../../other/runs/latest"), 403),
        ("/etc/passwd".to_string(), 404),
        (format!("{dir}/missing"), 404),
    ] {
        for endpoint in ["read", "download", "browse"] {
            let response = get(&cluster, &format!("/files/{endpoint}?path={path}&offset=0"));
            assert_eq!(
                response.status,
                status,
                "/files/{endpoint} {path}: {}",
                response.text()
            );
        }
    }
    assert_eq!(get(&cluster, "/files/read").status, 400);
    assert_eq!(
        get(&cluster, &format!("/files/read?path={dir}/stdout&offset=x")).status,
        400
    );
}

#[tokio::test]
async fn monitor_statistics_and_containers_measure_a_running_task() {
    let cluster = Cluster::start();
    let _client = run_task(&cluster, "sleeper", "sleep 1000", TaskState::TaskRunning).await;

    let stats = get_json(&cluster, "/monitor/statistics");
    let entry = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "sleeper")
        .unwrap_or_else(|| panic!("sleeper missing from {stats}"));
    let s = &entry["statistics"];
    // The executor and its task's shell or sleep.
    assert!(s["processes"].as_u64().unwrap() >= 2, "{s}");
    assert!(s["mem_rss_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["cpus_limit"].as_f64().unwrap() >= 0.5, "{s}");
    assert!(s["mem_limit_bytes"].as_u64().unwrap() >= 64 << 20, "{s}");
    assert!(s["timestamp"].as_f64().unwrap() > 1.0e9, "{s}");

    let containers = get_json(&cluster, "/containers");
    let container = &containers.as_array().unwrap()[0];
    assert_eq!(container["executor_id"], "sleeper");
    assert!(container["status"]["executor_pid"].as_u64().unwrap() > 1);
    assert_eq!(
        container["status"]["container_id"]["value"],
        container["container_id"]
    );
}

#[tokio::test]
async fn finished_sandboxes_are_garbage_collected_after_gc_delay() {
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--gc_delay=2secs".into(),
            "--disk_watch_interval=1secs".into(),
        ],
        ..Options::default()
    });
    let _client = run_task(&cluster, "brief", "echo bye", TaskState::TaskFinished).await;
    let (_, dir) = executor_dir(&cluster, "brief");
    let dir = std::path::PathBuf::from(dir);
    let executor_dir = dir
        .parent()
        .and_then(|runs| runs.parent())
        .unwrap()
        .to_path_buf();
    assert!(dir.join("stdout").exists(), "sandbox gone before its delay");
    let deadline = Instant::now() + Duration::from_secs(30);
    while executor_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "{} still there long after --gc_delay",
            executor_dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
