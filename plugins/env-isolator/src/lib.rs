//! An example isolator plugin, written as a third party would, with only
//! the public SDK: it gives every container an environment variable and
//! a label. Built as a `cdylib` it is a dylib plugin; as an `rlib` the
//! same type runs in-process.

use mesos_plugin_api::sdk::{IsolatorPlugin, PluginError, mesos, proto};

#[derive(Debug, Default)]
pub struct EnvIsolator;

impl IsolatorPlugin for EnvIsolator {
    const NAME: &'static str = "com.example.env_isolator";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn prepare(
        &self,
        request: proto::PrepareRequest,
    ) -> Result<proto::PrepareResponse, PluginError> {
        // The request is ours: its container ID moves into the answer
        // rather than being copied.
        let var = |name: &str, value: String| proto::EnvironmentVariable {
            name: name.to_string(),
            value,
        };
        Ok(proto::PrepareResponse {
            env: vec![
                var("PLUGIN_GREETING", "hello-from-plugin".to_string()),
                var("PLUGIN_CONTAINER_ID", request.container_id),
            ],
            labels: vec![mesos::Label {
                key: "com.example.env_isolator".to_string(),
                value: Some("prepared".to_string()),
            }],
            ..Default::default()
        })
    }

    // Nothing to undo: the default ("unimplemented") would do as well;
    // answering shows an implemented no-op.
    fn cleanup(&self, _: proto::ContainerRequest) -> Result<proto::CleanupResponse, PluginError> {
        Ok(proto::CleanupResponse {})
    }
}

mesos_plugin_api::export_isolator!(EnvIsolator);
