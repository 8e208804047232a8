//! The command executor (`mesos-executor`): runs one command task for the
//! agent over the v1 executor API.
//!
//! TASK_STARTING, then TASK_RUNNING once the command is started, then
//! TASK_FINISHED, TASK_FAILED (with the exit status in the message) or
//! TASK_KILLED. A kill is SIGTERM to the task's process group and SIGKILL
//! after the grace period. The executor exits once the agent has
//! acknowledged the terminal update (or after a bounded wait), and kills
//! its task whenever it exits early.
//!
//! The task's health check and check run beside it (see [`crate::checks`]):
//! their results go out as TASK_RUNNING updates, and a task that fails its
//! health check `consecutive_failures` times in a row is killed.
//!
//! For a checkpointing framework (`MESOS_CHECKPOINT=1`) the executor
//! outlives an agent restart: when its connection breaks it keeps
//! resubscribing, backing off up to `MESOS_SUBSCRIPTION_BACKOFF_MAX`, for
//! `MESOS_RECOVERY_TIMEOUT`, and its SUBSCRIBE carries the updates not yet
//! acknowledged (and the task, while none of its updates is).
//!
//! A task with a container image runs inside its rootfs while the
//! executor stays on the host (see [`rootfs`]).

mod client;
pub mod rootfs;
mod task;

use std::time::Duration;

use mesos_proto::v1::{self, TaskState, executor, framework_info};
use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checks;
use crate::executor_session::Session;

pub use client::{ClientError, EventStream, ExecutorClient};
pub use task::grace_of;
use task::{TaskProcess, outcome};

/// Mesos's command executor default kill grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(3);
/// How long to wait for the acknowledgement of the terminal update.
const ACK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("environment variable {name}: {reason}")]
    BadEnv { name: &'static str, reason: String },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Container(String),
}

/// What the agent told the executor through its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The agent's `ip:port`.
    pub endpoint: String,
    pub framework_id: String,
    pub executor_id: String,
    pub shutdown_grace_period: Duration,
    /// Set for checkpointing frameworks: how long to keep trying to
    /// resubscribe after the agent went away.
    pub recovery_timeout: Option<Duration>,
    pub subscription_backoff_max: Duration,
    /// Set when the task runs in a container image.
    pub rootfs: Option<rootfs::RootfsLaunch>,
    /// Set when an OCI runtime runs it there (the `oci` containerizer).
    pub oci: Option<crate::oci::OciLaunch>,
}

impl Settings {
    /// From `MESOS_*` variables; `MESOS_SLAVE_PID` (`slave(1)@ip:port`)
    /// stands in for a missing `MESOS_AGENT_ENDPOINT`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ExecutorError> {
        let required = |name: &'static str| get(name).ok_or(ExecutorError::MissingEnv(name));
        let endpoint = match get("MESOS_AGENT_ENDPOINT") {
            Some(endpoint) => endpoint,
            None => required("MESOS_SLAVE_PID")?
                .rsplit_once('@')
                .map(|(_, address)| address.to_string())
                .ok_or(ExecutorError::BadEnv {
                    name: "MESOS_SLAVE_PID",
                    reason: "expected slave(1)@ip:port".into(),
                })?,
        };
        let shutdown_grace_period = match get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD") {
            Some(text) => {
                mesos_flags::Duration::parse(&text)
                    .map_err(|reason| ExecutorError::BadEnv {
                        name: "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                        reason,
                    })?
                    .0
            }
            None => Duration::from_secs(5),
        };
        let duration = |name: &'static str, default: Duration| match get(name) {
            Some(text) => mesos_flags::Duration::parse(&text)
                .map(|d| d.0)
                .map_err(|reason| ExecutorError::BadEnv { name, reason }),
            None => Ok(default),
        };
        let rootfs =
            match get(rootfs::ROOTFS_LAUNCH_VAR) {
                Some(text) => Some(rootfs::RootfsLaunch::from_json(&text).map_err(|e| {
                    ExecutorError::BadEnv {
                        name: rootfs::ROOTFS_LAUNCH_VAR,
                        reason: e.to_string(),
                    }
                })?),
                None => None,
            };
        let oci = match get(crate::oci::OCI_LAUNCH_VAR) {
            Some(text) => Some(crate::oci::OciLaunch::from_json(&text).map_err(|reason| {
                ExecutorError::BadEnv {
                    name: crate::oci::OCI_LAUNCH_VAR,
                    reason,
                }
            })?),
            None => None,
        };
        let checkpoint = get("MESOS_CHECKPOINT").is_some_and(|v| v == "1");
        let recovery_timeout = if checkpoint {
            Some(duration(
                "MESOS_RECOVERY_TIMEOUT",
                Duration::from_secs(15 * 60),
            )?)
        } else {
            None
        };
        Ok(Self {
            endpoint,
            framework_id: required("MESOS_FRAMEWORK_ID")?,
            executor_id: required("MESOS_EXECUTOR_ID")?,
            shutdown_grace_period,
            recovery_timeout,
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                Duration::from_secs(2),
            )?,
            rootfs,
            oci,
        })
    }
}

