//! `mesos-executor`: the command executor the agent starts for command tasks.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    mesos_agent::logging::init("INFO");
    match mesos_agent::command_executor::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
