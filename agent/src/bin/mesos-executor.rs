//! `mesos-executor`: the command executor the agent starts for command
//! tasks. Its flags (`--launcher_dir`) are Mesos's and are not needed
//! here; everything comes from the `MESOS_*` environment.

use std::process::ExitCode;

use mesos_agent::command_executor::{self, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    mesos_agent::logging::init("info");
    let settings = match Settings::from_env(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    match command_executor::run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