/// Runs the executor until its task is done and acknowledged.
pub async fn run(settings: Settings) -> Result<(), ExecutorError> {
    let session = Session::subscribe(&settings).await?;
    let (checks_tx, checks_rx) = mpsc::channel(8);
    let mut executor = CommandExecutor {
        session,
        shutdown_grace_period: settings.shutdown_grace_period,
        task_killing_state: false,
        task: None,
        kill_at: None,
        terminal_uuid: None,
        exit_at: None,
        checks_tx,
        rootfs: settings.rootfs.clone(),
        oci: settings.oci.clone(),
    };
    let result = executor.serve(checks_rx).await;
    // However the executor ends, its task must not outlive it.
    if let Some(task) = &executor.task {
        task.process.signal(Signal::SIGKILL);
    }
    result
}

struct CommandExecutor {
    session: Session,
    shutdown_grace_period: Duration,
    /// The framework understands TASK_KILLING.
    task_killing_state: bool,
    task: Option<Running>,
    /// When the task's SIGKILL is due.
    kill_at: Option<Instant>,
    terminal_uuid: Option<Vec<u8>>,
    /// When to give up waiting for the terminal update's acknowledgement.
    exit_at: Option<Instant>,
    /// Where the task's checkers report.
    checks_tx: mpsc::Sender<((), checks::Event)>,
    /// Where the task runs, when it has a container image.
    rootfs: Option<rootfs::RootfsLaunch>,
    oci: Option<crate::oci::OciLaunch>,
}

struct Running {
    process: TaskProcess,
    kill_policy: Option<v1::KillPolicy>,
    /// Stopped with the task.
    _checkers: Vec<checks::Checker>,
    /// What its checks reported.
    reported: checks::Reported,
}

impl CommandExecutor {
    async fn serve(
        &mut self,
        mut checks: mpsc::Receiver<((), checks::Event)>,
    ) -> Result<(), ExecutorError> {
        loop {
            let exit_at = self.session.ack_deadline(self.exit_at, ACK_WAIT);
            tokio::select! {
                event = self.session.next() => {
                    let Some(event) = event? else { return Ok(()) };
                    if self.event(event).await? == Flow::Exit {
                        return Ok(());
                    }
                }
                status = wait(self.task.as_mut()) => {
                    let Some(running) = self.task.take() else { continue };
                    self.kill_at = None;
                    let (state, message) = outcome(status, running.process.killed);
                    let message = running.reported.explain(message);
                    tracing::info!(
                        task = %running.process.task_id.value, state = state.as_str_name(),
                        "{message}"
                    );
                    let mut status = status_of(&running.process.task_id, state, Some(message));
                    running.reported.stamp(&mut status);
                    let uuid = self.session.send(status).await?;
                    self.terminal_uuid = Some(uuid);
                    self.exit_at = Some(Instant::now() + ACK_WAIT);
                }
                Some(((), event)) = checks.recv() => self.checked(event).await?,
                _ = sleep_until(self.kill_at) => {
                    self.kill_at = None;
                    if let Some(running) = &self.task {
                        tracing::info!("grace period over; sending SIGKILL");
                        running.process.signal(Signal::SIGKILL);
                    }
                }
                _ = sleep_until(exit_at) => {
                    tracing::warn!("no acknowledgement of the terminal update; exiting anyway");
                    return Ok(());
                }
            }
        }
    }

