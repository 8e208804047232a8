//! Executor lifecycle: launch, subscription deadline, exit, shutdown.
//!
//! The fork and the sandbox's file I/O run on the blocking pool; a watcher
//! task per executor reports the launch and, later, the exit back to the
//! agent loop. Commands carry the container ID, so a late report about an
//! earlier run of the same executor ID is recognised and ignored.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use mesos_proto::internal::v1::{ExecutorExited, agent_to_master};
use mesos_proto::v1::{self, TaskState, executor, task_status::Reason};
use nix::sys::signal::Signal;

use super::model::{
    Executor, ExecutorState, FrameworkState, MAX_COMPLETED_FRAMEWORKS, Task, Termination,
};
use super::tasks::{DOCKER_EXECUTOR, agent_status};
use super::{Agent, Command, ExecutorKey, Handle, Labels};
use crate::command::CommandLine;
use crate::executor_env::ExecutorEnv;
use crate::launcher::{self, LaunchSpec};
use crate::sandbox::{self, RunIds};
use mesos_plugin_api::hook::{Containerizer, Decoration, PreLaunch};
use mesos_plugin_api::isolator::{CapabilityRequest, ContainerSpec, SeccompRequest};
use mesos_plugin_api::volume::{VolumeRequest, VolumeSpec};

