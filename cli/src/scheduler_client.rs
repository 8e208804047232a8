//! A v1 scheduler API client: SUBSCRIBE (keeping the `Mesos-Stream-Id`),
//! the event stream, and calls. JSON on the wire, like most frameworks.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::{self, scheduler};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request to the master failed: {0}")]
    Http(String),
    #[error("the master answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("bad event from the master: {0}")]
    Event(String),
    #[error("the master closed the subscription before SUBSCRIBED")]
    NotSubscribed,
}

pub struct SchedulerClient {
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    stream_id: Option<String>,
    framework_id: Option<v1::FrameworkId>,
}

impl SchedulerClient {
    /// `master` is `host:port`.
    pub fn new(master: &str) -> Self {
        Self {
            url: format!("http://{master}/api/v1/scheduler"),
            http: Client::builder(TokioExecutor::new()).build(nodelay_connector()),
            stream_id: None,
            framework_id: None,
        }
    }

    pub fn framework_id(&self) -> Option<&v1::FrameworkId> {
        self.framework_id.as_ref()
    }

    async fn post(
        &self,
        call: &scheduler::Call,
        stream_id: Option<&str>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let mut request = hyper::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        if let Some(id) = stream_id {
            request = request.header("Mesos-Stream-Id", id);
        }
        let request = request
            .body(Full::new(Bytes::from(mesos_proto::json::to_json_vec(call))))
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

    /// Subscribes and waits for SUBSCRIBED; the stream continues after it.
    pub async fn subscribe(
        &mut self,
        framework: v1::FrameworkInfo,
    ) -> Result<EventStream, ClientError> {
        let call = scheduler::Call {
            framework_id: framework.id.clone(),
            r#type: Some(scheduler::call::Type::Subscribe as i32),
            subscribe: Some(scheduler::call::Subscribe {
                framework_info: framework,
                ..Default::default()
            }),
            ..Default::default()
        };
        let response = self.post(&call, None).await?;
        self.stream_id = response
            .headers()
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut events = EventStream(RecordStream::new(response.into_body()));
        loop {
            let event = events.next().await?.ok_or(ClientError::NotSubscribed)?;
            if let Some(subscribed) = event.subscribed {
                self.framework_id = Some(subscribed.framework_id);
                return Ok(events);
            }
        }
    }

    /// Sends a call for the subscribed framework.
    pub async fn call(&self, mut call: scheduler::Call) -> Result<(), ClientError> {
        call.framework_id = self.framework_id.clone();
        self.post(&call, self.stream_id.as_deref()).await.map(drop)
    }

    /// Accepts an offer with a LAUNCH of `tasks`. The unused resources are
    /// refused for Mesos's default 5 seconds unless `refuse_seconds` says
    /// otherwise.
    pub async fn launch(
        &self,
        offer_id: &v1::OfferId,
        tasks: Vec<v1::TaskInfo>,
        refuse_seconds: Option<f64>,
    ) -> Result<(), ClientError> {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Accept as i32),
            accept: Some(scheduler::call::Accept {
                offer_ids: vec![offer_id.clone()],
                operations: vec![v1::offer::Operation {
                    r#type: Some(v1::offer::operation::Type::Launch as i32),
                    launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
                    ..Default::default()
                }],
                filters: refuse_seconds.map(|s| v1::Filters {
                    refuse_seconds: Some(s),
                }),
            }),
            ..Default::default()
        })
        .await
    }

    pub async fn decline(
        &self,
        offer_id: &v1::OfferId,
        refuse_seconds: f64,
    ) -> Result<(), ClientError> {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Decline as i32),
            decline: Some(scheduler::call::Decline {
                offer_ids: vec![offer_id.clone()],
                filters: Some(v1::Filters {
                    refuse_seconds: Some(refuse_seconds),
                }),
            }),
            ..Default::default()
        })
        .await
    }

    /// Acknowledges an update if it asks for it (carries a uuid).
    pub async fn acknowledge(&self, status: &v1::TaskStatus) -> Result<(), ClientError> {
        let (Some(uuid), Some(agent_id)) = (&status.uuid, &status.agent_id) else {
            return Ok(());
        };
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Acknowledge as i32),
            acknowledge: Some(scheduler::call::Acknowledge {
                agent_id: agent_id.clone(),
                task_id: status.task_id.clone(),
                uuid: uuid.clone(),
            }),
            ..Default::default()
        })
        .await
    }

    pub async fn kill(&self, task_id: &v1::TaskId) -> Result<(), ClientError> {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Kill as i32),
            kill: Some(scheduler::call::Kill {
                task_id: task_id.clone(),
                agent_id: None,
                kill_policy: None,
            }),
            ..Default::default()
        })
        .await
    }

    pub async fn teardown(&self) -> Result<(), ClientError> {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Teardown as i32),
            ..Default::default()
        })
        .await
    }
}

/// The events of a subscription, decoded as they arrive.
pub struct EventStream(RecordStream<Incoming>);

impl EventStream {
    /// The next event; `None` when the master closed the stream.
    pub async fn next(&mut self) -> Result<Option<scheduler::Event>, ClientError> {
        self.0
            .next_json()
            .await
            .map_err(|e| ClientError::Event(e.to_string()))
    }
}

/// Scalar resources helper for building tasks.
pub fn scalar(name: &str, value: f64) -> v1::Resource {
    v1::Resource {
        name: name.to_string(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    }
}

/// Calls and their answers are small and wait on each other; Nagle's
/// algorithm would hold them back.
fn nodelay_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}
