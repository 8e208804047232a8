//! The hooks a daemon's `--hooks` names, called in that order at Mesos's
//! hook points (what Mesos's hook manager does); each sees what the
//! previous one returned. The master uses the `master_*` points, the
//! agent the others.
//!
//! A hook decorates: its error is logged and the daemon goes on as if it
//! had not been called, as Mesos's hook manager does. The plugin's
//! failure policy has already turned a `fail_open` failure into "no
//! change"; only a `fail_closed` pre-launch hook can fail a launch, as
//! Mesos's Docker pre-launch hook can.
//!
//! Calls are synchronous and bounded by each plugin's watchdog. The
//! master's run on its loop, as on Mesos's actor. The agent's decorators
//! run on the agent loop, because what they change (a task's labels, an
//! executor's environment) is recorded there before anything else happens
//! to the task; the post-fetch and pre-launch hooks run with the launch,
//! off the loop.

use std::path::Path;
use std::sync::Arc;

use mesos_proto::v1;

use crate::hook::{Decoration, Hook, PreLaunch};

#[derive(Clone, Default)]
pub struct Hooks {
    hooks: Arc<Vec<Arc<dyn Hook>>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|h| h.name()))
            .finish()
    }
}

impl Hooks {
    pub fn new(hooks: Vec<Arc<dyn Hook>>) -> Self {
        Self {
            hooks: Arc::new(hooks),
        }
    }

    /// The hook plugins `names` select, in that order (logged when there
    /// are any). A name that is not a loaded hook plugin is an error
    /// naming it.
    #[cfg(feature = "host")]
    pub fn resolve(names: &[String], plugins: &[crate::host::Loaded]) -> Result<Self, String> {
        let mut hooks = Vec::with_capacity(names.len());
        for name in names {
            let plugin = plugins.iter().find(|p| p.name() == name);
            match plugin.map(|p| (p, p.hook())) {
                Some((_, Some(hook))) => hooks.push(hook),
                Some((plugin, None)) => {
                    return Err(format!(
                        "'{name}' is a plugin of kind '{}', not a hook",
                        plugin.manifest.kind.as_str()
                    ));
                }
                None => {
                    let available: Vec<&str> = plugins
                        .iter()
                        .filter(|p| p.hook().is_some())
                        .map(crate::host::Loaded::name)
                        .collect();
                    let available = if available.is_empty() {
                        "none loaded; hooks are plugins from --plugin_dir".to_string()
                    } else {
                        format!("loaded: {}", available.join(", "))
                    };
                    return Err(format!("unknown hook '{name}' ({available})"));
                }
            }
        }
        let hooks = Self::new(hooks);
        if !hooks.is_empty() {
            tracing::info!(?hooks, "hooks");
        }
        Ok(hooks)
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// `master_launch_task_label_decorator`: the labels of `task`, on its
    /// way to its agent, replaced by each hook's answer in turn.
    pub fn decorate_launch(
        &self,
        task: &mut v1::TaskInfo,
        framework: &v1::FrameworkInfo,
        agent: &v1::AgentInfo,
    ) {
        for hook in self.hooks.iter() {
            match hook.master_launch_task_label_decorator(task, framework, agent) {
                Ok(Some(labels)) => task.labels = Some(labels),
                Ok(None) => {}
                Err(e) => tracing::warn!(task = %task.task_id.value, "labels not decorated: {e}"),
            }
        }
    }

    /// `master_launch_task_resource_decorator`: the resources of `task`,
    /// launched on `offered`, replaced by each hook's answer in turn,
    /// before the master checks them.
    pub fn decorate_launch_resources(&self, task: &mut v1::TaskInfo, offered: &[v1::Resource]) {
        for hook in self.hooks.iter() {
            match hook.master_launch_task_resource_decorator(task, offered) {
                Ok(Some(resources)) => task.resources = resources,
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    task = %task.task_id.value,
                    "resources not decorated: {e}"
                ),
            }
        }
    }

    /// `master_slave_lost_hook`.
    pub fn agent_lost(&self, agent: &v1::AgentInfo) {
        for hook in self.hooks.iter() {
            if let Err(e) = hook.master_slave_lost_hook(agent) {
                tracing::warn!(agent = %agent.hostname, "{e}");
            }
        }
    }

