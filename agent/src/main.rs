//! `mesos-agent`: parses the flags and runs the agent.

use std::process::ExitCode;

use mesos_agent::AgentFlags;
use mesos_flags::Loaded;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = match AgentFlags::load() {
        Ok(Loaded::Flags(flags)) => flags,
        Ok(Loaded::Help(help)) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n\nSee 'mesos-agent --help' for the flags.");
            return ExitCode::from(1);
        }
    };
    mesos_agent::logging::init(flags.logging_level.directive());
    if let Err(e) = mesos_agent::run(flags).await {
        tracing::error!("{e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
