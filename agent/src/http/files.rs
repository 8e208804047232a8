//! `/files/{browse,read,download}` over sandboxes (see `crate::files`).

use std::collections::HashMap;
use std::io::Read;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, header};
use serde_json::json;

use super::{App, json_response};
use crate::error::ApiError;
use crate::files::{FilesError, Sandboxes};

/// Download chunks in flight between the reading thread and the socket.
const DOWNLOAD_CHUNKS: usize = 4;
const DOWNLOAD_CHUNK: usize = 64 * 1024;

type Params = Query<HashMap<String, String>>;

pub(super) async fn browse(State(app): State<App>, Query(params): Params) -> Response {
    let result = with_path(&app, &params, |files, path| files.browse(path)).await;
    match result {
        Ok(entries) => json_response(&json!(entries), &params),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn read(State(app): State<App>, Query(params): Params) -> Response {
    let (offset, length) = match (number(&params, "offset"), number(&params, "length")) {
        (Ok(offset), Ok(length)) => (offset, length),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let result = with_path(&app, &params, move |files, path| {
        files.read(path, offset, length)
    })
    .await;
    match result {
        Ok(chunk) => json_response(
            &json!({
                "offset": chunk.offset,
                "data": String::from_utf8_lossy(&chunk.data),
            }),
            &params,
        ),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn download(State(app): State<App>, Query(params): Params) -> Response {
    let opened = with_path(&app, &params, |files, path| {
        files
            .open_file(path)
            .map(|(file, size)| (file, size, path.to_string()))
    })
    .await;
    let (file, size, path) = match opened {
        Ok(opened) => opened,
        Err(e) => return e.into_response(),
    };
    let name = path.rsplit('/').next().unwrap_or("download").to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(DOWNLOAD_CHUNKS);
    // Sandboxes hold logs of many GiB: stream them from a blocking thread.
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut chunk = vec![0; DOWNLOAD_CHUNK];
            let item = match file.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    Ok(Bytes::from(chunk))
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", name.replace('"', "")),
            ),
        ],
        body,
    )
        .into_response()
}

/// Runs a lookup for the request's `path` off the runtime's threads.
async fn with_path<T: Send + 'static>(
    app: &App,
    params: &HashMap<String, String>,
    f: impl FnOnce(&Sandboxes, &str) -> Result<T, FilesError> + Send + 'static,
) -> Result<T, ApiError> {
    let path = params
        .get("path")
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "Missing 'path' query parameter"))?;
    let files = app.files.clone();
    tokio::task::spawn_blocking(move || f(&files, &path))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            if matches!(e, FilesError::Io { .. }) {
                tracing::warn!("/files: {e}");
            }
            ApiError::new(e.status(), e.to_string())
        })
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|value| {
            value.parse().map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse {name} '{value}': {e}"),
                )
            })
        })
        .transpose()
}
