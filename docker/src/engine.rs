//! The Docker Engine calls the docker executor and the agent make, over
//! the Engine's unix socket. Errors carry the Engine's own message, which
//! is what a framework sees in its TASK_FAILED.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerStatsResponse, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, StatsOptions, StopContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use mesos_proto::v1;
use tokio::io::AsyncWriteExt;

/// Every container the agent starts is named with this prefix and its
/// Mesos container ID, so it can be found again after a restart.
pub const NAME_PREFIX: &str = "mesos-";
/// Seconds between pull progress lines in the log.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The Engine call timeout (pulls and waits stream longer than this only
/// between messages).
const ENGINE_TIMEOUT_SECS: u64 = 120;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the Docker Engine at {socket}: {reason}")]
    Connect { socket: String, reason: String },
    #[error("{0}")]
    Engine(String),
    #[error("Failed to pull image '{image}': {reason}")]
    Pull { image: String, reason: String },
    #[error("cannot copy the container's output: {0}")]
    Output(std::io::Error),
}

fn engine(e: bollard::errors::Error) -> EngineError {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            EngineError::Engine(message)
        }
        other => EngineError::Engine(other.to_string()),
    }
}

/// The name of the container for a Mesos container ID.
pub fn container_name(container_id: &str) -> String {
    format!("{NAME_PREFIX}{container_id}")
}

