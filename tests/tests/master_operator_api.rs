//! The master operator API (`POST /api/v1` on the master) and the legacy
//! master endpoints, through a real master and agent: the GET calls in JSON
//! and protobuf, bad calls, the SUBSCRIBE event stream, TEARDOWN and
//! MARK_AGENT_GONE.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::codec::{self, Format};
use mesos_proto::json;
use mesos_proto::recordio;
use mesos_proto::v1::master::{Call, Event, Response, call, event, response};
use mesos_proto::v1::{self, TaskState, scheduler};
use mesos_tests::cluster::Cluster;
use mesos_tests::framework::{Framework, task_ids};
use mesos_tests::raw_http;

fn simple(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn post_to(cluster: &Cluster, path: &str, format: Format, call: &Call) -> raw_http::Response {
    let body = codec::encode(format, call);
    raw_http::request(
        &cluster.master,
        "POST",
        path,
        &[
            ("Content-Type", format.media_type()),
            ("Accept", format.media_type()),
        ],
        &body,
    )
    .unwrap()
}

fn post(cluster: &Cluster, format: Format, call: &Call) -> raw_http::Response {
    post_to(cluster, "/api/v1", format, call)
}

fn answer(cluster: &Cluster, format: Format, call: &Call) -> Response {
    let response = post(cluster, format, call);
    assert_eq!(response.status, 200, "{call:?}: {}", response.text());
    assert_eq!(response.header("content-type"), Some(format.media_type()));
    codec::decode(format, &response.body).unwrap()
}

/// An operator SUBSCRIBE stream read off a plain socket: de-chunks the
/// body as it arrives and takes RecordIO records out of it.
struct EventReader {
    format: Format,
    socket: TcpStream,
    /// Chunked body bytes not yet de-chunked.
    raw: Vec<u8>,
    records: recordio::Decoder,
}

impl EventReader {
    fn open(cluster: &Cluster, format: Format) -> EventReader {
        let body = codec::encode(format, &simple(call::Type::Subscribe));
        let (head, rest, socket) = raw_http::open_stream(
            &cluster.master,
            "/api/v1",
            &[
                ("Content-Type", format.media_type()),
                ("Accept", format.media_type()),
            ],
            &body,
        )
        .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some(format.media_type()));
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        EventReader {
            format,
            socket,
            raw: rest,
            records: recordio::Decoder::default(),
        }
    }

    fn next(&mut self) -> Event {
        loop {
            if let Some(record) = self.records.next_record().unwrap() {
                return codec::decode(self.format, &record).unwrap();
            }
            if !self.take_chunk() {
                let mut buf = [0u8; 16 * 1024];
                let n = self.socket.read(&mut buf).expect("an event in time");
                assert!(n > 0, "the master closed the event stream");
                self.raw.extend_from_slice(&buf[..n]);
            }
        }
    }

    /// Moves one complete chunk into the record decoder.
    fn take_chunk(&mut self) -> bool {
        let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let size_text = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
        assert!(size > 0, "the event stream ended");
        let end = line_end + 2 + size + 2;
        if self.raw.len() < end {
            return false;
        }
        self.records
            .push(&self.raw[line_end + 2..line_end + 2 + size]);
        self.raw.drain(..end);
        true
    }

    /// The next event that is not a heartbeat.
    fn next_change(&mut self) -> Event {
        loop {
            let event = self.next();
            if event.r#type() != event::Type::Heartbeat {
                return event;
            }
        }
    }
}

fn get_json(cluster: &Cluster, path: &str) -> serde_json::Value {
    let response = raw_http::get(&cluster.master, path).unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test]