    async fn event(&mut self, event: executor::Event) -> Result<Flow, ExecutorError> {
        match event.r#type() {
            executor::event::Type::Subscribed => {
                if let Some(subscribed) = event.subscribed {
                    self.task_killing_state =
                        subscribed.framework_info.capabilities.iter().any(|c| {
                            c.r#type
                                == Some(framework_info::capability::Type::TaskKillingState as i32)
                        });
                    tracing::info!(agent = ?subscribed.agent_info.id, "subscribed to the agent");
                }
            }
            executor::event::Type::Launch => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task).await?;
                }
            }
            executor::event::Type::Kill => {
                if let Some(kill) = event.kill {
                    let grace = grace_of(kill.kill_policy.as_ref());
                    self.kill(&kill.task_id, grace).await?;
                }
            }
            executor::event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged
                    && self.terminal_uuid.as_deref() == Some(ack.uuid.as_slice())
                {
                    return Ok(Flow::Exit);
                }
            }
            executor::event::Type::Shutdown => {
                tracing::info!("shutdown requested");
                let Some(running) = &self.task else {
                    return Ok(Flow::Exit);
                };
                let task_id = running.process.task_id.clone();
                let grace = self.task_grace(None).min(self.shutdown_grace_period);
                self.kill(&task_id, Some(grace)).await?;
            }
            executor::event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::error!("error from the agent: {message}");
            }
            executor::event::Type::Message
            | executor::event::Type::Heartbeat
            | executor::event::Type::LaunchGroup
            | executor::event::Type::Unknown => {}
        }
        Ok(Flow::Continue)
    }

    async fn launch(&mut self, task: v1::TaskInfo) -> Result<(), ExecutorError> {
        if self.task.is_some() || self.terminal_uuid.is_some() {
            let message = "Attempted to run multiple tasks using a command executor";
            tracing::warn!(task = %task.task_id.value, "{message}");
            self.update(
                &task.task_id,
                TaskState::TaskFailed,
                Some(message.to_string()),
            )
            .await?;
            return Ok(());
        }
        self.session.track(&task);
        self.update(&task.task_id, TaskState::TaskStarting, None)
            .await?;
        let policies = match checks::Policies::of(&task) {
            Ok(policies) => policies,
            Err(e) => {
                return self
                    .terminal(&task.task_id, TaskState::TaskFailed, e.to_string())
                    .await;
            }
        };
        if let Some(launch) = &self.rootfs {
            tracing::info!(
                task = %task.task_id.value, rootfs = %launch.rootfs.display(),
                argv = ?launch.argv, "running the task in its container image"
            );
        }
        let process = match TaskProcess::start(&task, self.rootfs.as_ref(), self.oci.as_ref()) {
            Ok(process) => process,
            Err(e) => {
                let message = format!("Failed to launch the command: {e}");
                return self
                    .terminal(&task.task_id, TaskState::TaskFailed, message)
                    .await;
            }
        };
        tracing::info!(task = %task.task_id.value, pid = ?process.pid(), "task started");
        let started = Instant::now();
        let check_status = policies.check.as_ref().map(checks::check::initial_status);
        // In an image, command checks see what the task sees (as in Mesos);
        // under an OCI runtime the pid is the runtime's, so they do not.
        let policies = match (&self.rootfs, process.pid()) {
            (Some(launch), Some(pid)) if self.oci.is_none() => {
                policies.inside(checks::probe::TaskView {
                    pid,
                    working_dir: launch.working_dir.clone(),
                    env: launch.env.clone(),
                })
            }
            _ => policies,
        };
        let checkers = policies.spawn(started, (), &self.checks_tx);
        // Tracked before anything can fail: should the agent die while the
        // update is on its way, the executor still takes the task down.
        self.task = Some(Running {
            process,
            kill_policy: task.kill_policy,
            _checkers: checkers,
            reported: checks::Reported {
                check_status,
                ..Default::default()
            },
        });
        let mut running_status = status_of(&task.task_id, TaskState::TaskRunning, None);
        running_status.check_status = check_status;
        self.session.send(running_status).await?;
        Ok(())
    }

    /// A checker's result: a TASK_RUNNING update carrying it, and the kill
    /// of a task that failed its health check too often.
    async fn checked(&mut self, event: checks::Event) -> Result<(), ExecutorError> {
        let Some(running) = self.task.as_mut().filter(|r| !r.process.killed) else {
            return Ok(());
        };
        let task_id = running.process.task_id.clone();
        let (status, kill) = running.reported.apply(&task_id, event);
        self.session.send(status).await?;
        if kill {
            tracing::warn!(task = %task_id.value, "health check failed too often; killing the task");
            self.kill(&task_id, None).await?;
        }
        Ok(())
    }

    /// The kill's own grace period, else the task's, else 3 seconds.
    fn task_grace(&self, from_kill: Option<Duration>) -> Duration {
        from_kill
            .or_else(|| grace_of(self.task.as_ref()?.kill_policy.as_ref()))
            .unwrap_or(DEFAULT_GRACE)
    }

    /// SIGTERM now, SIGKILL when the grace period is over. A second kill
    /// can shorten the grace period but never extend it.
    async fn kill(
        &mut self,
        task_id: &v1::TaskId,
        grace: Option<Duration>,
    ) -> Result<(), ExecutorError> {
        let grace = self.task_grace(grace);
        let Some(running) = self.task.as_mut().filter(|r| r.process.task_id == *task_id) else {
            tracing::warn!(task = %task_id.value, "kill for a task this executor is not running");
            return Ok(());
        };
        let deadline = Instant::now() + grace;
        if running.process.killed {
            self.kill_at = Some(self.kill_at.map_or(deadline, |at| at.min(deadline)));
            return Ok(());
        }
        tracing::info!(task = %task_id.value, ?grace, "killing the task");
        running.process.killed = true;
        running.process.signal(Signal::SIGTERM);
        self.kill_at = Some(deadline);
        if self.task_killing_state {
            self.update(task_id, TaskState::TaskKilling, None).await?;
        }
        Ok(())
    }

    /// Sends the terminal update and starts waiting for its acknowledgement.
    async fn terminal(
        &mut self,
        task_id: &v1::TaskId,
        state: TaskState,
        message: String,
    ) -> Result<(), ExecutorError> {
        let uuid = self.update(task_id, state, Some(message)).await?;
        self.terminal_uuid = Some(uuid);
        self.exit_at = Some(Instant::now() + ACK_WAIT);
        Ok(())
    }

    async fn update(
        &mut self,
        task_id: &v1::TaskId,
        state: TaskState,
        message: Option<String>,
    ) -> Result<Vec<u8>, ExecutorError> {
        self.session.update(task_id, state, message, None).await
    }
}

