//! The client side of the conventions: POSTing JSON calls to a v1 API and
//! reading its answers, for the command executor and for schedulers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesos_proto::codec::Format;
use mesos_proto::stream::{RecordStream, StreamError};
use prost_reflect::ReflectMessage;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("{url} answered something unreadable: {reason}")]
    Answer { url: String, reason: String },
}

/// POSTs calls as JSON to one API endpoint over kept-alive connections.
#[derive(Clone)]
pub struct ApiClient {
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    format: Format,
}

impl ApiClient {
    /// `url` is the endpoint, e.g. `http://127.0.0.1:5050/api/v1/scheduler`.
    pub fn new(url: String) -> Self {
        // Calls and their answers are small and wait on each other;
        // Nagle's algorithm would hold them back.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            url,
            http: Client::builder(TokioExecutor::new()).build(connector),
            format: Format::Json,
        }
    }

    /// Speaks protobuf instead of JSON. Encoding and decoding protobuf
    /// needs no descriptor pool, which is most of a small client's memory
    /// (the command executor's).
    pub fn protobuf(mut self) -> Self {
        self.format = Format::Protobuf;
        self
    }

    /// Sends `call`; any status but 2xx is an error carrying the body.
    pub async fn post<M: ReflectMessage>(
        &self,
        call: &M,
        headers: &[(&str, &str)],
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let http_error = |reason: String| ClientError::Http {
            url: self.url.clone(),
            reason,
        };
        let mut request = hyper::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, self.format.media_type())
            .header(http::header::ACCEPT, self.format.media_type());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(mesos_proto::codec::encode(
                self.format,
                call,
            ))))
            .map_err(|e| http_error(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| http_error(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(ClientError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(response)
    }

    /// Sends `call` and reads its JSON answer.
    pub async fn ask<M: ReflectMessage, R: ReflectMessage + Default>(
        &self,
        call: &M,
    ) -> Result<R, ClientError> {
        let answer_error = |reason: String| ClientError::Answer {
            url: self.url.clone(),
            reason,
        };
        let body = self
            .post(call, &[])
            .await?
            .into_body()
            .collect()
            .await
            .map_err(|e| answer_error(e.to_string()))?
            .to_bytes();
        mesos_proto::json::from_json(&body).map_err(|e| answer_error(e.to_string()))
    }

    /// Sends a SUBSCRIBE-like call and returns its response's headers and
    /// its RecordIO event stream.
    pub async fn subscribe<M: ReflectMessage>(
        &self,
        call: &M,
    ) -> Result<(http::HeaderMap, RecordStream<Incoming>), ClientError> {
        let response = self.post(call, &[]).await?;
        let (parts, body) = response.into_parts();
        Ok((parts.headers, RecordStream::new(body)))
    }
}
