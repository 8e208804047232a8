//! `mesos-default-executor`: the executor the agent starts for task groups
//! (`ExecutorInfo.type = DEFAULT`). Everything comes from the `MESOS_*`
//! environment.

use std::process::ExitCode;

use mesos_agent::command_executor::Settings;
use mesos_agent::default_executor;

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
    match default_executor::run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
