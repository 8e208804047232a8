//! The docker executor (`mesos-docker-executor`): runs one command task
//! whose `ContainerInfo` is DOCKER as a Docker Engine container named
//! `mesos-<container id>`, as Mesos's docker executor does.
//!
//! TASK_STARTING; the image is pulled (always with `force_pull_image`);
//! the container is created and started with the task's resources, network,
//! ports, volumes and parameters; TASK_RUNNING. Its output goes to the
//! sandbox's `stdout` and `stderr`. Its exit gives TASK_FINISHED,
//! TASK_FAILED (with the exit code, or the Engine's message when it never
//! started) or TASK_KILLED. A kill is `docker stop` with the kill policy's
//! grace period (else `--docker_stop_timeout`).

mod supervisor;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mesos_docker::{Engine, RunSpec};
use mesos_proto::v1::{self, TaskState, executor, framework_info};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::command_executor::{ExecutorError, Settings, grace_of};
use crate::executor_session::Session;
pub use supervisor::{CONTAINER_ID_VAR, EXECUTOR_INFO_VAR, ExecutorContainer, supervise};

/// How long to wait for the acknowledgement of the terminal update.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// How long an exited container's output may take to reach the sandbox.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// What the agent tells the docker executor besides the common settings.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub socket: PathBuf,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// Where it appears in the container.
    pub sandbox_directory: PathBuf,
    pub stop_timeout: Duration,
    pub enable_cfs: bool,
    /// What the agent's pre-launch hooks add to the container.
    pub added: Added,
}

/// The variable carrying the environment the pre-launch hooks add to the
/// container (a JSON object), as Mesos's `--task_environment`.
pub const TASK_ENVIRONMENT_VAR: &str = "MESOS_DOCKER_TASK_ENVIRONMENT";
/// The variable carrying the labels they add (a JSON object).
pub const TASK_LABELS_VAR: &str = "MESOS_DOCKER_TASK_LABELS";

/// What the agent's pre-launch hooks add to the Engine container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Added {
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl Added {
    fn from_env(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ExecutorError> {
        let object = |name: &'static str| -> Result<BTreeMap<String, String>, ExecutorError> {
            let Some(json) = get(name) else {
                return Ok(BTreeMap::new());
            };
            serde_json::from_str(&json).map_err(|e| ExecutorError::BadEnv {
                name,
                reason: format!("expected a JSON object of strings: {e}"),
            })
        };
        Ok(Self {
            env: object(TASK_ENVIRONMENT_VAR)?,
            labels: object(TASK_LABELS_VAR)?,
        })
    }

    /// The container's environment with the added variables.
    pub fn env(&self, mut env: BTreeMap<String, String>) -> BTreeMap<String, String> {
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// `own` labels followed by the added ones; `None` if both are empty.
    pub fn labels(&self, own: Option<&v1::Labels>) -> Option<v1::Labels> {
        if self.labels.is_empty() {
            return own.cloned();
        }
        let mut labels = own.cloned().unwrap_or_default();
        labels
            .labels
            .extend(self.labels.iter().map(|(key, value)| v1::Label {
                key: key.clone(),
                value: Some(value.clone()),
            }));
        Some(labels)
    }
}

impl DockerSettings {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ExecutorError> {
        let duration = |name: &'static str, default: Duration| match get(name) {
            None => Ok(default),
            Some(text) => mesos_flags::Duration::parse(&text)
                .map(|d| d.0)
                .map_err(|reason| ExecutorError::BadEnv { name, reason }),
        };
        Ok(Self {
            socket: get("MESOS_DOCKER_SOCKET")
                .unwrap_or_else(|| "/var/run/docker.sock".into())
                .into(),
            sandbox: get("MESOS_DIRECTORY")
                .ok_or(ExecutorError::MissingEnv("MESOS_DIRECTORY"))?
                .into(),
            sandbox_directory: get("MESOS_SANDBOX_DIRECTORY")
                .unwrap_or_else(|| "/mnt/mesos/sandbox".into())
                .into(),
            stop_timeout: duration("MESOS_DOCKER_STOP_TIMEOUT", Duration::ZERO)?,
            enable_cfs: get("MESOS_CGROUPS_ENABLE_CFS").is_some_and(|v| v == "true" || v == "1"),
            added: Added::from_env(&get)?,
        })
    }
}

