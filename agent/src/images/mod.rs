//! Container images under the Mesos containerizer (`--image_providers`,
//! `filesystem/linux`, `docker/runtime`).
//!
//! A command task whose `ContainerInfo` is `MESOS` with an `image` gets
//! the image's root filesystem from the provisioner (`mesos-provisioners`)
//! before its executor starts. The agent works out how the task runs in it
//! ([`runtime`], [`volumes`]) and hands that to the command executor,
//! which stays on the host and starts the task inside the rootfs (see
//! [`crate::command_executor::rootfs`]). The rootfs is destroyed once the
//! executor is gone, and after an agent restart every rootfs of a
//! container that did not survive is.
//!
//! Everything here blocks on the filesystem (extraction, mounts): call it
//! from the blocking pool.

pub mod runtime;
pub mod volumes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use mesos_plugin_api::image::ImageStore;
use mesos_proto::v1::{self, container_info, image};
use mesos_provisioners::{DockerStore, ImageReference, Provisioner, PruneStats, backend};

use crate::command_executor::rootfs::{BindMount, RootfsLaunch, TaskUser};

/// What the images need from the agent's flags.
#[derive(Clone)]
pub struct ImagesConfig {
    /// `--image_providers`, as given: `docker` and image store plugins.
    pub providers: Option<String>,
    /// The image store plugins loaded.
    pub image_stores: Vec<Arc<dyn ImageStore>>,
    /// `--isolation`, expanded.
    pub isolation: Vec<String>,
    pub docker_registry: String,
    /// `--docker_config`: registry credentials (a docker config.json, as a
    /// path or inline).
    pub docker_config: Option<String>,
    pub docker_store_dir: PathBuf,
    pub backend: Option<String>,
    /// The built-in backends and the rootfs backend plugins.
    pub backends: backend::Backends,
    pub sandbox_directory: PathBuf,
    pub work_dir: PathBuf,
}

/// Why PRUNE_IMAGES failed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// An excluded image the store cannot name.
    #[error("excluded image: {0}")]
    Image(String),
    #[error("cannot prune the image store: {0}")]
    Store(String),
}

#[derive(Clone)]
pub struct Images {
    provisioner: Arc<Provisioner>,
    sandbox_directory: PathBuf,
    /// Held by destroys and recovery: after a restart both can reach for
    /// the same dead container's rootfs at once.
    teardown: Arc<Mutex<()>>,
    /// The `oci` containerizer's runtime: its containers go before their
    /// rootfs does.
    oci: Option<Arc<crate::oci::OciRuntime>>,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("backend", &self.provisioner.backend_name())
            .finish()
    }
}

impl Images {
    /// `None` without `--image_providers`. The checks are Mesos's: images
    /// need `filesystem/linux`, Docker images `docker/runtime` (and those of
    /// image store plugins are Docker images too).
    pub fn from_config(config: &ImagesConfig) -> Result<Option<Images>, String> {
        let Some(providers) = &config.providers else {
            return Ok(None);
        };
        let (docker, stores) = providers_of(providers, &config.image_stores)?;
        if !docker && stores.is_empty() {
            return Ok(None);
        }
        let has = |name: &str| config.isolation.iter().any(|n| n == name);
        if !has("filesystem/linux") {
            return Err(
                "--image_providers needs the 'filesystem/linux' isolator in --isolation".into(),
            );
        }
        if !has("docker/runtime") {
            return Err(format!(
                "--image_providers={providers} needs the 'docker/runtime' isolator in --isolation"
            ));
        }
        // A registry URL is pulled from; anything else is a directory of
        // `docker save` archives (Mesos's local registry).
        let registry = config
            .docker_registry
            .strip_prefix("file://")
            .unwrap_or(&config.docker_registry);
        if docker && !registry.contains("://") && !std::path::Path::new(registry).is_dir() {
            return Err(format!(
                "--docker_registry: '{registry}' is not a directory"
            ));
        }
        let store = DockerStore::from_flags(
            &config.docker_store_dir,
            registry,
            config.docker_config.as_deref(),
        )
        .map_err(|e| format!("cannot set up the image store: {e}"))?;
        let backend = match &config.backend {
            Some(name) => name.clone(),
            None => backend::default_name(&config.docker_store_dir).to_string(),
        };
        let provisioner = Provisioner::with_backends(
            config.work_dir.join("provisioner"),
            store,
            &backend,
            config.backends.clone(),
        )
        .map_err(|e| format!("--image_provisioner_backend: {e}"))?
        .with_image_stores(stores, docker);
        tracing::info!(
            providers,
            registry,
            store = %config.docker_store_dir.display(),
            backend = provisioner.backend_name(),
            "container images enabled"
        );
        Ok(Some(Images {
            provisioner: Arc::new(provisioner),
            sandbox_directory: config.sandbox_directory.clone(),
            teardown: Arc::default(),
            oci: None,
        }))
    }

