//! `POST /api/v1/executor`: the v1 executor API, with Mesos's status codes.
//!
//! The request is checked here in Mesos's order (method, Content-Type,
//! body, call validation, Accept); what depends on the agent's state
//! (which executor is calling, whether it subscribed) is decided by the
//! agent loop.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use mesos_proto::v1::executor;

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
    let (call, _) = mesos_http::read_call::<executor::Call>(&method, headers, body)?;
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
        executor::call::Type::Heartbeat => Ok(mesos_http::accepted()),
        executor::call::Type::Unknown => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Received 'UNKNOWN' call",
        )),
        executor::call::Type::Update | executor::call::Type::Message => {
            app.handle
                .request(|reply| Command::ExecutorCall { call, reply })
                .await??;
            Ok(mesos_http::accepted())
        }
    }
}

/// SUBSCRIBE: a chunked stream of RecordIO records in the negotiated
/// format, open until the agent or the executor ends it.
async fn subscribe(
    app: App,
    headers: &HeaderMap,
    call: executor::Call,
) -> Result<Response, ApiError> {
    let format = mesos_http::stream_format(headers)?;
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
    // No Mesos-Stream-Id on executor subscriptions (pymesos tolerates it).
    Ok(mesos_http::event_stream(
        format,
        subscription.events,
        guard,
        &[],
    ))
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
