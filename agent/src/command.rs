//! Turning a Mesos `CommandInfo` into a process to start, the way Mesos
//! reads it: with `shell` (the default) `value` is a shell command run by
//! `sh -c`; without, `value` is the program and `arguments` its whole argv,
//! `argv[0]` included.

use std::collections::BTreeMap;

use mesos_proto::v1;

/// A command line and the variables it adds to the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: String,
    /// What the program sees as `argv[0]`.
    pub arg0: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl CommandLine {
    pub fn from_info(command: &v1::CommandInfo) -> Self {
        let value = command.value.clone().unwrap_or_default();
        let env = environment(command);
        if command.shell.unwrap_or(true) {
            return Self {
                program: "/bin/sh".into(),
                arg0: "sh".into(),
                args: vec!["-c".into(), value],
                env,
            };
        }
        let mut argv = command.arguments.iter();
        let arg0 = argv.next().cloned().unwrap_or_else(|| value.clone());
        Self {
            program: value,
            arg0,
            args: argv.cloned().collect(),
            env,
        }
    }

    /// A process builder for this command; the caller adds stdio, the
    /// working directory and process attributes.
    pub fn to_command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command.arg0(&self.arg0).args(&self.args).envs(&self.env);
        command
    }
}

/// The plain-value variables of `CommandInfo.environment` (secrets need a
/// resolver this agent does not have).
fn environment(command: &v1::CommandInfo) -> BTreeMap<String, String> {
    let Some(environment) = &command.environment else {
        return BTreeMap::new();
    };
    environment
        .variables
        .iter()
        .filter_map(|var| Some((var.name.clone(), var.value.clone()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variable(name: &str, value: &str) -> v1::environment::Variable {
        v1::environment::Variable {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    #[test]
    fn shell_commands_go_through_sh() {
        let info = v1::CommandInfo {
            value: Some("echo hi; exit 3".into()),
            environment: Some(v1::Environment {
                variables: vec![variable("A", "1")],
            }),
            ..Default::default()
        };
        let line = CommandLine::from_info(&info);
        assert_eq!(line.program, "/bin/sh");
        assert_eq!(line.args, vec!["-c", "echo hi; exit 3"]);
        assert_eq!(line.env.get("A").map(String::as_str), Some("1"));
    }

    #[test]
    fn arguments_are_the_whole_argv() {
        let info = v1::CommandInfo {
            value: Some("/bin/echo".into()),
            shell: Some(false),
            arguments: vec!["echo".into(), "a b".into(), "c".into()],
            ..Default::default()
        };
        let line = CommandLine::from_info(&info);
        assert_eq!(
            (line.program.as_str(), line.arg0.as_str()),
            ("/bin/echo", "echo")
        );
        assert_eq!(line.args, vec!["a b", "c"]);
        let bare = v1::CommandInfo {
            value: Some("/bin/true".into()),
            shell: Some(false),
            ..Default::default()
        };
        let line = CommandLine::from_info(&bare);
        assert_eq!(line.arg0, "/bin/true");
        assert!(line.args.is_empty());
    }

    #[tokio::test]
    async fn runs_with_its_argv_and_environment() {
        let info = v1::CommandInfo {
            value: Some("/bin/sh".into()),
            shell: Some(false),
            arguments: vec!["myname".into(), "-c".into(), "echo $0 $A".into()],
            environment: Some(v1::Environment {
                variables: vec![variable("A", "x")],
            }),
            ..Default::default()
        };
        let output = CommandLine::from_info(&info)
            .to_command()
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "myname x\n");
    }
}
