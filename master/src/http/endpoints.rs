//! Read-only JSON endpoints.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::App;
use crate::error::ApiError;
use crate::master::Command;

pub async fn health() -> StatusCode {
    StatusCode::OK
}

pub async fn version() -> Json<Value> {
    Json(json!({
        "version": mesos_proto::MESOS_VERSION,
        "build_date": crate::BUILD_DATE,
        "build_time": 0,
        "build_user": "",
    }))
}

pub async fn state(State(app): State<App>) -> Response {
    let started = std::time::Instant::now();
    let snapshot = match app.handle.request(|reply| Command::State { reply }).await {
        Ok(snapshot) => snapshot,
        Err(e) => return e.into_response(),
    };
    let taken = started.elapsed();
    // Large at scale: rendered on the blocking pool, not on the loop or
    // an async worker.
    match tokio::task::spawn_blocking(move || snapshot.render_parts()).await {
        Ok(parts) => {
            let bytes: usize = parts.iter().map(|p| p.len()).sum();
            tracing::debug!(
                snapshot = ?taken,
                rendered = ?started.elapsed() - taken,
                bytes,
                "state served"
            );
            // Sent part by part: 80 MB at scale are not copied into one
            // buffer first.
            let body = Body::from_stream(tokio_stream::iter(
                parts.into_iter().map(Ok::<_, std::convert::Infallible>),
            ));
            let length = [(header::CONTENT_LENGTH, bytes.to_string())];
            ([(header::CONTENT_TYPE, "application/json")], length, body).into_response()
        }
        Err(e) => ApiError::unavailable(format!("rendering the state failed: {e}")).into_response(),
    }
}

pub async fn metrics(State(app): State<App>) -> Response {
    match app.handle.request(|reply| Command::Metrics { reply }).await {
        Ok(metrics) => Json(metrics).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn flags(State(app): State<App>) -> Json<Value> {
    let flags: Map<String, Value> = app
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    Json(json!({ "flags": flags }))
}

pub async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No endpoint at '{}'", uri.path()),
    )
}