/// Runs the executor until its task is done and acknowledged.
pub async fn run(settings: Settings, docker: DockerSettings) -> Result<(), ExecutorError> {
    let session = Session::subscribe(&settings).await?;
    let (exited_tx, exited_rx) = mpsc::channel(4);
    let mut executor = DockerExecutor {
        session,
        docker,
        shutdown_grace_period: settings.shutdown_grace_period,
        task_killing_state: false,
        name: None,
        engine: None,
        task: None,
        killed: false,
        terminal_uuid: None,
        exit_at: None,
        exited_tx,
    };
    let result = executor.serve(exited_rx).await;
    // The container must not outlive its executor.
    if let (Some(engine), Some(name)) = (&executor.engine, &executor.name)
        && executor.terminal_uuid.is_none()
        && executor.task.is_some()
    {
        let _ = engine.kill(name).await;
    }
    result
}

struct DockerExecutor {
    session: Session,
    docker: DockerSettings,
    shutdown_grace_period: Duration,
    task_killing_state: bool,
    /// `mesos-<container id>`, known once subscribed.
    name: Option<String>,
    engine: Option<Engine>,
    task: Option<v1::TaskInfo>,
    killed: bool,
    terminal_uuid: Option<Vec<u8>>,
    exit_at: Option<Instant>,
    exited_tx: mpsc::Sender<Result<i64, String>>,
}

impl DockerExecutor {
    async fn serve(
        &mut self,
        mut exited: mpsc::Receiver<Result<i64, String>>,
    ) -> Result<(), ExecutorError> {
        loop {
            let exit_at = self.session.ack_deadline(self.exit_at, ACK_WAIT);
            tokio::select! {
                event = self.session.next() => {
                    let Some(event) = event? else {
                        return Ok(());
                    };
                    if self.event(event).await? {
                        return Ok(());
                    }
                }
                Some(result) = exited.recv() => self.container_exited(result).await?,
                _ = sleep_until(exit_at) => {
                    tracing::warn!("no acknowledgement of the terminal update; exiting anyway");
                    return Ok(());
                }
            }
        }
    }

