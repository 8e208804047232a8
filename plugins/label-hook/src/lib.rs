//! An example hook plugin, written as a third party would, with only the
//! public SDK. It marks what it touches:
//! - in the master, every task launched on offers holding the resource
//!   `hooked` takes one unit of it, every task on its way to its agent
//!   gets the label `master_hooked=true`, and a lost agent is said on
//!   standard error;
//! - the agent gets the attribute `hooked:true` and one unit of the
//!   resource `hooked`;
//! - every task gets the label `hooked=true`;
//! - every executor's environment gets `HOOKED=1`;
//! - every container gets `HOOKED=1` and `HOOKED_CONTAINERIZER=mesos` (or
//!   `docker`) in its environment, and a Docker container the label
//!   `hooked=true`;
//! - every status update gets the label `hooked=true`;
//! - every sandbox gets a file `.hooked` once its URIs are fetched,
//!   listing what the sandbox then holds, one name a line.
//!
//! Configured with the text `panic` it panics in every hook instead, and
//! with `hang` it never returns: fixtures showing that a failing hook does
//! not stop a task.

use std::sync::atomic::{AtomicU8, Ordering};

use mesos_plugin_api::sdk::{HookPlugin, PluginError, mesos, proto};

#[derive(Debug, Default)]
pub struct LabelHook {
    mode: AtomicU8,
}

const DECORATE: u8 = 0;
const PANIC: u8 = 1;
const HANG: u8 = 2;

const LABEL: (&str, &str) = ("hooked", "true");
const VAR: (&str, &str) = ("HOOKED", "1");
const MASTER_LABEL: (&str, &str) = ("master_hooked", "true");
/// The file the post-fetch hook leaves in a sandbox.
const MARKER: &str = ".hooked";

impl LabelHook {
    fn check(&self, hook: &str) {
        match self.mode.load(Ordering::Relaxed) {
            PANIC => panic!("{hook}: configured to panic"),
            HANG => loop {
                std::thread::park();
            },
            _ => {}
        }
    }
}

/// One unit of the resource `hooked`, which the agent gets and each task
/// takes.
fn hooked_unit() -> mesos::Resource {
    mesos::Resource {
        name: LABEL.0.to_string(),
        r#type: mesos::value::Type::Scalar as i32,
        scalar: Some(mesos::value::Scalar { value: 1.0 }),
        ..Default::default()
    }
}

fn label((key, value): (&str, &str)) -> mesos::Label {
    mesos::Label {
        key: key.to_string(),
        value: Some(value.to_string()),
    }
}

