//! Structural validation of scheduler calls, before they reach the master
//! loop (Mesos's `validation::scheduler::call::validate`).

use mesos_proto::v1::scheduler::{Call, call::Type};

/// Checks the call carries what its type needs. The message says what is
/// missing; the caller answers 400 with it.
pub fn validate_scheduler_call(call: &Call) -> Result<(), String> {
    let Some(kind) = call.r#type else {
        return Err("Expecting 'type' to be present".into());
    };
    let kind = Type::try_from(kind).unwrap_or(Type::Unknown);
    if kind == Type::Subscribe {
        let subscribe = call
            .subscribe
            .as_ref()
            .ok_or("Expecting 'subscribe' to be present")?;
        let info_id = subscribe
            .framework_info
            .id
            .as_ref()
            .map(|id| id.value.as_str());
        let call_id = call.framework_id.as_ref().map(|id| id.value.as_str());
        if info_id != call_id {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        return Ok(());
    }
    if kind == Type::Unknown {
        return Ok(()); // answered 501 by the caller
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    let present = match kind {
        Type::Accept => call.accept.is_some(),
        Type::Decline => call.decline.is_some(),
        Type::AcceptInverseOffers => call.accept_inverse_offers.is_some(),
        Type::DeclineInverseOffers => call.decline_inverse_offers.is_some(),
        Type::Kill => call.kill.is_some(),
        Type::Shutdown => call.shutdown.is_some(),
        Type::Acknowledge => call.acknowledge.is_some(),
        Type::AcknowledgeOperationStatus => call.acknowledge_operation_status.is_some(),
        Type::Reconcile => call.reconcile.is_some(),
        Type::Message => call.message.is_some(),
        Type::Request => call.request.is_some(),
        Type::UpdateFramework => call.update_framework.is_some(),
        Type::Teardown
        | Type::Revive
        | Type::Suppress
        | Type::ReconcileOperations
        | Type::Subscribe
        | Type::Unknown => true,
    };
    if !present {
        return Err(format!(
            "Expecting '{}' to be present",
            kind.as_str_name().to_ascii_lowercase()
        ));
    }
    if let Some(ack) = &call.acknowledge
        && ack.uuid.len() != 16
    {
        return Err(format!(
            "Not a valid UUID: expected 16 bytes, got {}",
            ack.uuid.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::scheduler::call;
    use mesos_proto::v1::{AgentId, FrameworkId, TaskId};

    fn call_of(kind: Type) -> Call {
        Call {
            r#type: Some(kind as i32),
            framework_id: Some(FrameworkId { value: "f".into() }),
            ..Default::default()
        }
    }

    #[test]
    fn missing_type_and_framework_id_are_named() {
        assert_eq!(
            validate_scheduler_call(&Call::default()).unwrap_err(),
            "Expecting 'type' to be present"
        );
        let mut c = call_of(Type::Teardown);
        c.framework_id = None;
        assert_eq!(
            validate_scheduler_call(&c).unwrap_err(),
            "Expecting 'framework_id' to be present"
        );
    }

    #[test]
    fn sub_message_must_match_type() {
        assert_eq!(
            validate_scheduler_call(&call_of(Type::Accept)).unwrap_err(),
            "Expecting 'accept' to be present"
        );
        assert!(validate_scheduler_call(&call_of(Type::Revive)).is_ok());
    }

    #[test]
    fn acknowledge_needs_a_16_byte_uuid() {
        let mut c = call_of(Type::Acknowledge);
        c.acknowledge = Some(call::Acknowledge {
            agent_id: AgentId { value: "a".into() },
            task_id: TaskId { value: "t".into() },
            uuid: vec![1, 2, 3],
        });
        assert!(validate_scheduler_call(&c).unwrap_err().contains("UUID"));
        if let Some(a) = c.acknowledge.as_mut() {
            a.uuid = vec![7; 16];
        }
        assert!(validate_scheduler_call(&c).is_ok());
    }

    #[test]
    fn subscribe_ids_must_agree() {
        let mut c = call_of(Type::Subscribe);
        c.subscribe = Some(call::Subscribe {
            framework_info: mesos_proto::v1::FrameworkInfo {
                user: "u".into(),
                name: "n".into(),
                ..Default::default()
            },
            ..Default::default()
        });
        assert!(validate_scheduler_call(&c).is_err());
        c.framework_id = None;
        assert!(validate_scheduler_call(&c).is_ok());
    }
}
