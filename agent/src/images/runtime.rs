//! `docker/runtime`: how a Docker image's config (Entrypoint, Cmd, Env,
//! WorkingDir) combines with the task's `CommandInfo`, as Mesos combines
//! them:
//!
//! - `shell` (the default) with a `value`: `/bin/sh -c value`; the image's
//!   Entrypoint and Cmd are ignored.
//! - `shell=false` with a `value`: `value` is the program and `arguments`
//!   its argv (`arguments[0]` standing for `argv[0]`); Entrypoint and Cmd
//!   are ignored.
//! - no `value`: the image's Entrypoint followed by the task's `arguments`
//!   if it gives any, else by the image's Cmd; without an Entrypoint, the
//!   task's `arguments`, else the image's Cmd. (Mesos refuses a shell
//!   command without a value; here a missing value means "run the image"
//!   whatever `shell` says, since `sh -c ''` would do nothing.)
//! - the environment: the image's `Env`, then the task's variables over
//!   it, then `MESOS_SANDBOX` (the sandbox as the task sees it); a `PATH`
//!   the usual default when the image has none, since the host's would
//!   mean nothing inside the image.
//! - the working directory: the image's `WorkingDir`, else the sandbox.
//!
//! The image's `User` is not applied (as in Mesos's `docker/runtime`).

use std::path::{Path, PathBuf};

use mesos_proto::v1;
use mesos_provisioners::RuntimeConfig;

use crate::command::CommandLine;

/// Docker's default `PATH` for images without one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The task's process in its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRuntime {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
}

pub fn merge(
    command: Option<&v1::CommandInfo>,
    image: &RuntimeConfig,
    image_name: &str,
    sandbox_directory: &Path,
) -> Result<TaskRuntime, String> {
    let command = command.cloned().unwrap_or_default();
    let value = command.value.clone().filter(|v| !v.is_empty());
    let argv = match value {
        Some(value) if command.shell.unwrap_or(true) => {
            vec!["/bin/sh".to_string(), "-c".to_string(), value]
        }
        Some(value) => std::iter::once(value)
            .chain(command.arguments.iter().skip(1).cloned())
            .collect(),
        None => {
            let tail = if command.arguments.is_empty() {
                &image.cmd
            } else {
                &command.arguments
            };
            image.entrypoint.iter().chain(tail).cloned().collect()
        }
    };
    if argv.is_empty() {
        return Err(format!(
            "The task gives no command and image '{image_name}' has neither Entrypoint nor Cmd"
        ));
    }

    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: String, value: String| match env.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    set("PATH".into(), DEFAULT_PATH.into());
    for entry in &image.env {
        // Docker keeps `NAME` without `=` to mean "inherit"; there is
        // nothing to inherit into an image, so it is dropped.
        if let Some((name, value)) = entry.split_once('=') {
            set(name.to_string(), value.to_string());
        }
    }
    for (name, value) in CommandLine::from_info(&command).env {
        set(name, value);
    }
    set(
        "MESOS_SANDBOX".into(),
        sandbox_directory.display().to_string(),
    );

    let working_dir = image
        .working_dir
        .as_ref()
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| sandbox_directory.to_path_buf());
    Ok(TaskRuntime {
        argv,
        env,
        working_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> RuntimeConfig {
        RuntimeConfig {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into(), "GREETING=hello".into(), "BARE".into()],
            working_dir: Some("/srv".into()),
            user: None,
        }
    }

    fn command(value: Option<&str>, shell: bool, arguments: &[&str]) -> v1::CommandInfo {
        v1::CommandInfo {
            value: value.map(str::to_string),
            shell: Some(shell),
            arguments: arguments.iter().map(|s| s.to_string()).collect(),
            environment: Some(v1::Environment {
                variables: vec![v1::environment::Variable {
                    name: "GREETING".into(),
                    value: Some("hi".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

    fn argv(command: Option<&v1::CommandInfo>, image: &RuntimeConfig) -> Vec<String> {
        merge(command, image, "i", Path::new("/mnt/mesos/sandbox"))
            .unwrap()
            .argv
    }

    #[test]
    fn a_shell_value_ignores_entrypoint_and_cmd() {
        let c = command(Some("echo $GREETING"), true, &[]);
        assert_eq!(
            argv(Some(&c), &image(&["/entry"], &["cmd"])),
            ["/bin/sh", "-c", "echo $GREETING"]
        );
    }

    #[test]
    fn a_program_value_takes_its_arguments_as_argv() {
        let c = command(Some("/bin/echo"), false, &["echo", "a", "b"]);
        assert_eq!(
            argv(Some(&c), &image(&["/entry"], &["cmd"])),
            ["/bin/echo", "a", "b"]
        );
    }

    #[test]
    fn without_a_value_the_image_runs_with_the_tasks_arguments_or_its_cmd() {
        let bare = command(None, false, &[]);
        let args = command(None, false, &["x", "y"]);
        assert_eq!(
            argv(Some(&bare), &image(&["/entry", "-v"], &["cmd"])),
            ["/entry", "-v", "cmd"]
        );
        assert_eq!(
            argv(Some(&args), &image(&["/entry"], &["cmd"])),
            ["/entry", "x", "y"]
        );
        assert_eq!(argv(Some(&args), &image(&[], &["cmd"])), ["x", "y"]);
        assert_eq!(
            argv(None, &image(&[], &["sh", "-c", "true"])),
            ["sh", "-c", "true"]
        );
        let err = merge(Some(&bare), &image(&[], &[]), "busybox", Path::new("/s")).unwrap_err();
        assert!(err.contains("'busybox'"), "{err}");
    }

    #[test]
    fn task_variables_override_the_images_and_the_sandbox_is_named() {
        let c = command(Some("env"), true, &[]);
        let runtime = merge(
            Some(&c),
            &image(&[], &[]),
            "i",
            Path::new("/mnt/mesos/sandbox"),
        )
        .unwrap();
        let get = |name: &str| {
            runtime
                .env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("GREETING"), Some("hi"));
        assert_eq!(get("BARE"), None);
        assert_eq!(get("MESOS_SANDBOX"), Some("/mnt/mesos/sandbox"));
        assert_eq!(runtime.working_dir, Path::new("/srv"));

        let plain = RuntimeConfig::default();
        let runtime = merge(Some(&c), &plain, "i", Path::new("/sb")).unwrap();
        assert_eq!(runtime.working_dir, Path::new("/sb"));
        assert!(runtime.env.contains(&("PATH".into(), DEFAULT_PATH.into())));
    }
}
