//! `docker/volume`: a container's DOCKER_VOLUME volumes, mounted by the
//! volume driver plugin each names (`DockerVolume.driver`) and bound into
//! the container's own mount namespace at its `container_path`, as Mesos
//! does through dvdcli. A volume shared by several containers is mounted
//! for each and unmounted once, when the last of them goes.
//!
//! What each container uses is checkpointed under
//! `<runtime_dir>/isolators/docker/volume/<container id>` before anything
//! is mounted, so an agent restarted after a crash still unmounts the
//! volumes of the containers that did not survive.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use mesos_plugin_api::isolator::{
    Bind, ContainerSpec, Isolator, IsolatorError, LaunchInfo, Namespace,
};
use mesos_plugin_api::volume::{VolumeDriver, VolumeRequest, VolumeSpec};
use serde::{Deserialize, Serialize};

/// A volume a container uses, as checkpointed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Used {
    driver: String,
    name: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

impl Used {
    fn spec(&self) -> VolumeSpec {
        VolumeSpec {
            name: self.name.clone(),
            options: self.options.clone(),
        }
    }

    fn same_volume(&self, other: &Used) -> bool {
        self.driver == other.driver && self.name == other.name
    }
}

pub struct DockerVolume {
    drivers: BTreeMap<String, Arc<dyn VolumeDriver>>,
    /// One checkpoint file per container.
    state: PathBuf,
    /// What each container of this agent uses.
    used: Mutex<BTreeMap<String, Vec<Used>>>,
}

