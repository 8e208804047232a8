//! `volume/host_path` and `volume/sandbox_path` for containers with an
//! image: `ContainerInfo.volumes` as bind mounts into the rootfs. A
//! relative `container_path` is inside the sandbox (as Mesos reads it).
//! DOCKER_VOLUME volumes are `docker/volume`'s: it binds them under the
//! sandbox before the rootfs exists, and the sandbox's recursive bind
//! brings them along.

use std::path::{Component, Path, PathBuf};

use mesos_proto::v1::{self, volume};

use crate::command_executor::rootfs::BindMount;

/// The bind mounts of `volumes`; `sandbox` is the host's path of the
/// sandbox, `sandbox_directory` where the task sees it.
pub fn bind_mounts(
    volumes: &[v1::Volume],
    sandbox: &Path,
    sandbox_directory: &Path,
) -> Result<Vec<BindMount>, String> {
    use volume::source::Type;
    volumes
        .iter()
        .filter(|v| {
            v.source
                .as_ref()
                .is_none_or(|s| s.r#type() != Type::DockerVolume)
        })
        .map(|v| bind_mount(v, sandbox, sandbox_directory))
        .collect()
}

fn bind_mount(
    volume: &v1::Volume,
    sandbox: &Path,
    sandbox_directory: &Path,
) -> Result<BindMount, String> {
    use volume::source::Type;
    let source = match &volume.source {
        Some(source) => match source.r#type() {
            Type::HostPath => {
                host_path(source.host_path.as_ref().map(|h| h.path.as_str()), volume)?
            }
            Type::SandboxPath => {
                let sandbox_path = source
                    .sandbox_path
                    .as_ref()
                    .ok_or("A SANDBOX_PATH volume has no sandbox_path")?;
                if sandbox_path.r#type() == volume::source::sandbox_path::Type::Parent {
                    return Err(
                        "SANDBOX_PATH volumes of type PARENT need a nested container".into(),
                    );
                }
                sandbox.join(inside("sandbox_path", &sandbox_path.path, false)?)
            }
            other => {
                return Err(format!(
                    "Volumes of type {} are not supported",
                    other.as_str_name()
                ));
            }
        },
        None if volume.image.is_some() => {
            return Err("Image volumes are not supported".into());
        }
        None => host_path(volume.host_path.as_deref(), volume)?,
    };
    let target = if Path::new(&volume.container_path).is_absolute() {
        Path::new("/").join(inside("container_path", &volume.container_path, true)?)
    } else {
        sandbox_directory.join(inside("container_path", &volume.container_path, false)?)
    };
    Ok(BindMount {
        source,
        target,
        read_only: volume.mode() == volume::Mode::Ro,
    })
}

fn host_path(path: Option<&str>, volume: &v1::Volume) -> Result<PathBuf, String> {
    let path = path.ok_or_else(|| {
        format!(
            "The volume at '{}' has neither a source nor a host_path",
            volume.container_path
        )
    })?;
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(format!("host_path '{}' is not absolute", path.display()));
    }
    if !path.exists() {
        return Err(format!("host_path '{}' does not exist", path.display()));
    }
    Ok(path)
}

/// `path` as a relative path that stays where it is joined: no `..`.
fn inside(what: &str, path: &str, absolute: bool) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir if absolute => {}
            Component::CurDir => {}
            _ => return Err(format!("{what} '{path}' must not contain '..'")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("{what} '{path}' names no file"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_volume(host: &str, container: &str, mode: volume::Mode) -> v1::Volume {
        v1::Volume {
            mode: mode as i32,
            container_path: container.into(),
            host_path: Some(host.into()),
            ..Default::default()
        }
    }

    #[test]
    fn host_and_sandbox_paths_become_bind_mounts() {
        let sandbox_path = v1::Volume {
            mode: volume::Mode::Rw as i32,
            container_path: "/data".into(),
            source: Some(volume::Source {
                r#type: Some(volume::source::Type::SandboxPath as i32),
                sandbox_path: Some(volume::source::SandboxPath {
                    r#type: Some(volume::source::sandbox_path::Type::Self_ as i32),
                    path: "out".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mounts = bind_mounts(
            &[
                host_volume("/tmp", "/host/tmp", volume::Mode::Ro),
                sandbox_path,
            ],
            Path::new("/w/sandbox"),
            Path::new("/mnt/mesos/sandbox"),
        )
        .unwrap();
        assert_eq!(
            mounts,
            vec![
                BindMount {
                    source: "/tmp".into(),
                    target: "/host/tmp".into(),
                    read_only: true,
                },
                BindMount {
                    source: "/w/sandbox/out".into(),
                    target: "/data".into(),
                    read_only: false,
                },
            ]
        );
        let relative = bind_mounts(
            &[host_volume("/tmp", "scratch", volume::Mode::Rw)],
            Path::new("/w"),
            Path::new("/mnt/mesos/sandbox"),
        )
        .unwrap();
        assert_eq!(relative[0].target, Path::new("/mnt/mesos/sandbox/scratch"));
    }

    #[test]
    fn bad_volumes_are_named() {
        let sb = Path::new("/sb");
        for (volume, needle) in [
            (
                host_volume("/tmp", "/a/../../etc", volume::Mode::Rw),
                "'..'",
            ),
            (
                host_volume("relative", "/a", volume::Mode::Rw),
                "not absolute",
            ),
            (
                host_volume("/no/such/path/here", "/a", volume::Mode::Rw),
                "does not exist",
            ),
        ] {
            let err = bind_mounts(&[volume], sb, sb).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
