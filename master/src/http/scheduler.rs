//! `POST /api/v1/scheduler`: status codes and headers exactly as Mesos
//! answers them, since unmodified clients depend on them.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use mesos_proto::codec::Format;
use mesos_proto::v1::scheduler::{Call, call};

use super::App;
use crate::error::ApiError;
use crate::master::{Command, Handle};
use crate::validation::validate_scheduler_call;

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

pub async fn scheduler(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(app, method, headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: App,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (call, _) = mesos_http::read_call::<Call>(&method, &headers, &body)?;
    validate_scheduler_call(&call)
        .map_err(|e| ApiError::bad_request(format!("Failed to validate scheduler::Call: {e}")))?;

    if call.r#type() == call::Type::Unknown {
        return Err(ApiError::not_implemented("Received an unknown call type"));
    }

    if call.r#type() == call::Type::Subscribe {
        let format = mesos_http::stream_format(&headers)?;
        if headers.contains_key(STREAM_ID_HEADER) {
            return Err(ApiError::bad_request(
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            ));
        }
        return subscribe(&app.handle, call, format).await;
    }

    let stream_id = headers
        .get(STREAM_ID_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    app.handle
        .request(|reply| Command::Call {
            call,
            stream_id,
            reply,
        })
        .await??;
    Ok(mesos_http::accepted())
}

async fn subscribe(handle: &Handle, call: Call, format: Format) -> Result<Response, ApiError> {
    let subscription = handle
        .request(|reply| Command::Subscribe {
            call,
            format,
            reply,
        })
        .await??;
    let stream_id = HeaderValue::from_str(&subscription.stream_id)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad stream id"))?;
    let guard = CloseGuard {
        handle: handle.clone(),
        framework_id: subscription.framework_id,
        stream_id: subscription.stream_id,
    };
    Ok(mesos_http::event_stream(
        format,
        subscription.events,
        guard,
        &[(HeaderName::from_static("mesos-stream-id"), stream_id)],
    ))
}

/// Tells the master the framework's stream went away.
struct CloseGuard {
    handle: Handle,
    framework_id: String,
    stream_id: String,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.handle.notify(Command::SubscriptionClosed {
            framework_id: std::mem::take(&mut self.framework_id),
            stream_id: std::mem::take(&mut self.stream_id),
        });
    }
}