    /// `slave_resources_decorator`, then `slave_attributes_decorator`:
    /// the starting agent's resources, then its attributes, replaced by
    /// each hook's answer in turn. An answer with an invalid resource or
    /// a nameless attribute is logged and skipped, as a failed hook is.
    pub fn decorate_agent(&self, agent: &mut v1::AgentInfo) {
        for hook in self.hooks.iter() {
            match hook.slave_resources_decorator(agent) {
                Ok(Some(resources)) => {
                    let invalid = resources.iter().find_map(|r| {
                        mesos_resources::validate_resource(r)
                            .err()
                            .map(|e| format!("resource '{}': {e}", r.name))
                    });
                    match invalid {
                        None => agent.resources = resources,
                        Some(e) => tracing::warn!(
                            hook = hook.name(),
                            "the agent's resources are not decorated: {e}"
                        ),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("the agent's resources are not decorated: {e}"),
            }
        }
        for hook in self.hooks.iter() {
            match hook.slave_attributes_decorator(agent) {
                Ok(Some(attributes)) if attributes.iter().any(|a| a.name.is_empty()) => {
                    tracing::warn!(
                        hook = hook.name(),
                        "the agent's attributes are not decorated: an attribute has no name"
                    );
                }
                Ok(Some(attributes)) => agent.attributes = attributes,
                Ok(None) => {}
                Err(e) => tracing::warn!("the agent's attributes are not decorated: {e}"),
            }
        }
    }

    /// `slave_run_task_label_decorator`: replaces the task's labels with
    /// each hook's answer in turn.
    pub fn decorate_task_labels(
        &self,
        task: &mut v1::TaskInfo,
        executor: &v1::ExecutorInfo,
        framework: &v1::FrameworkInfo,
        agent: &v1::AgentInfo,
    ) {
        for hook in self.hooks.iter() {
            match hook.slave_run_task_label_decorator(task, executor, framework, agent) {
                Ok(Some(labels)) => task.labels = Some(labels),
                Ok(None) => {}
                Err(e) => tracing::warn!(task = %task.task_id.value, "labels not decorated: {e}"),
            }
        }
    }

    /// `slave_executor_environment_decorator`: replaces the executor's
    /// environment with each hook's answer in turn.
    pub fn decorate_executor_environment(&self, executor: &mut v1::ExecutorInfo) {
        for hook in self.hooks.iter() {
            match hook.slave_executor_environment_decorator(executor) {
                Ok(Some(environment)) => {
                    executor
                        .command
                        .get_or_insert_with(Default::default)
                        .environment = Some(environment);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    executor = %executor.executor_id.value,
                    "environment not decorated: {e}"
                ),
            }
        }
    }

    /// `slave_pre_launch_decorator`: what every hook adds to the
    /// container. An error (a `fail_closed` hook's failure) fails the
    /// launch.
    pub fn pre_launch(&self, mut launch: PreLaunch) -> Result<Decoration, String> {
        for hook in self.hooks.iter() {
            let added = hook
                .slave_pre_launch_decorator(&launch)
                .map_err(|e| format!("Failed to run the pre-launch hook: {e}"))?;
            launch.added.merge(added);
        }
        Ok(launch.added)
    }

    /// `slave_task_status_decorator`: a status's labels and container
    /// status, replaced by each hook's answer in turn.
    pub fn decorate_status(&self, framework_id: &str, status: &mut v1::TaskStatus) {
        for hook in self.hooks.iter() {
            match hook.slave_task_status_decorator(framework_id, status) {
                Ok(decoration) => {
                    if let Some(labels) = decoration.labels {
                        status.labels = Some(labels);
                    }
                    if let Some(container_status) = decoration.container_status {
                        status.container_status = Some(container_status);
                    }
                }
                Err(e) => tracing::warn!(
                    task = %status.task_id.value,
                    "status not decorated: {e}"
                ),
            }
        }
    }

    /// `slave_post_fetch_hook`: container `container_id`'s URIs are in
    /// its sandbox `directory`, and it has not started. Each hook is told
    /// in turn; a failure is logged, as in Mesos.
    pub fn post_fetch(&self, container_id: &str, directory: &Path) {
        let directory = directory.display().to_string();
        for hook in self.hooks.iter() {
            if let Err(e) = hook.slave_post_fetch_hook(container_id, &directory) {
                tracing::warn!(container = %container_id, "post-fetch hook failed: {e}");
            }
        }
    }

    /// `slave_remove_executor_hook`.
    pub fn executor_removed(&self, framework: &v1::FrameworkInfo, executor: &v1::ExecutorInfo) {
        for hook in self.hooks.iter() {
            if let Err(e) = hook.slave_remove_executor_hook(framework, executor) {
                tracing::warn!(executor = %executor.executor_id.value, "{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::hook::{Containerizer, HookError};

    /// Appends `key=<its name>` to the labels and `<name>=1` to the
    /// container's environment; fails when told to.
    struct Tag(&'static str, bool);

    impl Hook for Tag {
        fn name(&self) -> &str {
            self.0
        }

        fn slave_run_task_label_decorator(
            &self,
            task: &v1::TaskInfo,
            _: &v1::ExecutorInfo,
            _: &v1::FrameworkInfo,
            _: &v1::AgentInfo,
        ) -> Result<Option<v1::Labels>, HookError> {
            if self.1 {
                return Err(HookError::Failed {
                    hook: self.0.into(),
                    message: "broken".into(),
                });
            }
            let mut labels = task.labels.clone().unwrap_or_default();
            labels.labels.push(v1::Label {
                key: "by".into(),
                value: Some(self.0.into()),
            });
            Ok(Some(labels))
        }

        fn slave_pre_launch_decorator(&self, launch: &PreLaunch) -> Result<Decoration, HookError> {
            Ok(Decoration {
                env: vec![(self.0.into(), launch.added.env.len().to_string())],
                labels: Vec::new(),
            })
        }
    }

    fn hooks(tags: Vec<Tag>) -> Hooks {
        Hooks::new(
            tags.into_iter()
                .map(|t| Arc::new(t) as Arc<dyn Hook>)
                .collect(),
        )
    }

    /// A plugin of `kind` named `name` that answers nothing.
    #[cfg(feature = "host")]
    fn loaded(name: &str, kind: crate::host::manifest::Kind) -> crate::host::Loaded {
        use crate::adapter::{
            LoadedAllocator, PluginHook, PluginImageStore, PluginIsolator, PluginNetwork,
            PluginRootfsBackend, PluginVolumeDriver, Policy,
        };
        use crate::envelope::{Envelope, PluginError, Response};
        use crate::host::manifest::{Kind, Manifest, Runtime};
        use crate::host::{Instance, Loaded};
        struct Silent;
        impl Envelope for Silent {
            fn call(&self, method: &str, _: &[u8]) -> Result<Response, PluginError> {
                Err(PluginError::unimplemented(method))
            }
        }
        let policy = Policy::default();
        Loaded {
            manifest: Manifest {
                name: name.into(),
                kind,
                runtime: Runtime::Dylib,
                artifact: "lib.so".into(),
                sha256: String::new(),
                api_versions: Vec::new(),
                policy,
                call_timeout: std::time::Duration::from_secs(1),
                config: None,
                permissions: Default::default(),
            },
            version: "1".into(),
            host: Default::default(),
            instance: match kind {
                Kind::Isolator => Instance::Isolator(Arc::new(PluginIsolator::new(
                    name,
                    Box::new(Silent),
                    policy,
                ))),
                Kind::Hook => {
                    Instance::Hook(Arc::new(PluginHook::new(name, Box::new(Silent), policy)))
                }
                Kind::Allocator => Instance::Allocator(Arc::new(LoadedAllocator::new(
                    name,
                    Box::new(Silent),
                    policy,
                ))),
                Kind::Network => {
                    Instance::Network(Arc::new(PluginNetwork::new(name, Box::new(Silent), policy)))
                }
                Kind::VolumeDriver => Instance::VolumeDriver(Arc::new(PluginVolumeDriver::new(
                    name,
                    Box::new(Silent),
                    policy,
                ))),
                Kind::ImageStore => Instance::ImageStore(Arc::new(PluginImageStore::new(
                    name,
                    Box::new(Silent),
                    policy,
                ))),
                Kind::RootfsBackend => Instance::RootfsBackend(Arc::new(PluginRootfsBackend::new(
                    name,
                    Box::new(Silent),
                    policy,
                ))),
            },
        }
    }

    #[cfg(feature = "host")]
    #[test]
    fn names_resolve_to_loaded_hooks_in_order() {
        use crate::host::manifest::Kind;
        let plugins = [
            loaded("com.example.a", Kind::Hook),
            loaded("com.example.iso", Kind::Isolator),
            loaded("com.example.b", Kind::Hook),
        ];
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let hooks = Hooks::resolve(&names(&["com.example.b", "com.example.a"]), &plugins).unwrap();
        assert_eq!(
            format!("{hooks:?}"),
            r#"["com.example.b", "com.example.a"]"#
        );
        let err = Hooks::resolve(&names(&["com.example.c"]), &plugins).unwrap_err();
        assert_eq!(
            err,
            "unknown hook 'com.example.c' (loaded: com.example.a, com.example.b)"
        );
        let err = Hooks::resolve(&names(&["com.example.iso"]), &plugins).unwrap_err();
        assert_eq!(
            err,
            "'com.example.iso' is a plugin of kind 'isolator', not a hook"
        );
        let err = Hooks::resolve(&names(&["com.example.a"]), &[]).unwrap_err();
        assert!(err.contains("none loaded"), "{err}");
    }

    #[test]
    fn decorators_chain_in_order_and_skip_failures() {
        let chain = hooks(vec![Tag("a", false), Tag("broken", true), Tag("b", false)]);
        let mut task = v1::TaskInfo::default();
        chain.decorate_task_labels(
            &mut task,
            &Default::default(),
            &Default::default(),
            &Default::default(),
        );
        let by: Vec<_> = task
            .labels
            .unwrap()
            .labels
            .into_iter()
            .map(|l| l.value.unwrap())
            .collect();
        assert_eq!(by, ["a", "b"]);
    }

    /// Answers the agent's resources and attributes with `cpus` and an
    /// attribute named `attribute`.
    struct Agent {
        cpus: f64,
        attribute: &'static str,
    }

    impl Hook for Agent {
        fn name(&self) -> &str {
            "agent"
        }

        fn slave_resources_decorator(
            &self,
            _: &v1::AgentInfo,
        ) -> Result<Option<Vec<v1::Resource>>, HookError> {
            Ok(Some(vec![v1::Resource {
                name: "cpus".into(),
                r#type: v1::value::Type::Scalar as i32,
                scalar: Some(v1::value::Scalar { value: self.cpus }),
                ..Default::default()
            }]))
        }

        fn slave_attributes_decorator(
            &self,
            agent: &v1::AgentInfo,
        ) -> Result<Option<Vec<v1::Attribute>>, HookError> {
            let mut attributes = agent.attributes.clone();
            attributes.push(v1::Attribute {
                name: self.attribute.into(),
                r#type: v1::value::Type::Text as i32,
                text: Some(v1::value::Text { value: "x".into() }),
                ..Default::default()
            });
            Ok(Some(attributes))
        }
    }

    #[test]
    fn agent_decorators_chain_and_skip_invalid_answers() {
        let chain = Hooks::new(vec![
            Arc::new(Agent {
                cpus: 2.0,
                attribute: "a",
            }),
            // A negative scalar and a nameless attribute: both skipped.
            Arc::new(Agent {
                cpus: -1.0,
                attribute: "",
            }),
            Arc::new(Agent {
                cpus: 3.0,
                attribute: "b",
            }),
        ]);
        let mut agent = v1::AgentInfo::default();
        chain.decorate_agent(&mut agent);
        let cpus: Vec<f64> = agent
            .resources
            .iter()
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .collect();
        assert_eq!(cpus, [3.0]);
        let names: Vec<&str> = agent.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn pre_launch_hooks_see_what_earlier_ones_added() {
        let chain = hooks(vec![Tag("a", false), Tag("b", false)]);
        let added = chain
            .pre_launch(PreLaunch {
                containerizer: Containerizer::Mesos,
                task: None,
                executor: Default::default(),
                container_id: "c".into(),
                container_name: None,
                sandbox_directory: "/s".into(),
                mapped_sandbox_directory: "/s".into(),
                added: Decoration::default(),
            })
            .unwrap();
        assert_eq!(
            added.env,
            [("a".to_string(), "0".to_string()), ("b".into(), "1".into())]
        );
    }
}