/// A `mesos-` container the Engine knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MesosContainer {
    /// The Mesos container ID (the name without its prefix).
    pub container_id: String,
    pub running: bool,
    /// Host paths mounted into it (the sandbox among them).
    pub mounts: Vec<PathBuf>,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects to the Engine at `socket` and agrees on an API version.
    pub async fn connect(socket: &Path) -> Result<Self, EngineError> {
        let connect_error = |reason: String| EngineError::Connect {
            socket: socket.display().to_string(),
            reason,
        };
        let path = socket
            .to_str()
            .ok_or_else(|| connect_error("not UTF-8".into()))?;
        let docker =
            Docker::connect_with_unix(path, ENGINE_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(|e| connect_error(e.to_string()))?
                .negotiate_version()
                .await
                .map_err(|e| connect_error(e.to_string()))?;
        Ok(Self { docker })
    }

    pub async fn image_exists(&self, image: &str) -> bool {
        self.docker.inspect_image(image).await.is_ok()
    }

    /// Pulls `image` unless it is present (or always, with `force`),
    /// logging progress every few seconds.
    pub async fn pull(&self, image: &str, force: bool) -> Result<(), EngineError> {
        if !force && self.image_exists(image).await {
            return Ok(());
        }
        let pull_error = |reason: String| EngineError::Pull {
            image: image.to_string(),
            reason,
        };
        tracing::info!(image, "pulling image");
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        let started = Instant::now();
        let mut last_report = Instant::now();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| pull_error(engine(e).to_string()))?;
            if let Some(detail) = info.error_detail {
                return Err(pull_error(detail.message.unwrap_or_default()));
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                tracing::info!(
                    image,
                    status = info.status.as_deref().unwrap_or_default(),
                    elapsed = ?started.elapsed(),
                    "still pulling"
                );
            }
        }
        tracing::info!(image, elapsed = ?started.elapsed(), "image pulled");
        Ok(())
    }

    /// `docker import`: makes image `reference` (`repo:tag`) from a root
    /// filesystem tarball, for images built offline.
    pub async fn import_rootfs(
        &self,
        tarball: Vec<u8>,
        reference: &str,
    ) -> Result<(), EngineError> {
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(
            Some(options),
            Some(bollard::body_full(tarball.into())),
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(engine)?;
        }
        Ok(())
    }

    /// Creates and starts a container named `name`.
    pub async fn run(&self, name: &str, config: ContainerCreateBody) -> Result<(), EngineError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), config)
            .await
            .map_err(engine)?;
        if let Err(e) = self.docker.start_container(name, None).await {
            // Do not leave a created-but-dead container behind.
            let _ = self.remove(name).await;
            return Err(engine(e));
        }
        Ok(())
    }

    /// Waits for the container to stop; its exit code.
    pub async fn wait(&self, name: &str) -> Result<i64, EngineError> {
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut stream = self.docker.wait_container(name, Some(options));
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // The Engine reports a non-zero exit as an error carrying it.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(engine(e)),
            None => Err(EngineError::Engine(format!(
                "no exit status for container {name}"
            ))),
        }
    }

    /// `docker stop`: SIGTERM (or the image's stop signal), SIGKILL after
    /// `grace`.
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        self.docker
            .stop_container(name, Some(options))
            .await
            .map_err(engine)
    }

    pub async fn kill(&self, name: &str) -> Result<(), EngineError> {
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(name, Some(options))
            .await
            .map_err(engine)
    }

    pub async fn remove(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        self.docker
            .remove_container(name, Some(options))
            .await
            .map_err(engine)
    }

    /// Copies the container's output to `stdout` and `stderr` until it
    /// stops. The docker executor passes its own standard streams, which
    /// are the sandbox's files: sharing their file offsets keeps its log
    /// lines and the container's output from overwriting each other.
    pub async fn copy_logs(
        &self,
        name: &str,
        mut stdout: impl tokio::io::AsyncWrite + Unpin,
        mut stderr: impl tokio::io::AsyncWrite + Unpin,
    ) -> Result<(), EngineError> {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = self.docker.logs(name, Some(options));
        while let Some(item) = logs.next().await {
            let written = match item.map_err(engine)? {
                bollard::container::LogOutput::StdErr { message } => {
                    stderr.write_all(&message).await
                }
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::Console { message } => {
                    stdout.write_all(&message).await
                }
                bollard::container::LogOutput::StdIn { .. } => Ok(()),
            };
            written.map_err(EngineError::Output)?;
        }
        stdout.flush().await.map_err(EngineError::Output)?;
        stderr.flush().await.map_err(EngineError::Output)?;
        Ok(())
    }

    /// Every container named `mesos-<id>`.
    pub async fn mesos_containers(&self) -> Result<Vec<MesosContainer>, EngineError> {
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine)?;
        Ok(summaries
            .into_iter()
            .filter_map(|summary| {
                let name = summary.names?.into_iter().find_map(|n| {
                    n.trim_start_matches('/')
                        .strip_prefix(NAME_PREFIX)
                        .map(str::to_string)
                })?;
                let mounts = summary
                    .mounts
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.source.map(PathBuf::from))
                    .collect();
                Some(MesosContainer {
                    container_id: name,
                    running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
                    mounts,
                })
            })
            .collect())
    }

    /// One sample of the container's usage.
    pub async fn statistics(&self, name: &str) -> Result<v1::ResourceStatistics, EngineError> {
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = self.docker.stats(name, Some(options));
        let stats = stream
            .next()
            .await
            .ok_or_else(|| EngineError::Engine(format!("no statistics for {name}")))?
            .map_err(engine)?;
        Ok(to_statistics(&stats))
    }
}

/// The Engine's stats as Mesos's `ResourceStatistics`.
pub fn to_statistics(stats: &ContainerStatsResponse) -> v1::ResourceStatistics {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let nanos = |v: Option<u64>| v.map(|n| n as f64 / 1e9);
    let cpu = stats.cpu_stats.as_ref().and_then(|c| c.cpu_usage.as_ref());
    let memory = stats.memory_stats.as_ref();
    v1::ResourceStatistics {
        timestamp,
        processes: stats
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .and_then(|n| u32::try_from(n).ok()),
        cpus_user_time_secs: nanos(cpu.and_then(|c| c.usage_in_usermode)),
        cpus_system_time_secs: nanos(cpu.and_then(|c| c.usage_in_kernelmode)),
        mem_rss_bytes: memory
            .and_then(|m| m.stats.as_ref())
            .and_then(|s| s.get("rss").or_else(|| s.get("anon")).copied()),
        mem_total_bytes: memory.and_then(|m| m.usage),
        mem_limit_bytes: memory.and_then(|m| m.limit),
        ..Default::default()
    }
}
