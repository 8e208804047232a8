//! A small client of the agent's v1 executor API: SUBSCRIBE as a RecordIO
//! event stream, and the one-shot calls.

use hyper::body::Incoming;
use mesos_http::client::ApiClient;
pub use mesos_http::client::ClientError;
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::{self, executor};
use prost::Message;

#[derive(Clone)]
pub struct ExecutorClient {
    api: ApiClient,
    framework_id: v1::FrameworkId,
    executor_id: v1::ExecutorId,
}

impl ExecutorClient {
    /// `endpoint` is the agent's `ip:port`.
    pub fn new(endpoint: &str, framework_id: &str, executor_id: &str) -> Self {
        Self {
            api: ApiClient::new(format!("http://{endpoint}/api/v1/executor")).protobuf(),
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

    /// SUBSCRIBE, carrying what the agent may have missed (after a
    /// reconnection).
    pub async fn subscribe(
        &self,
        unacknowledged_tasks: Vec<v1::TaskInfo>,
        unacknowledged_updates: Vec<v1::TaskStatus>,
    ) -> Result<EventStream, ClientError> {
        let mut call = self.call(executor::call::Type::Subscribe);
        call.subscribe = Some(executor::call::Subscribe {
            unacknowledged_tasks,
            unacknowledged_updates: unacknowledged_updates
                .into_iter()
                .map(|status| executor::call::Update { status })
                .collect(),
        });
        let (_, events) = self.api.subscribe(&call).await?;
        Ok(EventStream(events))
    }

    pub async fn update(&self, status: v1::TaskStatus) -> Result<(), ClientError> {
        let mut call = self.call(executor::call::Type::Update);
        call.update = Some(executor::call::Update { status });
        self.api.post(&call, &[]).await.map(drop)
    }
}

/// Events of a subscription, decoded as they arrive.
pub struct EventStream(RecordStream<Incoming>);

impl EventStream {
    /// The next event; `None` when the agent closed the stream.
    pub async fn next(&mut self) -> Result<Option<executor::Event>, ClientError> {
        let Some(record) = self.0.next_record().await? else {
            return Ok(None);
        };
        executor::Event::decode(record).map(Some).map_err(|e| {
            ClientError::Stream(mesos_proto::stream::StreamError::Body(format!(
                "undecodable event: {e}"
            )))
        })
    }
}
