//! A misbehaving fixture: panics in `prepare`. The SDK's guard turns the
//! panic into an error, so the host fails the launch and stays up.

use mesos_plugin_api::sdk::{IsolatorPlugin, PluginError, proto};

#[derive(Debug, Default)]
pub struct PanickingIsolator;

impl IsolatorPlugin for PanickingIsolator {
    const NAME: &'static str = "com.example.panicking_isolator";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn prepare(
        &self,
        request: proto::PrepareRequest,
    ) -> Result<proto::PrepareResponse, PluginError> {
        panic!("refusing to prepare {}", request.container_id);
    }
}

mesos_plugin_api::export_isolator!(PanickingIsolator);
