//! The command executor (`mesos-executor`): runs one command task for the
//! agent over the v1 executor API.
//!
//! TASK_STARTING, then TASK_RUNNING once the command is started, then
//! TASK_FINISHED, TASK_FAILED (with the exit status in the message) or
//! TASK_KILLED. A kill sends SIGTERM to the task's process group and
//! SIGKILL after the grace period. The executor exits once the agent has
//! acknowledged the terminal update (or after a bounded wait).

mod client;

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use mesos_proto::v1::{self, TaskState, executor, task_status::Source};
use nix::sys::signal::Signal;
use tokio::time::Instant;

pub use client::{ClientError, EventStream, ExecutorClient};

/// Mesos's command executor default kill grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(3);
/// How long to wait for the acknowledgement of the terminal update.
const ACK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error(transparent)]
    Client(#[from] ClientError),
}

struct Running {
    task_id: v1::TaskId,
    child: tokio::process::Child,
    pid: Option<u32>,
    killed: bool,
}

/// Runs the executor until its task is done and acknowledged.
pub async fn run() -> Result<(), ExecutorError> {
    let env = |name: &'static str| std::env::var(name).map_err(|_| ExecutorError::MissingEnv(name));
    let endpoint = match env("MESOS_AGENT_ENDPOINT") {
        Ok(e) => e,
        Err(_) => env("MESOS_SLAVE_PID")?
            .rsplit_once('@')
            .map(|(_, a)| a.to_string())
            .ok_or(ExecutorError::MissingEnv("MESOS_AGENT_ENDPOINT"))?,
    };
    let client = ExecutorClient::new(&endpoint, &env("MESOS_FRAMEWORK_ID")?, &env("MESOS_EXECUTOR_ID")?);
    let mut events = client.subscribe().await?;
    let mut task: Option<Running> = None;
    let mut kill_at: Option<Instant> = None;
    let mut exit_at: Option<Instant> = None;
    let mut terminal_uuid: Option<Vec<u8>> = None;

    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event? else {
                    tracing::warn!("agent closed the stream; killing the task and exiting");
                    kill_now(task.as_ref());
                    return Ok(());
                };
                match event.r#type() {
                    executor::event::Type::Subscribed => tracing::info!("subscribed to the agent"),
                    executor::event::Type::Launch => {
                        let Some(launch) = event.launch else { continue };
                        if task.is_some() {
                            tracing::warn!(task = %launch.task.task_id.value, "second task for a command executor refused");
                            continue;
                        }
                        let info = launch.task;
                        send(&client, &info.task_id, TaskState::TaskStarting, None).await?;
                        match start(&info) {
                            Ok(child) => {
                                let pid = child.id();
                                task = Some(Running { task_id: info.task_id.clone(), child, pid, killed: false });
                                send(&client, &info.task_id, TaskState::TaskRunning, None).await?;
                            }
                            Err(e) => {
                                let message = format!("Failed to launch the command: {e}");
                                terminal_uuid = Some(send(&client, &info.task_id, TaskState::TaskFailed, Some(message)).await?);
                                exit_at = Some(Instant::now() + ACK_WAIT);
                            }
                        }
                    }
                    executor::event::Type::Kill => {
                        let Some(kill) = event.kill else { continue };
                        let grace = kill.kill_policy.as_ref().and_then(grace_of);
                        if let Some(running) = task.as_mut().filter(|t| t.task_id == kill.task_id) {
                            let grace = grace.unwrap_or(DEFAULT_GRACE);
                            tracing::info!(task = %running.task_id.value, ?grace, "killing the task");
                            running.killed = true;
                            signal(running.pid, Signal::SIGTERM);
                            kill_at = Some(Instant::now() + grace);
                        }
                    }
                    executor::event::Type::Acknowledged => {
                        if let Some(ack) = event.acknowledged
                            && terminal_uuid.as_deref() == Some(ack.uuid.as_slice())
                        {
                            return Ok(());
                        }
                    }
                    executor::event::Type::Shutdown => {
                        tracing::info!("shutdown requested");
                        if let Some(running) = task.as_mut() {
                            running.killed = true;
                            signal(running.pid, Signal::SIGTERM);
                            kill_at = Some(Instant::now() + DEFAULT_GRACE);
                        } else {
                            return Ok(());
                        }
                    }
                    executor::event::Type::Error => {
                        tracing::error!("agent error: {}", event.error.map(|e| e.message).unwrap_or_default());
                    }
                    _ => {}
                }
            }
            status = wait(task.as_mut()) => {
                let Some(running) = task.take() else { continue };
                kill_at = None;
                let (state, message) = outcome(status.ok(), running.killed);
                tracing::info!(task = %running.task_id.value, state = state.as_str_name(), "task ended");
                terminal_uuid = Some(send(&client, &running.task_id, state, message).await?);
                exit_at = Some(Instant::now() + ACK_WAIT);
            }
            _ = sleep_until(kill_at) => {
                kill_at = None;
                kill_now(task.as_ref());
            }
            _ = sleep_until(exit_at) => {
                tracing::warn!("no acknowledgement of the terminal update; exiting anyway");
                return Ok(());
            }
        }
    }
}

