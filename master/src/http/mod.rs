//! The master's HTTP surface. Every endpoint answers at `/X` and at
//! `/master/X`, as libprocess routes them; the JSON views also at `X.json`,
//! the alias libprocess kept for old clients.

pub mod endpoints;
mod legacy;
mod operator;
mod scheduler;

use std::sync::Arc;

use axum::Router;
use axum::routing::{MethodRouter, any, get};

use crate::master::Handle;

#[derive(Clone)]
pub struct App {
    pub handle: Handle,
    pub flags: Arc<Vec<(String, String)>>,
    /// `host:port` of the leading master, for `/redirect`.
    pub leader: Arc<str>,
}

/// Routes `name` at `/name` and `/master/name`, and with `json` also at
/// `/name.json` and `/master/name.json`.
fn both(router: Router<App>, name: &str, json: bool, handler: MethodRouter<App>) -> Router<App> {
    let mut router = router
        .route(&format!("/{name}"), handler.clone())
        .route(&format!("/master/{name}"), handler.clone());
    if json {
        router = router
            .route(&format!("/{name}.json"), handler.clone())
            .route(&format!("/master/{name}.json"), handler);
    }
    router
}

pub fn router(app: App) -> Router {
    let mut router = Router::new();
    router = both(router, "api/v1/scheduler", false, any(scheduler::scheduler));
    router = both(router, "api/v1", false, any(operator::handle));
    router = both(router, "api/v1/operator", false, any(operator::handle));
    router = both(router, "health", false, get(endpoints::health));
    router = both(router, "version", true, get(endpoints::version));
    router = both(router, "metrics/snapshot", true, get(endpoints::metrics));
    router = router.route("/metrics", get(legacy::prometheus));
    router = both(router, "state", true, get(endpoints::state));
    router = both(router, "state-summary", true, get(legacy::state_summary));
    router = both(router, "flags", true, get(endpoints::flags));
    router = both(router, "frameworks", true, get(legacy::frameworks));
    router = both(router, "slaves", true, get(legacy::slaves));
    router = both(router, "tasks", true, get(legacy::tasks));
    router = both(router, "roles", true, get(legacy::roles));
    router = both(router, "redirect", false, get(legacy::redirect));
    router = both(router, "teardown", false, any(legacy::teardown));
    for name in ["reserve", "unreserve", "create-volumes", "destroy-volumes"] {
        router = both(router, name, false, any(legacy::resource_operation));
    }
    router.with_state(app)
}
