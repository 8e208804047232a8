//! Starting executor processes: each in its own session and process group
//! (pymesos's executor ends with `killpg(0, SIGKILL)`, which must not reach
//! the agent), in its sandbox, with stdout and stderr in sandbox files.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use mesos_proto::v1;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// What to run for an executor.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub program: String,
    pub args: Vec<String>,
    /// `sh -c <program>` rather than exec'ing it.
    pub shell: bool,
    pub env: BTreeMap<String, String>,
    pub sandbox: PathBuf,
}

impl LaunchSpec {
    /// From a CommandInfo, Mesos's way: with `shell` (the default) the value
    /// is a shell command; without, the value is the program and
    /// `arguments` its argv (argv[0] included).
    pub fn from_command(command: &v1::CommandInfo, sandbox: PathBuf) -> Self {
        let shell = command.shell.unwrap_or(true);
        let args = if shell {
            Vec::new()
        } else {
            command.arguments.iter().skip(1).cloned().collect()
        };
        let mut env = BTreeMap::new();
        if let Some(environment) = &command.environment {
            for var in &environment.variables {
                if let Some(value) = &var.value {
                    env.insert(var.name.clone(), value.clone());
                }
            }
        }
        Self {
            program: command.value.clone().unwrap_or_default(),
            args,
            shell,
            env,
            sandbox,
        }
    }
}

/// Starts the process. The caller waits on the returned child.
pub fn spawn(spec: &LaunchSpec) -> io::Result<tokio::process::Child> {
    let stdout = std::fs::File::create(spec.sandbox.join("stdout"))?;
    let stderr = std::fs::File::create(spec.sandbox.join("stderr"))?;
    let mut command = if spec.shell {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&spec.program);
        c
    } else {
        let mut c = tokio::process::Command::new(&spec.program);
        c.args(&spec.args);
        c
    };
    command
        .current_dir(&spec.sandbox)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(false);
    new_session(&mut command);
    command.spawn()
}

#[allow(unsafe_code)]
fn new_session(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setsid(2), which is async-signal-safe and touches no memory
    // shared with the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
    }
}

/// Signals the executor's whole process group (its session leader's pid).
pub fn signal_group(pid: u32, signal: Signal) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if let Err(e) = killpg(Pid::from_raw(pid), signal)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pid, %signal, "failed to signal executor process group: {e}");
    }
}

/// Where `mesos-executor` lives: `--launcher_dir`, else next to this binary.
pub fn launcher_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_in_its_sandbox_and_own_session_with_output_in_files() {
        let tmp = tempfile::tempdir().unwrap();
        let command = v1::CommandInfo {
            value: Some("echo out; echo err >&2; pwd; echo $FOO; ps -o sid= -p $$".into()),
            environment: Some(v1::Environment {
                variables: vec![v1::environment::Variable {
                    name: "FOO".into(),
                    value: Some("bar".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        let spec = LaunchSpec::from_command(&command, tmp.path().to_path_buf());
        let mut child = spawn(&spec).unwrap();
        let pid = child.id().unwrap();
        assert!(child.wait().await.unwrap().success());
        let out = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "out");
        assert_eq!(std::fs::canonicalize(lines[1]).unwrap(), std::fs::canonicalize(tmp.path()).unwrap());
        assert_eq!(lines[2], "bar");
        assert_eq!(lines[3].trim(), pid.to_string(), "the executor leads its own session");
        assert_eq!(std::fs::read_to_string(tmp.path().join("stderr")).unwrap(), "err\n");
    }
}
