//! The agent operator API (`POST /api/v1` on the agent) through a real
//! master and agent: the GET calls in JSON and protobuf, files, and a
//! `mesos task exec`-style debugging session (a nested container beside a
//! running task, fed through ATTACH_CONTAINER_INPUT, its output streamed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::codec::{self, Format};
use mesos_proto::json;
use mesos_proto::recordio;
use mesos_proto::v1::agent::{Call, ProcessIo, Response, call, process_io, response};
use mesos_proto::v1::{self, TaskState, scheduler, scheduler::event};
use mesos_tests::cluster::Cluster;
use mesos_tests::raw_http;

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

/// Starts `sleep 1000` as task `sleeper` and waits until it runs.
async fn running_task(cluster: &Cluster) -> (SchedulerClient, EventStream) {
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "operator".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let offer = loop {
        if let Some(offers) = next(&mut events).await.offers {
            break offers.offers.into_iter().next().unwrap();
        }
    };
    let task = v1::TaskInfo {
        name: "sleeper".into(),
        task_id: v1::TaskId {
            value: "sleeper".into(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.2), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some("echo started; exec sleep 1000".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.launch(&offer.id, vec![task], None).await.unwrap();
    loop {
        if let Some(update) = next(&mut events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            if update.status.state() == TaskState::TaskRunning {
                return (client, events);
            }
        }
    }
}

fn simple(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// Posts a call and decodes the response in `format`.
fn post(cluster: &Cluster, format: Format, call: &Call) -> raw_http::Response {
    let body = codec::encode(format, call);
    raw_http::request(
        &cluster.agents[0],
        "POST",
        "/api/v1",
        &[
            ("Content-Type", format.media_type()),
            ("Accept", format.media_type()),
        ],
        &body,
    )
    .unwrap()
}

fn answer(cluster: &Cluster, format: Format, call: &Call) -> Response {
    let response = post(cluster, format, call);
    assert_eq!(response.status, 200, "{call:?}: {}", response.text());
    assert_eq!(response.header("content-type"), Some(format.media_type()));
    codec::decode(format, &response.body).unwrap()
}

#[tokio::test]
async fn get_calls_answer_in_json_and_protobuf() {
    let cluster = Cluster::start();
    let _framework = running_task(&cluster).await;
    for format in [Format::Json, Format::Protobuf] {
        let health = answer(&cluster, format, &simple(call::Type::GetHealth));
        assert_eq!(health.r#type(), response::Type::GetHealth);
        assert!(health.get_health.unwrap().healthy);

        let version = answer(&cluster, format, &simple(call::Type::GetVersion));
        assert_eq!(
            version.get_version.unwrap().version_info.version,
            mesos_proto::MESOS_VERSION
        );

        let flags = answer(&cluster, format, &simple(call::Type::GetFlags))
            .get_flags
            .unwrap();
        assert!(flags.flags.iter().any(|f| f.name == "work_dir"));

        let metrics = answer(&cluster, format, &simple(call::Type::GetMetrics))
            .get_metrics
            .unwrap();
        assert!(
            metrics
                .metrics
                .iter()
                .any(|m| m.name == "slave/registered" && m.value == Some(1.0))
        );

        let state = answer(&cluster, format, &simple(call::Type::GetState))
            .get_state
            .unwrap();
        let tasks = state.get_tasks.unwrap();
        assert_eq!(tasks.launched_tasks.len(), 1, "{tasks:?}");
        assert_eq!(tasks.launched_tasks[0].task_id.value, "sleeper");
        assert_eq!(tasks.launched_tasks[0].state(), TaskState::TaskRunning);
        assert_eq!(
            state.get_frameworks.unwrap().frameworks[0]
                .framework_info
                .name,
            "operator"
        );
        assert_eq!(state.get_executors.unwrap().executors.len(), 1);

        let agent = answer(&cluster, format, &simple(call::Type::GetAgent))
            .get_agent
            .unwrap();
        assert!(agent.agent_info.unwrap().id.is_some());

        let containers = answer(&cluster, format, &simple(call::Type::GetContainers))
            .get_containers
            .unwrap();
        assert_eq!(containers.containers.len(), 1);
        let container = &containers.containers[0];
        assert_eq!(container.executor_id.as_ref().unwrap().value, "sleeper");
        assert!(
            container
                .resource_statistics
                .as_ref()
                .unwrap()
                .mem_rss_bytes
                .unwrap()
                > 0
        );
    }
}

#[tokio::test]
async fn files_through_the_operator_api() {
    let cluster = Cluster::start();
    let _framework = running_task(&cluster).await;
    let state = answer(&cluster, Format::Json, &simple(call::Type::GetState))
        .get_state
        .unwrap();
    let framework_id = state.get_frameworks.unwrap().frameworks[0]
        .framework_info
        .id
        .clone()
        .unwrap()
        .value;
    let sandbox = format!("/frameworks/{framework_id}/executors/sleeper/runs/latest");
    let listing = answer(
        &cluster,
        Format::Json,
        &Call {
            list_files: Some(call::ListFiles {
                path: sandbox.clone(),
            }),
            ..simple(call::Type::ListFiles)
        },
    )
    .list_files
    .unwrap();
    assert!(
        listing
            .file_infos
            .iter()
            .any(|f| f.path.ends_with("/stdout"))
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = answer(
            &cluster,
            Format::Protobuf,
            &Call {
                read_file: Some(call::ReadFile {
                    path: format!("{sandbox}/stdout"),
                    offset: 0,
                    length: Some(100),
                }),
                ..simple(call::Type::ReadFile)
            },
        )
        .read_file
        .unwrap();
        if String::from_utf8_lossy(&read.data).contains("started") {
            assert_eq!(read.size, read.data.len() as u64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stdout never showed the task's output"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let escape = post(
        &cluster,
        Format::Json,
        &Call {
            read_file: Some(call::ReadFile {
                path: format!("{sandbox}/../../../../../../etc/passwd"),
                offset: 0,
                length: None,
            }),
            ..simple(call::Type::ReadFile)
        },
    );
    assert_eq!(escape.status, 403, "{}", escape.text());
}

#[tokio::test]
async fn a_debug_session_runs_beside_the_task_with_input_and_output() {
    let cluster = Cluster::start();
    let _framework = running_task(&cluster).await;
    let containers = answer(&cluster, Format::Json, &simple(call::Type::GetContainers))
        .get_containers
        .unwrap();
    let parent = containers.containers[0].container_id.clone();
    let session_id = v1::ContainerId {
        value: "debug-1".into(),
        parent: Some(Box::new(parent.clone())),
    };

    // The session's response streams until the container exits.
    let launch = Call {
        launch_nested_container_session: Some(call::LaunchNestedContainerSession {
            container_id: session_id.clone(),
            command: Some(v1::CommandInfo {
                value: Some("echo in:$(pwd); cat; echo bye >&2".into()),
                ..Default::default()
            }),
            container: None,
        }),
        ..simple(call::Type::LaunchNestedContainerSession)
    };
    let agent = cluster.agents[0].clone();
    let body = json::to_json_vec(&launch);
    let session = std::thread::spawn(move || {
        raw_http::request(
            &agent,
            "POST",
            "/api/v1",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/recordio"),
                ("Message-Accept", "application/json"),
            ],
            &body,
        )
        .unwrap()
    });

    // Wait for the container, then feed it input and EOF.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = answer(
            &cluster,
            Format::Json,
            &Call {
                get_containers: Some(call::GetContainers {
                    show_nested: Some(true),
                    show_standalone: None,
                }),
                ..simple(call::Type::GetContainers)
            },
        );
        if listed
            .get_containers
            .unwrap()
            .containers
            .iter()
            .any(|c| c.container_id == session_id)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session's container never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let input = |io: Option<ProcessIo>| Call {
        attach_container_input: Some(call::AttachContainerInput {
            r#type: Some(if io.is_some() {
                call::attach_container_input::Type::ProcessIo
            } else {
                call::attach_container_input::Type::ContainerId
            } as i32),
            container_id: io.is_none().then(|| session_id.clone()),
            process_io: io,
        }),
        ..simple(call::Type::AttachContainerInput)
    };
    let stdin = |data: &[u8]| ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(process_io::data::Type::Stdin as i32),
            data: Some(data.to_vec()),
        }),
        control: None,
    };
    let mut records = Vec::new();
    for call in [
        input(None),
        input(Some(stdin(b"ping\n"))),
        input(Some(stdin(b""))),
    ] {
        records.extend_from_slice(&recordio::frame(&json::to_json_vec(&call)));
    }
    let attached = raw_http::request(
        &cluster.agents[0],
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/recordio"),
            ("Message-Content-Type", "application/json"),
        ],
        &records,
    )
    .unwrap();
    assert_eq!(attached.status, 200, "{}", attached.text());

    let response = session.join().unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/recordio")
    );
    assert_eq!(
        response.header("message-content-type"),
        Some("application/json")
    );
    let mut decoder = recordio::Decoder::new(1 << 20);
    decoder.push(&response.body);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    while let Some(record) = decoder.next_record().unwrap() {
        let io: ProcessIo = json::from_json(&record).unwrap();
        let data = io.data.unwrap();
        let text = String::from_utf8_lossy(data.data.as_deref().unwrap_or_default()).into_owned();
        match data.r#type() {
            process_io::data::Type::Stdout => stdout.push_str(&text),
            process_io::data::Type::Stderr => stderr.push_str(&text),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(stdout.starts_with("in:/"), "{stdout}");
    assert!(
        stdout.contains("/containers/debug-1\n"),
        "runs in its nested sandbox: {stdout}"
    );
    assert!(stdout.ends_with("ping\n"), "{stdout}");
    assert_eq!(stderr, "bye\n");

    // It exited; wait reports it and remove cleans it up.
    let wait = answer(
        &cluster,
        Format::Json,
        &Call {
            wait_container: Some(call::WaitContainer {
                container_id: session_id.clone(),
            }),
            ..simple(call::Type::WaitContainer)
        },
    );
    assert_eq!(wait.wait_container.unwrap().exit_status, Some(0));
    let remove = post(
        &cluster,
        Format::Json,
        &Call {
            remove_container: Some(call::RemoveContainer {
                container_id: session_id.clone(),
            }),
            ..simple(call::Type::RemoveContainer)
        },
    );
    assert_eq!(remove.status, 200, "{}", remove.text());
}

