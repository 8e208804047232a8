//! `/monitor/statistics` and `/containers`: the agent's containers with
//! their usage, read from procfs off the agent loop.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use mesos_proto::v1;
use serde_json::{Value, json};

use super::{App, json_response};
use crate::agent::{Command, ContainerView};
use crate::monitor::{Units, Usage, sessions_usage};

type Params = Query<HashMap<String, String>>;

pub(super) async fn statistics(State(app): State<App>, Query(params): Params) -> Response {
    match usage(&app).await {
        // Mesos lists only the containers it has statistics for.
        Ok(containers) => {
            let list: Vec<Value> = containers
                .into_iter()
                .filter_map(|(c, stats)| {
                    let stats = stats?;
                    Some(json!({
                        "framework_id": c.framework_id,
                        "executor_id": c.executor_id,
                        "executor_name": c.executor_name,
                        "source": c.source,
                        "statistics": stats,
                    }))
                })
                .collect();
            json_response(&Value::Array(list), &params)
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn containers(State(app): State<App>, Query(params): Params) -> Response {
    match usage(&app).await {
        Ok(containers) => {
            let list: Vec<Value> = containers
                .into_iter()
                .map(|(c, stats)| {
                    let mut status = json!({ "container_id": { "value": c.container_id } });
                    if let Some(pid) = c.pid {
                        status["executor_pid"] = json!(pid);
                    }
                    let mut out = json!({
                        "framework_id": c.framework_id,
                        "executor_id": c.executor_id,
                        "executor_name": c.executor_name,
                        "source": c.source,
                        "container_id": c.container_id,
                        "status": status,
                    });
                    if let Some(stats) = stats {
                        out["statistics"] = stats;
                    }
                    out
                })
                .collect();
            json_response(&Value::Array(list), &params)
        }
        Err(e) => e.into_response(),
    }
}

/// Each container with its `ResourceStatistics` JSON, if it has a live
/// process to measure.
async fn usage(app: &App) -> Result<Vec<(ContainerView, Option<Value>)>, crate::error::ApiError> {
    let containers = app
        .handle
        .request(|reply| Command::Containers { reply })
        .await?;
    let proc_root = app.proc_root.clone();
    let isolation = app.isolation.clone();
    let measured: Vec<(ContainerView, Option<Value>)> = tokio::task::spawn_blocking(move || {
        let sessions: Vec<u32> = containers.iter().filter_map(|c| c.pid).collect();
        let usage = sessions_usage(&proc_root, &sessions, Units::of_host());
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        containers
            .into_iter()
            .map(|c| {
                let isolated = isolation.usage(&c.container_id);
                let stats = c
                    .pid
                    .and_then(|pid| usage.get(&pid))
                    .map(|u| statistics_json(&c, u, &isolated, timestamp));
                (c, stats)
            })
            .collect()
    })
    .await
    .map_err(|e| {
        crate::error::ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    })?;
    if !measured.iter().any(|(c, _)| c.docker_container.is_some()) {
        return Ok(measured);
    }
    Ok(with_engine_statistics(&app.docker_socket, measured).await)
}

/// Docker containers are measured by the Engine (their processes are not
/// in the executor's session); the executor's own usage is left out, as
/// Mesos does. Where the Engine cannot tell, procfs's numbers stay.
async fn with_engine_statistics(
    socket: &std::path::Path,
    measured: Vec<(ContainerView, Option<Value>)>,
) -> Vec<(ContainerView, Option<Value>)> {
    let engine = match mesos_docker::Engine::connect(socket).await {
        Ok(engine) => engine,
        Err(e) => {
            tracing::warn!("no docker container statistics: {e}");
            return measured;
        }
    };
    let sample = measured.into_iter().map(|(container, stats)| {
        let engine = engine.clone();
        async move {
            let Some(name) = &container.docker_container else {
                return (container, stats);
            };
            match engine.statistics(name).await {
                Ok(mut engine_stats) => {
                    engine_stats.cpus_limit = container.cpus_limit;
                    if container.mem_limit_bytes.is_some() {
                        engine_stats.mem_limit_bytes = container.mem_limit_bytes;
                    }
                    let json = mesos_proto::json::to_json(&engine_stats);
                    (container, Some(json))
                }
                Err(e) => {
                    tracing::debug!(container = %name, "no Engine statistics: {e}");
                    (container, stats)
                }
            }
        }
    });
    futures::future::join_all(sample).await
}

/// procfs's numbers, replaced by the isolators' (cgroups see every
/// process of the container, and know throttling and limits) where they
/// measure.
fn statistics_json(
    container: &ContainerView,
    usage: &Usage,
    isolated: &mesos_plugin_api::isolator::Usage,
    timestamp: f64,
) -> Value {
    mesos_proto::json::to_json(&v1::ResourceStatistics {
        timestamp,
        processes: Some(usage.processes),
        threads: isolated.threads.or(Some(usage.threads)),
        cpus_user_time_secs: isolated
            .cpus_user_time_secs
            .or(Some(usage.cpus_user_time_secs)),
        cpus_system_time_secs: isolated
            .cpus_system_time_secs
            .or(Some(usage.cpus_system_time_secs)),
        cpus_limit: container.cpus_limit,
        cpus_nr_periods: isolated.cpus_nr_periods.and_then(|n| u32::try_from(n).ok()),
        cpus_nr_throttled: isolated
            .cpus_nr_throttled
            .and_then(|n| u32::try_from(n).ok()),
        cpus_throttled_time_secs: isolated.cpus_throttled_time_secs,
        mem_rss_bytes: isolated.mem_rss_bytes.or(Some(usage.mem_rss_bytes)),
        mem_total_bytes: isolated.mem_total_bytes,
        mem_cache_bytes: isolated.mem_cache_bytes,
        mem_limit_bytes: isolated.mem_limit_bytes.or(container.mem_limit_bytes),
        disk_used_bytes: isolated.disk_used_bytes,
        disk_limit_bytes: isolated.disk_limit_bytes,
        blkio_statistics: isolated.blkio.clone(),
        ..Default::default()
    })
}
