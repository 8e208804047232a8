//! The master operator API's messages through Mesos's JSON mapping: the
//! shapes operator tools send and read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use mesos_proto::json::{from_json, to_json};
use mesos_proto::v1::master::{Call, Event, Response, call, event, response};
use mesos_proto::v1::{self, quota};
use serde_json::json;

#[test]
fn calls_parse_from_the_json_operators_send() {
    let call: Call = from_json(br#"{"type":"GET_HEALTH"}"#).unwrap();
    assert_eq!(call.r#type(), call::Type::GetHealth);

    let call: Call =
        from_json(br#"{"type":"TEARDOWN","teardown":{"framework_id":{"value":"f-0001"}}}"#)
            .unwrap();
    assert_eq!(call.teardown.unwrap().framework_id.value, "f-0001");

    let call: Call = from_json(
        br#"{"type":"UPDATE_QUOTA","update_quota":{"force":true,"quota_configs":[
            {"role":"dev","guarantees":{"cpus":{"value":1.5}},"limits":{"mem":{"value":512}}}]}}"#,
    )
    .unwrap();
    let update = call.update_quota.unwrap();
    assert_eq!(update.force, Some(true));
    let config = &update.quota_configs[0];
    assert_eq!(config.role, "dev");
    assert_eq!(config.guarantees["cpus"].value, 1.5);
    assert_eq!(config.limits["mem"].value, 512.0);
}

#[test]
fn a_missing_required_field_is_named() {
    let error = from_json::<Call>(br#"{"type":"MARK_AGENT_GONE","mark_agent_gone":{}}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("agent_id"), "{error}");
}

#[test]
fn responses_and_events_render_with_mesos_names() {
    let reply = Response {
        r#type: Some(response::Type::GetQuota as i32),
        get_quota: Some(response::GetQuota {
            status: quota::QuotaStatus::default(),
        }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&reply),
        json!({"type": "GET_QUOTA", "get_quota": {"status": {}}})
    );

    let event = Event {
        r#type: Some(event::Type::TaskUpdated as i32),
        task_updated: Some(event::TaskUpdated {
            framework_id: v1::FrameworkId { value: "f".into() },
            status: v1::TaskStatus {
                task_id: v1::TaskId { value: "t".into() },
                state: v1::TaskState::TaskRunning as i32,
                ..Default::default()
            },
            state: v1::TaskState::TaskFinished as i32,
        }),
        ..Default::default()
    };
    assert_eq!(
        to_json(&event),
        json!({
            "type": "TASK_UPDATED",
            "task_updated": {
                "framework_id": {"value": "f"},
                "status": {"task_id": {"value": "t"}, "state": "TASK_RUNNING"},
                "state": "TASK_FINISHED",
            }
        })
    );
}