impl HookPlugin for LabelHook {
    const NAME: &'static str = "com.example.label_hook";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(&self, config: &[u8]) -> Result<(), PluginError> {
        let mode = match std::str::from_utf8(config).map(str::trim) {
            Ok("") => DECORATE,
            Ok("panic") => PANIC,
            Ok("hang") => HANG,
            _ => {
                return Err(PluginError::invalid(
                    "the configuration is empty, 'panic' or 'hang'",
                ));
            }
        };
        self.mode.store(mode, Ordering::Relaxed);
        Ok(())
    }

    fn master_launch_task_label_decorator(
        &self,
        request: proto::MasterLaunchTaskLabelDecoratorRequest,
    ) -> Result<proto::MasterLaunchTaskLabelDecoratorResponse, PluginError> {
        self.check("master labels");
        let mut labels = request.task.and_then(|t| t.labels).unwrap_or_default();
        labels.labels.push(label(MASTER_LABEL));
        Ok(proto::MasterLaunchTaskLabelDecoratorResponse {
            labels: Some(labels),
        })
    }

    fn master_launch_task_resource_decorator(
        &self,
        request: proto::MasterLaunchTaskResourceDecoratorRequest,
    ) -> Result<proto::MasterLaunchTaskResourceDecoratorResponse, PluginError> {
        self.check("master resources");
        if !request.offered.iter().any(|r| r.name == LABEL.0) {
            return Ok(proto::MasterLaunchTaskResourceDecoratorResponse { resources: None });
        }
        let mut resources = request.task.map(|t| t.resources).unwrap_or_default();
        resources.push(hooked_unit());
        Ok(proto::MasterLaunchTaskResourceDecoratorResponse {
            resources: Some(proto::ResourceList { resources }),
        })
    }

    fn master_slave_lost_hook(
        &self,
        request: proto::MasterSlaveLostRequest,
    ) -> Result<proto::MasterSlaveLostResponse, PluginError> {
        self.check("agent lost");
        let agent = request.agent.unwrap_or_default();
        let id = agent.id.map(|id| id.value).unwrap_or_default();
        eprintln!("{}: agent {id} ({}) lost", Self::NAME, agent.hostname);
        Ok(proto::MasterSlaveLostResponse {})
    }

    fn slave_resources_decorator(
        &self,
        request: proto::ResourcesDecoratorRequest,
    ) -> Result<proto::ResourcesDecoratorResponse, PluginError> {
        self.check("resources");
        // The answer replaces the resources: keep the agent's.
        let mut resources = request.agent.map(|a| a.resources).unwrap_or_default();
        resources.push(hooked_unit());
        Ok(proto::ResourcesDecoratorResponse {
            resources: Some(proto::ResourceList { resources }),
        })
    }

    fn slave_attributes_decorator(
        &self,
        request: proto::AttributesDecoratorRequest,
    ) -> Result<proto::AttributesDecoratorResponse, PluginError> {
        self.check("attributes");
        let mut attributes = request.agent.map(|a| a.attributes).unwrap_or_default();
        attributes.push(mesos::Attribute {
            name: LABEL.0.to_string(),
            r#type: mesos::value::Type::Text as i32,
            text: Some(mesos::value::Text {
                value: LABEL.1.to_string(),
            }),
            ..Default::default()
        });
        Ok(proto::AttributesDecoratorResponse {
            attributes: Some(proto::AttributeList { attributes }),
        })
    }

    fn slave_run_task_label_decorator(
        &self,
        request: proto::RunTaskLabelDecoratorRequest,
    ) -> Result<proto::RunTaskLabelDecoratorResponse, PluginError> {
        self.check("labels");
        // The answer replaces the labels: keep the ones the task has.
        let mut labels = request.task.and_then(|t| t.labels).unwrap_or_default();
        labels.labels.push(label(LABEL));
        Ok(proto::RunTaskLabelDecoratorResponse {
            labels: Some(labels),
        })
    }

    fn slave_executor_environment_decorator(
        &self,
        request: proto::ExecutorEnvironmentDecoratorRequest,
    ) -> Result<proto::ExecutorEnvironmentDecoratorResponse, PluginError> {
        self.check("environment");
        // The answer replaces the environment: keep what it has.
        let mut environment = request
            .executor
            .and_then(|e| e.command)
            .and_then(|c| c.environment)
            .unwrap_or_default();
        environment.variables.push(mesos::environment::Variable {
            name: VAR.0.to_string(),
            value: Some(VAR.1.to_string()),
            ..Default::default()
        });
        Ok(proto::ExecutorEnvironmentDecoratorResponse {
            environment: Some(environment),
        })
    }

    fn slave_pre_launch_decorator(
        &self,
        request: proto::PreLaunchDecoratorRequest,
    ) -> Result<proto::PreLaunchDecoratorResponse, PluginError> {
        use proto::pre_launch_decorator_request::Containerizer;
        self.check("pre-launch");
        let containerizer = match request.containerizer() {
            Containerizer::Docker => "docker",
            Containerizer::Mesos => "mesos",
            Containerizer::Unknown => "unknown",
        };
        let var = |name: &str, value: &str| proto::EnvironmentVariable {
            name: name.to_string(),
            value: value.to_string(),
        };
        Ok(proto::PreLaunchDecoratorResponse {
            env: vec![
                var(VAR.0, VAR.1),
                var("HOOKED_CONTAINERIZER", containerizer),
            ],
            labels: vec![label(LABEL)],
        })
    }

    fn slave_post_fetch_hook(
        &self,
        request: proto::PostFetchRequest,
    ) -> Result<proto::PostFetchResponse, PluginError> {
        self.check("post-fetch");
        let sandbox = std::path::Path::new(&request.directory);
        let listed = |e: std::io::Error| {
            PluginError::internal(format!("sandbox {}: {e}", request.directory))
        };
        let mut names = std::fs::read_dir(sandbox)
            .map_err(listed)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(listed)?;
        names.sort();
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(sandbox.join(MARKER), text).map_err(listed)?;
        Ok(proto::PostFetchResponse {})
    }

    fn slave_task_status_decorator(
        &self,
        request: proto::TaskStatusDecoratorRequest,
    ) -> Result<proto::TaskStatusDecoratorResponse, PluginError> {
        self.check("status");
        let mut labels = request.status.and_then(|s| s.labels).unwrap_or_default();
        labels.labels.push(label(LABEL));
        Ok(proto::TaskStatusDecoratorResponse {
            labels: Some(labels),
            container_status: None,
        })
    }
}

mesos_plugin_api::export_hook!(LabelHook);
