//! The master's older HTTP endpoints, kept because dashboards, scripts and
//! the Mesos CLI still use them: read-only JSON views, `/redirect`,
//! `/teardown`, and the Prometheus rendering of the metrics.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use mesos_proto::v1::master::{Call, call};
use mesos_proto::v1::{AgentId, Resource};
use serde_json::Value;

use super::App;
use crate::error::ApiError;
use crate::master::{Command, LegacyView, TaskQuery};

type Params = Query<HashMap<String, String>>;

async fn view(app: &App, view: LegacyView) -> Response {
    match app
        .handle
        .request(|reply| Command::Legacy { view, reply })
        .await
    {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn state_summary(State(app): State<App>) -> Response {
    view(&app, LegacyView::StateSummary).await
}

pub async fn frameworks(State(app): State<App>, Query(params): Params) -> Response {
    let framework_id = params.get("framework_id").cloned();
    view(&app, LegacyView::Frameworks { framework_id }).await
}

pub async fn slaves(State(app): State<App>, Query(params): Params) -> Response {
    let slave_id = params.get("slave_id").cloned();
    view(&app, LegacyView::Slaves { slave_id }).await
}

pub async fn roles(State(app): State<App>) -> Response {
    view(&app, LegacyView::Roles).await
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<usize>, ApiError> {
    params
        .get(name)
        .map(|value| {
            value.parse().map_err(|e| {
                ApiError::bad_request(format!(
                    "Failed to parse '{name}' query parameter '{value}': {e}"
                ))
            })
        })
        .transpose()
}

pub async fn tasks(State(app): State<App>, Query(params): Params) -> Response {
    let query = (|| {
        let defaults = TaskQuery::default();
        let ascending = match params.get("order").map(String::as_str) {
            None | Some("des") => false,
            Some("asc") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Expecting 'order' to be 'asc' or 'des', got '{other}'"
                )));
            }
        };
        Ok(TaskQuery {
            limit: number(&params, "limit")?.unwrap_or(defaults.limit),
            offset: number(&params, "offset")?.unwrap_or(defaults.offset),
            ascending,
            framework_id: params.get("framework_id").cloned(),
            task_id: params.get("task_id").cloned(),
        })
    })();
    match query {
        Ok(query) => view(&app, LegacyView::Tasks(query)).await,
        Err(e) => e.into_response(),
    }
}

/// 307 to the leading master (this one: there is no election yet), as
/// `//host:port` so the client keeps its scheme.
pub async fn redirect(State(app): State<App>) -> Response {
    let location = format!("//{}", app.leader);
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The leader's address '{location}' is not a valid header"),
        )
        .into_response(),
    }
}

/// `POST /master/teardown` with the form body `frameworkId=<id>`.
pub async fn teardown(State(app): State<App>, method: Method, body: Bytes) -> Response {
    match teardown_framework(&app, &method, &body).await {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn teardown_framework(app: &App, method: &Method, body: &[u8]) -> Result<(), ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        ));
    }
    let form = form_fields(body)?;
    let id = form.get("frameworkId").ok_or_else(|| {
        ApiError::bad_request("Missing 'frameworkId' query parameter in the request body")
    })?;
    let call = Call {
        r#type: Some(call::Type::Teardown as i32),
        teardown: Some(call::Teardown {
            framework_id: mesos_proto::v1::FrameworkId { value: id.clone() },
        }),
        ..Default::default()
    };
    app.handle
        .request(|reply| Command::Operator { call, reply })
        .await??;
    Ok(())
}

/// An `application/x-www-form-urlencoded` body, decoded as a query string
/// (which is what it is).
fn form_fields(body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("The request body is not UTF-8"))?;
    let uri: Uri = format!("/?{text}")
        .parse()
        .map_err(|e| ApiError::bad_request(format!("The request body is not a form: {e}")))?;
    Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|Query(fields)| fields)
        .map_err(|e| ApiError::bad_request(format!("The request body is not a form: {e}")))
}

