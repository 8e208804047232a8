//! The docker containerizer through a real master, agent and Docker Engine
//! (`--containerizers=docker,mesos`): DOCKER command tasks that finish,
//! fail with their exit code, name a missing image, publish a port on the
//! BRIDGE network, and are killed; a plain mesos task beside them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::io::{Read, Write};
use std::time::Duration;

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, container_info, scheduler, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::docker::{self, BUSYBOX};

fn cluster() -> Cluster {
    Cluster::start_with(Options {
        agent_flags: vec!["--containerizers=docker,mesos".into()],
        ..Options::default()
    })
}

async fn subscribe(cluster: &Cluster) -> (SchedulerClient, EventStream) {
    let mut client = SchedulerClient::new(&cluster.master);
    let events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "docker".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    (client, events)
}

async fn next(events: &mut EventStream) -> scheduler::Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.next())
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
        if let Some(offers) = next(events).await.offers {
            return offers.offers.into_iter().next().unwrap();
        }
    }
}

fn docker_task(
    offer: &v1::Offer,
    id: &str,
    image: &str,
    command: &str,
    network: container_info::docker_info::Network,
) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        container: Some(v1::ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(container_info::DockerInfo {
                image: image.into(),
                network: Some(network as i32),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Statuses of one task until it is terminal (or reaches `until`).
async fn follow(
    client: &SchedulerClient,
    events: &mut EventStream,
    id: &str,
    until: Option<TaskState>,
) -> Vec<v1::TaskStatus> {
    let mut seen = Vec::new();
    loop {
        let Some(update) = next(events).await.update else {
            continue;
        };
        client.acknowledge(&update.status).await.unwrap();
        if update.status.task_id.value != id {
            continue;
        }
        let state = update.status.state();
        seen.push(update.status);
        if state.is_terminal() || Some(state) == until {
            return seen;
        }
    }
}

fn states(statuses: &[v1::TaskStatus]) -> Vec<TaskState> {
    statuses.iter().map(|s| s.state()).collect()
}

#[tokio::test]
async fn docker_tasks_finish_fail_and_report_missing_images() {
    let Some(_engine) = docker::require().await else {
        return;
    };
    let cluster = cluster();
    let (client, mut events) = subscribe(&cluster).await;
    use container_info::docker_info::Network;

    let offer = next_offer(&mut events).await;
    let task = docker_task(
        &offer,
        "hello",
        BUSYBOX,
        "echo hello-from-docker; echo to-stderr >&2",
        Network::Host,
    );
    client
        .launch(&offer.id, vec![task], Some(0.0))
        .await
        .unwrap();
    let seen = follow(&client, &mut events, "hello", None).await;
    assert_eq!(
        states(&seen),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ],
        "{seen:?}"
    );
    let sandbox = sandbox_of(&cluster, "hello");
    let stdout = std::fs::read_to_string(format!("{sandbox}/stdout")).unwrap();
    assert!(stdout.contains("hello-from-docker"), "{stdout}");
    let stderr = std::fs::read_to_string(format!("{sandbox}/stderr")).unwrap();
    assert!(stderr.contains("to-stderr"), "{stderr}");

    let offer = next_offer(&mut events).await;
    let task = docker_task(&offer, "exit3", BUSYBOX, "exit 3", Network::None);
    client
        .launch(&offer.id, vec![task], Some(0.0))
        .await
        .unwrap();
    let failed = follow(&client, &mut events, "exit3", None).await;
    let last = failed.last().unwrap();
    assert_eq!(last.state(), TaskState::TaskFailed);
    assert!(last.message().contains("status 3"), "{last:?}");

    let offer = next_offer(&mut events).await;
    let task = docker_task(
        &offer,
        "noimage",
        "mesos-test/no-such-image:1",
        "true",
        Network::Host,
    );
    client
        .launch(&offer.id, vec![task], Some(0.0))
        .await
        .unwrap();
    let missing = follow(&client, &mut events, "noimage", None).await;
    let last = missing.last().unwrap();
    assert_eq!(last.state(), TaskState::TaskFailed);
    assert!(
        last.message()
            .contains("Failed to pull image 'mesos-test/no-such-image:1'"),
        "{last:?}"
    );

    // A bad parameter is refused with its name.
    let offer = next_offer(&mut events).await;
    let mut task = docker_task(&offer, "badparam", BUSYBOX, "true", Network::Host);
    if let Some(docker) = task.container.as_mut().and_then(|c| c.docker.as_mut()) {
        docker.parameters.push(v1::Parameter {
            key: "frobnicate".into(),
            value: "yes".into(),
        });
    }
    client
        .launch(&offer.id, vec![task], Some(0.0))
        .await
        .unwrap();
    let refused = follow(&client, &mut events, "badparam", None).await;
    let last = refused.last().unwrap();
    assert_eq!(last.state(), TaskState::TaskFailed);
    assert!(last.message().contains("frobnicate"), "{last:?}");
}

#[tokio::test]
async fn a_bridge_task_publishes_its_port_beside_a_mesos_task_and_is_killed() {
    let Some(_engine) = docker::require().await else {
        return;
    };
    let cluster = cluster();
    let (client, mut events) = subscribe(&cluster).await;
    let offer = next_offer(&mut events).await;
    let host_port = 31_000 + u32::from(mesos_tests::cluster::free_port() % 900);
    let mut web = docker_task(
        &offer,
        "web",
        BUSYBOX,
        "mkdir -p /www && echo served-from-docker > /www/index.html && exec httpd -f -p 8080 -h /www",
        container_info::docker_info::Network::Bridge,
    );
    web.resources.push(v1::Resource {
        name: "ports".into(),
        r#type: v1::value::Type::Ranges as i32,
        ranges: Some(v1::value::Ranges {
            range: vec![v1::value::Range {
                begin: u64::from(host_port),
                end: u64::from(host_port),
            }],
        }),
        ..Default::default()
    });
    if let Some(docker) = web.container.as_mut().and_then(|c| c.docker.as_mut()) {
        docker
            .port_mappings
            .push(container_info::docker_info::PortMapping {
                host_port,
                container_port: 8080,
                protocol: Some("tcp".into()),
            });
    }
    let plain = v1::TaskInfo {
        name: "plain".into(),
        task_id: v1::TaskId {
            value: "plain".into(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some("echo plain".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client
        .launch(&offer.id, vec![web, plain], None)
        .await
        .unwrap();

    let mut web_running = false;
    let mut plain_finished = false;
    while !(web_running && plain_finished) {
        let Some(update) = next(&mut events).await.update else {
            continue;
        };
        client.acknowledge(&update.status).await.unwrap();
        let (id, state) = (update.status.task_id.value.clone(), update.status.state());
        match (id.as_str(), state) {
            ("web", TaskState::TaskRunning) => web_running = true,
            ("plain", TaskState::TaskFinished) => plain_finished = true,
            (_, s) if s.is_terminal() => panic!("{id} ended {s:?}: {:?}", update.status.message),
            _ => {}
        }
    }

    // The offered host port reaches the container's port 8080 (through
    // docker-proxy, which can be slow to come up on a busy machine).
    let mut body = String::new();
    for _ in 0..300 {
        if let Ok(text) = http_get(host_port) {
            body = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("served-from-docker"), "{body:?}");

    client
        .kill(&v1::TaskId {
            value: "web".into(),
        })
        .await
        .unwrap();
    let killed = follow(&client, &mut events, "web", None).await;
    assert_eq!(
        killed.last().unwrap().state(),
        TaskState::TaskKilled,
        "{killed:?}"
    );
}

/// A host path visible at the same place in the container, read-only.
fn host_volume(host: &str, inside: &str) -> v1::Volume {
    v1::Volume {
        mode: v1::volume::Mode::Ro as i32,
        container_path: inside.into(),
        host_path: Some(host.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pymesos_executor_runs_inside_a_docker_container() {
    let Some(_engine) = docker::require().await else {
        return;
    };
    let Some(python) = mesos_tests::python::require() else {
        return;
    };
    let cluster = cluster();
    let (client, mut events) = subscribe(&cluster).await;
    let offer = next_offer(&mut events).await;
    // The busybox image gets the host's /usr (python) and C library, and
    // this repository (the venv with pymesos, the executor script), all
    // read-only at the same paths.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let script = format!("{repo}/tests/python/executor.py");
    let executor = v1::ExecutorInfo {
        executor_id: v1::ExecutorId {
            value: "in-docker".into(),
        },
        framework_id: client.framework_id().cloned(),
        command: Some(v1::CommandInfo {
            value: Some(format!("{} {script}", python.display())),
            ..Default::default()
        }),
        container: Some(v1::ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(container_info::DockerInfo {
                image: BUSYBOX.into(),
                // The executor reaches the agent on loopback.
                network: Some(container_info::docker_info::Network::Host as i32),
                ..Default::default()
            }),
            volumes: vec![
                host_volume("/usr", "/usr"),
                host_volume("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"),
                host_volume("/usr/lib64", "/lib64"),
                host_volume(&repo, &repo),
            ],
            ..Default::default()
        }),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 64.0)],
        ..Default::default()
    };
    let task = v1::TaskInfo {
        name: "inside".into(),
        task_id: v1::TaskId {
            value: "inside".into(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        executor: Some(executor),
        ..Default::default()
    };
    client.launch(&offer.id, vec![task], None).await.unwrap();
    let (mut message, mut finished) = (None, false);
    while message.is_none() || !finished {
        let event = next(&mut events).await;
        if let Some(m) = event.message {
            message = Some(String::from_utf8_lossy(&m.data).into_owned());
        }
        if let Some(update) = event.update {
            client.acknowledge(&update.status).await.unwrap();
            let state = update.status.state();
            assert!(
                !state.is_terminal() || state == TaskState::TaskFinished,
                "{:?}",
                update.status
            );
            finished |= state == TaskState::TaskFinished;
        }
    }
    assert_eq!(message.as_deref(), Some("hello from inside in a container"));

    // A custom executor outlives its tasks: tear the framework down and wait
    // for the agent to shut the executor (and its container) down, or the
    // container would outlive the test.
    client.teardown().await.unwrap();
    for _ in 0..300 {
        let state = mesos_tests::raw_http::get(&cluster.agents[0], "/state").unwrap();
        let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
        if state["frameworks"].as_array().is_some_and(|f| f.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the executor was not shut down after the teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymesos_runs_docker_tasks_beside_a_mesos_task() {
    let Some(_engine) = docker::require().await else {
        return;
    };
    let Some(python) = mesos_tests::python::require() else {
        return;
    };
    let cluster = cluster();
    let master = cluster.master.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        mesos_tests::python::run_script(
            &python,
            "docker_tasks.py",
            &[&master, BUSYBOX],
            Duration::from_secs(150),
        )
    })
    .await
    .unwrap();
    assert!(
        outcome.success,
        "docker_tasks.py failed:\n{}",
        outcome.output
    );
}

fn http_get(port: u32) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).unwrap_or(0)))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// The sandbox directory of the agent's executor for task `id` (live or
/// finished).
fn sandbox_of(cluster: &Cluster, id: &str) -> String {
    let state = mesos_tests::raw_http::get(&cluster.agents[0], "/state").unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    ["frameworks", "completed_frameworks"]
        .iter()
        .flat_map(|key| state[*key].as_array().cloned().unwrap_or_default())
        .flat_map(|f| {
            ["executors", "completed_executors"]
                .iter()
                .flat_map(|key| f[*key].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .find(|e| e["id"] == id)
        .and_then(|e| e["directory"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no executor {id} in {state}"))
}