fn grace_of(policy: &v1::KillPolicy) -> Option<Duration> {
    policy
        .grace_period
        .as_ref()
        .and_then(|d| u64::try_from(d.nanoseconds).ok())
        .map(Duration::from_nanos)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn wait(task: Option<&mut Running>) -> std::io::Result<ExitStatus> {
    match task {
        Some(t) => t.child.wait().await,
        None => std::future::pending().await,
    }
}

fn signal(pid: Option<u32>, signal: Signal) {
    if let Some(pid) = pid {
        crate::launcher::signal_group(pid, signal);
    }
}

fn kill_now(task: Option<&Running>) {
    if let Some(t) = task {
        signal(t.pid, Signal::SIGKILL);
    }
}

/// The task's command, in its own process group so a kill reaches its
/// children too, with the executor's stdout and stderr (the sandbox files).
fn start(task: &v1::TaskInfo) -> std::io::Result<tokio::process::Child> {
    let command = task.command.clone().unwrap_or_default();
    let spec = crate::launcher::LaunchSpec::from_command(&command, std::path::PathBuf::from("."));
    let mut cmd = if spec.shell {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&spec.program);
        c
    } else {
        let mut c = tokio::process::Command::new(&spec.program);
        c.args(&spec.args);
        c
    };
    cmd.envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    cmd.spawn()
}

/// The terminal state and message for how the command ended.
fn outcome(status: Option<ExitStatus>, killed: bool) -> (TaskState, Option<String>) {
    let Some(status) = status else {
        return (TaskState::TaskFailed, Some("Failed to wait for the command".to_string()));
    };
    if killed {
        return (TaskState::TaskKilled, Some("Command was killed".to_string()));
    }
    match (status.code(), status.signal()) {
        (Some(0), _) => (TaskState::TaskFinished, Some("Command exited with status 0".to_string())),
        (Some(code), _) => (TaskState::TaskFailed, Some(format!("Command exited with status {code}"))),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| s.to_string()).unwrap_or_else(|_| sig.to_string());
            (TaskState::TaskFailed, Some(format!("Command terminated with signal {name}")))
        }
        (None, None) => (TaskState::TaskFailed, Some("Command ended in an unknown way".to_string())),
    }
}

/// Sends a status update and returns its uuid.
async fn send(
    client: &ExecutorClient,
    task_id: &v1::TaskId,
    state: TaskState,
    message: Option<String>,
) -> Result<Vec<u8>, ExecutorError> {
    let uuid = mesos_proto::ids::new_uuid_bytes();
    let status = v1::TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message,
        source: Some(Source::Executor as i32),
        timestamp: Some(crate::agent::now_secs()),
        uuid: Some(uuid.clone()),
        ..Default::default()
    };
    client.update(status).await?;
    Ok(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_carry_the_exit_status() {
        assert_eq!(outcome(Some(ExitStatus::from_raw(0)), false).0, TaskState::TaskFinished);
        let (state, message) = outcome(Some(ExitStatus::from_raw(3 << 8)), false);
        assert_eq!(state, TaskState::TaskFailed);
        assert_eq!(message.as_deref(), Some("Command exited with status 3"));
        let (_, message) = outcome(Some(ExitStatus::from_raw(9)), false);
        assert_eq!(message.as_deref(), Some("Command terminated with signal SIGKILL"));
        assert_eq!(outcome(Some(ExitStatus::from_raw(15)), true).0, TaskState::TaskKilled);
    }
}
