//! Test support: a fake master that speaks the agent link, the real agent
//! binary on a free port, and a tiny HTTP/1.1 client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use mesos_proto::internal::v1::agent_link_server::{AgentLink, AgentLinkServer};
use mesos_proto::internal::v1::{
    AgentRegistered, AgentToMaster, MasterToAgent, RegisterAgent, StatusUpdate, StatusUpdateAck,
    agent_to_master, master_to_agent,
};
use mesos_proto::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub const WAIT: Duration = Duration::from_secs(20);

/// One agent connection, as the fake master sees it.
pub struct Session {
    pub register: RegisterAgent,
    pub from_agent: mpsc::Receiver<agent_to_master::Message>,
    pub to_agent: mpsc::Sender<Result<MasterToAgent, Status>>,
}

impl Session {
    pub async fn send(&self, message: master_to_agent::Message) -> anyhow::Result<()> {
        self.to_agent
            .send(Ok(MasterToAgent {
                message: Some(message),
            }))
            .await
            .map_err(|_| anyhow!("agent link closed"))
    }

    /// Accepts the registration, keeping `agent_id` if the agent had one.
    pub async fn accept(&self, ping_interval_seconds: f64) -> anyhow::Result<String> {
        let agent_id = self
            .register
            .agent_info
            .id
            .as_ref()
            .map(|id| id.value.clone())
            .unwrap_or_else(|| "S0".to_string());
        self.send(master_to_agent::Message::Registered(AgentRegistered {
            agent_id: v1::AgentId {
                value: agent_id.clone(),
            },
            master_info: v1::MasterInfo {
                id: "fake-master".into(),
                ip: 0,
                port: 5050,
                hostname: Some("fake".into()),
                ..Default::default()
            },
            ping_interval_seconds: Some(ping_interval_seconds),
        }))
        .await?;
        Ok(agent_id)
    }

    /// The next message that is not a ping.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<agent_to_master::Message> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.from_agent.recv())
                .await
                .context("timed out waiting for the agent")?
                .ok_or_else(|| anyhow!("agent link closed"))?;
            if !matches!(message, agent_to_master::Message::Ping(_)) {
                return Ok(message);
            }
        }
    }

    pub async fn next_update(&mut self, within: Duration) -> anyhow::Result<StatusUpdate> {
        match self.next(within).await? {
            agent_to_master::Message::StatusUpdate(update) => Ok(update),
            other => bail!("expected a status update, got {other:?}"),
        }
    }

    /// Waits for `state` of `task`, skipping others.
    pub async fn wait_for_state(
        &mut self,
        task: &str,
        state: v1::TaskState,
    ) -> anyhow::Result<StatusUpdate> {
        loop {
            let update = self.next_update(WAIT).await?;
            if update.status.task_id.value == task {
                if update.status.state() == state {
                    return Ok(update);
                }
                self.ack(&update).await?;
            }
        }
    }

    pub async fn ack(&self, update: &StatusUpdate) -> anyhow::Result<()> {
        self.send(master_to_agent::Message::StatusUpdateAck(StatusUpdateAck {
            framework_id: update.framework_id.clone(),
            task_id: update.status.task_id.clone(),
            uuid: update.status.uuid.clone().unwrap_or_default(),
        }))
        .await
    }

    pub async fn run_task(
        &self,
        framework: v1::FrameworkInfo,
        task: v1::TaskInfo,
    ) -> anyhow::Result<()> {
        self.send(master_to_agent::Message::RunTask(Box::new(
            mesos_proto::internal::v1::RunTask { framework, task },
        )))
        .await
    }

    /// The agent's HTTP address, from its registration.
    pub fn agent_address(&self) -> SocketAddr {
        let port = self.register.agent_info.port.unwrap_or(5051);
        SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).unwrap_or(5051)))
    }
}

struct FakeMaster {
    sessions: mpsc::Sender<Session>,
}

#[tonic::async_trait]
impl AgentLink for FakeMaster {
    type AttachStream = ReceiverStream<Result<MasterToAgent, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<AgentToMaster>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = request.into_inner();
        let register = match inbound.message().await? {
            Some(AgentToMaster {
                message: Some(agent_to_master::Message::Register(register)),
            }) => register,
            other => {
                return Err(Status::failed_precondition(format!(
                    "expected RegisterAgent first, got {other:?}"
                )));
            }
        };
        let (to_agent, outbound) = mpsc::channel(256);
        let (from_tx, from_agent) = mpsc::channel(256);
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                if let Some(message) = message.message
                    && from_tx.send(message).await.is_err()
                {
                    break;
                }
            }
        });
        let session = Session {
            register,
            from_agent,
            to_agent,
        };
        self.sessions
            .send(session)
            .await
            .map_err(|_| Status::unavailable("test is over"))?;
        Ok(Response::new(ReceiverStream::new(outbound)))
    }
}