#[tokio::test]
async fn bad_calls_get_mesos_status_codes() {
    let cluster = Cluster::start();
    let agent = &cluster.agents[0];
    let get = raw_http::get(agent, "/api/v1").unwrap();
    assert_eq!(get.status, 405);
    let garbage = raw_http::request(
        agent,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        b"{nope",
    )
    .unwrap();
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    let body = json::to_json_vec(&simple(call::Type::GetHealth));
    let html = raw_http::request(
        agent,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/html"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(html.status, 406);
    let unknown = post(&cluster, Format::Json, &simple(call::Type::Unknown));
    assert_eq!(unknown.status, 501);
    let orphan = post(
        &cluster,
        Format::Json,
        &Call {
            launch_nested_container: Some(call::LaunchNestedContainer {
                container_id: v1::ContainerId {
                    value: "x".into(),
                    parent: Some(Box::new(v1::ContainerId {
                        value: "no-such-parent".into(),
                        parent: None,
                    })),
                },
                command: Some(v1::CommandInfo {
                    value: Some("true".into()),
                    ..Default::default()
                }),
                container: None,
            }),
            ..simple(call::Type::LaunchNestedContainer)
        },
    );
    assert_eq!(orphan.status, 404, "{}", orphan.text());
    let wait_unknown = post(
        &cluster,
        Format::Json,
        &Call {
            wait_container: Some(call::WaitContainer {
                container_id: v1::ContainerId {
                    value: "ghost".into(),
                    parent: None,
                },
            }),
            ..simple(call::Type::WaitContainer)
        },
    );
    assert_eq!(wait_unknown.status, 404);
}
