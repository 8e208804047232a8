//! `POST /api/v1` (also `/api/v1/operator`): the master operator API, with
//! Mesos's status codes. Synchronous calls answer one `master::Response` in
//! the format `Accept` asks for; SUBSCRIBE answers a RecordIO stream of
//! `master::Event`.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use mesos_proto::codec::{self, Format};
use mesos_proto::v1;
use mesos_proto::v1::master::{Call, Response as Reply, call, response};

use super::App;
use crate::error::ApiError;
use crate::master::Command;

/// Operator calls are small; reservations list a few resources at most.
const MAX_CALL_BYTES: usize = 4 << 20;

pub async fn handle(State(app): State<App>, request: Request) -> Response {
    match dispatch(app, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(app: App, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_CALL_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Failed to read the request body: {e}"),
            )
        })?;
    let (call, body_format) = mesos_http::read_call::<Call>(&parts.method, &parts.headers, &bytes)?;
    match call.r#type {
        None => return Err(missing_type(body_format, &bytes)),
        Some(raw) if call::Type::try_from(raw).is_err() => {
            return Err(ApiError::bad_request(format!("Unknown call type {raw}")));
        }
        Some(_) => {}
    }
    let format = mesos_http::stream_format(&parts.headers)?;
    if call.r#type() == call::Type::Subscribe {
        let events = app
            .handle
            .request(|reply| Command::OperatorSubscribe { format, reply })
            .await?;
        return Ok(mesos_http::event_stream(format, events, (), &[]));
    }
    // Mesos answers operations on resources 202: applied by the master,
    // on their way to the agent.
    let accepted = matches!(
        call.r#type(),
        call::Type::ReserveResources
            | call::Type::UnreserveResources
            | call::Type::CreateVolumes
            | call::Type::DestroyVolumes
    );
    Ok(match answer(&app, call).await? {
        Some(reply) => {
            // GET_STATE at scale is tens of megabytes: encoded on the
            // blocking pool, not on an async worker.
            let body = tokio::task::spawn_blocking(move || codec::encode(format, &reply))
                .await
                .map_err(|e| ApiError::unavailable(format!("encoding the answer failed: {e}")))?;
            ([(header::CONTENT_TYPE, format.media_type())], body).into_response()
        }
        None if accepted => (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response(),
        None => (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response(),
    })
}

/// A JSON `type` naming no call this master knows parses as no type at
/// all; say which name was not understood.
fn missing_type(format: Format, body: &[u8]) -> ApiError {
    let named = (format == Format::Json)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .and_then(|v| v.get("type").map(|t| t.to_string()));
    match named {
        Some(name) => ApiError::bad_request(format!("Unknown call type {name}")),
        None => ApiError::bad_request("Expecting 'type' to be present"),
    }
}

fn reply(kind: response::Type) -> Reply {
    Reply {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// The synchronous calls; `None` answers 200 with no body.
async fn answer(app: &App, call: Call) -> Result<Option<Reply>, ApiError> {
    use call::Type as T;
    use response::Type as R;
    Ok(Some(match call.r#type() {
        T::GetHealth => Reply {
            get_health: Some(response::GetHealth { healthy: true }),
            ..reply(R::GetHealth)
        },
        T::GetFlags => Reply {
            get_flags: Some(response::GetFlags {
                flags: mesos_proto::operator::flags(&app.flags),
            }),
            ..reply(R::GetFlags)
        },
        T::GetVersion => Reply {
            get_version: Some(response::GetVersion {
                version_info: v1::VersionInfo {
                    version: mesos_proto::MESOS_VERSION.into(),
                    build_date: Some(crate::BUILD_DATE.into()),
                    build_time: Some(0.0),
                    build_user: Some(String::new()),
                    ..Default::default()
                },
            }),
            ..reply(R::GetVersion)
        },
        T::GetMetrics => {
            let snapshot = app
                .handle
                .request(|reply| Command::Metrics { reply })
                .await?;
            let metrics = mesos_proto::operator::metrics(&snapshot);
            Reply {
                get_metrics: Some(response::GetMetrics { metrics }),
                ..reply(R::GetMetrics)
            }
        }
        // glog verbosity: the master logs at its base level.
        T::GetLoggingLevel => Reply {
            get_logging_level: Some(response::GetLoggingLevel { level: 0 }),
            ..reply(R::GetLoggingLevel)
        },
        T::GetState
        | T::GetAgents
        | T::GetFrameworks
        | T::GetExecutors
        | T::GetTasks
        | T::GetRoles
        | T::GetMaster
        | T::GetWeights
        | T::GetQuota
        | T::UpdateWeights
        | T::UpdateQuota
        | T::Teardown
        | T::MarkAgentGone
        | T::ReserveResources
        | T::UnreserveResources
        | T::CreateVolumes
        | T::DestroyVolumes => {
            return app
                .handle
                .request(|reply| Command::Operator { call, reply })
                .await?;
        }
        // Mesos answers an explicit UNKNOWN with 501; a missing or
        // unrecognised type was refused before.
        T::Unknown => {
            return Err(ApiError::not_implemented("Received 'UNKNOWN' call"));
        }
        other => {
            return Err(ApiError::not_implemented(format!(
                "'{}' is not supported by this master",
                other.as_str_name()
            )));
        }
    }))
}