impl Agent {
    /// Starts a new executor for `task` (its first task) and `group`, the
    /// rest of its task group, queued with it so that the container is
    /// sized for all of them. False if it could not be started (the first
    /// task has failed).
    pub(super) fn launch_executor(
        &mut self,
        key: ExecutorKey,
        info: v1::ExecutorInfo,
        task: v1::TaskInfo,
        group: Vec<v1::TaskInfo>,
        command_executor: bool,
    ) -> bool {
        let container_id = uuid::Uuid::new_v4().to_string();
        let mut info = info;
        self.config.hooks.decorate_executor_environment(&mut info);
        // A command task's container is the task's (its executor has
        // none); a custom executor's is the executor's, as in Mesos.
        let container = if command_executor {
            task.container.as_ref()
        } else {
            info.container.as_ref()
        };
        let (capabilities, seccomp) = (capability_request(container), seccomp_request(container));
        let (networks, port_mappings) = (network_names(container), port_mappings(container));
        let hostname = container.and_then(|c| c.hostname.clone());
        let volumes = docker_volumes(container);
        let oci = self
            .config
            .oci
            .as_ref()
            .filter(|_| {
                command_executor
                    && crate::containerizer::select(&self.config.containerizers, container)
                        == Ok(crate::containerizer::Kind::Oci)
            })
            .map(|runtime| runtime.launch(&container_id));
        let prepared =
            crate::images::image_task(self.config.images.as_ref(), &info, &task, command_executor)
                .and_then(|image_task| {
                    Ok((self.launch_spec(&key, &info, &container_id)?, image_task))
                });
        let (spec, image_task) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => {
                self.counters.container_launch_errors += 1;
                tracing::warn!(%key, "cannot launch executor: {message}");
                let status = agent_status(
                    &task.task_id,
                    Some(&key.executor_id),
                    TaskState::TaskFailed,
                    Reason::ContainerLaunchFailed,
                    &message,
                );
                self.status_update(&key.framework_id, status);
                return false;
            }
        };
        let Some(framework) = self.frameworks.get_mut(&key.framework_id) else {
            return false;
        };
        let mut queued = vec![task];
        queued.extend(group);
        framework.executors.insert(
            key.executor_id.clone(),
            Executor {
                info,
                command_executor,
                container_id: container_id.clone(),
                sandbox: spec.sandbox.clone(),
                pid: None,
                state: ExecutorState::Registering,
                conn: None,
                queued,
                queued_groups: Vec::new(),
                launched: Default::default(),
                completed: Default::default(),
                termination: None,
                recovered: false,
            },
        );
        self.checkpoint_launch(&key);
        if let Some(task) = self.executor(&key).and_then(|e| e.queued.first()) {
            self.checkpoint_task(&key, task);
        }
        // A checkpointed executor is forked only once its checkpoints are
        // on disk, so a restarted agent knows every executor it started.
        let checkpoint_run = self.checkpoint_run(&key);
        let durable = checkpoint_run.as_ref().map(|_| self.checkpointer.durable());
        let uris = self
            .executor(&key)
            .and_then(|e| e.info.command.as_ref())
            .map(|c| c.uris.clone())
            .unwrap_or_default();
        let (abort, aborted) = tokio::sync::watch::channel(false);
        self.launches.insert(container_id.clone(), abort);
        let resources = self
            .executor(&key)
            .map(container_resources)
            .unwrap_or_default();
        let pre_launch = self
            .executor(&key)
            .filter(|_| !self.config.hooks.is_empty())
            .map(|executor| self.pre_launch(executor));
        let run = Run {
            hooks: self.config.hooks.clone(),
            pre_launch,
            isolation: self.config.isolation.clone(),
            resources,
            key: key.clone(),
            container_id: container_id.clone(),
            work_dir: self.config.work_dir.clone(),
            agent_id: self.agent_id.clone().unwrap_or_default(),
            pid_file: checkpoint_run.map(|run| self.meta.forked_pid(&run)),
            fetcher: self.config.fetcher.clone(),
            uris,
            aborted,
            image: self.config.images.clone().zip(image_task),
            capabilities,
            seccomp,
            networks,
            port_mappings,
            hostname,
            volumes,
            oci,
        };
        tokio::spawn(run.launch_and_watch(spec, self.handle.clone(), durable));
        self.handle.notify_after(
            self.config.registration_timeout,
            Command::RegistrationTimeout { key, container_id },
        );
        true
    }

    /// Mesos's containerizer `update`: a running executor took on more
    /// tasks, so its container's isolators follow what it now holds
    /// (memory and cpu limits, disk quota), off the loop. It is not called
    /// when tasks end: `cgroups/mem` would not lower its limit anyway
    /// (that could OOM-kill the container), as in Mesos.
    pub(super) fn grow_container(&self, key: &ExecutorKey) {
        if self.config.isolation.is_empty() {
            return;
        }
        let Some(executor) = self
            .executor(key)
            .filter(|e| e.pid.is_some() && e.state != ExecutorState::Terminating)
        else {
            // Not forked yet: the launch sizes it from its queued tasks.
            return;
        };
        let spec = ContainerSpec {
            container_id: executor.container_id.clone(),
            resources: container_resources(executor),
            // Capabilities are the container's from its launch.
            capabilities: CapabilityRequest::default(),
            sandbox: executor.sandbox.clone(),
            ..Default::default()
        };
        let isolation = self.config.isolation.clone();
        tokio::task::spawn_blocking(move || isolation.update(&spec));
    }

    /// What to start for the executor: its command in its sandbox, as its
    /// user, with the environment executors get.
    fn launch_spec(
        &self,
        key: &ExecutorKey,
        info: &v1::ExecutorInfo,
        container_id: &str,
    ) -> Result<LaunchSpec, String> {
        let agent_id = self
            .agent_id
            .as_deref()
            .ok_or("the agent is not registered")?;
        let framework = self
            .frameworks
            .get(&key.framework_id)
            .ok_or("unknown framework")?;
        let command = info.command.as_ref().ok_or("ExecutorInfo has no command")?;
        let ids = RunIds {
            agent_id,
            framework_id: &key.framework_id,
            executor_id: &key.executor_id,
            container_id,
        };
        let sandbox = sandbox::run_dir(&self.config.work_dir, &ids);
        let env = ExecutorEnv {
            framework_id: &key.framework_id,
            executor_id: &key.executor_id,
            agent_id,
            directory: &sandbox,
            agent_pid: &self.config.pid,
            agent_endpoint: &self.config.endpoint,
            checkpoint: framework.info.checkpoint.unwrap_or(false),
            http_command_executor: self.config.http_command_executor,
            shutdown_grace_period: self.shutdown_grace_period(info),
            recovery_timeout: self.config.recovery_timeout,
            subscription_backoff_max: self.config.reregistration_timeout,
        }
        .vars();
        let user = command
            .user
            .clone()
            .unwrap_or_else(|| framework.info.user.clone());
        let mut env = env;
        let command = match info.container.as_ref().map(|c| c.r#type()) {
            // A custom executor in a DOCKER container: the docker executor
            // runs it there (and stands for it as the executor's process).
            Some(v1::container_info::Type::Docker) => {
                env.extend(
                    self.config
                        .docker
                        .executor_env()
                        .map(|(name, value)| (name.to_string(), value)),
                );
                env.insert(
                    crate::docker_executor::EXECUTOR_INFO_VAR.into(),
                    String::from_utf8_lossy(&mesos_proto::json::to_json_vec(info)).into_owned(),
                );
                env.insert(
                    crate::docker_executor::CONTAINER_ID_VAR.into(),
                    container_id.to_string(),
                );
                let program = self.config.launcher_dir.join(DOCKER_EXECUTOR);
                CommandLine::from_info(&v1::CommandInfo {
                    value: Some(program.display().to_string()),
                    shell: Some(false),
                    arguments: vec![DOCKER_EXECUTOR.to_string()],
                    ..Default::default()
                })
            }
            _ => CommandLine::from_info(command),
        };
        Ok(LaunchSpec {
            command,
            sandbox,
            base_env: self.config.executor_base_env.clone(),
            env,
            user: (self.config.switch_user && !user.is_empty()).then_some(user),
            cgroup_procs: Vec::new(),
            namespaces: Vec::new(),
            privileges: Default::default(),
            seccomp_filters: Vec::new(),
            network_namespace: None,
            hostname: None,
            file_binds: Vec::new(),
            binds: Vec::new(),
        })
    }

    /// What the pre-launch hooks are told of a new executor's container.
    fn pre_launch(&self, executor: &Executor) -> PreLaunch {
        let docker = executor.docker_container();
        let sandbox = executor.sandbox.display().to_string();
        PreLaunch {
            containerizer: match docker {
                Some(_) => Containerizer::Docker,
                None => Containerizer::Mesos,
            },
            task: executor
                .command_executor
                .then(|| executor.queued.first().cloned())
                .flatten(),
            executor: executor.info.clone(),
            container_id: executor.container_id.clone(),
            mapped_sandbox_directory: match docker {
                Some(_) => self.config.docker.sandbox_directory.display().to_string(),
                None => sandbox.clone(),
            },
            container_name: docker,
            sandbox_directory: sandbox,
            added: Default::default(),
        }
    }

    /// `ExecutorInfo.shutdown_grace_period` overrides the flag.
    fn shutdown_grace_period(&self, info: &v1::ExecutorInfo) -> Duration {
        info.shutdown_grace_period
            .as_ref()
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map(Duration::from_nanos)
            .unwrap_or(self.config.shutdown_grace_period)
    }

    /// Adds the isolators' labels for container `container_id` to its
    /// executor's tasks, queued ones (the executor, forked after this,
    /// gets them with the labels) and launched ones, and checkpoints them
    /// so a restarted agent shows them too. A label a task has already is
    /// not added twice.
    pub(super) fn label_tasks(&mut self, key: &ExecutorKey, container_id: &str, labels: &Labels) {
        let Some(executor) = self
            .executor_mut(key)
            .filter(|e| e.container_id == container_id)
        else {
            return;
        };
        let tasks = executor
            .queued
            .iter_mut()
            .chain(executor.launched.values_mut().map(|task| &mut task.info));
        let mut labelled = Vec::new();
        for task in tasks {
            let have = &mut task.labels.get_or_insert_with(Default::default).labels;
            for (key, value) in labels {
                let label = v1::Label {
                    key: key.clone(),
                    value: value.clone(),
                };
                if !have.contains(&label) {
                    have.push(label);
                }
            }
            labelled.push(task.clone());
        }
        for task in &labelled {
            self.checkpoint_task(key, task);
        }
    }

    pub(super) fn executor_launched(
        &mut self,
        key: &ExecutorKey,
        container_id: &str,
        result: Result<u32, String>,
    ) {
        self.launches.remove(container_id);
        let current = self
            .executor_mut(key)
            .filter(|e| e.container_id == container_id);
        match (current, result) {
            (Some(executor), Ok(pid)) => {
                tracing::info!(%key, container = container_id, pid, "executor started");
                executor.pid = Some(pid);
                if executor.state == ExecutorState::Terminating {
                    destroy(pid);
                }
            }
            (None, Ok(pid)) => {
                tracing::warn!(
                    %key, container = container_id,
                    "destroying a container the agent no longer tracks"
                );
                destroy(pid);
            }
            (Some(executor), Err(message)) => {
                tracing::warn!(%key, container = container_id, "executor launch failed: {message}");
                // A launch given up because the executor was being ended
                // already (say, its task was killed while fetching) ends
                // its tasks as that said.
                let failed =
                    executor.termination.is_none() && executor.state != ExecutorState::Terminating;
                executor.termination.get_or_insert(Termination {
                    state: None,
                    reason: Reason::ContainerLaunchFailed,
                    message,
                });
                if failed {
                    self.counters.container_launch_errors += 1;
                }
                self.executor_terminated(key, None);
            }
            // The executor was forgotten meanwhile: nothing else will
            // remove a rootfs provisioned for it.
            (None, Err(_)) => {
                if let Some(images) = &self.config.images {
                    images.destroy_later(container_id.to_string());
                }
            }
        }
    }

    pub(super) fn executor_exited(
        &mut self,
        key: &ExecutorKey,
        container_id: &str,
        status: Option<i32>,
    ) {
        let Some(executor) = self
            .executor_mut(key)
            .filter(|e| e.container_id == container_id)
        else {
            return;
        };
        let description = describe_wait_status(status);
        tracing::info!(%key, container = container_id, "executor {description}");
        if let Some(pid) = executor.pid {
            // Whatever the executor left behind (its task, say) dies with
            // it, as when Mesos destroys the container.
            destroy(pid);
        }
        if executor.termination.is_none() {
            let limited = self.limit_termination(key);
            if let Some(executor) = self.executor_mut(key) {
                executor.termination = Some(limited.unwrap_or(Termination {
                    state: None,
                    reason: Reason::ExecutorTerminated,
                    message: format!("Executor {description}"),
                }));
            }
        }
        self.executor_terminated(key, status);
    }

    /// The executor is gone: its unfinished tasks fail, the master hears
    /// of it, and it is archived.
    pub(super) fn executor_terminated(&mut self, key: &ExecutorKey, status: Option<i32>) {
        let Some(executor) = self.executor_mut(key) else {
            return;
        };
        executor.conn = None;
        let termination = executor.termination.clone().unwrap_or(Termination {
            state: None,
            reason: Reason::ExecutorTerminated,
            message: "Executor terminated".to_string(),
        });
        for task in std::mem::take(&mut executor.queued) {
            executor
                .launched
                .insert(task.task_id.value.clone(), Task::new(task));
        }
        let unfinished: Vec<v1::TaskId> = executor
            .launched
            .values()
            .filter(|t| !t.state.is_terminal())
            .map(|t| t.info.task_id.clone())
            .collect();
        let command_executor = executor.command_executor;
        for task_id in unfinished {
            let status = agent_status(
                &task_id,
                Some(&key.executor_id),
                termination.state.unwrap_or(TaskState::TaskFailed),
                termination.reason,
                &termination.message,
            );
            self.status_update(&key.framework_id, status);
        }
        self.counters.executors_terminated += 1;
        self.checkpoint_sentinel(key);
        let Some(framework) = self.frameworks.get_mut(&key.framework_id) else {
            return;
        };
        let running = framework.state == FrameworkState::Running;
        if let Some(executor) = framework.executors.remove(&key.executor_id) {
            self.config.nested.destroy_children(&executor.container_id);
            self.config
                .isolation
                .cleanup_later(executor.container_id.clone());
            if let Some(images) = &self.config.images {
                images.destroy_later(executor.container_id.clone());
            }
            super::docker::remove_container(&self.config.docker, &executor);
            self.config.gc.schedule(executor.sandbox.clone());
            self.config
                .hooks
                .executor_removed(&framework.info, &executor.info);
            framework.complete(executor);
        }
        // The master tracks custom executors only (as in Mesos).
        if running && !command_executor {
            self.send_to_master(agent_to_master::Message::ExecutorExited(ExecutorExited {
                framework_id: v1::FrameworkId {
                    value: key.framework_id.clone(),
                },
                executor_id: v1::ExecutorId {
                    value: key.executor_id.clone(),
                },
                status,
            }));
        }
        self.remove_framework_if_idle(&key.framework_id);
    }

    pub(super) fn registration_timeout(&mut self, key: &ExecutorKey, container_id: &str) {
        if self.executor(key).is_some_and(|e| e.recovered) {
            return self.reregistration_timeout(key, container_id);
        }
        let timeout = self.config.registration_timeout;
        let Some(executor) = self
            .executor_mut(key)
            .filter(|e| e.container_id == container_id && e.state == ExecutorState::Registering)
        else {
            return;
        };
        tracing::warn!(%key, ?timeout, "executor did not subscribe in time; killing it");
        executor.termination = Some(Termination {
            state: None,
            reason: Reason::ExecutorRegistrationTimeout,
            message: format!(
                "Executor did not register within {}",
                mesos_flags::Duration(timeout)
            ),
        });
        executor.state = ExecutorState::Terminating;
        if let Some(pid) = executor.pid {
            destroy(pid);
        } else {
            self.abort_launch(container_id);
        }
    }

    /// A recovered executor that did not resubscribe within
    /// `--executor_reregistration_timeout` is killed; its tasks are lost.
    pub(super) fn reregistration_timeout(&mut self, key: &ExecutorKey, container_id: &str) {
        let timeout = self.config.reregistration_timeout;
        let lost = self.gone_state(&key.framework_id);
        let Some(executor) = self
            .executor_mut(key)
            .filter(|e| e.container_id == container_id && e.state == ExecutorState::Registering)
        else {
            return;
        };
        tracing::warn!(%key, ?timeout, "recovered executor did not resubscribe in time; killing it");
        executor.termination = Some(Termination {
            state: Some(lost),
            reason: Reason::ExecutorReregistrationTimeout,
            message: format!(
                "Executor did not reregister within {}",
                mesos_flags::Duration(timeout)
            ),
        });
        executor.state = ExecutorState::Terminating;
        if let Some(pid) = executor.pid {
            destroy(pid);
        }
        self.maybe_finish_recovery();
    }

    /// Asks the executor to shut down (SHUTDOWN event) and kills it when
    /// its grace period is over, or at once if it cannot be told.
    pub(super) fn shutdown_executor(&mut self, key: &ExecutorKey) {
        let Some(executor) = self.executor(key) else {
            return;
        };
        if executor.state == ExecutorState::Terminating {
            return;
        }
        let grace = self.shutdown_grace_period(&executor.info);
        let shutdown = executor::Event {
            r#type: Some(executor::event::Type::Shutdown as i32),
            ..Default::default()
        };
        let told = self.send_to_executor(key, &shutdown);
        let Some(executor) = self.executor_mut(key) else {
            return;
        };
        tracing::info!(%key, told, "shutting down executor");
        executor.state = ExecutorState::Terminating;
        if told {
            let command = Command::ShutdownTimeout {
                key: key.clone(),
                container_id: executor.container_id.clone(),
            };
            self.handle.notify_after(grace, command);
        } else if let Some(pid) = executor.pid {
            destroy(pid);
        } else {
            let container_id = executor.container_id.clone();
            self.abort_launch(&container_id);
        }
    }

    /// Stops a launch still fetching or about to fork: the executor never
    /// starts, and the launch reports a failure.
    fn abort_launch(&self, container_id: &str) {
        if let Some(abort) = self.launches.get(container_id) {
            tracing::info!(container = container_id, "giving up the launch in progress");
            let _ = abort.send(true);
        }
    }

    pub(super) fn shutdown_timeout(&mut self, key: &ExecutorKey, container_id: &str) {
        if let Some(executor) = self
            .executor(key)
            .filter(|e| e.container_id == container_id)
            && let Some(pid) = executor.pid
        {
            tracing::info!(%key, "executor outlived its shutdown grace period; killing it");
            destroy(pid);
        }
    }

    /// ShutdownFramework: every executor of the framework is shut down; its
    /// pending updates are dropped (nobody will acknowledge them).
    pub(super) fn shutdown_framework(&mut self, framework_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        tracing::info!(framework = framework_id, "shutting down framework");
        framework.state = FrameworkState::Terminating;
        let executor_ids: Vec<String> = framework.executors.keys().cloned().collect();
        self.updates.forget_framework(framework_id);
        for executor_id in executor_ids {
            self.shutdown_executor(&ExecutorKey {
                framework_id: framework_id.to_string(),
                executor_id,
            });
        }
        self.remove_framework_if_idle(framework_id);
    }

    /// A framework without executors is archived (Mesos's rule); it comes
    /// back with its history if the master sends it a task again.
    pub(super) fn remove_framework_if_idle(&mut self, framework_id: &str) {
        if self
            .frameworks
            .get(framework_id)
            .is_none_or(|f| !f.executors.is_empty())
        {
            return;
        }
        if let Some(framework) = self.frameworks.remove(framework_id) {
            tracing::info!(
                framework = framework_id,
                "framework has no executors left; archived"
            );
            self.completed_frameworks.push_back(framework);
            while self.completed_frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
                self.completed_frameworks.pop_front();
            }
        }
    }

    /// Takes an archived framework back (with its finished executors).
    pub(super) fn revive_framework(
        &mut self,
        framework_id: &str,
    ) -> Option<super::model::Framework> {
        let position = self.completed_frameworks.iter().position(|f| {
            f.info
                .id
                .as_ref()
                .is_some_and(|id| id.value == framework_id)
        })?;
        let mut framework = self.completed_frameworks.remove(position)?;
        framework.state = FrameworkState::Running;
        Some(framework)
    }
}

