//! The default executor's client of the agent operator API: its tasks run
//! as containers nested in its own.

use mesos_http::client::{ApiClient, ClientError};
use mesos_proto::v1::{self, agent};

#[derive(Clone)]
pub struct NestedClient {
    api: ApiClient,
}

impl NestedClient {
    /// `endpoint` is the agent's `ip:port`.
    pub fn new(endpoint: &str) -> Self {
        Self {
            api: ApiClient::new(format!("http://{endpoint}/api/v1")),
        }
    }

    fn call(kind: agent::call::Type) -> agent::Call {
        agent::Call {
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    pub async fn launch(
        &self,
        container_id: &v1::ContainerId,
        task: &v1::TaskInfo,
    ) -> Result<(), ClientError> {
        let call = agent::Call {
            launch_nested_container: Some(agent::call::LaunchNestedContainer {
                container_id: container_id.clone(),
                command: task.command.clone(),
                container: task.container.clone(),
            }),
            ..Self::call(agent::call::Type::LaunchNestedContainer)
        };
        self.api.post(&call, &[]).await.map(drop)
    }

    /// Waits for the container to exit; its raw wait status (`None` if
    /// the agent did not know it).
    pub async fn wait(&self, container_id: &v1::ContainerId) -> Result<Option<i32>, ClientError> {
        let call = agent::Call {
            wait_nested_container: Some(agent::call::WaitNestedContainer {
                container_id: container_id.clone(),
            }),
            ..Self::call(agent::call::Type::WaitNestedContainer)
        };
        let answer: agent::Response = self.api.ask(&call).await?;
        Ok(answer.wait_nested_container.and_then(|w| w.exit_status))
    }

    pub async fn kill(
        &self,
        container_id: &v1::ContainerId,
        signal: i32,
    ) -> Result<(), ClientError> {
        let call = agent::Call {
            kill_nested_container: Some(agent::call::KillNestedContainer {
                container_id: container_id.clone(),
                signal: Some(signal),
            }),
            ..Self::call(agent::call::Type::KillNestedContainer)
        };
        self.api.post(&call, &[]).await.map(drop)
    }
}
