//! The command executor's task process: started in a process group of its
//! own (so a kill reaches everything the command started) with the
//! executor's stdout and stderr, which are the sandbox files.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use mesos_proto::v1::{self, TaskState};
use nix::sys::signal::Signal;

use crate::command::CommandLine;

use super::rootfs::RootfsLaunch;
use crate::oci::OciLaunch;

pub struct TaskProcess {
    pub task_id: v1::TaskId,
    child: tokio::process::Child,
    pgid: Option<u32>,
    /// Set when an OCI runtime runs the task: signals go through it.
    oci: Option<OciLaunch>,
    /// Set once a kill was asked for: the exit then means TASK_KILLED.
    pub killed: bool,
}

impl TaskProcess {
    /// With `rootfs`, the task runs in its container image: the command
    /// is the one the agent worked out for it (see [`super::rootfs`]);
    /// with `oci` too, an OCI runtime runs it there (see [`crate::oci`]).
    pub fn start(
        task: &v1::TaskInfo,
        rootfs: Option<&RootfsLaunch>,
        oci: Option<&OciLaunch>,
    ) -> io::Result<Self> {
        let oci = oci.filter(|_| rootfs.is_some());
        let mut process = match (rootfs, oci) {
            (Some(launch), Some(oci)) => {
                let config = oci.config(launch, &task.resources, std::env::vars());
                oci.run_command(&config)?
            }
            (Some(launch), None) => in_rootfs(launch)?,
            (None, _) => {
                let command = task.command.clone().unwrap_or_default();
                CommandLine::from_info(&command).to_command()
            }
        };
        process
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(false);
        let child = process.spawn()?;
        Ok(Self {
            task_id: task.task_id.clone(),
            pgid: child.id(),
            child,
            oci: oci.cloned(),
            killed: false,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pgid
    }

    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await;
        // The runtime deleted its container on the way out; the bundle
        // is ours.
        if let Some(oci) = &self.oci
            && let Err(e) = std::fs::remove_dir_all(&oci.bundle)
        {
            tracing::debug!(bundle = %oci.bundle.display(), "cannot remove the bundle: {e}");
        }
        status
    }

    /// Signals the task's whole process group, or, under an OCI runtime,
    /// the container (the runtime would not pass SIGKILL on).
    pub fn signal(&self, signal: Signal) {
        if let Some(oci) = &self.oci {
            oci.kill(signal.as_str().trim_start_matches("SIG"));
            return;
        }
        if let Some(pgid) = self.pgid {
            crate::launcher::signal_group(pgid, signal);
        }
    }
}

/// The task's command, entering the rootfs between fork and exec.
#[allow(unsafe_code)]
fn in_rootfs(launch: &RootfsLaunch) -> io::Result<tokio::process::Command> {
    let mounts = launch.prepare_mount_points().map_err(io::Error::other)?;
    let plan = launch.plan(&mounts).map_err(io::Error::other)?;
    let (program, args) = launch
        .argv
        .split_first()
        .ok_or_else(|| io::Error::other("the task has no command"))?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_remove(super::rootfs::ROOTFS_LAUNCH_VAR)
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    // SAFETY: `enter` makes system calls on C strings prepared above and
    // allocates nothing (see rootfs.rs).
    unsafe {
        command.pre_exec(move || plan.enter());
    }
    Ok(command)
}

/// A kill policy's grace period.
pub fn grace_of(policy: Option<&v1::KillPolicy>) -> Option<Duration> {
    let nanos = policy?.grace_period.as_ref()?.nanoseconds;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

/// The terminal state and message for how the command ended, worded as
/// Mesos's command executor words them.
pub fn outcome(status: io::Result<ExitStatus>, killed: bool) -> (TaskState, String) {
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            return (
                TaskState::TaskFailed,
                format!("Failed to wait for the command: {e}"),
            );
        }
    };
    let description = match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal)
                .map(|s| s.to_string())
                .unwrap_or_else(|_| signal.to_string());
            format!("Command terminated with signal {name}")
        }
        (None, None) => "Command ended in an unknown way".to_string(),
    };
    let state = if killed {
        TaskState::TaskKilled
    } else if status.success() {
        TaskState::TaskFinished
    } else {
        TaskState::TaskFailed
    };
    (state, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_carry_the_exit_status() {
        let ok = |raw| Ok(ExitStatus::from_raw(raw));
        assert_eq!(
            outcome(ok(0), false),
            (
                TaskState::TaskFinished,
                "Command exited with status 0".into()
            )
        );
        assert_eq!(
            outcome(ok(3 << 8), false),
            (TaskState::TaskFailed, "Command exited with status 3".into())
        );
        assert_eq!(
            outcome(ok(9), false),
            (
                TaskState::TaskFailed,
                "Command terminated with signal SIGKILL".into()
            )
        );
        assert_eq!(
            outcome(ok(15), true),
            (
                TaskState::TaskKilled,
                "Command terminated with signal SIGTERM".into()
            )
        );
        assert_eq!(
            outcome(Err(io::Error::other("x")), false).0,
            TaskState::TaskFailed
        );
    }

    #[test]
    fn grace_comes_from_the_policy() {
        let policy = v1::KillPolicy {
            grace_period: Some(v1::DurationInfo {
                nanoseconds: 1_500_000_000,
            }),
        };
        assert_eq!(grace_of(Some(&policy)), Some(Duration::from_millis(1500)));
        assert_eq!(grace_of(Some(&v1::KillPolicy::default())), None);
        assert_eq!(grace_of(None), None);
    }

    #[tokio::test]
    async fn runs_in_its_own_process_group_and_dies_by_group_signal() {
        let task = v1::TaskInfo {
            name: "t".into(),
            task_id: v1::TaskId { value: "t".into() },
            command: Some(v1::CommandInfo {
                value: Some("sleep 30 & sleep 30; wait".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut process = TaskProcess::start(&task, None, None).unwrap();
        let pid = process.pid().unwrap();
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32))).unwrap();
        assert_eq!(pgid.as_raw() as u32, pid, "leads its own process group");
        process.signal(Signal::SIGKILL);
        let status = process.wait().await.unwrap();
        assert_eq!(status.signal(), Some(9));
    }
}
