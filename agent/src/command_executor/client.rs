//! A small client of the agent's v1 executor API: SUBSCRIBE as a RecordIO
//! event stream, and the one-shot calls.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesos_proto::recordio::Decoder;
use mesos_proto::v1::{self, executor};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request to the agent failed: {0}")]
    Http(String),
    #[error("the agent answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("bad event from the agent: {0}")]
    Event(String),
}

#[derive(Clone)]
pub struct ExecutorClient {
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    framework_id: v1::FrameworkId,
    executor_id: v1::ExecutorId,
}

impl ExecutorClient {
    /// `endpoint` is the agent's `ip:port`.
    pub fn new(endpoint: &str, framework_id: &str, executor_id: &str) -> Self {
        Self {
            url: format!("http://{endpoint}/api/v1/executor"),
            http: Client::builder(TokioExecutor::new()).build(nodelay_connector()),
            framework_id: v1::FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: v1::ExecutorId {
                value: executor_id.to_string(),
            },
        }
    }

    fn call(&self, kind: executor::call::Type) -> executor::Call {
        executor::Call {
            executor_id: self.executor_id.clone(),
            framework_id: self.framework_id.clone(),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    async fn post(&self, call: &executor::Call) -> Result<hyper::Response<Incoming>, ClientError> {
        let body = mesos_proto::json::to_json_vec(call);
        let request = hyper::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(response)
    }

    pub async fn subscribe(&self) -> Result<EventStream, ClientError> {
        let mut call = self.call(executor::call::Type::Subscribe);
        call.subscribe = Some(executor::call::Subscribe::default());
        let response = self.post(&call).await?;
        Ok(EventStream {
            body: response.into_body(),
            decoder: Decoder::default(),
        })
    }

    pub async fn update(&self, status: v1::TaskStatus) -> Result<(), ClientError> {
        let mut call = self.call(executor::call::Type::Update);
        call.update = Some(executor::call::Update { status });
        self.post(&call).await.map(drop)
    }
}

/// Events of a subscription, decoded as they arrive.
pub struct EventStream {
    body: Incoming,
    decoder: Decoder,
}

impl EventStream {
    /// The next event; `None` when the agent closed the stream.
    pub async fn next(&mut self) -> Result<Option<executor::Event>, ClientError> {
        loop {
            if let Some(record) = self
                .decoder
                .next_record()
                .map_err(|e| ClientError::Event(e.to_string()))?
            {
                return mesos_proto::json::from_json(&record)
                    .map(Some)
                    .map_err(|e| ClientError::Event(e.to_string()));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
                Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
                None => return Ok(None),
            }
        }
    }
}

/// Calls and their answers are small and wait on each other; Nagle's
/// algorithm would hold them back.
fn nodelay_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}
