//! The agent's HTTP surface: the v1 executor API and the legacy JSON
//! endpoints. Agent endpoints also answer under `/slave(1)`, as libprocess
//! routes them, and the removed `*.json` spellings still work for old
//! tools.

mod executor_api;
mod files;
mod monitor;
mod operator;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::agent::{Command, Handle};
use crate::error::ApiError;

#[derive(Clone)]
pub struct App {
    pub handle: Handle,
    /// Every flag's effective value.
    pub flags: Arc<Vec<(String, String)>>,
    /// The sandboxes `/files` serves.
    pub files: Arc<crate::files::Sandboxes>,
    /// Where procfs is (`/proc`), for usage statistics.
    pub proc_root: Arc<std::path::PathBuf>,
    /// The Docker Engine, for the usage of docker containers.
    pub docker_socket: Arc<std::path::PathBuf>,
    /// The isolators, for the usage they measure.
    pub isolation: crate::isolation::Isolation,
    /// Containers launched through the operator API.
    pub nested: crate::nested::NestedContainers,
    /// The image cache, for PRUNE_IMAGES; `None` without `--image_providers`.
    pub images: Option<crate::images::Images>,
}

pub fn router(app: App) -> Router {
    let mut router = Router::new();
    for prefix in ["", "/slave(1)"] {
        router = router
            .route(
                &format!("{prefix}/api/v1/executor"),
                any(executor_api::handle),
            )
            .route(&format!("{prefix}/api/v1"), any(operator::handle))
            .route(&format!("{prefix}/state"), get(state))
            .route(&format!("{prefix}/state.json"), get(state))
            .route(&format!("{prefix}/flags"), get(flags))
            .route(&format!("{prefix}/health"), get(health));
    }
    for suffix in ["", ".json"] {
        router = router
            .route(&format!("/files/browse{suffix}"), get(files::browse))
            .route(&format!("/files/read{suffix}"), get(files::read))
            .route(&format!("/files/download{suffix}"), get(files::download));
    }
    router
        .route("/monitor/statistics", get(monitor::statistics))
        .route("/monitor/statistics.json", get(monitor::statistics))
        .route("/containers", get(monitor::containers))
        .route("/slave(1)/containers", get(monitor::containers))
        .route("/version", get(version))
        .route("/metrics/snapshot", get(metrics))
        .fallback(not_found)
        .with_state(app)
}

type Params = Query<HashMap<String, String>>;

/// JSON, or JSONP when the query names a callback (`?jsonp=cb`), as every
/// Mesos JSON endpoint allows.
fn json_response(value: &Value, params: &HashMap<String, String>) -> Response {
    match params.get("jsonp") {
        Some(callback) => (
            [(header::CONTENT_TYPE, "text/javascript")],
            format!("{callback}({value});"),
        )
            .into_response(),
        None => (
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
    }
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn version(Query(params): Params) -> Response {
    let body = json!({
        "version": mesos_proto::MESOS_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
    });
    json_response(&body, &params)
}

async fn flags(State(app): State<App>, Query(params): Params) -> Response {
    let flags: Map<String, Value> = app
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json_response(&json!({ "flags": flags }), &params)
}

async fn state(State(app): State<App>, Query(params): Params) -> Response {
    match app.handle.request(|reply| Command::State { reply }).await {
        Ok(state) => json_response(&state, &params),
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(app): State<App>, Query(params): Params) -> Response {
    match app.handle.request(|reply| Command::Metrics { reply }).await {
        Ok(metrics) => json_response(&metrics, &params),
        Err(e) => e.into_response(),
    }
}

async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No endpoint at '{}'", uri.path()),
    )
}
