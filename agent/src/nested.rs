//! Nested containers launched through the agent operator API
//! (`LAUNCH_NESTED_CONTAINER[_SESSION]`), the way `mesos task exec` uses
//! them to run a debugging command beside a task.
//!
//! With the POSIX launcher a nested container is a process leading its own
//! session, started in its own sandbox under the parent's
//! (`<parent sandbox>/containers/<id>`). Its output always goes to
//! `stdout`/`stderr` in that sandbox; a session also streams it live to the
//! client that launched it, and dies with that client's connection.
//! Destroying a parent destroys its nested containers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use mesos_proto::v1;
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::command::CommandLine;
use crate::launcher;

/// Chunks of session output in flight to the client; a slow client slows
/// the process (its pipe fills) rather than losing output.
const OUTPUT_QUEUE: usize = 64;
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NestedError {
    #[error("Container {0} cannot be found")]
    NotFound(String),
    #[error("Container {0} already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("Container {0} is still running")]
    Running(String),
    #[error("Container {0} already has an attached input")]
    InputAttached(String),
    #[error("Failed to launch container {id}: {reason}")]
    Launch { id: String, reason: String },
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct Spec {
    pub id: String,
    pub parent: String,
    /// The parent's sandbox; the container's goes under its `containers/`.
    pub parent_sandbox: PathBuf,
    pub command: v1::CommandInfo,
    /// Tie the container to the caller: its output is streamed back.
    pub session: bool,
}

/// A launched container's live output, for a session.
pub struct Session {
    pub output: mpsc::Receiver<(Stream, Bytes)>,
    /// Kills the container when dropped (the client went away).
    pub guard: SessionGuard,
}

pub struct SessionGuard {
    pgid: u32,
    exit: watch::Receiver<Option<i32>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.exit.borrow().is_none() {
            launcher::signal_group(self.pgid, Signal::SIGKILL);
        }
    }
}

struct Container {
    parent: String,
    sandbox: PathBuf,
    pid: u32,
    stdin: Option<tokio::process::ChildStdin>,
    /// The raw wait status, once it exited.
    exit: watch::Receiver<Option<i32>>,
}

/// The agent's nested containers; cheap to clone.
#[derive(Clone, Default)]
pub struct NestedContainers {
    containers: Arc<Mutex<HashMap<String, Container>>>,
}

impl std::fmt::Debug for NestedContainers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NestedContainers").finish_non_exhaustive()
    }
}

