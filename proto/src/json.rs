//! JSON exactly as Mesos reads and writes it (stout's `protobuf.hpp`), by
//! walking message descriptors.
//!
//! Writing: proto field names, set fields only plus unset optional fields
//! that declare a non-deprecated `[default = ...]`, 64-bit integers as
//! numbers, enums by name, bytes as padded base64, empty repeated fields
//! left out.
//!
//! Reading is lenient the way Mesos is: unknown keys and `null` are
//! ignored, numbers may come as strings, booleans as `"true"`, a single
//! value stands for a one-element repeated field, an unknown enum name
//! leaves an optional field unset; then missing required fields are an
//! error naming each of them.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage,
    Value,
};
use serde_json::{Map, Number, Value as Json};

/// Why a JSON document is not a valid message. The text goes into HTTP 400
/// bodies, so it names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: {0}")]
    Syntax(String),
    #[error("'{path}': {problem}")]
    Field { path: String, problem: String },
    #[error("Missing required fields: {}", .0.join(", "))]
    MissingRequired(Vec<String>),
    #[error("failed to convert the message: {0}")]
    Convert(String),
}

fn field_error(path: &str, problem: impl Into<String>) -> JsonError {
    JsonError::Field {
        path: path.to_string(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------- writing

/// Renders a message as Mesos renders it.
pub fn to_json<M: ReflectMessage>(message: &M) -> Json {
    message_to_json(&message.transcode_to_dynamic())
}

/// [`to_json`], serialized.
pub fn to_json_vec<M: ReflectMessage>(message: &M) -> Vec<u8> {
    // Serializing a `serde_json::Value` cannot fail: every key is a string.
    serde_json::to_vec(&to_json(message)).unwrap_or_default()
}

/// Renders a dynamic message.
pub fn message_to_json(message: &DynamicMessage) -> Json {
    let mut object = Map::new();
    for field in declared_fields(&message.descriptor()) {
        if field.is_map() {
            if let Value::Map(entries) = &*message.get_field(&field) {
                if entries.is_empty() {
                    continue;
                }
                let value_kind = map_value_kind(&field);
                let rendered: Map<String, Json> = entries
                    .iter()
                    .map(|(k, v)| (map_key_string(k), value_to_json(v, &value_kind)))
                    .collect();
                object.insert(field.name().to_string(), Json::Object(rendered));
            }
        } else if field.is_list() {
            if let Value::List(items) = &*message.get_field(&field) {
                if items.is_empty() {
                    continue;
                }
                let kind = field.kind();
                let rendered = items.iter().map(|v| value_to_json(v, &kind)).collect();
                object.insert(field.name().to_string(), Json::Array(rendered));
            }
        } else if message.has_field(&field) {
            let value = message.get_field(&field);
            object.insert(
                field.name().to_string(),
                value_to_json(&value, &field.kind()),
            );
        } else if emits_default(&field) {
            object.insert(
                field.name().to_string(),
                value_to_json(&field.default_value(), &field.kind()),
            );
        }
    }
    Json::Object(object)
}

/// A message's fields in the order the `.proto` declares them, which is the
/// order stout writes JSON keys in (and protobuf lists missing required
/// fields in); prost-reflect's own `fields()` goes by field number instead.
fn declared_fields(descriptor: &MessageDescriptor) -> Vec<FieldDescriptor> {
    descriptor
        .descriptor_proto()
        .field
        .iter()
        .filter_map(|proto| descriptor.get_field(u32::try_from(proto.number()).ok()?))
        .collect()
}

/// Mesos renders unset fields that declare an explicit, non-deprecated
/// default (e.g. `Filters.refuse_seconds`, `CommandInfo.shell`).
fn emits_default(field: &FieldDescriptor) -> bool {
    let proto = field.field_descriptor_proto();
    let deprecated = proto
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false);
    proto.default_value.is_some() && !deprecated
}

fn map_value_kind(field: &FieldDescriptor) -> Kind {
    match field.kind() {
        Kind::Message(entry) => entry.map_entry_value_field().kind(),
        other => other,
    }
}

fn map_key_string(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn float_to_json(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

fn value_to_json(value: &Value, kind: &Kind) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(f) => float_to_json(f64::from(*f)),
        Value::F64(f) => float_to_json(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(STANDARD.encode(b)),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => Json::String(v.name().to_string()),
                None => Json::from(*n),
            },
            _ => Json::from(*n),
        },
        Value::Message(m) => message_to_json(m),
        Value::List(items) => Json::Array(items.iter().map(|v| value_to_json(v, kind)).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (map_key_string(k), value_to_json(v, kind)))
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------- reading

/// Parses a JSON document into a message, as Mesos does.
pub fn from_json<M: ReflectMessage + Default>(bytes: &[u8]) -> Result<M, JsonError> {
    let value: Json =
        serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
    from_json_value(&value)
}

/// Parses an already decoded JSON value into a message.
pub fn from_json_value<M: ReflectMessage + Default>(value: &Json) -> Result<M, JsonError> {
    let descriptor = M::default().descriptor();
    let message = parse_message(&descriptor, value, "")?;
    check_required(&message)?;
    message
        .transcode_to::<M>()
        .map_err(|e| JsonError::Convert(e.to_string()))
}

/// Fails with every required field missing anywhere in the message.
pub fn check_required(message: &DynamicMessage) -> Result<(), JsonError> {
    let mut missing = Vec::new();
    collect_missing(message, "", &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(JsonError::MissingRequired(missing))
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn collect_missing(message: &DynamicMessage, path: &str, missing: &mut Vec<String>) {
    for field in declared_fields(&message.descriptor()) {
        let field_path = join(path, field.name());
        if field.cardinality() == Cardinality::Required && !message.has_field(&field) {
            missing.push(field_path);
            continue;
        }
        if !message.has_field(&field) {
            continue;
        }
        match &*message.get_field(&field) {
            Value::Message(m) => collect_missing(m, &field_path, missing),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(m) = item {
                        collect_missing(m, &format!("{field_path}[{i}]"), missing);
                    }
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    if let Value::Message(m) = v {
                        collect_missing(
                            m,
                            &format!("{field_path}[{}]", map_key_string(k)),
                            missing,
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn parse_message(
    descriptor: &MessageDescriptor,
    value: &Json,
    path: &str,
) -> Result<DynamicMessage, JsonError> {
    let Json::Object(object) = value else {
        return Err(field_error(
            if path.is_empty() { "<root>" } else { path },
            "expected a JSON object",
        ));
    };
    let mut message = DynamicMessage::new(descriptor.clone());
    for (key, json) in object {
        let Some(field) = descriptor.get_field_by_name(key) else {
            continue; // unknown keys are ignored, as Mesos does
        };
        if json.is_null() {
            continue;
        }
        let field_path = join(path, key);
        if field.is_map() {
            let entries = parse_map(&field, json, &field_path)?;
            message.set_field(&field, Value::Map(entries));
        } else if field.is_list() {
            let items: Vec<&Json> = match json {
                Json::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if let Some(v) = parse_single(&field.kind(), item, &format!("{field_path}[{i}]"))? {
                    values.push(v);
                }
            }
            message.set_field(&field, Value::List(values));
        } else {
            if json.is_array() {
                return Err(field_error(
                    &field_path,
                    "expected a single value, got an array",
                ));
            }
            match parse_single(&field.kind(), json, &field_path)? {
                Some(v) => message.set_field(&field, v),
                None if field.cardinality() == Cardinality::Required => {
                    return Err(field_error(
                        &field_path,
                        format!("unknown enum value {json}"),
                    ));
                }
                None => {}
            }
        }
    }
    Ok(message)
}

fn parse_map(
    field: &FieldDescriptor,
    json: &Json,
    path: &str,
) -> Result<HashMap<MapKey, Value>, JsonError> {
    let Json::Object(object) = json else {
        return Err(field_error(path, "expected a JSON object for a map"));
    };
    let Kind::Message(entry) = field.kind() else {
        return Err(field_error(path, "map field without an entry type"));
    };
    let key_kind = entry.map_entry_key_field().kind();
    let value_kind = entry.map_entry_value_field().kind();
    let mut entries = HashMap::with_capacity(object.len());
    for (k, v) in object {
        let entry_path = format!("{path}[{k}]");
        let key = match key_kind {
            Kind::String => MapKey::String(k.clone()),
            Kind::Bool => MapKey::Bool(parse_bool(&Json::String(k.clone()), &entry_path)?),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                MapKey::I32(parse_int(&Json::String(k.clone()), &entry_path)?)
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                MapKey::I64(parse_int(&Json::String(k.clone()), &entry_path)?)
            }
            Kind::Uint32 | Kind::Fixed32 => {
                MapKey::U32(parse_int(&Json::String(k.clone()), &entry_path)?)
            }
            Kind::Uint64 | Kind::Fixed64 => {
                MapKey::U64(parse_int(&Json::String(k.clone()), &entry_path)?)
            }
            _ => return Err(field_error(&entry_path, "unsupported map key type")),
        };
        if let Some(value) = parse_single(&value_kind, v, &entry_path)? {
            entries.insert(key, value);
        }
    }
    Ok(entries)
}

/// One value of a field; `None` for an unknown enum name.
fn parse_single(kind: &Kind, json: &Json, path: &str) -> Result<Option<Value>, JsonError> {
    let value = match kind {
        Kind::Bool => Value::Bool(parse_bool(json, path)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(parse_int(json, path)?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(parse_int(json, path)?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(parse_int(json, path)?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(parse_int(json, path)?),
        Kind::Float => Value::F32(parse_float(json, path)? as f32),
        Kind::Double => Value::F64(parse_float(json, path)?),
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            other => return Err(field_error(path, format!("expected a string, got {other}"))),
        },
        Kind::Bytes => match json {
            Json::String(s) => {
                let decoded = STANDARD
                    .decode(s)
                    .or_else(|_| STANDARD_NO_PAD.decode(s))
                    .map_err(|e| field_error(path, format!("invalid base64: {e}")))?;
                Value::Bytes(decoded.into())
            }
            other => {
                return Err(field_error(
                    path,
                    format!("expected a base64 string, got {other}"),
                ));
            }
        },
        Kind::Enum(descriptor) => {
            let found = match json {
                Json::String(name) => descriptor.get_value_by_name(name),
                Json::Number(n) => n
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .and_then(|n| descriptor.get_value(n)),
                other => {
                    return Err(field_error(
                        path,
                        format!("expected an enum name, got {other}"),
                    ));
                }
            };
            match found {
                Some(v) => Value::EnumNumber(v.number()),
                None => return Ok(None),
            }
        }
        Kind::Message(descriptor) => Value::Message(parse_message(descriptor, json, path)?),
    };
    Ok(Some(value))
}

fn parse_bool(json: &Json, path: &str) -> Result<bool, JsonError> {
    match json {
        Json::Bool(b) => Ok(*b),
        Json::String(s) if s == "true" => Ok(true),
        Json::String(s) if s == "false" => Ok(false),
        other => Err(field_error(
            path,
            format!("expected a boolean, got {other}"),
        )),
    }
}

fn parse_int<T>(json: &Json, path: &str) -> Result<T, JsonError>
where
    T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    let out_of_range = || field_error(path, format!("integer out of range: {json}"));
    match json {
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                T::try_from(u).map_err(|_| out_of_range())
            } else if let Some(i) = n.as_i64() {
                T::try_from(i).map_err(|_| out_of_range())
            } else {
                // A float such as 1700000000.0 where an integer is expected:
                // accept it when it is whole.
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    T::try_from(f as i64).map_err(|_| out_of_range())
                } else {
                    Err(field_error(path, format!("expected an integer, got {n}")))
                }
            }
        }
        Json::String(s) => s
            .trim()
            .parse::<T>()
            .map_err(|_| field_error(path, format!("expected an integer, got \"{s}\""))),
        other => Err(field_error(
            path,
            format!("expected an integer, got {other}"),
        )),
    }
}

fn parse_float(json: &Json, path: &str) -> Result<f64, JsonError> {
    match json {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| field_error(path, format!("expected a number, got {n}"))),
        Json::String(s) => match s.trim() {
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            t => t
                .parse::<f64>()
                .map_err(|_| field_error(path, format!("expected a number, got \"{s}\""))),
        },
        other => Err(field_error(path, format!("expected a number, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{self, scheduler};
    use serde_json::json;

    #[test]
    fn renders_defaults_enums_and_bytes_like_mesos() {
        assert_eq!(
            to_json(&v1::Filters::default()),
            json!({"refuse_seconds": 5.0})
        );
        let command = v1::CommandInfo {
            value: Some("echo hi".into()),
            ..Default::default()
        };
        assert_eq!(
            to_json(&command),
            json!({"shell": true, "value": "echo hi"})
        );
        let status = v1::TaskStatus {
            task_id: v1::TaskId { value: "t1".into() },
            state: v1::TaskState::TaskRunning as i32,
            source: Some(v1::task_status::Source::Executor as i32),
            uuid: Some(vec![0u8; 16]),
            timestamp: Some(1.5),
            ..Default::default()
        };
        assert_eq!(
            to_json(&status),
            json!({
                "task_id": {"value": "t1"},
                "state": "TASK_RUNNING",
                "source": "SOURCE_EXECUTOR",
                "timestamp": 1.5,
                "uuid": "AAAAAAAAAAAAAAAAAAAAAA=="
            })
        );
    }

    #[test]
    fn deprecated_defaults_are_not_rendered() {
        let info = v1::FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            ..Default::default()
        };
        let rendered = to_json(&info);
        assert!(rendered.get("role").is_none(), "{rendered}");
        assert_eq!(rendered["failover_timeout"], json!(0.0));
        assert_eq!(rendered["checkpoint"], json!(false));
    }

    #[test]
    fn heartbeat_event_has_no_payload() {
        let event = scheduler::Event {
            r#type: Some(scheduler::event::Type::Heartbeat as i32),
            ..Default::default()
        };
        assert_eq!(to_json(&event), json!({"type": "HEARTBEAT"}));
    }

    #[test]
    fn parses_leniently() {
        let call: scheduler::Call = from_json(
            br#"{"type":"ACKNOWLEDGE","framework_id":{"value":"f"},"unknown":1,"revive":null,
                "acknowledge":{"agent_id":{"value":"a"},"task_id":{"value":"t"},
                "uuid":"AAAAAAAAAAAAAAAAAAAAAA=="}}"#,
        )
        .unwrap();
        assert_eq!(call.r#type(), scheduler::call::Type::Acknowledge);
        assert_eq!(call.acknowledge.unwrap().uuid, vec![0u8; 16]);

        let filters: v1::Filters = from_json(br#"{"refuse_seconds":"7.5"}"#).unwrap();
        assert_eq!(filters.refuse_seconds, Some(7.5));
        let info: v1::FrameworkInfo =
            from_json(br#"{"user":"u","name":"n","checkpoint":"true","roles":"web"}"#).unwrap();
        assert_eq!(info.checkpoint, Some(true));
        assert_eq!(info.roles, vec!["web".to_string()]);
        // An integer where a double is expected (pymesos sends int timestamps).
        let status: v1::TaskStatus = from_json(
            br#"{"task_id":{"value":"t"},"state":"TASK_RUNNING","timestamp":1700000000}"#,
        )
        .unwrap();
        assert_eq!(status.timestamp, Some(1.7e9));
        // Unknown enum name on an optional enum: unset.
        let status: v1::TaskStatus =
            from_json(br#"{"task_id":{"value":"t"},"state":"TASK_RUNNING","source":"NOPE"}"#)
                .unwrap();
        assert_eq!(status.source, None);
    }

    #[test]
    fn errors_name_the_field() {
        let err = from_json::<v1::TaskStatus>(br#"{"task_id":{"value":"t"},"state":"NOPE"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("state"), "{err}");
        let err = from_json::<v1::TaskStatus>(br#"{"task_id":{}}"#).unwrap_err();
        assert_eq!(
            err,
            JsonError::MissingRequired(vec!["task_id.value".into(), "state".into()])
        );
        let err = from_json::<v1::Filters>(br#"{"refuse_seconds":[1]}"#).unwrap_err();
        assert!(err.to_string().contains("refuse_seconds"), "{err}");
        let err = from_json::<scheduler::Call>(
            br#"{"message":{"agent_id":{"value":"a"},"executor_id":{"value":"e"},"data":"@@"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("message.data"), "{err}");
        assert!(matches!(
            from_json::<v1::Filters>(b"{"),
            Err(JsonError::Syntax(_))
        ));
        assert!(from_json::<v1::Filters>(b"[]").is_err());
    }

    #[test]
    fn round_trips_an_offer() {
        let offer = v1::Offer {
            id: v1::OfferId { value: "o".into() },
            framework_id: v1::FrameworkId { value: "f".into() },
            agent_id: v1::AgentId { value: "a".into() },
            hostname: "h".into(),
            resources: vec![v1::Resource {
                name: "ports".into(),
                r#type: v1::value::Type::Ranges as i32,
                ranges: Some(v1::value::Ranges {
                    range: vec![v1::value::Range {
                        begin: 31000,
                        end: 32000,
                    }],
                }),
                role: Some("*".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let rendered = to_json(&offer);
        assert_eq!(rendered["resources"][0]["type"], json!("RANGES"));
        assert_eq!(
            rendered["resources"][0]["ranges"]["range"][0]["end"],
            json!(32000)
        );
        let back: v1::Offer = from_json_value(&rendered).unwrap();
        assert_eq!(back, offer);
    }
}
