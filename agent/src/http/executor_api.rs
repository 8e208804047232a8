//! `POST /api/v1/executor`: the v1 executor API, with Mesos's status codes.
//!
//! The request is checked here in Mesos's order (method, Content-Type,
//! body, call validation, Accept); what depends on the agent's state
//! (which executor is calling, whether it subscribed) is decided by the
//! agent loop.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use mesos_proto::codec::{self, Format};
use mesos_proto::v1::executor;
use tokio_stream::wrappers::ReceiverStream;

use super::App;
use crate::agent::{Command, ExecutorKey, Handle};
use crate::error::ApiError;
use crate::validation;

pub async fn handle(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match call(app, method, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn call(
    app: App,
    method: Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    if method != Method::POST {
        let mut response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(response);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| ApiError::bad_request("Expecting 'Content-Type' to be present"))?;
    let content_type = String::from_utf8_lossy(content_type.as_bytes());
    let format = Format::from_content_type(&content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Expecting 'Content-Type' of application/json or application/x-protobuf, got '{content_type}'"
            ),
        )
    })?;
    let call: executor::Call = codec::decode(format, body).map_err(|e| {
        ApiError::bad_request(format!("Failed to parse body into Call protobuf: {e}"))
    })?;
    if let Err(e) = validation::validate(&call) {
        if call.r#type == Some(executor::call::Type::Update as i32) {
            app.handle.notify(Command::InvalidStatusUpdate);
        }
        return Err(ApiError::bad_request(format!(
            "Failed to validate executor::Call: {e}"
        )));
    }
    match call.r#type() {
        executor::call::Type::Subscribe => subscribe(app, headers, call).await,
        executor::call::Type::Heartbeat => Ok(accepted()),
        executor::call::Type::Unknown => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Received 'UNKNOWN' call",
        )),
        executor::call::Type::Update | executor::call::Type::Message => {
            app.handle
                .request(|reply| Command::ExecutorCall { call, reply })
                .await??;
            Ok(accepted())
        }
    }
}

/// 202 with an explicit empty length: pymesos reads the body of a
/// keep-alive response and would hang without one.
fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()
}

/// SUBSCRIBE: a chunked stream of RecordIO records in the negotiated
/// format, open until the agent or the executor ends it.
async fn subscribe(
    app: App,
    headers: &HeaderMap,
    call: executor::Call,
) -> Result<Response, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let format = Format::negotiate(accept.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow application/json or application/x-protobuf",
        )
    })?;
    let key = ExecutorKey {
        framework_id: call.framework_id.value.clone(),
        executor_id: call.executor_id.value.clone(),
    };
    let subscription = app
        .handle
        .request(|reply| Command::ExecutorSubscribe {
            call,
            format,
            reply,
        })
        .await??;
    let guard = CloseGuard {
        handle: app.handle.clone(),
        key: Some(key),
        conn: subscription.conn,
    };
    let events = ReceiverStream::new(subscription.events).map(move |record| {
        // The guard lives as long as the stream, which hyper drops when
        // the connection goes away.
        let _ = &guard;
        Ok::<_, Infallible>(record)
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.media_type())
        .body(Body::from_stream(events))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Tells the agent when an executor's event stream is gone.
struct CloseGuard {
    handle: Handle,
    key: Option<ExecutorKey>,
    conn: u64,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.handle.notify(Command::ExecutorStreamClosed {
                key,
                conn: self.conn,
            });
        }
    }
}
