//! Persistent volumes on the agent's disk, and the checkpoint of what the
//! master's operations made of the agent's resources.
//!
//! A volume lives at `<work_dir>/volumes/roles/<role>/<id>` (Mesos's
//! layout), outlives the tasks that use it, and is deleted when the master
//! destroys it. A task's container sees it as `<sandbox>/<container_path>`,
//! a symlink, as Mesos's `filesystem/posix` isolator makes it.

use std::io;
use std::path::{Path, PathBuf};

use mesos_proto::internal::v1::CheckpointResources;
use mesos_proto::v1;
use mesos_resources::Resources;
use mesos_resources::operations::{apply_checkpointed, persistence_id};

use crate::checkpoint::{self, CheckpointError, Meta};

/// Where a persistent volume lives.
pub fn volume_dir(work_dir: &Path, volume: &v1::Resource) -> Option<PathBuf> {
    let id = persistence_id(volume)?;
    let role = mesos_resources::reserved_role(volume)?;
    // Both were validated by the master; refuse anything that would leave
    // the volumes directory all the same.
    let safe = |s: &str| {
        Path::new(s)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    };
    (safe(id) && safe(role)).then(|| work_dir.join("volumes").join("roles").join(role).join(id))
}

/// The volumes among `resources`.
pub fn volumes(resources: &Resources) -> impl Iterator<Item = &v1::Resource> {
    resources.iter().filter(|r| persistence_id(r).is_some())
}

/// Reads what was checkpointed; nothing when nothing was.
pub fn read_checkpointed(meta: &Meta) -> Result<Resources, CheckpointError> {
    let path = meta.resources_info();
    match std::fs::read(&path) {
        Ok(bytes) => {
            let record: CheckpointResources = checkpoint::decode_one(&path, &bytes)?;
            Ok(Resources::from(record.resources))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Resources::default()),
        Err(e) => Err(CheckpointError::io(&path, e)),
    }
}

/// The agent's total: its static resources with the checkpointed ones
/// applied, or why they do not fit.
pub fn total(static_total: &Resources, checkpointed: &Resources) -> Result<Resources, String> {
    apply_checkpointed(static_total, checkpointed).ok_or_else(|| {
        format!(
            "the checkpointed reservations and volumes ({checkpointed}) do not fit in \
             --resources ({static_total}); restore --resources or remove {}",
            "meta/resources/resources.info"
        )
    })
}

/// Makes the volume directories of `now` that are new since `before`, and
/// deletes those that were destroyed.
pub fn sync_dirs(work_dir: &Path, before: &Resources, now: &Resources) {
    let has = |set: &Resources, volume: &v1::Resource| {
        volumes(set).any(|v| {
            persistence_id(v) == persistence_id(volume)
                && mesos_resources::reserved_role(v) == mesos_resources::reserved_role(volume)
        })
    };
    for volume in volumes(before).filter(|v| !has(now, v)) {
        if let Some(dir) = volume_dir(work_dir, volume) {
            tracing::info!(dir = %dir.display(), "deleting a destroyed persistent volume");
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::error!(dir = %dir.display(), "cannot delete a destroyed persistent volume: {e}");
            }
        }
    }
    for volume in volumes(now).filter(|v| !has(before, v)) {
        if let Some(dir) = volume_dir(work_dir, volume) {
            tracing::info!(dir = %dir.display(), "creating a persistent volume");
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(dir = %dir.display(), "cannot create a persistent volume: {e}");
            }
        }
    }
}

/// Links the persistent volumes among a container's resources into its
/// sandbox.
pub fn link_into_sandbox(
    work_dir: &Path,
    sandbox: &Path,
    resources: &Resources,
) -> Result<(), String> {
    for volume in volumes(resources) {
        let Some(dir) = volume_dir(work_dir, volume) else {
            return Err(format!(
                "persistent volume '{}' has no valid role or ID",
                persistence_id(volume).unwrap_or_default()
            ));
        };
        let Some(path) = volume
            .disk
            .as_ref()
            .and_then(|d| d.volume.as_ref())
            .map(|v| v.container_path.as_str())
        else {
            continue;
        };
        let inside = Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside || path.is_empty() {
            return Err(format!(
                "the container_path '{path}' of a persistent volume leaves the sandbox"
            ));
        }
        let link = sandbox.join(path);
        let made = std::fs::create_dir_all(&dir).and_then(|()| {
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::symlink_metadata(&link) {
                Ok(_) => Ok(()),
                Err(_) => std::os::unix::fs::symlink(&dir, &link),
            }
        });
        made.map_err(|e| {
            format!(
                "cannot link persistent volume '{}' to {}: {e}",
                dir.display(),
                link.display()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mesos_proto::v1::resource::{DiskInfo, ReservationInfo, disk_info, reservation_info};

    fn volume(id: &str, role: &str, path: &str) -> v1::Resource {
        v1::Resource {
            name: "disk".into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value: 10.0 }),
            reservations: vec![ReservationInfo {
                r#type: Some(reservation_info::Type::Dynamic as i32),
                role: Some(role.into()),
                ..Default::default()
            }],
            disk: Some(Box::new(DiskInfo {
                persistence: Some(disk_info::Persistence {
                    id: id.into(),
                    principal: None,
                }),
                volume: Some(v1::Volume {
                    mode: v1::volume::Mode::Rw as i32,
                    container_path: path.into(),
                    ..Default::default()
                }),
                source: None,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn volumes_are_created_linked_and_deleted() {
        let work = tempfile::tempdir().unwrap();
        let sandbox = work.path().join("sandbox");
        std::fs::create_dir(&sandbox).unwrap();
        let v = Resources::from(vec![volume("v1", "web", "data")]);
        sync_dirs(work.path(), &Resources::default(), &v);
        let dir = work.path().join("volumes/roles/web/v1");
        assert!(dir.is_dir());
        link_into_sandbox(work.path(), &sandbox, &v).unwrap();
        std::fs::write(sandbox.join("data/file"), b"kept").unwrap();
        assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"kept");
        sync_dirs(work.path(), &v, &Resources::default());
        assert!(!dir.exists());
    }

    #[test]
    fn paths_leaving_their_directory_are_refused() {
        let work = tempfile::tempdir().unwrap();
        assert!(volume_dir(work.path(), &volume("..", "web", "d")).is_none());
        assert!(volume_dir(work.path(), &volume("v", "../x", "d")).is_none());
        let escaping = Resources::from(vec![volume("v", "web", "../../etc")]);
        assert!(link_into_sandbox(work.path(), work.path(), &escaping).is_err());
    }
}