/// One executor run, from fork to exit.
struct Run {
    key: ExecutorKey,
    container_id: String,
    work_dir: PathBuf,
    agent_id: String,
    /// `forked.pid`, for a checkpointing framework.
    pid_file: Option<PathBuf>,
    fetcher: crate::fetcher::Fetcher,
    /// Fetched into the sandbox before the fork.
    uris: Vec<v1::command_info::Uri>,
    /// Set when the agent gives the launch up.
    aborted: tokio::sync::watch::Receiver<bool>,
    isolation: crate::isolation::Isolation,
    /// The executor's and its first tasks' resources, for the isolators.
    resources: mesos_resources::Resources,
    hooks: mesos_plugin_api::hooks::Hooks,
    /// What the pre-launch hooks are told; `None` without hooks.
    pre_launch: Option<PreLaunch>,
    /// The command task that runs in a container image.
    image: Option<(crate::images::Images, v1::TaskInfo)>,
    /// What the container's `LinuxInfo` asks for.
    capabilities: CapabilityRequest,
    seccomp: SeccompRequest,
    /// The CNI networks it joins, and the ports they forward to it.
    networks: Vec<String>,
    port_mappings: Vec<mesos_plugin_api::isolator::PortMapping>,
    /// `ContainerInfo.hostname`.
    hostname: Option<String>,
    /// Its DOCKER_VOLUME volumes, for `docker/volume`.
    volumes: Vec<VolumeRequest>,
    /// How its task runs under the `oci` containerizer.
    oci: Option<crate::oci::OciLaunch>,
}

