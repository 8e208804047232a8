//! An agent that dies is noticed by the master, which tells the framework
//! its tasks are lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::Duration;

use mesos_cli::scheduler_client::{SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};

#[tokio::test]
async fn tasks_of_a_dead_agent_are_reported_lost() {
    let mut cluster = Cluster::start_with(Options {
        master_flags: vec![
            "--allocation_interval=100ms".into(),
            "--agent_ping_timeout=500ms".into(),
            "--max_agent_ping_timeouts=2".into(),
        ],
        ..Options::default()
    });
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "agent-loss".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let task_id = v1::TaskId {
        value: "sleeper".into(),
    };
    let mut killed = false;
    let mut agent_lost = false;
    let lost = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        match event.r#type() {
            event::Type::Offers => {
                for offer in event.offers.unwrap().offers {
                    if killed {
                        continue;
                    }
                    let task = v1::TaskInfo {
                        name: "sleeper".into(),
                        task_id: task_id.clone(),
                        agent_id: offer.agent_id.clone(),
                        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
                        command: Some(v1::CommandInfo {
                            value: Some("sleep 1000".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    client.launch(&offer.id, vec![task], None).await.unwrap();
                }
            }
            event::Type::Update => {
                let status = event.update.unwrap().status;
                client.acknowledge(&status).await.unwrap();
                match status.state() {
                    TaskState::TaskRunning if !killed => {
                        cluster.kill_agent(0);
                        killed = true;
                    }
                    TaskState::TaskLost => break status,
                    TaskState::TaskStarting | TaskState::TaskRunning => {}
                    other => panic!("unexpected {}", other.as_str_name()),
                }
            }
            event::Type::Failure => {
                let failure = event.failure.unwrap();
                if failure.executor_id.is_none() {
                    agent_lost = true;
                }
            }
            _ => {}
        }
    };
    assert!(killed);
    assert_eq!(lost.task_id, task_id);
    assert_eq!(lost.reason(), v1::task_status::Reason::AgentRemoved);
    assert!(
        lost.uuid.is_none(),
        "master-generated updates carry no uuid"
    );
    // The agent-lost FAILURE follows the task update.
    if !agent_lost {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.r#type(), event::Type::Failure);
    }
    assert_eq!(cluster.metric("master/slaves_unreachable"), Some(1.0));
    assert_eq!(cluster.metric("master/cpus_used"), Some(0.0));
}
