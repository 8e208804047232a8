//! A misbehaving fixture: `prepare` never returns. The host's watchdog
//! gives up on it after the manifest's `call_timeout_ms` and marks the
//! plugin wedged.

use mesos_plugin_api::sdk::{IsolatorPlugin, PluginError, proto};

#[derive(Debug, Default)]
pub struct HangingIsolator;

impl IsolatorPlugin for HangingIsolator {
    const NAME: &'static str = "com.example.hanging_isolator";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn prepare(&self, _: proto::PrepareRequest) -> Result<proto::PrepareResponse, PluginError> {
        loop {
            std::thread::park();
        }
    }
}

mesos_plugin_api::export_isolator!(HangingIsolator);