    /// Handles one event; true to exit.
    async fn event(&mut self, event: executor::Event) -> Result<bool, ExecutorError> {
        match event.r#type() {
            executor::event::Type::Subscribed => {
                if let Some(subscribed) = event.subscribed {
                    self.task_killing_state =
                        subscribed.framework_info.capabilities.iter().any(|c| {
                            c.r#type
                                == Some(framework_info::capability::Type::TaskKillingState as i32)
                        });
                    self.name = subscribed
                        .container_id
                        .map(|id| mesos_docker::container_name(&id.value));
                }
            }
            executor::event::Type::Launch => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task).await?;
                }
            }
            executor::event::Type::Kill => {
                if let Some(kill) = event.kill {
                    let task_policy = self.task.as_ref().and_then(|t| t.kill_policy);
                    let grace = grace_of(kill.kill_policy.as_ref().or(task_policy.as_ref()))
                        .unwrap_or(self.docker.stop_timeout);
                    self.kill(grace).await?;
                }
            }
            executor::event::Type::Shutdown => {
                if self.task.is_none() || self.terminal_uuid.is_some() {
                    return Ok(true);
                }
                self.kill(
                    self.shutdown_grace_period
                        .min(self.docker.stop_timeout.max(Duration::from_secs(1))),
                )
                .await?;
            }
            executor::event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged
                    && self.terminal_uuid.as_deref() == Some(ack.uuid.as_slice())
                {
                    return Ok(true);
                }
            }
            executor::event::Type::Error => {
                tracing::error!(message = ?event.error.map(|e| e.message), "error from the agent");
            }
            _ => {}
        }
        Ok(false)
    }

    async fn launch(&mut self, task: v1::TaskInfo) -> Result<(), ExecutorError> {
        if self.task.is_some() {
            let message = "the docker executor runs a single task".to_string();
            self.update(&task.task_id, TaskState::TaskFailed, Some(message))
                .await?;
            return Ok(());
        }
        let task_id = task.task_id.clone();
        self.session.track(&task);
        self.task = Some(task.clone());
        self.update(&task_id, TaskState::TaskStarting, None).await?;
        match self.start(&task).await {
            Ok(()) => {
                self.update(&task_id, TaskState::TaskRunning, None).await?;
            }
            Err(message) => {
                tracing::warn!(task = %task_id.value, "{message}");
                self.terminal(TaskState::TaskFailed, message).await?;
            }
        }
        Ok(())
    }

    /// Pulls, creates and starts the container; the Engine's message on
    /// failure.
    async fn start(&mut self, task: &v1::TaskInfo) -> Result<(), String> {
        let name = self
            .name
            .clone()
            .ok_or("the agent did not give the executor a container ID")?;
        let container = task
            .container
            .as_ref()
            .filter(|c| c.r#type() == v1::container_info::Type::Docker)
            .ok_or("the task has no DOCKER ContainerInfo")?;
        let mut env = BTreeMap::new();
        env.insert("MESOS_TASK_ID".to_string(), task.task_id.value.clone());
        env.insert("MESOS_CONTAINER_NAME".to_string(), name.clone());
        let labels = self.docker.added.labels(task.labels.as_ref());
        let config = mesos_docker::container_config(&RunSpec {
            container,
            command: task.command.as_ref(),
            resources: &task.resources,
            labels: labels.as_ref(),
            sandbox: &self.docker.sandbox,
            sandbox_directory: &self.docker.sandbox_directory,
            env: self.docker.added.env(env),
            enable_cfs: self.docker.enable_cfs,
        })
        .map_err(|e| format!("Invalid docker task: {e}"))?;
        let image = mesos_docker::image(container).map_err(|e| e.to_string())?;
        let force = container
            .docker
            .as_ref()
            .and_then(|d| d.force_pull_image)
            .unwrap_or(false);
        let engine = Engine::connect(&self.docker.socket)
            .await
            .map_err(|e| e.to_string())?;
        self.engine = Some(engine.clone());
        engine.pull(image, force).await.map_err(|e| e.to_string())?;
        engine
            .run(&name, config)
            .await
            .map_err(|e| format!("Failed to run container: {e}"))?;
        tracing::info!(container = %name, image, "container started");

        let (logs_engine, logs_name) = (engine.clone(), name.clone());
        let logs = tokio::spawn(async move {
            let (stdout, stderr) = (tokio::io::stdout(), tokio::io::stderr());
            if let Err(e) = logs_engine.copy_logs(&logs_name, stdout, stderr).await {
                tracing::warn!(container = %logs_name, "output copy ended: {e}");
            }
        });
        let tx = self.exited_tx.clone();
        tokio::spawn(async move {
            let result = engine.wait(&name).await.map_err(|e| e.to_string());
            // The output is in the sandbox before the task is reported
            // done (a stuck log stream does not hold the update back).
            let _ = tokio::time::timeout(LOG_DRAIN, logs).await;
            let _ = tx.send(result).await;
        });
        Ok(())
    }

    async fn kill(&mut self, grace: Duration) -> Result<(), ExecutorError> {
        let (Some(task), Some(engine), Some(name)) = (&self.task, &self.engine, &self.name) else {
            return Ok(());
        };
        if self.killed || self.terminal_uuid.is_some() {
            return Ok(());
        }
        let (task_id, engine, name) = (task.task_id.clone(), engine.clone(), name.clone());
        self.killed = true;
        if self.task_killing_state {
            self.update(&task_id, TaskState::TaskKilling, None).await?;
        }
        tracing::info!(container = %name, ?grace, "stopping container");
        // `docker stop` returns once the container is gone; the waiter
        // reports the exit.
        tokio::spawn(async move {
            if let Err(e) = engine.stop(&name, grace).await {
                tracing::warn!(container = %name, "stop failed: {e}; killing");
                let _ = engine.kill(&name).await;
            }
        });
        Ok(())
    }

    async fn container_exited(&mut self, result: Result<i64, String>) -> Result<(), ExecutorError> {
        if self.terminal_uuid.is_some() {
            return Ok(());
        }
        let (state, message) = match result {
            Ok(0) => (
                TaskState::TaskFinished,
                "Container exited with status 0".to_string(),
            ),
            Ok(_) if self.killed => (
                TaskState::TaskKilled,
                "Container stopped by the executor".to_string(),
            ),
            Ok(code) => (
                TaskState::TaskFailed,
                format!("Container exited with status {code}"),
            ),
            Err(e) => (
                TaskState::TaskFailed,
                format!("Lost track of the container: {e}"),
            ),
        };
        tracing::info!(state = state.as_str_name(), "{message}");
        self.terminal(state, message).await
    }

    async fn terminal(&mut self, state: TaskState, message: String) -> Result<(), ExecutorError> {
        let Some(task_id) = self.task.as_ref().map(|t| t.task_id.clone()) else {
            return Ok(());
        };
        let uuid = self.update(&task_id, state, Some(message)).await?;
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

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
