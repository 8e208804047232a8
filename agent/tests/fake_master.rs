//! The real agent and command executor against a fake master that speaks
//! the internal agent link.

mod support;

use std::time::Duration;

use mesos_proto::internal::v1::{
    FrameworkToExecutor, KillTask, ShutdownFramework, agent_to_master, master_to_agent,
};
use mesos_proto::v1::{self, TaskState, task_status::Reason, task_status::Source};
use support::{Agent, Session, WAIT, command_task, fake_master, framework, get_json, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn registered(extra: &[&str]) -> anyhow::Result<(Agent, Session)> {
    let (master, mut sessions) = fake_master().await?;
    let agent = Agent::start(master, extra)?;
    let session = tokio::time::timeout(WAIT, sessions.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session"))?;
    session.accept(60.0).await?;
    let address = session.agent_address();
    poll(|| async {
        let metrics = get_json(address, "/metrics/snapshot").await?;
        Ok((metrics["slave/registered"] == 1.0).then_some(()))
    })
    .await?;
    Ok((agent, session))
}

#[tokio::test]
async fn command_task_updates_arrive_in_order_one_ack_at_a_time() -> anyhow::Result<()> {
    let (agent, mut session) = registered(&[]).await?;
    let register = &session.register;
    assert_eq!(register.version, mesos_proto::MESOS_VERSION);
    assert!(register.agent_info.id.is_none());
    assert!(
        register
            .pid
            .as_deref()
            .is_some_and(|p| p.starts_with("slave(1)@127.0.0.1:"))
    );
    assert!(
        register
            .agent_info
            .resources
            .iter()
            .any(|r| r.name == "cpus")
    );

    session
        .run_task(framework("F"), command_task("t1", "echo hi; sleep 1"))
        .await?;
    let starting = session.next_update(WAIT).await?;
    assert_eq!(starting.status.state(), TaskState::TaskStarting);
    assert_eq!(starting.status.source(), Source::Executor);
    assert_eq!(
        starting.status.agent_id.as_ref().map(|a| a.value.as_str()),
        Some("S0")
    );
    assert_eq!(
        starting.executor_id.as_ref().map(|e| e.value.as_str()),
        Some("t1")
    );
    assert_eq!(starting.status.uuid.as_ref().map(Vec::len), Some(16));
    assert!(starting.status.timestamp.is_some());

    // TASK_RUNNING is held back until TASK_STARTING is acknowledged.
    assert!(session.next(Duration::from_millis(1500)).await.is_err());
    session.ack(&starting).await?;
    let running = session.next_update(WAIT).await?;
    assert_eq!(running.status.state(), TaskState::TaskRunning);
    session.ack(&running).await?;
    let finished = session.next_update(WAIT).await?;
    assert_eq!(finished.status.state(), TaskState::TaskFinished);
    assert_eq!(
        finished.status.message.as_deref(),
        Some("Command exited with status 0")
    );
    session.ack(&finished).await?;

    let stdout = agent.sandbox("S0", "F", "t1").join("stdout");
    assert_eq!(std::fs::read_to_string(stdout)?, "hi\n");

    // The executor exits once its terminal update is acknowledged; the
    // framework, now without executors, is archived with its history.
    let address = session.agent_address();
    let state = poll(|| async {
        let state = get_json(address, "/state").await?;
        Ok(state["frameworks"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(state))
    })
    .await?;
    let executor = &state["completed_frameworks"][0]["completed_executors"][0];
    assert_eq!(executor["id"], "t1");
    assert_eq!(
        executor["name"],
        "Command Executor (Task: t1) (Command: sh -c 'echo hi; sleep 1')"
    );
    assert_eq!(executor["completed_tasks"][0]["state"], "TASK_FINISHED");
    assert_eq!(state["id"], "S0");
    let metrics = get_json(address, "/metrics/snapshot").await?;
    assert_eq!(metrics["slave/registered"], 1.0);
    assert_eq!(metrics["slave/tasks_finished"], 1.0);
    assert_eq!(metrics["slave/executors_terminated"], 1.0);
    Ok(())
}

#[tokio::test]
async fn killed_command_task_ends_killed() -> anyhow::Result<()> {
    let (_agent, mut session) = registered(&[]).await?;
    session
        .run_task(framework("F"), command_task("t2", "sleep 100"))
        .await?;
    let running = session.wait_for_state("t2", TaskState::TaskRunning).await?;
    session.ack(&running).await?;
    session
        .send(master_to_agent::Message::KillTask(KillTask {
            framework_id: v1::FrameworkId { value: "F".into() },
            task_id: v1::TaskId { value: "t2".into() },
            kill_policy: None,
        }))
        .await?;
    let killed = session.next_update(WAIT).await?;
    assert_eq!(killed.status.state(), TaskState::TaskKilled);
    assert_eq!(
        killed.status.message.as_deref(),
        Some("Command terminated with signal SIGTERM")
    );
    session.ack(&killed).await?;
    Ok(())
}

#[tokio::test]
async fn command_executor_takes_its_task_down_when_the_agent_dies() -> anyhow::Result<()> {
    let (mut agent, mut session) = registered(&[]).await?;
    session
        .run_task(framework("F"), command_task("t6", "sleep 1000"))
        .await?;
    let running = session.wait_for_state("t6", TaskState::TaskRunning).await?;
    session.ack(&running).await?;
    // The executor, its shell and the sleep.
    assert!(agent.executor_processes().len() >= 2);
    agent.crash();
    let gone = poll(|| async { Ok(agent.executor_processes().is_empty().then_some(())) }).await;
    if gone.is_err() {
        anyhow::bail!("still running:\n{}", agent.describe_processes());
    }
    Ok(())
}

#[tokio::test]
async fn executor_that_never_subscribes_is_killed_and_its_task_fails() -> anyhow::Result<()> {
    let (_agent, mut session) = registered(&["--executor_registration_timeout=1secs"]).await?;
    let mut task = command_task("t3", "unused");
    task.executor = Some(custom_executor("E3", "sleep 100"));
    session.run_task(framework("F"), task).await?;
    let failed = session.next_update(WAIT).await?;
    assert_eq!(failed.status.state(), TaskState::TaskFailed);
    assert_eq!(failed.status.reason(), Reason::ExecutorRegistrationTimeout);
    assert_eq!(failed.status.source(), Source::Agent);
    match session.next(WAIT).await? {
        agent_to_master::Message::ExecutorExited(exited) => {
            assert_eq!(exited.executor_id.value, "E3");
            assert_eq!(exited.status, Some(9), "SIGKILLed");
        }
        other => anyhow::bail!("expected ExecutorExited, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn agent_reregisters_with_its_id_and_resends_pending_updates() -> anyhow::Result<()> {
    let (master, mut sessions) = fake_master().await?;
    let _agent = Agent::start(master, &[])?;
    let mut first = tokio::time::timeout(WAIT, sessions.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session"))?;
    // The fake master never pings: the agent gives up after 3 intervals.
    first.accept(0.5).await?;
    first
        .run_task(framework("F"), command_task("t4", "sleep 100"))
        .await?;
    let starting = first.next_update(WAIT).await?;
    assert_eq!(starting.status.state(), TaskState::TaskStarting);

    let mut second = tokio::time::timeout(WAIT, sessions.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session"))?;
    let register = &second.register;
    assert_eq!(
        register.agent_info.id.as_ref().map(|i| i.value.as_str()),
        Some("S0")
    );
    assert_eq!(register.frameworks.len(), 1);
    assert!(register.tasks.iter().any(|t| t.task_id.value == "t4"));
    assert!(
        register
            .executors
            .iter()
            .any(|e| e.executor_id.value == "t4")
    );
    second.accept(60.0).await?;
    // The unacknowledged head goes again at once, unchanged.
    let resent = second.next_update(WAIT).await?;
    assert_eq!(resent.status.uuid, starting.status.uuid);
    Ok(())
}

#[tokio::test]
async fn executor_api_answers_like_mesos() -> anyhow::Result<()> {
    let (_agent, session) = registered(&[]).await?;
    let address = session.agent_address();
    let json = [("Content-Type", "application/json")];
    let call = |kind: &str, extra: &str| {
        format!(
            r#"{{"type":"{kind}","framework_id":{{"value":"F"}},"executor_id":{{"value":"E"}}{extra}}}"#
        )
    };

    for path in ["/api/v1/executor", "/slave(1)/api/v1/executor"] {
        let (status, head, _) = http(address, "GET", path, &[], b"").await?;
        assert_eq!(status, 405, "{path}");
        assert!(head.to_ascii_lowercase().contains("allow: post"));
    }
    let post = |headers: &'static [(&'static str, &'static str)], body: String| async move {
        http(
            address,
            "POST",
            "/api/v1/executor",
            headers,
            body.as_bytes(),
        )
        .await
    };
    assert_eq!(post(&[], call("HEARTBEAT", "")).await?.0, 400);
    assert_eq!(
        post(&[("Content-Type", "text/plain")], call("HEARTBEAT", ""))
            .await?
            .0,
        415
    );
    assert_eq!(
        post(&[("Content-Type", "application/json")], "{".into())
            .await?
            .0,
        400
    );
    let (status, head, body) = http(
        address,
        "POST",
        "/api/v1/executor",
        &json,
        call("HEARTBEAT", "").as_bytes(),
    )
    .await?;
    assert_eq!(status, 202);
    assert!(
        head.to_ascii_lowercase().contains("content-length: 0"),
        "{head}"
    );
    assert!(body.is_empty());
    let (status, _, body) = http(
        address,
        "POST",
        "/api/v1/executor",
        &json,
        call("SUBSCRIBE", r#","subscribe":{}"#).as_bytes(),
    )
    .await?;
    assert_eq!(status, 400);
    assert_eq!(String::from_utf8_lossy(&body), "Framework cannot be found");
    let refuse_json = [
        ("Content-Type", "application/json"),
        ("Accept", "text/html"),
    ];
    let (status, _, _) = http(
        address,
        "POST",
        "/api/v1/executor",
        &refuse_json,
        call("SUBSCRIBE", r#","subscribe":{}"#).as_bytes(),
    )
    .await?;
    assert_eq!(status, 406);
    let update = call(
        "UPDATE",
        r#","update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR"}}"#,
    );
    let (status, _, body) = http(
        address,
        "POST",
        "/api/v1/executor",
        &json,
        update.as_bytes(),
    )
    .await?;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("uuid"));
    let (status, _, _) = http(
        address,
        "POST",
        "/api/v1/executor",
        &json,
        call("UNKNOWN", "").as_bytes(),
    )
    .await?;
    assert_eq!(status, 501);

    let heartbeat = v1::executor::Call {
        executor_id: v1::ExecutorId { value: "E".into() },
        framework_id: v1::FrameworkId { value: "F".into() },
        r#type: Some(v1::executor::call::Type::Heartbeat as i32),
        ..Default::default()
    };
    let protobuf = [("Content-Type", "application/x-protobuf")];
    let body = mesos_proto::codec::encode(mesos_proto::codec::Format::Protobuf, &heartbeat);
    assert_eq!(
        http(address, "POST", "/api/v1/executor", &protobuf, &body)
            .await?
            .0,
        202
    );

    assert_eq!(http(address, "GET", "/health", &[], b"").await?.0, 200);
    assert_eq!(
        get_json(address, "/version").await?["version"],
        mesos_proto::MESOS_VERSION
    );
    assert!(get_json(address, "/flags").await?["flags"]["work_dir"].is_string());
    assert_eq!(get_json(address, "/slave(1)/state").await?["id"], "S0");
    assert_eq!(
        get_json(address, "/state.json").await?["pid"],
        session.register.pid.clone().unwrap_or_default()
    );
    assert_eq!(http(address, "GET", "/nope", &[], b"").await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn custom_executor_conversation() -> anyhow::Result<()> {
    let (agent, mut session) = registered(&["--executor_shutdown_grace_period=1secs"]).await?;
    let address = session.agent_address();
    let mut task = command_task("t5", "unused");
    // The process only holds the executor's place; the test speaks for it.
    task.executor = Some(custom_executor("E5", "sleep 100"));
    session.run_task(framework("F"), task).await?;
    poll(|| async {
        let state = get_json(address, "/state").await?;
        let queued = &state["frameworks"][0]["executors"][0]["queued_tasks"][0]["id"];
        Ok((queued == "t5").then_some(()))
    })
    .await?;

    let json = [("Content-Type", "application/json")];
    let call = |kind: &str, extra: &str| {
        format!(
            r#"{{"type":"{kind}","framework_id":{{"value":"F"}},"executor_id":{{"value":"E5"}}{extra}}}"#
        )
    };
    let uuid = "AAECAwQFBgcICQoLDA0ODw=="; // 16 bytes
    let running = call(
        "UPDATE",
        &format!(
            r#","update":{{"status":{{"task_id":{{"value":"t5"}},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","uuid":"{uuid}"}}}}"#
        ),
    );
    // Not subscribed yet.
    let (status, _, body) = http(
        address,
        "POST",
        "/api/v1/executor",
        &json,
        running.as_bytes(),
    )
    .await?;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (403, "Executor is not subscribed")
    );

    let mut stream =
        EventStream::subscribe(address, &call("SUBSCRIBE", r#","subscribe":{}"#)).await?;
    assert!(
        stream.head.contains("transfer-encoding: chunked"),
        "{}",
        stream.head
    );
    assert!(
        stream.head.contains("content-type: application/json"),
        "{}",
        stream.head
    );
    assert!(!stream.head.contains("content-length"), "{}", stream.head);
    stream.wait_for(r#""type":"SUBSCRIBED""#).await?;
    assert!(stream.seen.contains(r#""framework_info":{"#));
    assert!(stream.seen.contains(r#""id":{"value":"F"}"#));
    stream.wait_for(r#""type":"LAUNCH""#).await?;
    assert!(stream.seen.contains(r#""task_id":{"value":"t5"}"#));

    let (status, _, _) = http(
        address,
        "POST",
        "/slave(1)/api/v1/executor",
        &json,
        running.as_bytes(),
    )
    .await?;
    assert_eq!(status, 202);
    let update = session.next_update(WAIT).await?;
    assert_eq!(update.status.state(), TaskState::TaskRunning);
    assert_eq!(
        update.executor_id.as_ref().map(|e| e.value.as_str()),
        Some("E5")
    );
    session.ack(&update).await?;
    stream.wait_for(r#""type":"ACKNOWLEDGED""#).await?;
    assert!(stream.seen.contains(uuid));

    let message = call("MESSAGE", r#","message":{"data":"aGVsbG8="}"#);
    assert_eq!(
        http(
            address,
            "POST",
            "/api/v1/executor",
            &json,
            message.as_bytes()
        )
        .await?
        .0,
        202
    );
    match session.next(WAIT).await? {
        agent_to_master::Message::ExecutorMessage(m) => assert_eq!(m.data, b"hello"),
        other => anyhow::bail!("expected an executor message, got {other:?}"),
    }
    session
        .send(master_to_agent::Message::FrameworkMessage(
            FrameworkToExecutor {
                framework_id: v1::FrameworkId { value: "F".into() },
                executor_id: v1::ExecutorId { value: "E5".into() },
                data: b"world".to_vec(),
            },
        ))
        .await?;
    stream.wait_for(r#""data":"d29ybGQ=""#).await?;

    session
        .send(master_to_agent::Message::ShutdownFramework(
            ShutdownFramework {
                framework_id: v1::FrameworkId { value: "F".into() },
            },
        ))
        .await?;
    stream.wait_for(r#""type":"SHUTDOWN""#).await?;
    // The placeholder ignores SHUTDOWN; it is killed after the grace period.
    let state = poll(|| async {
        let state = get_json(address, "/state").await?;
        Ok(state["frameworks"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(state))
    })
    .await?;
    assert_eq!(
        state["completed_frameworks"][0]["completed_executors"][0]["id"],
        "E5"
    );
    assert!(agent.sandbox("S0", "F", "E5").join("stdout").exists());
    Ok(())
}

fn custom_executor(id: &str, command: &str) -> v1::ExecutorInfo {
    v1::ExecutorInfo {
        executor_id: v1::ExecutorId { value: id.into() },
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Retries `check` until it yields a value.
async fn poll<T, F, Fut>(check: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("condition not reached in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A raw SUBSCRIBE stream; events are matched as text in what arrived.
struct EventStream {
    stream: tokio::net::TcpStream,
    head: String,
    seen: String,
}

impl EventStream {
    async fn subscribe(address: std::net::SocketAddr, body: &str) -> anyhow::Result<Self> {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!(
            "POST /api/v1/executor HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut this = Self {
            stream,
            head: String::new(),
            seen: String::new(),
        };
        this.wait_for("\r\n\r\n").await?;
        let (head, rest) = this.seen.split_once("\r\n\r\n").unwrap_or_default();
        this.head = head.to_ascii_lowercase();
        this.seen = rest.to_string();
        Ok(this)
    }

    async fn wait_for(&mut self, needle: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut buffer = [0u8; 4096];
        while !self.seen.contains(needle) {
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await??;
            if n == 0 {
                anyhow::bail!("stream ended before {needle}; got {}", self.seen);
            }
            self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        Ok(())
    }
}

/// An executor that resubscribes with updates the agent already has: none
/// is forwarded again; the acknowledged one is acknowledged again, and one
/// the agent never got is forwarded.
#[tokio::test]
async fn resubscribing_executor_updates_are_merged_by_uuid() -> anyhow::Result<()> {
    use mesos_agent::command_executor::ExecutorClient;
    use mesos_proto::v1::executor::event::Type;

    let (_agent, mut session) = registered(&[]).await?;
    // The "executor" process only sleeps; the test speaks for it.
    let mut task = command_task("t9", "unused");
    task.command = None;
    task.executor = Some(v1::ExecutorInfo {
        executor_id: v1::ExecutorId { value: "E9".into() },
        command: Some(v1::CommandInfo {
            value: Some("sleep 100".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    session.run_task(framework("F"), task).await?;
    let client = ExecutorClient::new(&session.agent_address().to_string(), "F", "E9");
    let mut events =
        poll(|| async { Ok(client.subscribe(Vec::new(), Vec::new()).await.ok()) }).await?;
    let next_of = async |events: &mut mesos_agent::command_executor::EventStream, kind: Type| {
        loop {
            let event = tokio::time::timeout(WAIT, events.next())
                .await??
                .ok_or_else(|| anyhow::anyhow!("stream closed"))?;
            if event.r#type() == kind {
                return anyhow::Ok(event);
            }
        }
    };
    next_of(&mut events, Type::Launch).await?;

    let status = |state: TaskState, uuid: u8| v1::TaskStatus {
        task_id: v1::TaskId { value: "t9".into() },
        state: state as i32,
        source: Some(Source::Executor as i32),
        uuid: Some(vec![uuid; 16]),
        ..Default::default()
    };
    client.update(status(TaskState::TaskRunning, 1)).await?;
    let running = session.next_update(WAIT).await?;
    assert_eq!(running.status.uuid, Some(vec![1; 16]));
    session.ack(&running).await?;
    let acked = next_of(&mut events, Type::Acknowledged).await?;
    assert_eq!(acked.acknowledged.map(|a| a.uuid), Some(vec![1; 16]));

    // Resubscribe as after a lost connection, resending the acknowledged
    // update and a new one.
    let mut events = client
        .subscribe(
            Vec::new(),
            vec![
                status(TaskState::TaskRunning, 1),
                status(TaskState::TaskFinished, 2),
            ],
        )
        .await?;
    let again = next_of(&mut events, Type::Acknowledged).await?;
    assert_eq!(again.acknowledged.map(|a| a.uuid), Some(vec![1; 16]));
    let finished = session.next_update(WAIT).await?;
    assert_eq!(
        finished.status.uuid,
        Some(vec![2; 16]),
        "RUNNING is not forwarded twice"
    );
    assert_eq!(finished.status.state(), TaskState::TaskFinished);
    Ok(())
}