impl NestedContainers {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is a single insert or remove), so a poisoned lock is fine.
        self.containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The sandbox of a nested container, to nest further containers in.
    pub fn sandbox(&self, id: &str) -> Option<PathBuf> {
        self.lock().get(id).map(|c| c.sandbox.clone())
    }

    /// Nested containers as (id, parent id, pid, exited).
    pub fn list(&self) -> Vec<(String, String, u32, bool)> {
        self.lock()
            .iter()
            .map(|(id, c)| {
                (
                    id.clone(),
                    c.parent.clone(),
                    c.pid,
                    c.exit.borrow().is_some(),
                )
            })
            .collect()
    }

    /// Starts a container; for a session, returns its live output.
    pub async fn launch(&self, spec: Spec) -> Result<Option<Session>, NestedError> {
        mesos_proto::ids::validate_id(&spec.id)
            .map_err(|e| NestedError::Invalid(format!("Invalid container ID: {e}")))?;
        if self.lock().contains_key(&spec.id) {
            return Err(NestedError::Exists(spec.id));
        }
        if spec.command.value.as_deref().unwrap_or_default().is_empty() {
            return Err(NestedError::Invalid(
                "Expecting 'command.value' to be set".into(),
            ));
        }
        let sandbox = spec.parent_sandbox.join("containers").join(&spec.id);
        let launch_error = |reason: String| NestedError::Launch {
            id: spec.id.clone(),
            reason,
        };
        let files = {
            let sandbox = sandbox.clone();
            tokio::task::spawn_blocking(
                move || -> std::io::Result<(std::fs::File, std::fs::File)> {
                    std::fs::create_dir_all(&sandbox)?;
                    Ok((
                        std::fs::File::create(sandbox.join("stdout"))?,
                        std::fs::File::create(sandbox.join("stderr"))?,
                    ))
                },
            )
            .await
            .map_err(|e| launch_error(e.to_string()))?
            .map_err(|e| launch_error(format!("cannot create its sandbox: {e}")))?
        };

        let line = CommandLine::from_info(&spec.command);
        let mut command = line.to_command();
        command
            .envs(&line.env)
            .env("MESOS_SANDBOX", &sandbox)
            .env("MESOS_CONTAINER_ID", &spec.id)
            .current_dir(&sandbox)
            .stdin(Stdio::piped())
            .kill_on_drop(false);
        if spec.session {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            command
                .stdout(Stdio::from(
                    files
                        .0
                        .try_clone()
                        .map_err(|e| launch_error(e.to_string()))?,
                ))
                .stderr(Stdio::from(
                    files
                        .1
                        .try_clone()
                        .map_err(|e| launch_error(e.to_string()))?,
                ));
        }
        launcher::new_session(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| launch_error(format!("cannot execute '{}': {e}", line.program)))?;
        let pid = child
            .id()
            .ok_or_else(|| launch_error("exited at once".into()))?;
        tracing::info!(container = %spec.id, parent = %spec.parent, pid, "launched nested container");

        let (exit_tx, exit_rx) = watch::channel(None);
        let session = if spec.session {
            let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
            let (out_file, err_file) = (
                tokio::fs::File::from_std(files.0),
                tokio::fs::File::from_std(files.1),
            );
            if let Some(stdout) = child.stdout.take() {
                tokio::spawn(pump(stdout, Stream::Stdout, out_file, tx.clone()));
            }
            if let Some(stderr) = child.stderr.take() {
                tokio::spawn(pump(stderr, Stream::Stderr, err_file, tx));
            }
            Some(Session {
                output: rx,
                guard: SessionGuard {
                    pgid: pid,
                    exit: exit_rx.clone(),
                },
            })
        } else {
            None
        };
        let stdin = child.stdin.take();
        self.lock().insert(
            spec.id.clone(),
            Container {
                parent: spec.parent,
                sandbox,
                pid,
                stdin,
                exit: exit_rx,
            },
        );
        let id = spec.id;
        tokio::spawn(async move {
            let status = child.wait().await.ok().map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.into_raw()
            });
            tracing::info!(container = %id, ?status, "nested container exited");
            // Whatever it left behind in its session goes with it.
            tokio::task::spawn_blocking(move || launcher::destroy_session(pid));
            let _ = exit_tx.send(Some(status.unwrap_or(-1)));
        });
        Ok(session)
    }

    /// Takes the container's stdin, for ATTACH_CONTAINER_INPUT.
    pub fn take_stdin(&self, id: &str) -> Result<tokio::process::ChildStdin, NestedError> {
        let mut containers = self.lock();
        let container = containers
            .get_mut(id)
            .ok_or_else(|| NestedError::NotFound(id.to_string()))?;
        container
            .stdin
            .take()
            .ok_or_else(|| NestedError::InputAttached(id.to_string()))
    }

    /// The container's sandbox output files, for ATTACH_CONTAINER_OUTPUT.
    pub fn output_files(
        &self,
        id: &str,
    ) -> Result<(PathBuf, watch::Receiver<Option<i32>>), NestedError> {
        let containers = self.lock();
        let container = containers
            .get(id)
            .ok_or_else(|| NestedError::NotFound(id.to_string()))?;
        Ok((container.sandbox.clone(), container.exit.clone()))
    }

    /// Waits for the container to exit; its raw wait status.
    pub async fn wait(&self, id: &str) -> Result<i32, NestedError> {
        let mut exit = {
            let containers = self.lock();
            containers
                .get(id)
                .ok_or_else(|| NestedError::NotFound(id.to_string()))?
                .exit
                .clone()
        };
        let status = exit
            .wait_for(Option::is_some)
            .await
            .map(|s| s.unwrap_or(-1))
            .unwrap_or(-1);
        Ok(status)
    }

    pub fn kill(&self, id: &str, signal: Option<i32>) -> Result<(), NestedError> {
        let signal = match signal {
            None => Signal::SIGKILL,
            Some(n) => Signal::try_from(n)
                .map_err(|_| NestedError::Invalid(format!("Invalid signal {n}")))?,
        };
        let pid = self
            .lock()
            .get(id)
            .map(|c| c.pid)
            .ok_or_else(|| NestedError::NotFound(id.to_string()))?;
        launcher::signal_group(pid, signal);
        Ok(())
    }

    /// Forgets an exited container and deletes its sandbox.
    pub async fn remove(&self, id: &str) -> Result<(), NestedError> {
        let sandbox = {
            let mut containers = self.lock();
            let container = containers
                .get(id)
                .ok_or_else(|| NestedError::NotFound(id.to_string()))?;
            if container.exit.borrow().is_none() {
                return Err(NestedError::Running(id.to_string()));
            }
            let sandbox = container.sandbox.clone();
            containers.remove(id);
            sandbox
        };
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(sandbox)).await;
        Ok(())
    }

    /// Kills the containers nested (at any depth) in `parent`.
    pub fn destroy_children(&self, parent: &str) {
        let mut doomed = vec![parent.to_string()];
        let mut pids = Vec::new();
        {
            let containers = self.lock();
            while let Some(p) = doomed.pop() {
                for (id, c) in containers.iter().filter(|(_, c)| c.parent == p) {
                    doomed.push(id.clone());
                    pids.push(c.pid);
                }
            }
        }
        for pid in pids {
            tokio::task::spawn_blocking(move || launcher::destroy_session(pid));
        }
    }
}

