//! Mesos's validation of executor calls, before the agent looks at whom a
//! call is from. A failure is a 400 whose body starts with
//! "Failed to validate executor::Call: ".

use mesos_proto::v1::{TaskState, executor, task_status::Source};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("Expecting 'type' to be present")]
    MissingType,
    #[error("Expecting '{0}' to be present")]
    MissingPayload(&'static str),
    #[error("Expecting 'uuid' to be present and a valid UUID (16 bytes)")]
    BadUuid,
    #[error("ExecutorID in Call: {call} does not match ExecutorID in TaskStatus: {status}")]
    ExecutorMismatch { call: String, status: String },
    #[error(
        "Received Call from executor {executor} of framework {framework} with invalid source, expecting 'SOURCE_EXECUTOR'"
    )]
    BadSource { executor: String, framework: String },
    #[error(
        "Received TASK_STAGING from executor {executor} of framework {framework} which is not allowed"
    )]
    Staging { executor: String, framework: String },
}

/// Checks a decoded call. Required fields were checked by the decoder.
pub fn validate(call: &executor::Call) -> Result<(), CallError> {
    let Some(kind) = call.r#type else {
        return Err(CallError::MissingType);
    };
    match executor::call::Type::try_from(kind) {
        Ok(executor::call::Type::Subscribe) if call.subscribe.is_none() => {
            Err(CallError::MissingPayload("subscribe"))
        }
        Ok(executor::call::Type::Message) if call.message.is_none() => {
            Err(CallError::MissingPayload("message"))
        }
        Ok(executor::call::Type::Update) => validate_update(call),
        _ => Ok(()),
    }
}

fn validate_update(call: &executor::Call) -> Result<(), CallError> {
    let Some(update) = &call.update else {
        return Err(CallError::MissingPayload("update"));
    };
    let status = &update.status;
    let executor = || call.executor_id.value.clone();
    let framework = || call.framework_id.value.clone();
    if status.uuid.as_ref().is_none_or(|uuid| uuid.len() != 16) {
        return Err(CallError::BadUuid);
    }
    if let Some(id) = &status.executor_id
        && id.value != call.executor_id.value
    {
        return Err(CallError::ExecutorMismatch {
            call: executor(),
            status: id.value.clone(),
        });
    }
    if status.source != Some(Source::Executor as i32) {
        return Err(CallError::BadSource {
            executor: executor(),
            framework: framework(),
        });
    }
    if status.state == TaskState::TaskStaging as i32 {
        return Err(CallError::Staging {
            executor: executor(),
            framework: framework(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1;

    fn call(kind: executor::call::Type) -> executor::Call {
        executor::Call {
            executor_id: v1::ExecutorId { value: "e".into() },
            framework_id: v1::FrameworkId { value: "f".into() },
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    fn update(status: impl FnOnce(&mut v1::TaskStatus)) -> executor::Call {
        let mut s = v1::TaskStatus {
            task_id: v1::TaskId { value: "t".into() },
            state: TaskState::TaskRunning as i32,
            uuid: Some(vec![7; 16]),
            source: Some(Source::Executor as i32),
            ..Default::default()
        };
        status(&mut s);
        executor::Call {
            update: Some(executor::call::Update { status: s }),
            ..call(executor::call::Type::Update)
        }
    }

    #[test]
    fn payloads_must_match_the_type() {
        let mut untyped = call(executor::call::Type::Heartbeat);
        untyped.r#type = None;
        assert_eq!(validate(&untyped), Err(CallError::MissingType));
        assert_eq!(
            validate(&call(executor::call::Type::Subscribe)),
            Err(CallError::MissingPayload("subscribe"))
        );
        assert_eq!(
            validate(&call(executor::call::Type::Update)),
            Err(CallError::MissingPayload("update"))
        );
        assert_eq!(
            validate(&call(executor::call::Type::Message)),
            Err(CallError::MissingPayload("message"))
        );
        assert_eq!(validate(&call(executor::call::Type::Heartbeat)), Ok(()));
        let subscribe = executor::Call {
            subscribe: Some(Default::default()),
            ..call(executor::call::Type::Subscribe)
        };
        assert_eq!(validate(&subscribe), Ok(()));
    }

    #[test]
    fn updates_are_checked_like_mesos() {
        assert_eq!(validate(&update(|_| {})), Ok(()));
        assert_eq!(
            validate(&update(|s| s.uuid = None)),
            Err(CallError::BadUuid)
        );
        assert_eq!(
            validate(&update(|s| s.uuid = Some(vec![1; 15]))),
            Err(CallError::BadUuid)
        );
        assert!(matches!(
            validate(&update(|s| s.source = Some(Source::Agent as i32))),
            Err(CallError::BadSource { .. })
        ));
        assert!(matches!(
            validate(&update(|s| s.source = None)),
            Err(CallError::BadSource { .. })
        ));
        assert!(matches!(
            validate(&update(|s| s.state = TaskState::TaskStaging as i32)),
            Err(CallError::Staging { .. })
        ));
        let err = validate(&update(|s| {
            s.executor_id = Some(v1::ExecutorId {
                value: "other".into(),
            })
        }))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ExecutorID in Call: e does not match ExecutorID in TaskStatus: other"
        );
        assert_eq!(
            validate(&update(
                |s| s.executor_id = Some(v1::ExecutorId { value: "e".into() })
            )),
            Ok(())
        );
    }
}
