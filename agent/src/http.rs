//! The agent's HTTP surface: the v1 executor API and the JSON endpoints.
//! Every path also answers under `/slave(1)`, as libprocess routes them.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use mesos_proto::codec::{self, Format};
use mesos_proto::v1::executor;
use serde_json::{Map, Value, json};
use tokio_stream::wrappers::ReceiverStream;

use crate::agent::{Command, Handle};
use crate::error::ApiError;

#[derive(Clone)]
pub struct App {
    pub handle: Handle,
    pub flags: std::sync::Arc<Vec<(String, String)>>,
}

pub fn router(app: App) -> Router {
    let mut router = Router::new();
    for prefix in ["", "/slave(1)"] {
        router = router
            .route(&format!("{prefix}/api/v1/executor"), any(executor_api))
            .route(&format!("{prefix}/state"), get(state))
            .route(&format!("{prefix}/state.json"), get(state))
            .route(&format!("{prefix}/flags"), get(flags))
            .route(&format!("{prefix}/health"), get(health))
            .route(&format!("{prefix}/metrics/snapshot"), get(metrics));
    }
    router
        .route("/version", get(version))
        .fallback(not_found)
        .with_state(app)
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn version() -> axum::Json<Value> {
    axum::Json(json!({
        "version": mesos_proto::MESOS_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
    }))
}

async fn flags(State(app): State<App>) -> axum::Json<Value> {
    let flags: Map<String, Value> = app.flags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    axum::Json(json!({ "flags": flags }))
}

async fn state(State(app): State<App>) -> Response {
    match app.handle.request(|reply| Command::State { reply }).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    match app.handle.request(|reply| Command::Metrics { reply }).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("No endpoint at '{}'", uri.path()))
}

async fn executor_api(State(app): State<App>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    match executor_call(app, method, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn executor_call(app: App, method: Method, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    if method != Method::POST {
        let mut r = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        )
        .into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(r);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| ApiError::bad_request("Expecting 'Content-Type' to be present"))?
        .to_str()
        .unwrap_or_default();
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Expecting 'Content-Type' of application/json or application/x-protobuf, got '{content_type}'"),
        )
    })?;
    let call: executor::Call = codec::decode(format, &body)
        .map_err(|e| ApiError::bad_request(format!("Failed to parse body into Call protobuf: {e}")))?;
    let kind = call
        .r#type
        .and_then(|t| executor::call::Type::try_from(t).ok())
        .ok_or_else(|| ApiError::bad_request("Failed to validate executor::Call: Expecting 'type' to be present"))?;
    match kind {
        executor::call::Type::Unknown => Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "Received an unknown call type")),
        executor::call::Type::Subscribe => {
            if call.subscribe.is_none() {
                return Err(ApiError::bad_request(
                    "Failed to validate executor::Call: Expecting 'subscribe' to be present",
                ));
            }
            let accept = Format::negotiate(headers.get(header::ACCEPT).map(|v| v.to_str().unwrap_or_default()))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_ACCEPTABLE,
                        "Expecting 'Accept' to allow application/json or application/x-protobuf",
                    )
                })?;
            let key = (call.framework_id.value.clone(), call.executor_id.value.clone());
            let subscription = app
                .handle
                .request(|reply| Command::ExecutorSubscribe {
                    call,
                    format: accept,
                    reply,
                })
                .await??;
            let guard = CloseGuard {
                handle: app.handle.clone(),
                key: Some(key),
                conn: subscription.conn,
            };
            let events = ReceiverStream::new(subscription.events).map(move |record| {
                let _ = &guard;
                Ok::<_, Infallible>(record)
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, accept.media_type())
                .body(Body::from_stream(events))
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        _ => {
            app.handle
                .request(|reply| Command::ExecutorCall { call, reply })
                .await??;
            Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
        }
    }
}

/// Tells the agent when an executor's stream goes away.
struct CloseGuard {
    handle: Handle,
    key: Option<crate::agent::ExecutorKey>,
    conn: u64,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.handle.notify(Command::ExecutorStreamClosed { key, conn: self.conn });
        }
    }
}