impl std::fmt::Debug for DockerVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerVolume")
            .field("drivers", &self.drivers.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

const NAME: &str = "docker/volume";

fn failed(message: impl Into<String>) -> IsolatorError {
    IsolatorError::Failed {
        isolator: NAME,
        message: message.into(),
    }
}

impl DockerVolume {
    pub const NAME: &'static str = NAME;

    /// The isolator over the loaded volume `drivers`, checkpointing under
    /// `state`.
    pub fn new(drivers: &[Arc<dyn VolumeDriver>], state: PathBuf) -> Self {
        Self {
            drivers: drivers
                .iter()
                .map(|d| (d.name().to_string(), d.clone()))
                .collect(),
            state,
            used: Mutex::new(BTreeMap::new()),
        }
    }

    fn driver(&self, name: &str) -> Result<&Arc<dyn VolumeDriver>, IsolatorError> {
        if name.is_empty() {
            return Err(failed("a DOCKER_VOLUME volume names no driver"));
        }
        self.drivers.get(name).ok_or_else(|| {
            let loaded: Vec<&str> = self.drivers.keys().map(String::as_str).collect();
            failed(format!(
                "no volume driver named '{name}' is loaded (loaded: {})",
                if loaded.is_empty() {
                    "none".to_string()
                } else {
                    loaded.join(", ")
                }
            ))
        })
    }

    /// The checkpoint file of `container_id`. Container IDs are the
    /// agent's UUIDs; anything else is refused rather than joined into a
    /// path.
    fn record(&self, container_id: &str) -> Result<PathBuf, IsolatorError> {
        let plain = !container_id.is_empty()
            && !container_id.starts_with('.')
            && container_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(failed(format!("unusable container id '{container_id}'")));
        }
        Ok(self.state.join(container_id))
    }

    fn checkpoint(&self, container_id: &str, used: &[Used]) -> Result<(), IsolatorError> {
        let path = self.record(container_id)?;
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.state)?;
            let partial = self.state.join(format!(".{container_id}.partial"));
            std::fs::write(&partial, serde_json::to_vec(used)?)?;
            std::fs::rename(&partial, &path)
        };
        write().map_err(|e| {
            failed(format!(
                "cannot checkpoint the volumes of {container_id} in {}: {e}",
                self.state.display()
            ))
        })
    }

    /// Unmounts what `container_id` used that no other container uses,
    /// and forgets it. Every volume is tried; the first error is returned.
    fn release(&self, container_id: &str, used: Vec<Used>) -> Result<(), IsolatorError> {
        let mut first_error = None;
        for (i, volume) in used.iter().enumerate() {
            // Mounted at two paths of this container: unmounted once.
            let again = used[..i].iter().any(|earlier| earlier.same_volume(volume));
            let shared = self
                .used
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .flatten()
                .any(|other| other.same_volume(volume));
            if again || shared {
                continue;
            }
            let result = self.driver(&volume.driver).and_then(|driver| {
                driver
                    .unmount(&volume.spec())
                    .map_err(|e| failed(e.to_string()))
            });
            match result {
                Ok(()) => tracing::info!(
                    container = container_id,
                    driver = %volume.driver,
                    volume = %volume.name,
                    "volume unmounted"
                ),
                Err(e) => {
                    tracing::warn!(container = container_id, "{e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        let removed = self.record(container_id).and_then(|path| {
            std::fs::remove_file(&path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(failed(format!("cannot remove {}: {e}", path.display()))),
            })
        });
        if let Err(e) = removed {
            tracing::warn!(container = container_id, "{e}");
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl DockerVolume {
    /// Mounts one volume for `container_id` and answers its bind.
    fn mount(
        &self,
        container_id: &str,
        volume: &Used,
        target: PathBuf,
        read_only: bool,
    ) -> Result<Bind, IsolatorError> {
        let source = self
            .driver(&volume.driver)?
            .mount(container_id, &volume.spec())
            .map_err(|e| failed(e.to_string()))?;
        if !source.is_dir() {
            return Err(failed(format!(
                "volume driver {} mounted '{}' at {}, which is not a directory",
                volume.driver,
                volume.name,
                source.display()
            )));
        }
        std::fs::create_dir_all(&target)
            .map_err(|e| failed(format!("cannot create {}: {e}", target.display())))?;
        Ok(Bind {
            source,
            target,
            read_only,
        })
    }
}

/// Where a relative `container_path` is, inside the sandbox: no `..`, no
/// root. The volume is bound there before any rootfs exists, so a task in
/// an image finds it under its sandbox too; an absolute path would put it
/// over a host directory (without an image) or need the rootfs.
fn target(sandbox: &Path, container_path: &str) -> Result<PathBuf, IsolatorError> {
    let path = Path::new(container_path);
    if path.is_absolute() {
        return Err(failed(format!(
            "container_path '{container_path}' is absolute: docker/volume binds volumes under the container's sandbox, so it must be relative"
        )));
    }
    if container_path.is_empty()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(failed(format!(
            "container_path '{container_path}' must be a plain relative path inside the sandbox"
        )));
    }
    Ok(sandbox.join(path))
}

impl Isolator for DockerVolume {
    fn name(&self) -> &'static str {
        NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        let entries = match std::fs::read_dir(&self.state) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(failed(format!("cannot read {}: {e}", self.state.display()))),
        };
        let mut gone = Vec::new();
        for entry in entries.flatten() {
            let container_id = entry.file_name().to_string_lossy().into_owned();
            if container_id.starts_with('.') {
                // A checkpoint torn by a crash: the container's previous
                // record, if any, is whole beside it.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let used: Vec<Used> = match std::fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
            {
                Ok(used) => used,
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), "volume checkpoint ignored: {e}");
                    continue;
                }
            };
            if live.contains(&container_id) {
                self.used
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(container_id, used);
            } else {
                gone.push((container_id, used));
            }
        }
        // The live containers are all known now, so a volume one of them
        // still uses stays mounted.
        for (container_id, used) in gone {
            if let Err(e) = self.release(&container_id, used) {
                tracing::warn!(container = %container_id, "after recovery: {e}");
            }
        }
        Ok(())
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        if spec.volumes.is_empty() {
            return Ok(LaunchInfo::default());
        }
        let mut planned = Vec::new();
        for VolumeRequest {
            driver,
            volume,
            container_path,
            read_only,
        } in &spec.volumes
        {
            self.driver(driver)?;
            planned.push((
                Used {
                    driver: driver.clone(),
                    name: volume.name.clone(),
                    options: volume.options.clone(),
                },
                target(&spec.sandbox, container_path)?,
                *read_only,
            ));
        }
        let used: Vec<Used> = planned.iter().map(|(u, _, _)| u.clone()).collect();
        // Recorded before anything is mounted: cleanup (after a failure
        // here, or after a crash) unmounts what the record names.
        self.checkpoint(&spec.container_id, &used)?;
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.container_id.clone(), used);
        let binds = planned
            .into_iter()
            .map(|(volume, target, read_only)| {
                self.mount(&spec.container_id, &volume, target, read_only)
            })
            .collect::<Result<Vec<Bind>, IsolatorError>>();
        match binds {
            Ok(binds) => Ok(LaunchInfo {
                clone_namespaces: vec![Namespace::Mount],
                binds,
                ..LaunchInfo::default()
            }),
            Err(e) => {
                // The agent cleans up the isolators before this one, not
                // this one: what did get mounted goes now.
                if let Err(cleanup) = self.cleanup(&spec.container_id) {
                    tracing::warn!(container = %spec.container_id, "{cleanup}");
                }
                Err(e)
            }
        }
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        let used = self
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(container_id);
        match used {
            Some(used) => self.release(container_id, used),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mesos_plugin_api::volume::VolumeError;

    /// Mounts `<root>/<name>`, and records every call.
    struct Local {
        root: PathBuf,
        calls: Mutex<Vec<String>>,
    }

    impl VolumeDriver for Local {
        fn name(&self) -> &str {
            "local"
        }
        fn mount(&self, container_id: &str, volume: &VolumeSpec) -> Result<PathBuf, VolumeError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("mount {} for {container_id}", volume.name));
            if volume.name == "broken" {
                return Err(VolumeError::Failed {
                    driver: "local".into(),
                    message: "no such pool".into(),
                });
            }
            let path = self.root.join(&volume.name);
            std::fs::create_dir_all(&path).unwrap();
            Ok(path)
        }
        fn unmount(&self, volume: &VolumeSpec) -> Result<(), VolumeError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("unmount {}", volume.name));
            Ok(())
        }
    }

    fn setup() -> (tempfile::TempDir, Arc<Local>, DockerVolume) {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(Local {
            root: dir.path().join("volumes"),
            calls: Mutex::new(Vec::new()),
        });
        let driver: Arc<dyn VolumeDriver> = local.clone();
        let isolator = DockerVolume::new(&[driver], dir.path().join("state"));
        (dir, local, isolator)
    }

    fn spec(dir: &Path, id: &str, volumes: &[(&str, &str, &str)]) -> ContainerSpec {
        let sandbox = dir.join("sandboxes").join(id);
        std::fs::create_dir_all(&sandbox).unwrap();
        ContainerSpec {
            container_id: id.into(),
            sandbox,
            volumes: volumes
                .iter()
                .map(|(driver, name, path)| VolumeRequest {
                    driver: (*driver).into(),
                    volume: VolumeSpec {
                        name: (*name).into(),
                        options: BTreeMap::new(),
                    },
                    container_path: (*path).into(),
                    read_only: *path == "ro",
                })
                .collect(),
            ..ContainerSpec::default()
        }
    }

    fn calls(local: &Local) -> Vec<String> {
        std::mem::take(&mut *local.calls.lock().unwrap())
    }

    #[test]
    fn a_shared_volume_is_mounted_for_each_and_unmounted_after_the_last() {
        let (dir, local, isolator) = setup();
        let a = isolator
            .prepare(&spec(
                dir.path(),
                "a",
                &[("local", "shared", "data"), ("local", "own", "ro")],
            ))
            .unwrap();
        assert_eq!(a.clone_namespaces, vec![Namespace::Mount]);
        assert_eq!(
            a.binds,
            vec![
                Bind {
                    source: dir.path().join("volumes/shared"),
                    target: dir.path().join("sandboxes/a/data"),
                    read_only: false,
                },
                Bind {
                    source: dir.path().join("volumes/own"),
                    target: dir.path().join("sandboxes/a/ro"),
                    read_only: true,
                },
            ]
        );
        assert!(dir.path().join("sandboxes/a/data").is_dir());
        isolator
            .prepare(&spec(dir.path(), "b", &[("local", "shared", "data")]))
            .unwrap();
        assert_eq!(
            calls(&local),
            [
                "mount shared for a",
                "mount own for a",
                "mount shared for b"
            ]
        );
        isolator.cleanup("a").unwrap();
        assert_eq!(calls(&local), ["unmount own"]);
        isolator.cleanup("b").unwrap();
        assert_eq!(calls(&local), ["unmount shared"]);
        // One volume at two paths of a container: unmounted once.
        isolator
            .prepare(&spec(
                dir.path(),
                "d",
                &[("local", "twice", "x"), ("local", "twice", "y")],
            ))
            .unwrap();
        isolator.cleanup("d").unwrap();
        assert_eq!(
            calls(&local),
            ["mount twice for d", "mount twice for d", "unmount twice"]
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            0
        );
        // A container without volumes costs nothing.
        assert_eq!(
            isolator.prepare(&spec(dir.path(), "c", &[])).unwrap(),
            LaunchInfo::default()
        );
    }

    #[test]
    fn recovery_unmounts_what_only_gone_containers_used() {
        let (dir, local, isolator) = setup();
        for (id, volume) in [("live", "shared"), ("gone", "shared"), ("gone2", "alone")] {
            isolator
                .prepare(&spec(dir.path(), id, &[("local", volume, "v")]))
                .unwrap();
        }
        calls(&local);
        // The agent restarts: a new isolator over the same state.
        let driver: Arc<dyn VolumeDriver> = local.clone();
        let restarted = DockerVolume::new(&[driver], dir.path().join("state"));
        restarted.recover(&["live".into()]).unwrap();
        assert_eq!(calls(&local), ["unmount alone"]);
        restarted.cleanup("live").unwrap();
        assert_eq!(calls(&local), ["unmount shared"]);
    }

    #[test]
    fn bad_requests_fail_naming_the_problem() {
        let (dir, local, isolator) = setup();
        let err = |volumes: &[(&str, &str, &str)]| {
            isolator
                .prepare(&spec(dir.path(), "x", volumes))
                .unwrap_err()
                .to_string()
        };
        let e = err(&[("nfs", "v", "data")]);
        assert!(
            e.contains("no volume driver named 'nfs' is loaded (loaded: local)"),
            "{e}"
        );
        let e = err(&[("", "v", "data")]);
        assert!(e.contains("names no driver"), "{e}");
        let e = err(&[("local", "v", "/data")]);
        assert!(e.contains("'/data' is absolute"), "{e}");
        let e = err(&[("local", "v", "../data")]);
        assert!(e.contains("plain relative path"), "{e}");
        let mut escaping = spec(dir.path(), "x", &[("local", "v", "data")]);
        escaping.container_id = "../escape".into();
        let e = isolator.prepare(&escaping).unwrap_err().to_string();
        assert!(e.contains("unusable container id '../escape'"), "{e}");
        // Nothing was mounted for those.
        assert!(calls(&local).is_empty());
        let e = err(&[("local", "ok", "a"), ("local", "broken", "b")]);
        assert!(e.contains("volume driver local: no such pool"), "{e}");
        // What the failed prepare recorded is unmounted at once.
        assert_eq!(
            calls(&local),
            [
                "mount ok for x",
                "mount broken for x",
                "unmount ok",
                "unmount broken"
            ]
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            0
        );
    }
}