    /// Has the `oci` containerizer's containers deleted with their rootfs.
    pub fn with_oci(mut self, runtime: Option<crate::oci::OciRuntime>) -> Self {
        self.oci = runtime.map(Arc::new);
        self
    }

    /// Provisions the task's image for `container_id` and works out how
    /// the task runs in it. `sandbox` is the host's path of the sandbox;
    /// `user` the task's user, which gets the sandbox (the executor runs
    /// as root, see [`crate::command_executor::rootfs`]).
    pub fn prepare(
        &self,
        container_id: &str,
        task: &v1::TaskInfo,
        sandbox: &Path,
        user: Option<&str>,
    ) -> Result<RootfsLaunch, String> {
        let user = user
            .map(|name| task_user(name, sandbox))
            .transpose()?
            .flatten();
        let container = task.container.as_ref();
        let name = docker_image(container)?.ok_or("The task has no container image")?;
        let reference = ImageReference::parse(&name)
            .map_err(|e| format!("Invalid image name '{name}': {e}"))?;
        // Checked before provisioning, which is the slow part.
        let mut mounts = vec![BindMount {
            source: sandbox.to_path_buf(),
            target: self.sandbox_directory.clone(),
            read_only: false,
        }];
        let volumes = container.map(|c| c.volumes.as_slice()).unwrap_or_default();
        mounts.extend(volumes::bind_mounts(
            volumes,
            sandbox,
            &self.sandbox_directory,
        )?);
        // A SANDBOX_PATH volume's directory is made on demand, as Mesos does.
        for mount in &mounts {
            if mount.source.starts_with(sandbox) && !mount.source.exists() {
                let made = std::fs::create_dir_all(&mount.source).and_then(|()| match &user {
                    Some(user) => {
                        std::os::unix::fs::chown(&mount.source, Some(user.uid), Some(user.gid))
                    }
                    None => Ok(()),
                });
                made.map_err(|e| format!("Failed to create '{}': {e}", mount.source.display()))?;
            }
        }
        tracing::info!(container = container_id, image = %reference, "provisioning the image");
        let info = self
            .provisioner
            .provision(container_id, &reference)
            .map_err(|e| format!("Failed to provision image '{name}': {e}"))?;
        if let Some(user) = &info.config.user {
            tracing::info!(
                container = container_id,
                user,
                "the image's User is not applied"
            );
        }
        let runtime = runtime::merge(
            task.command.as_ref(),
            &info.config,
            &name,
            &self.sandbox_directory,
        );
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(message) => {
                self.destroy(container_id);
                return Err(message);
            }
        };
        Ok(RootfsLaunch {
            rootfs: info.rootfs,
            argv: runtime.argv,
            env: runtime.env,
            working_dir: runtime.working_dir,
            mounts,
            user,
            // The isolators' say, added at launch.
            privileges: Default::default(),
        })
    }

    /// Removes the container's rootfs, if it has one.
    pub fn destroy(&self, container_id: &str) {
        let _teardown = self.teardown.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(oci) = &self.oci {
            oci.destroy(container_id);
        }
        match self.provisioner.destroy(container_id) {
            Ok(true) => tracing::info!(container = container_id, "container rootfs destroyed"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(container = container_id, "cannot destroy the rootfs: {e}");
            }
        }
    }

    /// [`Images::destroy`] on the blocking pool.
    pub fn destroy_later(&self, container_id: String) {
        let images = self.clone();
        tokio::task::spawn_blocking(move || images.destroy(&container_id));
    }

    /// PRUNE_IMAGES: removes every cached image but `excluded` (Docker
    /// images by name), and every layer that neither they nor a live
    /// container use. Layers come back by pulling again.
    pub fn prune(&self, excluded: &[v1::Image]) -> Result<PruneStats, PruneError> {
        let keep = excluded
            .iter()
            .map(|image| {
                let name = match (image.r#type(), &image.docker) {
                    (image::Type::Docker, Some(docker)) => &docker.name,
                    (image::Type::Docker, None) => {
                        return Err(PruneError::Image(
                            "a DOCKER image without its 'docker' name".into(),
                        ));
                    }
                    (other, _) => {
                        return Err(PruneError::Image(format!(
                            "{} images are not supported",
                            other.as_str_name()
                        )));
                    }
                };
                ImageReference::parse(name).map_err(|e| PruneError::Image(format!("'{name}': {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stats = self
            .provisioner
            .prune_images(&keep)
            .map_err(|e| PruneError::Store(e.to_string()))?;
        tracing::info!(
            images = stats.images_removed,
            layers = stats.layers_removed,
            "pruned the image cache"
        );
        Ok(stats)
    }

    /// After a restart: the rootfs of every container not in `live` goes.
    pub fn recover(&self, live: &[String]) {
        let _teardown = self.teardown.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(oci) = &self.oci {
            oci.recover(live);
        }
        match self.provisioner.recover(live) {
            Ok(destroyed) if !destroyed.is_empty() => {
                tracing::info!(?destroyed, "destroyed the rootfs of containers gone");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot recover the provisioner: {e}"),
        }
    }
}

/// `name` as a host user that owns the sandbox; `None` when that is who
/// the agent runs as already.
fn task_user(name: &str, sandbox: &Path) -> Result<Option<TaskUser>, String> {
    let entry = nix::unistd::User::from_name(name)
        .map_err(|e| format!("Failed to look up user '{name}': {e}"))?
        .ok_or_else(|| format!("Failed to find user '{name}'"))?;
    if entry.uid == nix::unistd::Uid::effective() {
        return Ok(None);
    }
    nix::unistd::chown(sandbox, Some(entry.uid), Some(entry.gid)).map_err(|e| {
        format!(
            "Failed to give the sandbox '{}' to user '{name}': {e}",
            sandbox.display()
        )
    })?;
    Ok(Some(TaskUser {
        name: name.to_string(),
        uid: entry.uid.as_raw(),
        gid: entry.gid.as_raw(),
    }))
}

/// The task that runs in an image, if any; an error when this agent
/// cannot run it (Mesos refuses rather than run it on the host).
pub fn image_task(
    images: Option<&Images>,
    executor: &v1::ExecutorInfo,
    task: &v1::TaskInfo,
    command_executor: bool,
) -> Result<Option<v1::TaskInfo>, String> {
    if docker_image(executor.container.as_ref())?.is_some() {
        return Err("Executors with a container image are not supported yet".into());
    }
    if !command_executor || docker_image(task.container.as_ref())?.is_none() {
        return Ok(None);
    }
    if images.is_none() {
        return Err(
            "The task has a container image, which needs the 'filesystem/linux' and \
             'docker/runtime' isolators in --isolation and --image_providers=docker"
                .into(),
        );
    }
    Ok(Some(task.clone()))
}

/// The Docker image name of a MESOS container, if it has one.
fn docker_image(container: Option<&v1::ContainerInfo>) -> Result<Option<String>, String> {
    let Some(container) = container else {
        return Ok(None);
    };
    if container.r#type() != container_info::Type::Mesos {
        return Ok(None);
    }
    let Some(image) = container.mesos.as_ref().and_then(|m| m.image.as_ref()) else {
        return Ok(None);
    };
    match image.r#type() {
        image::Type::Docker => image
            .docker
            .as_ref()
            .map(|d| Some(d.name.clone()))
            .ok_or_else(|| "A DOCKER image without its 'docker' name".to_string()),
        other => Err(format!("{} images are not supported", other.as_str_name())),
    }
}

/// `--image_providers`: whether it lists `docker`, and the image store
/// plugins it names, each of which must be loaded and a name an image can
/// carry as its registry part.
fn providers_of(
    providers: &str,
    loaded: &[Arc<dyn ImageStore>],
) -> Result<(bool, Vec<Arc<dyn ImageStore>>), String> {
    let mut docker = false;
    let mut stores: Vec<Arc<dyn ImageStore>> = Vec::new();
    for provider in providers
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match provider.to_ascii_uppercase().as_str() {
            "DOCKER" => docker = true,
            "APPC" => return Err("--image_providers: APPC images are not supported".into()),
            _ => {
                let Some(store) = loaded.iter().find(|s| s.name() == provider) else {
                    let names: Vec<&str> = loaded.iter().map(|s| s.name()).collect();
                    return Err(format!(
                        "--image_providers: unknown provider '{provider}' (docker, or an image store plugin; loaded: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ));
                };
                let carried = ImageReference::parse(&format!("{provider}/image:tag"))
                    .is_ok_and(|r| r.registry == provider);
                if !carried {
                    return Err(format!(
                        "--image_providers: image store '{provider}' cannot be named in an image: images name it as their registry, which has only letters, digits, '-' and '.'"
                    ));
                }
                stores.push(store.clone());
            }
        }
    }
    Ok((docker, stores))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(providers: Option<&str>, isolation: &[&str], registry: &str) -> ImagesConfig {
        ImagesConfig {
            providers: providers.map(str::to_string),
            image_stores: Vec::new(),
            isolation: isolation.iter().map(|s| s.to_string()).collect(),
            docker_registry: registry.into(),
            docker_config: None,
            docker_store_dir: "/nonexistent/store".into(),
            backend: Some("copy".into()),
            backends: Default::default(),
            sandbox_directory: "/mnt/mesos/sandbox".into(),
            work_dir: "/nonexistent/work".into(),
        }
    }

    /// An image store that is only a name.
    struct Named(&'static str);

    impl ImageStore for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn fetch(
            &self,
            _: &mesos_plugin_api::image::ImageName,
            _: &Path,
        ) -> Result<PathBuf, mesos_plugin_api::image::ImageStoreError> {
            unreachable!("not fetched")
        }
    }

    #[test]
    fn providers_are_docker_and_loaded_image_stores_an_image_can_name() {
        let loaded: Vec<Arc<dyn ImageStore>> = vec![
            Arc::new(Named("com.example.image-dirs")),
            Arc::new(Named("com.example.under_score")),
        ];
        let names = |(docker, stores): (bool, Vec<Arc<dyn ImageStore>>)| {
            let names: Vec<String> = stores.iter().map(|s| s.name().to_string()).collect();
            (docker, names)
        };
        assert_eq!(
            names(providers_of("docker, com.example.image-dirs", &loaded).unwrap()),
            (true, vec!["com.example.image-dirs".to_string()])
        );
        assert_eq!(
            names(providers_of("com.example.image-dirs", &loaded).unwrap()),
            (false, vec!["com.example.image-dirs".to_string()])
        );
        let refused =
            |providers: &str, loaded: &[Arc<dyn ImageStore>]| match providers_of(providers, loaded)
            {
                Err(e) => e,
                Ok(_) => panic!("accepted {providers}"),
            };
        assert_eq!(
            refused("docker,com.example.nope", &loaded),
            "--image_providers: unknown provider 'com.example.nope' (docker, or an image store plugin; loaded: com.example.image-dirs, com.example.under_score)"
        );
        assert!(refused("com.example.nope", &[]).ends_with("loaded: none)"));
        assert!(
            refused("com.example.under_score", &loaded)
                .contains("image store 'com.example.under_score' cannot be named in an image")
        );
        assert!(refused("appc", &loaded).contains("APPC images are not supported"));
    }

    fn refused(config: &ImagesConfig) -> String {
        match Images::from_config(config) {
            Err(e) => e,
            Ok(images) => panic!("accepted: {images:?}"),
        }
    }

    #[test]
    fn images_need_their_isolators_and_a_local_registry() {
        let both = ["filesystem/linux", "docker/runtime"];
        assert!(
            Images::from_config(&config(None, &[], "x"))
                .unwrap()
                .is_none()
        );
        let err = refused(&config(Some("docker"), &["docker/runtime"], "/tmp"));
        assert!(err.contains("filesystem/linux"), "{err}");
        let err = refused(&config(Some("DOCKER"), &["filesystem/linux"], "/tmp"));
        assert!(err.contains("docker/runtime"), "{err}");
        // A registry URL is pulled from (nothing is fetched until a task
        // needs an image), with the credentials of --docker_config.
        let scratch = tempfile::tempdir().unwrap();
        let mut pulling = config(Some("docker"), &both, "http://127.0.0.1:5000");
        pulling.docker_store_dir = scratch.path().join("store");
        pulling.work_dir = scratch.path().join("work");
        assert!(Images::from_config(&pulling).unwrap().is_some());
        pulling.docker_config = Some("{not json".into());
        let err = refused(&pulling);
        assert!(err.contains("--docker_config"), "{err}");
        let err = refused(&config(Some("appc"), &both, "/tmp"));
        assert!(err.contains("APPC"), "{err}");
        let err = refused(&config(Some("docker"), &both, "/no/such/registry"));
        assert!(err.contains("not a directory"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let mut ok = config(Some("docker"), &both, &dir.path().display().to_string());
        ok.docker_store_dir = dir.path().join("store");
        ok.work_dir = dir.path().join("work");
        let images = Images::from_config(&ok).unwrap().unwrap();
        assert_eq!(images.provisioner.backend_name(), "copy");
        ok.backend = Some("aufs".into());
        let err = refused(&ok);
        assert!(
            err.contains(
                "--image_provisioner_backend: unknown provisioner backend 'aufs' (known: copy, overlay)"
            ),
            "{err}"
        );
    }

    fn with_image(kind: image::Type) -> v1::ContainerInfo {
        v1::ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            mesos: Some(container_info::MesosInfo {
                image: Some(v1::Image {
                    r#type: kind as i32,
                    docker: Some(image::Docker {
                        name: "busybox".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn image_tasks_are_refused_where_they_cannot_run() {
        let executor = v1::ExecutorInfo::default();
        let plain = v1::TaskInfo::default();
        assert_eq!(image_task(None, &executor, &plain, true), Ok(None));
        let task = v1::TaskInfo {
            container: Some(with_image(image::Type::Docker)),
            ..Default::default()
        };
        let err = image_task(None, &executor, &task, true).unwrap_err();
        assert!(err.contains("filesystem/linux"), "{err}");
        let appc = v1::TaskInfo {
            container: Some(with_image(image::Type::Appc)),
            ..Default::default()
        };
        assert!(image_task(None, &executor, &appc, true).is_err());
        let custom = v1::ExecutorInfo {
            container: Some(with_image(image::Type::Docker)),
            ..Default::default()
        };
        let err = image_task(None, &custom, &plain, false).unwrap_err();
        assert!(err.contains("Executors with a container image"), "{err}");
    }
}