impl Run {
    async fn launch_and_watch(
        self,
        spec: LaunchSpec,
        handle: Handle,
        durable: Option<tokio::sync::oneshot::Receiver<()>>,
    ) {
        if let Some(durable) = durable {
            let _ = durable.await;
        }
        let (child, result) = match self.launch(spec, &handle).await {
            Ok((child, pid)) => (Some(child), Ok(pid)),
            Err(message) => (None, Err(message)),
        };
        let launched = Command::ExecutorLaunched {
            key: self.key.clone(),
            container_id: self.container_id.clone(),
            result,
        };
        self.report(&handle, launched).await;
        let Some(mut child) = child else {
            return;
        };
        let status = child.wait().await.ok().map(|s| s.into_raw());
        let exited = Command::ExecutorExited {
            key: self.key.clone(),
            container_id: self.container_id.clone(),
            status,
        };
        self.report(&handle, exited).await;
    }

    /// Creates the sandbox, fetches the URIs into it, prepares the
    /// container and forks the executor; file work, plugin calls and the
    /// fork run on the blocking pool. The isolators' labels go to the
    /// agent loop (through `handle`) before the fork. Returns the executor
    /// and its pid.
    async fn launch(
        &self,
        spec: LaunchSpec,
        handle: &Handle,
    ) -> Result<(tokio::process::Child, u32), String> {
        let work_dir = self.work_dir.clone();
        let agent_id = self.agent_id.clone();
        let key = self.key.clone();
        let container_id = self.container_id.clone();
        let resources = self.resources.clone();
        tokio::task::spawn_blocking(move || {
            let ids = RunIds {
                agent_id: &agent_id,
                framework_id: &key.framework_id,
                executor_id: &key.executor_id,
                container_id: &container_id,
            };
            let sandbox = sandbox::create(&work_dir, &ids)
                .map_err(|e| format!("Failed to create the sandbox: {e}"))?;
            crate::volumes::link_into_sandbox(&work_dir, &sandbox, &resources)
        })
        .await
        .map_err(|e| format!("the launch was aborted: {e}"))??;
        // Mesos's order: provisioning, then fetching.
        let mut spec = spec;
        let mut rootfs_launch = None;
        if let Some((images, task)) = self.image.clone() {
            let (container_id, sandbox) = (self.container_id.clone(), spec.sandbox.clone());
            let user = spec.user.clone();
            let launch = tokio::task::spawn_blocking(move || {
                images.prepare(&container_id, &task, &sandbox, user.as_deref())
            })
            .await
            .map_err(|e| format!("the launch was aborted: {e}"))??;
            // Handed to the executor once the isolators said what the
            // task's privileges are.
            rootfs_launch = Some(launch);
            if let Some(oci) = &self.oci {
                spec.env
                    .insert(crate::oci::OCI_LAUNCH_VAR.into(), oci.to_json());
            }
            // Provisioning cannot be interrupted; a kill meanwhile ends
            // the launch here (the rootfs goes with the executor's end).
            if *self.aborted.borrow() {
                return Err("The container was destroyed while provisioning".to_string());
            }
        }
        if !self.uris.is_empty() {
            let mut aborted = self.aborted.clone();
            let fetch = self
                .fetcher
                .fetch_all(&self.uris, &spec.sandbox, spec.user.as_deref());
            tokio::select! {
                result = fetch => result.map_err(|e| e.to_string())?,
                () = wait_for_abort(&mut aborted) => {
                    return Err("The container was destroyed while fetching".to_string());
                }
            }
        }
        if *self.aborted.borrow() {
            return Err("The container was destroyed during its launch".to_string());
        }
        // The executor of a task in an image stays root to set the task's
        // rootfs up; the task switches to the user itself.
        if self.image.is_some() {
            spec.user = None;
        }
        let pid_file = self.pid_file.clone();
        let (isolation, container) = (
            self.isolation.clone(),
            ContainerSpec {
                container_id: self.container_id.clone(),
                resources: self.resources.clone(),
                capabilities: self.capabilities.clone(),
                sandbox: spec.sandbox.clone(),
                seccomp: self.seccomp.clone(),
                networks: self.networks.clone(),
                port_mappings: self.port_mappings.clone(),
                hostname: self.hostname.clone(),
                volumes: self.volumes.clone(),
            },
        );
        let (hooks, pre_launch) = (self.hooks.clone(), self.pre_launch.clone());
        let prepared_isolation = isolation.clone();
        let prepared_container = container.container_id.clone();
        let (spec, labels) = tokio::task::spawn_blocking(move || {
            let mut spec = spec;
            let mut labels = Vec::new();
            // As in Mesos, after every fetch, with URIs or not.
            hooks.post_fetch(&container.container_id, &spec.sandbox);
            if let Some(launch) = pre_launch {
                let docker = launch.containerizer == Containerizer::Docker;
                let added = hooks.pre_launch(launch)?;
                decorate(&mut spec, added, docker);
            }
            if !isolation.is_empty() {
                let info = isolation.prepare(&container)?;
                spec.cgroup_procs = info.cgroup_procs;
                spec.namespaces = info.clone_namespaces;
                spec.env.extend(info.env);
                spec.privileges = crate::privileges::Privileges {
                    bounding: info.bounding_capabilities,
                    effective: info.effective_capabilities,
                    no_new_privs: info.no_new_privileges,
                };
                spec.seccomp_filters = info.seccomp_filters;
                spec.network_namespace = info.network_namespace;
                spec.hostname = info.hostname;
                spec.file_binds = info.file_binds;
                spec.binds = info.binds;
                labels = info.labels;
            }
            // The executor of an image task needs root's capabilities to
            // set the task's rootfs up: as in Mesos, the sets are the
            // task's, applied once it is in its rootfs.
            if let Some(mut launch) = rootfs_launch {
                launch.privileges = std::mem::take(&mut spec.privileges);
                spec.env.insert(
                    crate::command_executor::rootfs::ROOTFS_LAUNCH_VAR.into(),
                    launch.to_json(),
                );
            }
            Ok::<_, String>((spec, labels))
        })
        .await
        .map_err(|e| format!("the launch was aborted: {e}"))??;
        if !labels.is_empty() {
            let labelled = Command::IsolatorLabels {
                key: self.key.clone(),
                container_id: self.container_id.clone(),
                labels,
            };
            if handle.send(labelled).await.is_err() {
                prepared_isolation.cleanup(&prepared_container);
                return Err("the agent is shutting down".to_string());
            }
        }
        let child = tokio::task::spawn_blocking(move || {
            let child = match launcher::launch(&spec) {
                Ok(child) => child,
                Err(e) => {
                    prepared_isolation.cleanup(&prepared_container);
                    return Err(e.to_string());
                }
            };
            // Written here, at once, not through the checkpoint writer: by
            // the time the executor's first update is acknowledged a
            // restarted agent must be able to find it. No fsync: a pid
            // only matters if the host did not reboot.
            if let (Some(path), Some(pid)) = (pid_file, child.id())
                && let Err(e) =
                    crate::checkpoint::write_atomically(&path, format!("{pid}\n").as_bytes(), false)
            {
                tracing::error!(
                    path = %path.display(),
                    "cannot checkpoint the executor's pid; a restarted agent will not recover it: {e}"
                );
            }
            Ok::<_, String>(child)
        })
        .await
        .map_err(|e| format!("the launch was aborted: {e}"))??;
        let pid = child
            .id()
            .ok_or("the executor exited before its pid was known")?;
        Ok((child, pid))
    }