async fn get_calls_answer_in_json_and_protobuf() {
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "operated", false)
        .await
        .unwrap();
    framework
        .launch_running(&task_ids("sleeper", 1), "sleep 1000")
        .await
        .unwrap();
    let framework_id = framework.client.framework_id().unwrap().value.clone();

    for format in [Format::Json, Format::Protobuf] {
        let health = answer(&cluster, format, &simple(call::Type::GetHealth));
        assert_eq!(health.r#type(), response::Type::GetHealth);
        assert!(health.get_health.unwrap().healthy);

        let version = answer(&cluster, format, &simple(call::Type::GetVersion));
        assert_eq!(version.r#type(), response::Type::GetVersion);
        assert_eq!(
            version.get_version.unwrap().version_info.version,
            mesos_proto::MESOS_VERSION
        );

        let flags = answer(&cluster, format, &simple(call::Type::GetFlags))
            .get_flags
            .unwrap();
        assert!(
            flags
                .flags
                .iter()
                .any(|f| f.name == "registry" && f.value.as_deref() == Some("in_memory"))
        );

        let metrics = answer(&cluster, format, &simple(call::Type::GetMetrics))
            .get_metrics
            .unwrap();
        let running = metrics
            .metrics
            .iter()
            .find(|m| m.name == "master/tasks_running")
            .and_then(|m| m.value);
        assert_eq!(running, Some(1.0));

        let level = answer(&cluster, format, &simple(call::Type::GetLoggingLevel));
        assert_eq!(level.get_logging_level.unwrap().level, 0);

        let state = answer(&cluster, format, &simple(call::Type::GetState));
        assert_eq!(state.r#type(), response::Type::GetState);
        let state = state.get_state.unwrap();
        let tasks = state.get_tasks.unwrap().tasks;
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].task_id.value, "sleeper-0");
        assert_eq!(tasks[0].state(), TaskState::TaskRunning);
        let agents = state.get_agents.unwrap().agents;
        assert_eq!(agents.len(), 1);
        assert!(agents[0].active);
        let frameworks = state.get_frameworks.unwrap().frameworks;
        assert_eq!(frameworks.len(), 1);
        assert_eq!(frameworks[0].framework_info.name, "operated");

        let agents = answer(&cluster, format, &simple(call::Type::GetAgents))
            .get_agents
            .unwrap()
            .agents;
        assert_eq!(agents.len(), 1);
        let cpus: f64 = agents[0]
            .total_resources
            .iter()
            .filter(|r| r.name == "cpus")
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        assert_eq!(cpus, 2.0);
        let used: f64 = agents[0]
            .allocated_resources
            .iter()
            .filter(|r| r.name == "cpus")
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        assert!((used - 0.01).abs() < 1e-9, "allocated cpus {used}");

        let frameworks = answer(&cluster, format, &simple(call::Type::GetFrameworks))
            .get_frameworks
            .unwrap();
        assert_eq!(frameworks.frameworks.len(), 1);
        let f = &frameworks.frameworks[0];
        assert_eq!(f.framework_info.id.as_ref().unwrap().value, framework_id);
        assert!(f.active && f.connected && !f.recovered);
        assert!(frameworks.completed_frameworks.is_empty());

        let tasks = answer(&cluster, format, &simple(call::Type::GetTasks))
            .get_tasks
            .unwrap();
        assert_eq!(tasks.tasks.len(), 1);
        assert!(tasks.completed_tasks.is_empty());

        let executors = answer(&cluster, format, &simple(call::Type::GetExecutors));
        assert_eq!(executors.r#type(), response::Type::GetExecutors);

        let roles = answer(&cluster, format, &simple(call::Type::GetRoles))
            .get_roles
            .unwrap()
            .roles;
        let star = roles.iter().find(|r| r.name == "*").expect("role *");
        assert_eq!(star.weight, 1.0);
        assert_eq!(star.frameworks.len(), 1);
        assert_eq!(star.frameworks[0].value, framework_id);

        let master = answer(&cluster, format, &simple(call::Type::GetMaster))
            .get_master
            .unwrap();
        let info = master.master_info.unwrap();
        assert_eq!(
            format!("127.0.0.1:{}", info.port),
            cluster.master,
            "{info:?}"
        );
        assert!(master.start_time.unwrap() > 0.0);

        let weights = answer(&cluster, format, &simple(call::Type::GetWeights));
        assert_eq!(weights.r#type(), response::Type::GetWeights);
        assert!(weights.get_weights.unwrap().weight_infos.is_empty());

        let quota = answer(&cluster, format, &simple(call::Type::GetQuota));
        assert_eq!(quota.r#type(), response::Type::GetQuota);
        assert!(quota.get_quota.unwrap().status.configs.is_empty());
    }

    // The same API under its other path.
    let health = post_to(
        &cluster,
        "/api/v1/operator",
        Format::Json,
        &simple(call::Type::GetHealth),
    );
    assert_eq!(health.status, 200, "{}", health.text());
    let health: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(health["type"], "GET_HEALTH");
    assert_eq!(health["get_health"]["healthy"], true);
}

#[tokio::test]
async fn bad_calls_get_a_4xx_saying_what_is_wrong() {
    let cluster = Cluster::start();
    let master = &cluster.master;

    let get = raw_http::get(master, "/api/v1").unwrap();
    assert_eq!(get.status, 405);

    let garbage = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        b"{nope",
    )
    .unwrap();
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert!(
        garbage.text().contains("Failed to parse"),
        "{}",
        garbage.text()
    );

    let unknown_type = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        br#"{"type":"GET_EVERYTHING"}"#,
    )
    .unwrap();
    assert_eq!(unknown_type.status, 400, "{}", unknown_type.text());
    assert!(
        unknown_type.text().contains("GET_EVERYTHING"),
        "{}",
        unknown_type.text()
    );

    // A protobuf call whose type number this master does not know.
    let odd = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/x-protobuf")],
        &[0x08, 0xe7, 0x07], // field 1 (type) = 999
    )
    .unwrap();
    assert_eq!(odd.status, 400, "{}", odd.text());
    assert!(odd.text().contains("999"), "{}", odd.text());

    let no_type = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .unwrap();
    assert_eq!(no_type.status, 400, "{}", no_type.text());
    assert!(no_type.text().contains("'type'"), "{}", no_type.text());

    let body = json::to_json_vec(&simple(call::Type::GetHealth));
    let text = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[("Content-Type", "text/plain")],
        &body,
    )
    .unwrap();
    assert_eq!(text.status, 415, "{}", text.text());
    assert!(text.text().contains("Content-Type"), "{}", text.text());

    let html = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/html"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(html.status, 406, "{}", html.text());

    // A required field missing, in JSON and in protobuf.
    let missing = raw_http::request(
        master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        br#"{"type":"TEARDOWN","teardown":{}}"#,
    )
    .unwrap();
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert!(
        missing.text().contains("framework_id"),
        "{}",
        missing.text()
    );
    let no_payload = post(&cluster, Format::Protobuf, &simple(call::Type::Teardown));
    assert_eq!(no_payload.status, 400, "{}", no_payload.text());
    assert!(
        no_payload.text().contains("teardown"),
        "{}",
        no_payload.text()
    );

    // Protobuf always carries a required string, so an empty ID stands for
    // a missing one.
    let empty_id = post(
        &cluster,
        Format::Protobuf,
        &Call {
            teardown: Some(call::Teardown::default()),
            ..simple(call::Type::Teardown)
        },
    );
    assert_eq!(empty_id.status, 400, "{}", empty_id.text());
    assert!(
        empty_id.text().contains("framework_id"),
        "{}",
        empty_id.text()
    );

    let no_framework = post(
        &cluster,
        Format::Json,
        &Call {
            teardown: Some(call::Teardown {
                framework_id: v1::FrameworkId {
                    value: "no-such-framework".into(),
                },
            }),
            ..simple(call::Type::Teardown)
        },
    );
    assert_eq!(no_framework.status, 400, "{}", no_framework.text());
    let no_agent = post(
        &cluster,
        Format::Json,
        &Call {
            mark_agent_gone: Some(call::MarkAgentGone {
                agent_id: v1::AgentId {
                    value: "no-such-agent".into(),
                },
            }),
            ..simple(call::Type::MarkAgentGone)
        },
    );
    assert_eq!(no_agent.status, 404, "{}", no_agent.text());

    // Operations on resources without their body name the missing field.
    for (kind, field) in [
        (call::Type::ReserveResources, "reserve_resources"),
        (call::Type::UnreserveResources, "unreserve_resources"),
        (call::Type::CreateVolumes, "create_volumes"),
        (call::Type::DestroyVolumes, "destroy_volumes"),
    ] {
        let refused = post(&cluster, Format::Json, &simple(kind));
        assert_eq!(refused.status, 400, "{kind:?}: {}", refused.text());
        assert!(refused.text().contains(field), "{}", refused.text());
    }

    // None of it hurt the master.
    let health = answer(&cluster, Format::Json, &simple(call::Type::GetHealth));
    assert!(health.get_health.unwrap().healthy);
}

