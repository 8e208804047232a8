//! `mesos-docker-executor`: the executor the agent starts for command
//! tasks with a DOCKER `ContainerInfo` (`--containerizers=docker,...`).
//! Everything comes from the `MESOS_*` environment.

use std::process::ExitCode;

use mesos_agent::command_executor::Settings;
use mesos_agent::docker_executor::{self, DockerSettings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    mesos_agent::logging::init("info");
    let get = |name: &str| std::env::var(name).ok();
    let settings =
        match Settings::from_env(get).and_then(|s| Ok((s, DockerSettings::from_env(get)?))) {
            Ok(settings) => settings,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(1);
            }
        };
    match docker_executor::run(settings.0, settings.1).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
