//! Body encodings of the HTTP APIs: JSON or protobuf, picked by
//! `Content-Type` for requests and by `Accept` for responses.

use prost_reflect::{DynamicMessage, ReflectMessage};

use crate::json::{self, JsonError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Protobuf => PROTOBUF,
        }
    }

    /// Mesos compares `Content-Type` by exact string equality.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        match content_type {
            JSON => Some(Format::Json),
            PROTOBUF => Some(Format::Protobuf),
            _ => None,
        }
    }

    /// The response format for an `Accept` header: JSON when acceptable
    /// (also when there is no header), else protobuf, else none.
    pub fn negotiate(accept: Option<&str>) -> Option<Format> {
        let Some(accept) = accept else {
            return Some(Format::Json);
        };
        [Format::Json, Format::Protobuf]
            .into_iter()
            .find(|f| accepts(accept, f.media_type()))
    }
}

/// Whether an `Accept` header allows a media type: the most specific
/// matching range decides, and `q=0` refuses.
fn accepts(accept: &str, media_type: &str) -> bool {
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    let mut best: Option<(u8, bool)> = None; // (specificity, allowed)
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let pattern = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let allowed = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .all(|q| q.trim().parse::<f32>().map(|q| q > 0.0).unwrap_or(true));
        let specificity = if pattern == media_type {
            3
        } else if pattern == format!("{kind}/*") {
            2
        } else if pattern == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, allowed));
        }
    }
    best.is_some_and(|(_, allowed)| allowed)
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
}

/// Decodes a request body; required fields are checked in both formats.
pub fn decode<M: ReflectMessage + Default>(format: Format, body: &[u8]) -> Result<M, DecodeError> {
    match format {
        Format::Json => Ok(json::from_json(body)?),
        Format::Protobuf => {
            let descriptor = M::default().descriptor();
            let dynamic = DynamicMessage::decode(descriptor, body)
                .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
            json::check_required(&dynamic)?;
            dynamic
                .transcode_to::<M>()
                .map_err(|e| DecodeError::Protobuf(e.to_string()))
        }
    }
}

pub fn encode<M: ReflectMessage>(format: Format, message: &M) -> Vec<u8> {
    match format {
        Format::Json => json::to_json_vec(message),
        Format::Protobuf => message.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;

    #[test]
    fn negotiates_like_mesos() {
        assert_eq!(Format::negotiate(None), Some(Format::Json));
        assert_eq!(
            Format::negotiate(Some("application/json")),
            Some(Format::Json)
        );
        assert_eq!(
            Format::negotiate(Some("application/x-protobuf")),
            Some(Format::Protobuf)
        );
        assert_eq!(Format::negotiate(Some("*/*")), Some(Format::Json));
        assert_eq!(
            Format::negotiate(Some("application/json;q=0, application/*")),
            Some(Format::Protobuf)
        );
        assert_eq!(Format::negotiate(Some("text/html")), None);
        assert_eq!(
            Format::from_content_type("application/json; charset=utf-8"),
            None
        );
    }

    #[test]
    fn protobuf_decode_checks_required_fields() {
        let status = v1::TaskStatus {
            task_id: v1::TaskId { value: "t".into() },
            state: v1::TaskState::TaskRunning as i32,
            ..Default::default()
        };
        let bytes = encode(Format::Protobuf, &status);
        let back: v1::TaskStatus = decode(Format::Protobuf, &bytes).unwrap();
        assert_eq!(back, status);
        // A Filters message is not a TaskStatus: required fields are missing.
        let filters = encode(
            Format::Protobuf,
            &v1::Filters {
                refuse_seconds: Some(1.0),
            },
        );
        assert!(decode::<v1::TaskStatus>(Format::Protobuf, &filters).is_err());
        let err = decode::<v1::TaskStatus>(Format::Protobuf, b"").unwrap_err();
        assert_eq!(err.to_string(), "Missing required fields: task_id, state");
        // A nested message missing its own required field.
        let err =
            decode::<v1::TaskStatus>(Format::Protobuf, &[0x0a, 0x00, 0x10, 0x01]).unwrap_err();
        assert_eq!(err.to_string(), "Missing required fields: task_id.value");
        assert!(matches!(
            decode::<v1::TaskStatus>(Format::Protobuf, &[0x0a, 0x05]),
            Err(DecodeError::Protobuf(_))
        ));
    }

    #[test]
    fn negotiation_edge_cases() {
        let cases = [
            // Both acceptable: Mesos tries JSON first.
            (
                "application/x-protobuf, application/json",
                Some(Format::Json),
            ),
            (
                "application/x-protobuf;q=1.0, application/json;q=0.1",
                Some(Format::Json),
            ),
            ("application/*", Some(Format::Json)),
            ("Application/JSON", Some(Format::Json)),
            (
                "text/html, application/x-protobuf;q=0.9",
                Some(Format::Protobuf),
            ),
            ("*/*;q=0", None),
            ("application/json;q=0", None),
            ("*/*, application/json;q=0", Some(Format::Protobuf)),
            (
                "application/*;q=0, application/x-protobuf",
                Some(Format::Protobuf),
            ),
            ("application/recordio", None),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(Some(accept)), want, "{accept}");
        }
        assert_eq!(
            Format::from_content_type("application/json"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_content_type("application/x-protobuf"),
            Some(Format::Protobuf)
        );
        assert_eq!(Format::from_content_type("Application/JSON"), None);
        assert_eq!(Format::Protobuf.media_type(), "application/x-protobuf");
    }

    #[test]
    fn json_path_uses_the_mesos_json_codec() {
        let filters = v1::Filters::default();
        assert_eq!(encode(Format::Json, &filters), br#"{"refuse_seconds":5.0}"#);
        let back: v1::Filters = decode(Format::Json, br#"{"refuse_seconds":"1"}"#).unwrap();
        assert_eq!(back.refuse_seconds, Some(1.0));
        let err = decode::<v1::TaskStatus>(Format::Json, b"{}").unwrap_err();
        assert_eq!(err.to_string(), "Missing required fields: task_id, state");
    }
}