#[tokio::test]
async fn subscribe_reports_tasks_frameworks_and_agents_as_they_change() {
    let mut cluster = Cluster::start();
    let old_agent = answer(&cluster, Format::Json, &simple(call::Type::GetAgents))
        .get_agents
        .unwrap()
        .agents[0]
        .agent_info
        .id
        .clone()
        .unwrap()
        .value;
    let mut streams = [
        EventReader::open(&cluster, Format::Json),
        EventReader::open(&cluster, Format::Protobuf),
    ];
    for stream in &mut streams {
        let subscribed = stream.next();
        assert_eq!(subscribed.r#type(), event::Type::Subscribed);
        let subscribed = subscribed.subscribed.unwrap();
        assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
        let state = subscribed.get_state.unwrap();
        assert_eq!(state.get_agents.unwrap().agents.len(), 1);
        assert!(state.get_frameworks.unwrap().frameworks.is_empty());
        assert_eq!(stream.next().r#type(), event::Type::Heartbeat);
    }

    let mut framework = Framework::subscribe(&cluster.master, "watched", false)
        .await
        .unwrap();
    framework
        .launch(&task_ids("brief", 1), "echo hello")
        .await
        .unwrap();
    loop {
        let status = framework
            .next_update(Duration::from_secs(30))
            .await
            .unwrap();
        if status.state() == TaskState::TaskFinished {
            break;
        }
        assert!(!status.state().is_terminal(), "{status:?}");
    }

    for stream in &mut streams {
        let added = stream.next_change();
        assert_eq!(added.r#type(), event::Type::FrameworkAdded, "{added:?}");
        let added = added.framework_added.unwrap().framework;
        assert_eq!(added.framework_info.name, "watched");
        assert!(added.connected);

        // (status, state) per event: the state is the task's latest, which
        // runs ahead of the status while the agent waits for an
        // acknowledgement (RUNNING may arrive already saying FINISHED).
        let mut seen: Vec<(TaskState, TaskState)> = Vec::new();
        loop {
            let event = stream.next_change();
            match event.r#type() {
                event::Type::TaskAdded => {
                    let task = event.task_added.unwrap().task;
                    assert_eq!(task.task_id.value, "brief-0");
                    assert_eq!(task.state(), TaskState::TaskStaging);
                    assert!(seen.is_empty(), "TASK_ADDED came after {seen:?}");
                    seen.push((TaskState::TaskStaging, TaskState::TaskStaging));
                }
                event::Type::TaskUpdated => {
                    let updated = event.task_updated.unwrap();
                    assert_eq!(updated.status.task_id.value, "brief-0");
                    let state = updated.state();
                    seen.push((updated.status.state(), state));
                    if state == TaskState::TaskFinished {
                        break;
                    }
                }
                other => panic!("unexpected {other:?} after {seen:?}"),
            }
        }
        assert_eq!(seen.first().map(|s| s.1), Some(TaskState::TaskStaging));
        assert!(
            seen.iter()
                .any(|(status, _)| *status == TaskState::TaskRunning),
            "no RUNNING update in {seen:?}"
        );
        assert!(
            seen[..seen.len() - 1]
                .iter()
                .all(|(_, state)| !state.is_terminal()),
            "{seen:?}"
        );
    }

    // A new agent at the old one's address replaces it.
    cluster.kill_agent(0);
    let fresh_dir = cluster.dir.path().join("agent-0-fresh");
    cluster
        .restart_agent(0, &[format!("--work_dir={}", fresh_dir.display())])
        .unwrap();
    for stream in &mut streams {
        let mut removed = None;
        let mut added = None;
        while removed.is_none() || added.is_none() {
            let event = stream.next_change();
            match event.r#type() {
                event::Type::AgentRemoved => {
                    removed = Some(event.agent_removed.unwrap().agent_id.value);
                }
                event::Type::AgentAdded => {
                    let agent = event.agent_added.unwrap().agent;
                    assert!(agent.active);
                    added = Some(agent.agent_info.id.unwrap().value);
                }
                // The framework stays; its offers come and go.
                event::Type::FrameworkUpdated => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(removed.as_deref(), Some(old_agent.as_str()));
        assert_ne!(added.as_deref(), Some(old_agent.as_str()));
    }
}

/// Polls until no task process of the cluster is left.
async fn wait_for_no_sandbox_processes(cluster: &Cluster) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = cluster.sandbox_processes();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task processes still alive: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn teardown_ends_the_frameworks_tasks() {
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "doomed", false)
        .await
        .unwrap();
    framework
        .launch_running(&task_ids("sleeper", 2), "sleep 1000")
        .await
        .unwrap();
    let framework_id = framework.client.framework_id().unwrap().clone();
    assert!(!cluster.sandbox_processes().is_empty());

    let mut stream = EventReader::open(&cluster, Format::Json);
    let subscribed = stream.next().subscribed.unwrap().get_state.unwrap();
    assert_eq!(subscribed.get_tasks.unwrap().tasks.len(), 2);

    let teardown = post(
        &cluster,
        Format::Protobuf,
        &Call {
            teardown: Some(call::Teardown {
                framework_id: framework_id.clone(),
            }),
            ..simple(call::Type::Teardown)
        },
    );
    assert_eq!(teardown.status, 200, "{}", teardown.text());
    assert!(teardown.body.is_empty());

    let mut killed = Vec::new();
    loop {
        let event = stream.next_change();
        match event.r#type() {
            event::Type::TaskUpdated => {
                let updated = event.task_updated.unwrap();
                assert_eq!(updated.framework_id, framework_id);
                assert_eq!(updated.state(), TaskState::TaskKilled);
                killed.push(updated.status.task_id.value);
            }
            event::Type::FrameworkRemoved => {
                let info = event.framework_removed.unwrap().framework_info;
                assert_eq!(info.id.as_ref(), Some(&framework_id));
                break;
            }
            // Offers going back change the framework.
            event::Type::FrameworkUpdated => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    killed.sort();
    assert_eq!(killed, task_ids("sleeper", 2));

    let frameworks = answer(&cluster, Format::Json, &simple(call::Type::GetFrameworks))
        .get_frameworks
        .unwrap();
    assert!(frameworks.frameworks.is_empty());
    assert_eq!(frameworks.completed_frameworks.len(), 1);
    assert!(!frameworks.completed_frameworks[0].active);
    let tasks = answer(&cluster, Format::Json, &simple(call::Type::GetTasks))
        .get_tasks
        .unwrap();
    assert!(tasks.tasks.is_empty());
    assert_eq!(tasks.completed_tasks.len(), 2);
    assert!(
        tasks
            .completed_tasks
            .iter()
            .all(|t| t.state() == TaskState::TaskKilled)
    );
    wait_for_no_sandbox_processes(&cluster).await;

    // The framework is gone: a second teardown names it as unknown.
    let again = post(
        &cluster,
        Format::Json,
        &Call {
            teardown: Some(call::Teardown {
                framework_id: framework_id.clone(),
            }),
            ..simple(call::Type::Teardown)
        },
    );
    assert_eq!(again.status, 400, "{}", again.text());
    assert!(
        again.text().contains(&framework_id.value),
        "{}",
        again.text()
    );
}

/// A PARTITION_AWARE framework with task `aware-0` running.
async fn partition_aware_task(cluster: &Cluster) -> (SchedulerClient, EventStream) {
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "aware".into(),
            capabilities: vec![v1::framework_info::Capability {
                r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let offer = loop {
        if let Some(offers) = next_scheduler_event(&mut events).await.offers {
            break offers.offers.into_iter().next().unwrap();
        }
    };
    let task = v1::TaskInfo {
        name: "aware-0".into(),
        task_id: v1::TaskId {
            value: "aware-0".into(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 16.0)],
        command: Some(v1::CommandInfo {
            value: Some("sleep 1000".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.launch(&offer.id, vec![task], None).await.unwrap();
    loop {
        if let Some(update) = next_scheduler_event(&mut events).await.update {
            client.acknowledge(&update.status).await.unwrap();
            if update.status.state() == TaskState::TaskRunning {
                return (client, events);
            }
        }
    }
}

async fn next_scheduler_event(events: &mut EventStream) -> scheduler::Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        if event.r#type() != scheduler::event::Type::Heartbeat {
            return event;
        }
    }
}

#[tokio::test]
async fn mark_agent_gone_ends_its_tasks_and_removes_it() {
    let mut cluster = Cluster::start();
    let mut plain = Framework::subscribe(&cluster.master, "plain", false)
        .await
        .unwrap();
    plain
        .launch_running(&task_ids("plain", 1), "sleep 1000")
        .await
        .unwrap();
    let (_aware, mut aware_events) = partition_aware_task(&cluster).await;
    let agent_id = answer(&cluster, Format::Json, &simple(call::Type::GetAgents))
        .get_agents
        .unwrap()
        .agents[0]
        .agent_info
        .id
        .clone()
        .unwrap();
    let mut stream = EventReader::open(&cluster, Format::Protobuf);
    assert_eq!(stream.next().r#type(), event::Type::Subscribed);

    let gone = Call {
        mark_agent_gone: Some(call::MarkAgentGone {
            agent_id: agent_id.clone(),
        }),
        ..simple(call::Type::MarkAgentGone)
    };
    let marked = post(&cluster, Format::Json, &gone);
    assert_eq!(marked.status, 200, "{}", marked.text());

    let lost = plain.next_update(Duration::from_secs(30)).await.unwrap();
    assert_eq!(lost.task_id.value, "plain-0");
    assert_eq!(lost.state(), TaskState::TaskLost);
    assert_eq!(
        lost.reason(),
        v1::task_status::Reason::AgentRemovedByOperator
    );
    let gone_update = loop {
        if let Some(update) = next_scheduler_event(&mut aware_events).await.update {
            break update.status;
        }
    };
    assert_eq!(gone_update.task_id.value, "aware-0");
    assert_eq!(gone_update.state(), TaskState::TaskGoneByOperator);

    let mut states = Vec::new();
    loop {
        let event = stream.next_change();
        match event.r#type() {
            event::Type::TaskUpdated => {
                let updated = event.task_updated.unwrap();
                let state = updated.state();
                states.push((updated.status.task_id.value, state));
            }
            event::Type::AgentRemoved => {
                assert_eq!(event.agent_removed.unwrap().agent_id, agent_id);
                break;
            }
            event::Type::FrameworkUpdated => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    states.sort();
    assert_eq!(
        states,
        vec![
            ("aware-0".to_string(), TaskState::TaskGoneByOperator),
            ("plain-0".to_string(), TaskState::TaskLost),
        ]
    );

    let agents = answer(&cluster, Format::Json, &simple(call::Type::GetAgents))
        .get_agents
        .unwrap();
    assert!(agents.agents.is_empty());
    let tasks = answer(&cluster, Format::Json, &simple(call::Type::GetTasks))
        .get_tasks
        .unwrap();
    assert!(tasks.tasks.is_empty(), "{:?}", tasks.tasks);
    assert_eq!(tasks.completed_tasks.len(), 2);
    // The agent was told to end the frameworks' executors.
    wait_for_no_sandbox_processes(&cluster).await;

    // Marking it again is not an error.
    let again = post(&cluster, Format::Protobuf, &gone);
    assert_eq!(again.status, 200, "{}", again.text());

    // The agent, refused for good when it tries to come back, stops.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = cluster.agent_exit(0) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gone agent still runs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success(), "{status}");
}

fn ids(tasks: &serde_json::Value) -> Vec<String> {
    tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn legacy_endpoints_keep_mesos_shapes() {
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "legacy", false)
        .await
        .unwrap();
    framework
        .launch_running(&task_ids("sleeper", 3), "sleep 1000")
        .await
        .unwrap();
    let framework_id = framework.client.framework_id().unwrap().value.clone();

    let frameworks = get_json(&cluster, "/master/frameworks");
    assert_eq!(frameworks["frameworks"].as_array().unwrap().len(), 1);
    assert_eq!(frameworks["frameworks"][0]["id"], framework_id.as_str());
    assert_eq!(
        frameworks["frameworks"][0]["tasks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(frameworks["completed_frameworks"], serde_json::json!([]));
    assert_eq!(frameworks["unregistered_frameworks"], serde_json::json!([]));
    let filtered = get_json(&cluster, "/master/frameworks?framework_id=other");
    assert_eq!(filtered["frameworks"], serde_json::json!([]));

    let slaves = get_json(&cluster, "/master/slaves");
    assert_eq!(slaves["slaves"].as_array().unwrap().len(), 1);
    assert_eq!(slaves["slaves"][0]["resources"]["cpus"], 2.0);
    assert_eq!(slaves["recovered_slaves"], serde_json::json!([]));
    let agent_id = slaves["slaves"][0]["id"].as_str().unwrap().to_string();

    let roles = get_json(&cluster, "/master/roles");
    let role = &roles["roles"][0];
    assert_eq!(role["name"], "*");
    assert_eq!(role["weight"], 1.0);
    assert_eq!(role["frameworks"], serde_json::json!([framework_id]));
    let cpus = role["resources"]["cpus"].as_f64().unwrap();
    assert!((cpus - 0.03).abs() < 1e-9, "{role}");

    let summary = get_json(&cluster, "/master/state-summary");
    assert_eq!(summary["hostname"], "127.0.0.1");
    assert_eq!(summary["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(summary["slaves"][0]["TASK_RUNNING"], 3);
    assert_eq!(summary["slaves"][0]["TASK_FINISHED"], 0);
    assert_eq!(
        summary["slaves"][0]["framework_ids"],
        serde_json::json!([framework_id])
    );
    assert_eq!(summary["frameworks"][0]["TASK_RUNNING"], 3);
    assert_eq!(
        summary["frameworks"][0]["slave_ids"],
        serde_json::json!([agent_id])
    );
    assert!(summary["frameworks"][0].get("tasks").is_none());

    // Paging and order of /master/tasks.
    let ascending = ids(&get_json(&cluster, "/master/tasks?order=asc"));
    assert_eq!(ascending.len(), 3);
    let mut sorted = ascending.clone();
    sorted.sort();
    assert_eq!(sorted, task_ids("sleeper", 3));
    let mut descending = ids(&get_json(&cluster, "/master/tasks"));
    descending.reverse();
    assert_eq!(descending, ascending);
    let page = ids(&get_json(
        &cluster,
        "/master/tasks?order=asc&limit=1&offset=1",
    ));
    assert_eq!(page, vec![ascending[1].clone()]);
    let one = get_json(&cluster, "/master/tasks?task_id=sleeper-2");
    assert_eq!(ids(&one), vec!["sleeper-2".to_string()]);
    assert_eq!(one["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(one["tasks"][0]["framework_id"], framework_id.as_str());
    let bad = raw_http::get(&cluster.master, "/master/tasks?limit=many").unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("limit"), "{}", bad.text());

    // The old aliases.
    for path in [
        "/master/tasks.json",
        "/master/frameworks.json",
        "/master/slaves.json",
        "/master/roles.json",
        "/master/state-summary.json",
        "/master/state.json",
        "/state-summary",
        "/frameworks",
    ] {
        let response = raw_http::get(&cluster.master, path).unwrap();
        assert_eq!(response.status, 200, "{path}");
        serde_json::from_slice::<serde_json::Value>(&response.body).unwrap();
    }
    let flags = get_json(&cluster, "/master/flags");
    assert_eq!(flags["flags"]["registry"], "in_memory");

    let redirect = raw_http::get(&cluster.master, "/master/redirect").unwrap();
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some(format!("//{}", cluster.master).as_str())
    );

    let metrics = raw_http::get(&cluster.master, "/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        metrics.headers
    );
    let text = metrics.text();
    assert!(
        text.contains("# TYPE master_tasks_running gauge\n"),
        "{text}"
    );
    assert!(text.contains("\nmaster_tasks_running 3\n"), "{text}");
    assert!(text.contains("\nmaster_slaves_active 1\n"), "{text}");
    assert!(!text.contains('/'), "{text}");

    let reserve = raw_http::request(&cluster.master, "POST", "/master/reserve", &[], b"").unwrap();
    assert_eq!(reserve.status, 400, "{}", reserve.text());
    assert!(reserve.text().contains("slaveId"), "{}", reserve.text());

    // /master/teardown takes a form.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let get = raw_http::get(&cluster.master, "/master/teardown").unwrap();
    assert_eq!(get.status, 405);
    let missing =
        raw_http::request(&cluster.master, "POST", "/master/teardown", &form, b"").unwrap();
    assert_eq!(missing.status, 400);
    assert!(missing.text().contains("frameworkId"), "{}", missing.text());
    let unknown = raw_http::request(
        &cluster.master,
        "POST",
        "/master/teardown",
        &form,
        b"frameworkId=nobody",
    )
    .unwrap();
    assert_eq!(unknown.status, 400, "{}", unknown.text());
    let body = format!("frameworkId={framework_id}");
    let torn = raw_http::request(
        &cluster.master,
        "POST",
        "/master/teardown",
        &form,
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(torn.status, 200, "{}", torn.text());
    let frameworks = get_json(&cluster, "/master/frameworks");
    assert_eq!(frameworks["frameworks"], serde_json::json!([]));
    assert_eq!(
        frameworks["completed_frameworks"][0]["id"],
        framework_id.as_str()
    );
    let tasks = get_json(&cluster, "/master/tasks");
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 3);
    assert!(
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "TASK_KILLED")
    );
    wait_for_no_sandbox_processes(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_and_quota_are_set_read_and_checked() {
    let cluster = Cluster::start();
    let weights = Call {
        update_weights: Some(call::UpdateWeights {
            weight_infos: vec![v1::WeightInfo {
                weight: 3.0,
                role: Some("analytics".into()),
            }],
        }),
        ..simple(call::Type::UpdateWeights)
    };
    let set = post(&cluster, Format::Json, &weights);
    assert_eq!(set.status, 200, "{}", set.text());
    let read = answer(&cluster, Format::Protobuf, &simple(call::Type::GetWeights))
        .get_weights
        .unwrap();
    assert_eq!(
        read.weight_infos,
        vec![v1::WeightInfo {
            weight: 3.0,
            role: Some("analytics".into())
        }]
    );
    let bad_weight = Call {
        update_weights: Some(call::UpdateWeights {
            weight_infos: vec![v1::WeightInfo {
                weight: -1.0,
                role: Some("analytics".into()),
            }],
        }),
        ..simple(call::Type::UpdateWeights)
    };
    let refused = post(&cluster, Format::Json, &bad_weight);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("positive"), "{}", refused.text());

    let scalar = |value: f64| v1::value::Scalar { value };
    let quota = |guarantee: f64, limit: f64| Call {
        update_quota: Some(call::UpdateQuota {
            force: None,
            quota_configs: vec![v1::quota::QuotaConfig {
                role: "dev".into(),
                guarantees: [("cpus".to_string(), scalar(guarantee))].into(),
                limits: [("cpus".to_string(), scalar(limit))].into(),
            }],
        }),
        ..simple(call::Type::UpdateQuota)
    };
    let set = post(&cluster, Format::Protobuf, &quota(1.0, 2.0));
    assert_eq!(set.status, 200, "{}", set.text());
    let status = answer(&cluster, Format::Json, &simple(call::Type::GetQuota))
        .get_quota
        .unwrap()
        .status;
    assert_eq!(status.configs.len(), 1);
    assert_eq!(status.configs[0].role, "dev");
    assert_eq!(status.configs[0].limits["cpus"].value, 2.0);
    let refused = post(&cluster, Format::Json, &quota(3.0, 2.0));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("above its limit"),
        "{}",
        refused.text()
    );
}
