//! The three probes a check can make, each bounded by its timeout: a
//! command (its exit code), an HTTP GET on the task's host (its status
//! code) and a TCP connect. `Err` means the probe gave no result (it timed
//! out or could not run).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mesos_proto::v1;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::check::Outcome;
use crate::command::CommandLine;

/// The longest status line an HTTP probe reads.
const STATUS_LINE_MAX: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Command(v1::CommandInfo),
    /// A command run where the task runs: in its container image.
    CommandIn(v1::CommandInfo, Arc<TaskView>),
    Http {
        port: u16,
        path: String,
    },
    Tcp {
        port: u16,
    },
}

/// What a check command needs to see the task's file system: the task's
/// mount namespace (entered between fork and exec, its root being the
/// task's rootfs), working directory and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// The task's pid, as the executor sees it.
    pub pid: u32,
    pub working_dir: PathBuf,
    /// Under the check command's own variables.
    pub env: Vec<(String, String)>,
}

impl Probe {
    /// A command probe made to run in the task's view; others unchanged.
    pub fn inside(self, view: &Arc<TaskView>) -> Self {
        match self {
            Self::Command(command) => Self::CommandIn(command, Arc::clone(view)),
            other => other,
        }
    }

    pub async fn run(&self, timeout: Duration) -> Result<Outcome, String> {
        match self {
            Self::Command(command) => run_command(command, None, timeout).await,
            Self::CommandIn(command, view) => run_command(command, Some(view), timeout).await,
            Self::Http { port, path } => tokio::time::timeout(timeout, http_get(*port, path))
                .await
                .map_err(|_| format!("no HTTP answer within {timeout:?}"))?,
            Self::Tcp { port } => {
                match tokio::time::timeout(timeout, TcpStream::connect(("127.0.0.1", *port))).await
                {
                    Ok(connected) => Ok(Outcome::Connected(connected.is_ok())),
                    Err(_) => Err(format!("no TCP connection within {timeout:?}")),
                }
            }
        }
    }
}

/// Whether an outcome counts as healthy, and why not.
pub fn healthy(outcome: Result<Outcome, String>) -> Result<(), String> {
    match outcome? {
        Outcome::Exited(0) | Outcome::Connected(true) => Ok(()),
        Outcome::Status(code) if (200..400).contains(&code) => Ok(()),
        Outcome::Exited(code) => Err(format!("command exited with status {code}")),
        Outcome::Status(code) => Err(format!("HTTP status {code}")),
        Outcome::Connected(false) => Err("connection refused".into()),
        Outcome::Unknown => Err("no result".into()),
    }
}

/// Runs the command in a process group of its own (in the executor's
/// working directory, the sandbox, or in the task's `view`), killing the
/// group on timeout.
async fn run_command(
    command: &v1::CommandInfo,
    view: Option<&TaskView>,
    timeout: Duration,
) -> Result<Outcome, String> {
    let line = CommandLine::from_info(command);
    let mut process = match view {
        Some(view) => in_view(&line, view)?,
        None => line.to_command(),
    };
    process
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = process
        .spawn()
        .map_err(|e| format!("cannot run the check command: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => Ok(Outcome::Exited(status.code().unwrap_or(-1))),
        Ok(Err(e)) => Err(format!("cannot wait for the check command: {e}")),
        Err(_) => {
            if let Some(pgid) = child.id() {
                crate::launcher::signal_group(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            Err(format!("the check command timed out after {timeout:?}"))
        }
    }
}

/// The command, entering the task's mount namespace between fork and
/// exec. The namespace is opened before the fork, so a task gone by then
/// is an error here, not in the child.
#[allow(unsafe_code)]
fn in_view(line: &CommandLine, view: &TaskView) -> Result<tokio::process::Command, String> {
    let namespace = std::fs::File::open(format!("/proc/{}/ns/mnt", view.pid))
        .map_err(|e| format!("cannot open the task's mount namespace: {e}"))?;
    let working_dir = CString::new(view.working_dir.as_os_str().as_bytes())
        .map_err(|_| "the task's working directory contains a NUL byte".to_string())?;
    let mut process = tokio::process::Command::new(&line.program);
    process
        .arg0(&line.arg0)
        .args(&line.args)
        .envs(view.env.iter().map(|(k, v)| (k, v)))
        .envs(&line.env);
    // SAFETY: setns(2) and chdir(2) on a descriptor and a C string made
    // before the fork; nothing is allocated in the child.
    unsafe {
        process.pre_exec(move || {
            nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(std::io::Error::from)?;
            nix::unistd::chdir(working_dir.as_c_str()).map_err(std::io::Error::from)
        });
    }
    Ok(process)
}

async fn http_get(port: u16, path: &str) -> Result<Outcome, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot connect to port {port}: {e}"))?;
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: mesos-health-check\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < STATUS_LINE_MAX {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).map(Outcome::Status)
}

/// The code of an `HTTP/1.x NNN reason` status line.
fn status_code(head: &[u8]) -> Result<u16, String> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(code))) if version.starts_with("HTTP/") => Ok(code),
        _ => Err(format!("not an HTTP answer: {:?}", line.trim_end())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed_and_garbage_refused() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Ok(204));
        assert_eq!(status_code(b"HTTP/1.0 500 Oops"), Ok(500));
        assert!(status_code(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(status_code(b"").is_err());
        assert!(status_code(b"HTTP/1.1 abc\r\n").is_err());
    }

    #[test]
    fn healthy_outcomes() {
        assert!(healthy(Ok(Outcome::Exited(0))).is_ok());
        assert!(healthy(Ok(Outcome::Status(302))).is_ok());
        assert!(healthy(Ok(Outcome::Status(404))).is_err());
        assert!(healthy(Ok(Outcome::Connected(false))).is_err());
        assert_eq!(healthy(Err("late".into())), Err("late".into()));
    }

    #[tokio::test]
    async fn probes_against_real_processes_and_sockets() {
        let command = |value: &str| {
            Probe::Command(v1::CommandInfo {
                value: Some(value.into()),
                ..Default::default()
            })
        };
        let second = Duration::from_secs(5);
        assert_eq!(command("exit 3").run(second).await, Ok(Outcome::Exited(3)));
        let slow = command("sleep 5").run(Duration::from_millis(100)).await;
        assert!(slow.unwrap_err().contains("timed out"));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let http = Probe::Http {
            port,
            path: "health".into(),
        };
        assert_eq!(http.run(second).await, Ok(Outcome::Status(503)));
        assert_eq!(
            Probe::Tcp { port }.run(second).await,
            Ok(Outcome::Connected(true))
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(
            Probe::Tcp { port: closed_port }.run(second).await,
            Ok(Outcome::Connected(false))
        );
    }
}
