//! `mesos-docker-executor`: what the agent starts for a container with a
//! DOCKER `ContainerInfo` (`--containerizers=docker,...`). For a command
//! task it is the executor, running the task in its container; for a
//! custom executor (`MESOS_DOCKER_EXECUTOR_INFO` set) it runs the executor
//! itself in the container and exits with its exit code. Everything comes
//! from the `MESOS_*` environment.

use std::process::ExitCode;

use mesos_agent::command_executor::Settings;
use mesos_agent::docker_executor::{self, DockerSettings, ExecutorContainer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    mesos_agent::logging::init("info");
    let get = |name: &str| std::env::var(name).ok();
    let docker = match DockerSettings::from_env(get) {
        Ok(docker) => docker,
        Err(e) => return failed(&e),
    };
    match ExecutorContainer::from_env(get) {
        Err(e) => failed(&e),
        Ok(Some(executor)) => {
            let env = std::env::vars().collect();
            match docker_executor::supervise(&docker, &executor, env).await {
                Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => failed(&e),
            }
        }
        Ok(None) => {
            let settings = match Settings::from_env(get) {
                Ok(settings) => settings,
                Err(e) => return failed(&e),
            };
            match docker_executor::run(settings, docker).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failed(&e),
            }
        }
    }
}

fn failed(e: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{e}");
    ExitCode::from(1)
}
