//! `POST /api/v1/scheduler`: status codes and headers exactly as Mesos
//! answers them, since unmodified clients depend on them.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use mesos_proto::codec::{self, Format};
use mesos_proto::v1::scheduler::{Call, call};
use tokio_stream::wrappers::ReceiverStream;

use super::App;
use crate::error::ApiError;
use crate::master::{Command, Handle};
use crate::validation::validate_scheduler_call;

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

pub async fn scheduler(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(app, method, headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: App,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
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
        .ok_or_else(|| ApiError::bad_request("Expecting 'Content-Type' to be present"))?
        .to_str()
        .unwrap_or_default();
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Expecting 'Content-Type' of application/json or application/x-protobuf, got '{content_type}'"
            ),
        )
    })?;
    let call: Call = codec::decode(format, &body).map_err(|e| {
        ApiError::bad_request(format!("Failed to parse body into Call protobuf: {e}"))
    })?;
    validate_scheduler_call(&call)
        .map_err(|e| ApiError::bad_request(format!("Failed to validate scheduler::Call: {e}")))?;

    if call.r#type() == call::Type::Unknown {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Received an unknown call type",
        ));
    }

    if call.r#type() == call::Type::Subscribe {
        let accept = headers
            .get(header::ACCEPT)
            .map(|v| v.to_str().unwrap_or_default());
        let accept = Format::negotiate(accept).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow application/json or application/x-protobuf",
            )
        })?;
        if headers.contains_key(STREAM_ID_HEADER) {
            return Err(ApiError::bad_request(
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            ));
        }
        return subscribe(&app.handle, call, accept).await;
    }

    let stream_id = headers
        .get(STREAM_ID_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    app.handle
        .request(|reply| Command::Call {
            call,
            stream_id,
            reply,
        })
        .await??;
    // pymesos keeps the connection alive and reads to Content-Length.
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}

async fn subscribe(handle: &Handle, call: Call, format: Format) -> Result<Response, ApiError> {
    let subscription = handle
        .request(|reply| Command::Subscribe {
            call,
            format,
            reply,
        })
        .await??;
    let guard = CloseGuard {
        handle: handle.clone(),
        framework_id: subscription.framework_id,
        stream_id: subscription.stream_id.clone(),
    };
    // The guard lives as long as the body: when the client goes away hyper
    // drops the body and the master learns the framework disconnected.
    let events = ReceiverStream::new(subscription.events).map(move |record| {
        let _ = &guard;
        Ok::<_, Infallible>(record)
    });
    let stream_id = HeaderValue::from_str(&subscription.stream_id)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad stream id"))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.media_type())
        .header(STREAM_ID_HEADER, stream_id)
        .body(Body::from_stream(events))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

struct CloseGuard {
    handle: Handle,
    framework_id: String,
    stream_id: String,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.handle.notify(Command::SubscriptionClosed {
            framework_id: std::mem::take(&mut self.framework_id),
            stream_id: std::mem::take(&mut self.stream_id),
        });
    }
}
