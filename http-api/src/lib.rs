//! The conventions of Mesos's v1 HTTP APIs, shared by the master's scheduler
//! API and the agent's executor API: how a call is read (method, then
//! `Content-Type`, then the body), how errors are answered (a status and a
//! plain-text message), how streams are served (chunked RecordIO in the
//! negotiated format) and how calls are acknowledged (202 with an explicit
//! empty length).

pub mod client;

use std::convert::Infallible;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use mesos_proto::codec::{self, Format};
use prost_reflect::ReflectMessage;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// An HTTP error answer: the status and a message saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response();
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// Reads a call the way Mesos does: POST only (405), a `Content-Type`
/// (400) that is JSON or protobuf (415), a body that parses (400). Returns
/// the call and the format it came in.
pub fn read_call<M: ReflectMessage + Default>(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(M, Format), ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| ApiError::bad_request("Expecting 'Content-Type' to be present"))?;
    let content_type = String::from_utf8_lossy(content_type.as_bytes());
    let format = Format::from_content_type(&content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Expecting 'Content-Type' of application/json or application/x-protobuf, got '{content_type}'"
            ),
        )
    })?;
    let call = codec::decode(format, body).map_err(|e| {
        ApiError::bad_request(format!("Failed to parse body into Call protobuf: {e}"))
    })?;
    Ok((call, format))
}

/// The format of a streamed response, from `Accept` (406 if neither JSON
/// nor protobuf is acceptable).
pub fn stream_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Format::negotiate(accept.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow application/json or application/x-protobuf",
        )
    })
}

/// 202 with an explicit empty length: pymesos reuses keep-alive
/// connections and reads bodies to their length, so without one it hangs.
pub fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()
}

/// A 200 streaming response of already framed RecordIO records. The
/// `Content-Type` is the record format, not `application/recordio`, and the
/// body is chunked (no length), as Mesos serves subscriptions. `on_close`
/// lives as long as the body: hyper drops the body when the client goes
/// away, and dropping `on_close` is how the owner learns of it.
pub fn event_stream<G: Send + 'static>(
    format: Format,
    records: mpsc::Receiver<Bytes>,
    on_close: G,
    headers: &[(HeaderName, HeaderValue)],
) -> Response {
    let body = ReceiverStream::new(records).map(move |record| {
        let _ = &on_close;
        Ok::<_, Infallible>(record)
    });
    let mut response = Response::new(Body::from_stream(body));
    let map = response.headers_mut();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    for (name, value) in headers {
        map.insert(name.clone(), value.clone());
    }
    response
}

/// Serves `app` on `listener` with TCP_NODELAY on every connection. The
/// APIs exchange small messages that wait on each other (an update, its
/// acknowledgement, the next update); with Nagle's algorithm on, each such
/// exchange can stall for a delayed-ACK timeout (~40 ms).
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::scheduler::Call;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn reads_calls_in_mesos_order() {
        let json = headers(&[("content-type", "application/json")]);
        let err = read_call::<Call>(&Method::GET, &json, b"{}").unwrap_err();
        assert_eq!(err.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(err.into_response().headers()[header::ALLOW], "POST");
        let err = read_call::<Call>(&Method::POST, &HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let text = headers(&[("content-type", "text/plain")]);
        let err = read_call::<Call>(&Method::POST, &text, b"{}").unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let err = read_call::<Call>(&Method::POST, &json, b"{oops").unwrap_err();
        assert!(
            err.message.starts_with("Failed to parse body"),
            "{}",
            err.message
        );
        let (call, format) =
            read_call::<Call>(&Method::POST, &json, br#"{"type":"TEARDOWN"}"#).unwrap();
        assert_eq!(format, Format::Json);
        assert_eq!(
            call.r#type(),
            mesos_proto::v1::scheduler::call::Type::Teardown
        );
    }

    #[test]
    fn accepted_has_an_empty_length() {
        let response = accepted();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "0");
    }

    #[test]
    fn stream_format_refuses_what_it_cannot_serve() {
        assert_eq!(stream_format(&HeaderMap::new()).unwrap(), Format::Json);
        let html = headers(&[("accept", "text/html")]);
        assert_eq!(
            stream_format(&html).unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
    }
}
