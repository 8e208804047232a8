//! `mesos-master`.

use std::process::ExitCode;

use mesos_flags::Loaded;
use mesos_master::MasterFlags;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = match MasterFlags::load() {
        Ok(Loaded::Flags(flags)) => flags,
        Ok(Loaded::Help(help)) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n\nSee 'mesos-master --help' for the flags.");
            return ExitCode::from(1);
        }
    };
    init_logging(&flags.logging_level);
    if let Err(e) = mesos_master::run(flags).await {
        tracing::error!("{e}");
        eprintln!("mesos-master: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn init_logging(level: &str) {
    let level = match level.to_ascii_uppercase().as_str() {
        "WARNING" | "WARN" => "warn",
        "ERROR" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
