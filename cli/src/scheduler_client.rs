//! A v1 scheduler API client: SUBSCRIBE (keeping the `Mesos-Stream-Id`),
//! the event stream, and calls. JSON on the wire, like most frameworks.

use hyper::body::Incoming;
use mesos_http::client::ApiClient;
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::{self, scheduler};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Api(#[from] mesos_http::client::ClientError),
    #[error("the master closed the subscription before SUBSCRIBED")]
    NotSubscribed,
}

/// Clones share the connection pool and the subscription's stream ID, so a
/// scheduler can make calls concurrently (acknowledgements, say).
#[derive(Clone)]
pub struct SchedulerClient {
    api: ApiClient,
    stream_id: Option<String>,
    framework_id: Option<v1::FrameworkId>,
}

impl SchedulerClient {
    /// `master` is `host:port`.
    pub fn new(master: &str) -> Self {
        Self {
            api: ApiClient::new(format!("http://{master}/api/v1/scheduler")),
            stream_id: None,
            framework_id: None,
        }
    }

    pub fn framework_id(&self) -> Option<&v1::FrameworkId> {
        self.framework_id.as_ref()
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
        let (headers, events) = self.api.subscribe(&call).await?;
        self.stream_id = headers
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut events = EventStream(events);
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
        let headers: Vec<(&str, &str)> = self
            .stream_id
            .as_deref()
            .map(|id| ("Mesos-Stream-Id", id))
            .into_iter()
            .collect();
        self.api.post(&call, &headers).await?;
        Ok(())
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

    /// ACCEPTs an offer with one LAUNCH_GROUP: `tasks` run together under
    /// `executor` (the agent's default executor for type DEFAULT).
    pub async fn launch_group(
        &self,
        offer_id: &v1::OfferId,
        executor: v1::ExecutorInfo,
        tasks: Vec<v1::TaskInfo>,
    ) -> Result<(), ClientError> {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Accept as i32),
            accept: Some(scheduler::call::Accept {
                offer_ids: vec![offer_id.clone()],
                operations: vec![v1::offer::Operation {
                    r#type: Some(v1::offer::operation::Type::LaunchGroup as i32),
                    launch_group: Some(v1::offer::operation::LaunchGroup {
                        executor,
                        task_group: v1::TaskGroupInfo { tasks },
                    }),
                    ..Default::default()
                }],
                filters: None,
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
        Ok(self
            .0
            .next_json()
            .await
            .map_err(mesos_http::client::ClientError::from)?)
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