    async fn report(&self, handle: &Handle, command: Command) {
        if handle.send(command).await.is_err() {
            tracing::debug!(key = %self.key, "agent loop gone; report dropped");
        }
    }
}

/// The capabilities a container's `LinuxInfo` asks for (the deprecated
/// `capability_info` stands for the effective set when that is absent).
fn capability_request(container: Option<&v1::ContainerInfo>) -> CapabilityRequest {
    let Some(linux) = container.and_then(|c| c.linux_info.as_ref()) else {
        return CapabilityRequest::default();
    };
    CapabilityRequest {
        effective: linux
            .effective_capabilities
            .as_ref()
            .or(linux.capability_info.as_ref())
            .map(|c| c.capabilities.clone()),
        bounding: linux
            .bounding_capabilities
            .as_ref()
            .map(|c| c.capabilities.clone()),
    }
}

/// The seccomp profile a container's `LinuxInfo` asks for.
fn seccomp_request(container: Option<&v1::ContainerInfo>) -> SeccompRequest {
    match container
        .and_then(|c| c.linux_info.as_ref())
        .and_then(|l| l.seccomp.as_ref())
    {
        Some(seccomp) if seccomp.unconfined() => SeccompRequest::Unconfined,
        Some(seccomp) => match &seccomp.profile_name {
            Some(name) => SeccompRequest::Profile(name.clone()),
            None => SeccompRequest::AgentDefault,
        },
        None => SeccompRequest::AgentDefault,
    }
}

