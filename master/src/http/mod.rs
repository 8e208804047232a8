//! The master's HTTP surface. Every endpoint answers at `/X` and at
//! `/master/X`, as libprocess routes them.

pub mod endpoints;
mod operator;
mod scheduler;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

use crate::master::Handle;

#[derive(Clone)]
pub struct App {
    pub handle: Handle,
    pub flags: Arc<Vec<(String, String)>>,
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler::scheduler))
        .route("/master/api/v1/scheduler", any(scheduler::scheduler))
        .route("/api/v1", any(operator::handle))
        .route("/api/v1/operator", any(operator::handle))
        .route("/master/api/v1", any(operator::handle))
        .route("/master/api/v1/operator", any(operator::handle))
        .route("/health", get(endpoints::health))
        .route("/master/health", get(endpoints::health))
        .route("/version", get(endpoints::version))
        .route("/metrics/snapshot", get(endpoints::metrics))
        .route("/state", get(endpoints::state))
        .route("/state.json", get(endpoints::state))
        .route("/master/state", get(endpoints::state))
        .route("/master/state.json", get(endpoints::state))
        .route("/flags", get(endpoints::flags))
        .route("/master/flags", get(endpoints::flags))
        .with_state(app)
}