/// Serves the agent link on a free port; sessions arrive on the receiver.
pub async fn fake_master() -> anyhow::Result<(SocketAddr, mpsc::Receiver<Session>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (sessions, rx) = mpsc::channel(8);
    let service = AgentLinkServer::new(FakeMaster { sessions });
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    Ok((address, rx))
}

/// The agent binary, killed when dropped.
pub struct Agent {
    child: Child,
    pub work_dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(master: SocketAddr, extra: &[&str]) -> anyhow::Result<Self> {
        let work_dir = tempfile::tempdir()?;
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_mesos-agent"));
        let executor = PathBuf::from(env!("CARGO_BIN_EXE_mesos-executor"));
        let launcher_dir = executor.parent().unwrap_or(Path::new("."));
        let mut command = Command::new(binary);
        command
            .arg(format!("--master={master}"))
            .arg("--ip=127.0.0.1")
            .arg("--port=0")
            .arg(format!("--work_dir={}", work_dir.path().display()))
            .arg("--resources=cpus:2;mem:1024;disk:1024;ports:[31000-32000]")
            .arg("--registration_backoff_factor=50ms")
            .arg(format!("--launcher_dir={}", launcher_dir.display()))
            .args(extra)
            .stdin(Stdio::null());
        if std::env::var_os("AGENT_TEST_LOGS").is_none() {
            command.stderr(Stdio::null());
        }
        Ok(Self {
            child: command.spawn()?,
            work_dir,
        })
    }

    pub fn sandbox(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.work_dir.path().join(format!(
            "slaves/{agent}/frameworks/{framework}/executors/{executor}/runs/latest"
        ))
    }
}

impl Agent {
    /// SIGKILLs the agent alone, as a crash would.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Pids of the processes the agent started (they carry the sandbox in
    /// MESOS_DIRECTORY), zombies excluded.
    pub fn executor_processes(&self) -> Vec<i32> {
        processes_in(self.work_dir.path())
    }

    /// What a failed test needs to see of the processes still running:
    /// each one's command line, state and wait channel, and the tail of
    /// every sandbox's stderr.
    pub fn describe_processes(&self) -> String {
        let mut out = String::new();
        for pid in self.executor_processes() {
            let read = |what: &str| {
                std::fs::read_to_string(format!("/proc/{pid}/{what}"))
                    .unwrap_or_default()
                    .replace('\0', " ")
            };
            let state = read("stat")
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().take(1).collect::<String>())
                .unwrap_or_default();
            out += &format!(
                "pid {pid} [{state}] wchan={} {}\n",
                read("wchan"),
                read("cmdline").trim()
            );
        }
        for stderr in files_named(self.work_dir.path(), "stderr") {
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out += &format!("--- {}\n", stderr.display());
            for line in tail.into_iter().rev() {
                out += line;
                out += "\n";
            }
        }
        out
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Executors outlive a killed agent by design (Mesos recovers them);
        // a test must not leave its own behind.
        kill_processes_in(self.work_dir.path());
    }
}

/// Files called `name` anywhere under `dir`.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // `runs/latest` links to a run already walked.
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

/// SIGKILLs every process whose MESOS_DIRECTORY lies under `dir`.
fn kill_processes_in(dir: &Path) {
    for pid in processes_in(dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn processes_in(dir: &Path) -> Vec<i32> {
    let marker = format!("MESOS_DIRECTORY={}", dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    stat.rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(true);
            let ours = std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|b| *b == 0)
                    .any(|var| var.starts_with(marker.as_bytes()))
            });
            ours && !zombie
        })
        .collect()
}

pub fn framework(id: &str) -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        user: String::new(),
        name: "test".into(),
        id: Some(v1::FrameworkId { value: id.into() }),
        ..Default::default()
    }
}

pub fn command_task(id: &str, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: v1::AgentId { value: "S0".into() },
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A minimal HTTP/1.1 exchange: `(status, raw headers, body)`.
pub async fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await??;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head}"))?;
    Ok((status, head, response[split + 4..].to_vec()))
}

pub async fn get_json(address: SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    let (status, _, body) = http(address, "GET", path, &[], b"").await?;
    if status != 200 {
        bail!("GET {path}: {status}");
    }
    Ok(serde_json::from_slice(&body)?)
}