/// Copies one output pipe to the sandbox file and to the session.
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    stream: Stream,
    mut file: tokio::fs::File,
    tx: mpsc::Sender<(Stream, Bytes)>,
) {
    let mut client = Some(tx);
    loop {
        let mut buf = vec![0; READ_CHUNK];
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // tokio writes in the background: the output is in the
                // sandbox file only once flushed.
                let _ = file.flush().await;
                return;
            }
            Ok(n) => n,
        };
        buf.truncate(n);
        let chunk = Bytes::from(buf);
        if let Err(e) = file.write_all(&chunk).await {
            tracing::debug!("cannot log nested container output: {e}");
        }
        if let Some(tx) = &client
            && tx.send((stream, chunk)).await.is_err()
        {
            // The client left; keep draining so the process is not stuck.
            client = None;
        }
    }
}

/// Feeds a container's stdin; an empty chunk closes it.
pub async fn write_stdin(
    stdin: &mut tokio::process::ChildStdin,
    data: &[u8],
) -> std::io::Result<()> {
    stdin.write_all(data).await?;
    stdin.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, id: &str, command: &str, session: bool) -> Spec {
        Spec {
            id: id.into(),
            parent: "parent".into(),
            parent_sandbox: dir.to_path_buf(),
            command: v1::CommandInfo {
                value: Some(command.into()),
                ..Default::default()
            },
            session,
        }
    }

    async fn collect(session: &mut Session) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        while let Some((stream, chunk)) = session.output.recv().await {
            let text = String::from_utf8_lossy(&chunk);
            match stream {
                Stream::Stdout => out.push_str(&text),
                Stream::Stderr => err.push_str(&text),
            }
        }
        (out, err)
    }

    #[tokio::test]
    async fn a_session_streams_output_reads_stdin_and_reports_its_exit() {
        let dir = tempfile::tempdir().unwrap();
        let nested = NestedContainers::default();
        let mut session = nested
            .launch(spec(
                dir.path(),
                "c1",
                "read line; echo got:$line; echo oops >&2; exit 3",
                true,
            ))
            .await
            .unwrap()
            .unwrap();
        let mut stdin = nested.take_stdin("c1").unwrap();
        assert!(matches!(
            nested.take_stdin("c1"),
            Err(NestedError::InputAttached(_))
        ));
        write_stdin(&mut stdin, b"hello\n").await.unwrap();
        drop(stdin);
        let (out, err) = collect(&mut session).await;
        assert_eq!(out, "got:hello\n");
        assert_eq!(err, "oops\n");
        let status = nested.wait("c1").await.unwrap();
        assert_eq!(status, 3 << 8, "raw wait status of exit 3");
        // Output is also in the container's sandbox.
        let logged = std::fs::read_to_string(dir.path().join("containers/c1/stdout")).unwrap();
        assert_eq!(logged, "got:hello\n");

        nested.remove("c1").await.unwrap();
        assert!(!dir.path().join("containers/c1").exists());
        assert!(matches!(
            nested.wait("c1").await,
            Err(NestedError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn dropping_a_session_kills_its_container() {
        let dir = tempfile::tempdir().unwrap();
        let nested = NestedContainers::default();
        let session = nested
            .launch(spec(dir.path(), "c2", "sleep 1000", true))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            nested.remove("c2").await,
            Err(NestedError::Running(_))
        ));
        drop(session);
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), nested.wait("c2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status & 0x7f, libc_sigkill(), "killed by SIGKILL");
    }

    #[tokio::test]
    async fn kill_and_destroy_children_reach_the_containers() {
        let dir = tempfile::tempdir().unwrap();
        let nested = NestedContainers::default();
        assert!(
            nested
                .launch(spec(dir.path(), "c3", "sleep 1000", false))
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            nested.launch(spec(dir.path(), "c3", "true", false)).await,
            Err(NestedError::Exists(_))
        ));
        nested.kill("c3", Some(15)).unwrap();
        assert_eq!(nested.wait("c3").await.unwrap() & 0x7f, 15);

        nested
            .launch(spec(dir.path(), "c4", "sleep 1000", false))
            .await
            .unwrap();
        nested.destroy_children("parent");
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), nested.wait("c4"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status & 0x7f, libc_sigkill());
        assert!(matches!(
            nested.kill("nope", None),
            Err(NestedError::NotFound(_))
        ));
        assert!(matches!(
            nested.launch(spec(dir.path(), "../x", "true", false)).await,
            Err(NestedError::Invalid(_))
        ));
    }

    fn libc_sigkill() -> i32 {
        Signal::SIGKILL as i32
    }
}