fn status_of(task_id: &v1::TaskId, state: TaskState, message: Option<String>) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message,
        ..Default::default()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn wait(task: Option<&mut Running>) -> std::io::Result<std::process::ExitStatus> {
    match task {
        Some(running) => running.process.wait().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ExecutorError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(|name| vars.get(name).cloned())
    }

    #[test]
    fn settings_come_from_the_environment() {
        let s = settings(&[
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("MESOS_FRAMEWORK_ID", "F"),
            ("MESOS_EXECUTOR_ID", "E"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "7secs"),
        ])
        .unwrap();
        assert_eq!(s.endpoint, "127.0.0.1:5051");
        assert_eq!(
            (s.framework_id.as_str(), s.executor_id.as_str()),
            ("F", "E")
        );
        assert_eq!(s.shutdown_grace_period, Duration::from_secs(7));

        let s = settings(&[
            ("MESOS_SLAVE_PID", "slave(1)@10.0.0.2:5052"),
            ("MESOS_FRAMEWORK_ID", "F"),
            ("MESOS_EXECUTOR_ID", "E"),
        ])
        .unwrap();
        assert_eq!(s.endpoint, "10.0.0.2:5052");
        assert_eq!(s.shutdown_grace_period, Duration::from_secs(5));
        assert_eq!(s.recovery_timeout, None, "not checkpointing");

        let s = settings(&[
            ("MESOS_AGENT_ENDPOINT", "a:1"),
            ("MESOS_FRAMEWORK_ID", "F"),
            ("MESOS_EXECUTOR_ID", "E"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "3mins"),
        ])
        .unwrap();
        assert_eq!(s.recovery_timeout, Some(Duration::from_secs(180)));
        assert_eq!(s.subscription_backoff_max, Duration::from_secs(2));

        assert!(matches!(
            settings(&[("MESOS_FRAMEWORK_ID", "F"), ("MESOS_EXECUTOR_ID", "E")]),
            Err(ExecutorError::MissingEnv("MESOS_SLAVE_PID"))
        ));
        assert!(matches!(
            settings(&[("MESOS_AGENT_ENDPOINT", "a:1"), ("MESOS_EXECUTOR_ID", "E")]),
            Err(ExecutorError::MissingEnv("MESOS_FRAMEWORK_ID"))
        ));
    }
}