/// `/reserve`, `/unreserve`, `/create-volumes` and `/destroy-volumes`: a
/// form with `slaveId` and a JSON array of resources (`resources`, or
/// `volumes` for the volume endpoints), answered 202 as Mesos does.
pub async fn resource_operation(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    match operate(&app, &method, uri.path(), &body).await {
        Ok(()) => (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn operate(app: &App, method: &Method, path: &str, body: &[u8]) -> Result<(), ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        ));
    }
    let endpoint = path.rsplit('/').next().unwrap_or_default();
    let (kind, field) = match endpoint {
        "reserve" => (call::Type::ReserveResources, "resources"),
        "unreserve" => (call::Type::UnreserveResources, "resources"),
        "create-volumes" => (call::Type::CreateVolumes, "volumes"),
        _ => (call::Type::DestroyVolumes, "volumes"),
    };
    let form = form_fields(body)?;
    let agent_id = AgentId {
        value: form
            .get("slaveId")
            .ok_or_else(|| {
                ApiError::bad_request("Missing 'slaveId' query parameter in the request body")
            })?
            .clone(),
    };
    let text = form.get(field).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Missing '{field}' query parameter in the request body"
        ))
    })?;
    let resources = parse_resource_array(text).map_err(|e| {
        ApiError::bad_request(format!("Error in parsing '{field}' query parameter: {e}"))
    })?;
    let mut call = Call {
        r#type: Some(kind as i32),
        ..Default::default()
    };
    match kind {
        call::Type::ReserveResources => {
            call.reserve_resources = Some(call::ReserveResources {
                agent_id,
                source: Vec::new(),
                resources,
            })
        }
        call::Type::UnreserveResources => {
            call.unreserve_resources = Some(call::UnreserveResources {
                agent_id,
                resources,
            })
        }
        call::Type::CreateVolumes => {
            call.create_volumes = Some(call::CreateVolumes {
                agent_id,
                volumes: resources,
            })
        }
        _ => {
            call.destroy_volumes = Some(call::DestroyVolumes {
                agent_id,
                volumes: resources,
            })
        }
    }
    app.handle
        .request(|reply| Command::Operator { call, reply })
        .await??;
    Ok(())
}

/// A JSON array of `Resource` messages.
fn parse_resource_array(text: &str) -> Result<Vec<Resource>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Array(items) = value else {
        return Err("expecting a JSON array of resources".to_string());
    };
    items
        .iter()
        .map(|item| mesos_proto::json::from_json_value::<Resource>(item).map_err(|e| e.to_string()))
        .collect()
}

/// `/metrics`: the numbers of `/metrics/snapshot` in the Prometheus text
/// format, `/` and other characters Prometheus does not allow in names
/// turned into `_`.
pub async fn prometheus(State(app): State<App>) -> Response {
    match app.handle.request(|reply| Command::Metrics { reply }).await {
        Ok(snapshot) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            prometheus_text(&snapshot),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn prometheus_text(snapshot: &Value) -> String {
    let mut metrics: Vec<(String, f64)> = snapshot
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((prometheus_name(name), value.as_f64()?)))
        .collect();
    metrics.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    for (name, value) in metrics {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "# TYPE {name} gauge\n{name} {value}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_become_prometheus_names() {
        assert_eq!(
            prometheus_name("master/tasks_running"),
            "master_tasks_running"
        );
        assert_eq!(
            prometheus_name("allocator/mesos/x-y.z"),
            "allocator_mesos_x_y_z"
        );
        assert_eq!(prometheus_name("1st"), "_1st");
    }

    #[test]
    fn snapshot_renders_sorted_with_types() {
        let text = prometheus_text(&serde_json::json!({
            "master/tasks_running": 2.0,
            "master/elected": 1.0,
            "not/a_number": "x",
        }));
        assert_eq!(
            text,
            "# TYPE master_elected gauge\nmaster_elected 1\n\
             # TYPE master_tasks_running gauge\nmaster_tasks_running 2\n"
        );
    }

    #[test]
    fn form_bodies_decode() {
        let fields = form_fields(b"frameworkId=abc-0001&x=a%20b").unwrap();
        assert_eq!(
            fields.get("frameworkId").map(String::as_str),
            Some("abc-0001")
        );
        assert_eq!(fields.get("x").map(String::as_str), Some("a b"));
        assert!(form_fields(b"bad body with spaces").is_err());
        assert!(form_fields(&[0xff, 0xfe]).is_err());
    }
}