/// The networks a container's `network_infos` name; unnamed ones mean
/// the host's network, as in Mesos.
fn network_names(container: Option<&v1::ContainerInfo>) -> Vec<String> {
    container
        .map(|c| {
            c.network_infos
                .iter()
                .filter_map(|n| n.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The DOCKER_VOLUME volumes of a container's `volumes`.
fn docker_volumes(container: Option<&v1::ContainerInfo>) -> Vec<VolumeRequest> {
    use v1::volume::source::Type;
    let Some(container) = container else {
        return Vec::new();
    };
    container
        .volumes
        .iter()
        .filter_map(|v| {
            let source = v.source.as_ref()?;
            let docker = source.docker_volume.as_ref()?;
            (source.r#type() == Type::DockerVolume).then(|| VolumeRequest {
                driver: docker.driver.clone().unwrap_or_default(),
                volume: VolumeSpec {
                    name: docker.name.clone(),
                    options: docker
                        .driver_options
                        .iter()
                        .flat_map(|o| &o.parameter)
                        .map(|p| (p.key.clone(), p.value.clone()))
                        .collect(),
                },
                container_path: v.container_path.clone(),
                read_only: v.mode() == v1::volume::Mode::Ro,
            })
        })
        .collect()
}

/// The host ports a container's named networks forward to it.
fn port_mappings(
    container: Option<&v1::ContainerInfo>,
) -> Vec<mesos_plugin_api::isolator::PortMapping> {
    let Some(container) = container else {
        return Vec::new();
    };
    container
        .network_infos
        .iter()
        .filter_map(|n| n.name.as_ref().map(|name| (name, &n.port_mappings)))
        .flat_map(|(name, mappings)| {
            mappings
                .iter()
                .map(|m| mesos_plugin_api::isolator::PortMapping {
                    network: name.clone(),
                    host_port: m.host_port,
                    container_port: m.container_port,
                    protocol: m.protocol.clone().unwrap_or_else(|| "tcp".to_string()),
                })
        })
        .collect()
}

/// Applies what the pre-launch hooks added: a Mesos container's executor
/// gets the variables (and a command task inherits them); the docker
/// executor is handed them, and the labels, for the Engine container.
fn decorate(spec: &mut LaunchSpec, added: Decoration, docker: bool) {
    if !docker {
        if !added.labels.is_empty() {
            tracing::debug!(labels = ?added.labels, "a Mesos container has no labels to add to");
        }
        spec.env.extend(added.env);
        return;
    }
    let object = |pairs: Vec<(String, String)>| {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    if !added.env.is_empty() {
        spec.env.insert(
            crate::docker_executor::TASK_ENVIRONMENT_VAR.into(),
            object(added.env),
        );
    }
    if !added.labels.is_empty() {
        spec.env.insert(
            crate::docker_executor::TASK_LABELS_VAR.into(),
            object(added.labels),
        );
    }
}

/// Returns once the agent gives the launch up; never if it drops the
/// sender without doing so.
async fn wait_for_abort(aborted: &mut tokio::sync::watch::Receiver<bool>) {
    if aborted.wait_for(|a| *a).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Agent {
    /// Kills every executor and what it runs, at once and before returning
    /// (the process is about to exit).
    pub(super) fn destroy_all(&mut self) {
        let executors: Vec<(Option<u32>, String)> = self
            .frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .map(|e| (e.pid, e.container_id.clone()))
            .collect();
        for (pid, container_id) in executors {
            if let Some(pid) = pid {
                launcher::signal_group(pid, Signal::SIGKILL);
                launcher::destroy_session(pid);
            }
            self.config.nested.destroy_children(&container_id);
            self.config.isolation.cleanup(&container_id);
            if let Some(images) = &self.config.images {
                images.destroy(&container_id);
            }
        }
        tracing::warn!("every executor was killed");
    }
}

/// What an executor's container holds: the executor's resources and its
/// tasks', launched or queued.
pub(super) fn container_resources(executor: &Executor) -> mesos_resources::Resources {
    let mut total = mesos_resources::Resources::from(executor.info.resources.clone());
    let tasks = executor
        .launched
        .values()
        .map(|t| &t.info)
        .chain(executor.queued.iter());
    for task in tasks {
        total.add(&mesos_resources::Resources::from(task.resources.clone()));
    }
    total
}

/// Kills the executor's process group and everything else in its session.
pub(super) fn destroy(pid: u32) {
    tokio::task::spawn_blocking(move || {
        launcher::signal_group(pid, Signal::SIGKILL);
        let killed = launcher::destroy_session(pid);
        if killed > 0 {
            tracing::debug!(pid, killed, "destroyed executor processes");
        }
    });
}

/// "exited with status 3", "terminated by SIGKILL".
pub(crate) fn describe_wait_status(status: Option<i32>) -> String {
    let Some(raw) = status else {
        return "exited with an unknown status".to_string();
    };
    let status = std::process::ExitStatus::from_raw(raw);
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("terminated by {s}"),
            Err(_) => format!("terminated by signal {signal}"),
        },
        (None, None) => format!("ended with wait status {raw}"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_wait_status;

    #[test]
    fn describes_wait_statuses() {
        assert_eq!(describe_wait_status(Some(0)), "exited with status 0");
        assert_eq!(describe_wait_status(Some(3 << 8)), "exited with status 3");
        assert_eq!(describe_wait_status(Some(9)), "terminated by SIGKILL");
        assert_eq!(describe_wait_status(None), "exited with an unknown status");
    }
}
