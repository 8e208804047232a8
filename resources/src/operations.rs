//! What offer operations make of resources: dynamic reservations and
//! persistent volumes.
//!
//! Each operation consumes some resources and puts converted ones in their
//! place, always of the same quantity, so the master, the allocator and the
//! agent can apply one as "take this, add that". An agent's total is its
//! static resources (`--resources`) with the checkpointed conversions
//! applied; [`apply_checkpointed`] rebuilds it after a restart.

use mesos_proto::v1::{self, resource::reservation_info};

use crate::Resources;

/// Resources an operation takes, and what it gives back in their place.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub consumed: Resources,
    pub converted: Resources,
}

/// Why an operation cannot apply to the resources it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    #[error("'{resource}' is not dynamically reserved")]
    NotDynamicallyReserved { resource: String },
    #[error("'{resource}' is a persistent volume; destroy it before unreserving")]
    IsVolume { resource: String },
    #[error(
        "'{resource}' is not a persistent volume (it needs disk.persistence.id and disk.volume)"
    )]
    NotVolume { resource: String },
    #[error("'{resource}' is not disk: only disk can hold a persistent volume")]
    NotDisk { resource: String },
    #[error("persistent volume '{id}' would be created on unreserved disk")]
    UnreservedVolume { id: String },
    #[error(
        "a persistent volume's container_path must be relative and stay in the sandbox, not '{path}'"
    )]
    VolumePath { path: String },
    #[error("persistent volume ID '{id}' is invalid: {reason}")]
    VolumeId { id: String, reason: String },
    #[error("no resources given")]
    Empty,
}

/// Whether the entry's innermost reservation is dynamic.
pub fn is_dynamically_reserved(r: &v1::Resource) -> bool {
    r.reservations
        .last()
        .is_some_and(|res| res.r#type == Some(reservation_info::Type::Dynamic as i32))
}

/// Whether the entry is a persistent volume.
pub fn is_persistent_volume(r: &v1::Resource) -> bool {
    r.disk.as_ref().is_some_and(|d| d.persistence.is_some())
}

/// The persistent volume's ID, if the entry is one.
pub fn persistence_id(r: &v1::Resource) -> Option<&str> {
    r.disk
        .as_ref()
        .and_then(|d| d.persistence.as_ref())
        .map(|p| p.id.as_str())
}

/// The entry without its innermost reservation.
fn pop_reservation(r: &v1::Resource) -> v1::Resource {
    let mut out = r.clone();
    out.reservations.pop();
    // Derived from the reservation stack again when normalised.
    out.role = None;
    out.reservation = None;
    out
}

/// The disk a persistent volume was made of.
fn strip_volume(r: &v1::Resource) -> v1::Resource {
    let mut out = r.clone();
    if let Some(disk) = out.disk.as_mut() {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            out.disk = None;
        }
    }
    out
}

/// What the entry was before any operation: no volume, no dynamic
/// reservation (static reservations come from `--resources`).
fn base(r: &v1::Resource) -> v1::Resource {
    let mut out = strip_volume(r);
    while is_dynamically_reserved(&out) {
        out = pop_reservation(&out);
    }
    out
}

/// The part of `total` that operations made: what the agent checkpoints.
pub fn checkpointed(total: &Resources) -> Resources {
    total
        .iter()
        .filter(|r| is_dynamically_reserved(r) || is_persistent_volume(r))
        .cloned()
        .collect()
}

/// The agent's total from its static resources and its checkpointed ones,
/// or `None` when the static resources cannot have produced them (the
/// agent's `--resources` shrank under a reservation).
pub fn apply_checkpointed(static_total: &Resources, checkpointed: &Resources) -> Option<Resources> {
    let bases: Resources = checkpointed.iter().map(base).collect();
    let mut total = static_total.checked_sub(&bases)?;
    total.add(checkpointed);
    Some(total)
}

fn text(r: &v1::Resource) -> String {
    Resources::from(vec![r.clone()]).to_string()
}

/// RESERVE: `resources` name the reservation they get (the innermost
/// reservation is the new, dynamic one).
pub fn reserve(resources: &Resources) -> Result<Conversion, OperationError> {
    if resources.is_empty() {
        return Err(OperationError::Empty);
    }
    let mut consumed = Resources::default();
    for r in resources.iter() {
        if !is_dynamically_reserved(r) {
            return Err(OperationError::NotDynamicallyReserved { resource: text(r) });
        }
        if is_persistent_volume(r) {
            return Err(OperationError::IsVolume { resource: text(r) });
        }
        consumed.add(&Resources::from(vec![pop_reservation(r)]));
    }
    Ok(Conversion {
        consumed,
        converted: resources.clone(),
    })
}

/// UNRESERVE: the inverse of [`reserve`].
pub fn unreserve(resources: &Resources) -> Result<Conversion, OperationError> {
    let reserve = reserve(resources)?;
    Ok(Conversion {
        consumed: reserve.converted,
        converted: reserve.consumed,
    })
}

/// CREATE: reserved disk becomes the named volumes.
pub fn create(volumes: &Resources) -> Result<Conversion, OperationError> {
    if volumes.is_empty() {
        return Err(OperationError::Empty);
    }
    let mut consumed = Resources::default();
    for r in volumes.iter() {
        check_volume(r)?;
        consumed.add(&Resources::from(vec![strip_volume(r)]));
    }
    Ok(Conversion {
        consumed,
        converted: volumes.clone(),
    })
}

/// DESTROY: the inverse of [`create`].
pub fn destroy(volumes: &Resources) -> Result<Conversion, OperationError> {
    let create = create(volumes)?;
    Ok(Conversion {
        consumed: create.converted,
        converted: create.consumed,
    })
}

fn check_volume(r: &v1::Resource) -> Result<(), OperationError> {
    if r.name != "disk" {
        return Err(OperationError::NotDisk { resource: text(r) });
    }
    let disk = r.disk.as_ref();
    let (Some(persistence), Some(volume)) = (
        disk.and_then(|d| d.persistence.as_ref()),
        disk.and_then(|d| d.volume.as_ref()),
    ) else {
        return Err(OperationError::NotVolume { resource: text(r) });
    };
    mesos_proto::ids::validate_id(&persistence.id).map_err(|e| OperationError::VolumeId {
        id: persistence.id.clone(),
        reason: e,
    })?;
    if crate::reserved_role(r).is_none() {
        return Err(OperationError::UnreservedVolume {
            id: persistence.id.clone(),
        });
    }
    let path = std::path::Path::new(&volume.container_path);
    let escapes = path.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if volume.container_path.is_empty() || escapes {
        return Err(OperationError::VolumePath {
            path: volume.container_path.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_resources;
    use mesos_proto::v1::resource::{DiskInfo, ReservationInfo, disk_info};

    fn res(text: &str) -> Resources {
        Resources::from(parse_resources(text, "*").unwrap())
    }

    fn dynamic(text: &str, role: &str) -> Resources {
        parse_resources(text, "*")
            .unwrap()
            .into_iter()
            .map(|mut r| {
                r.reservations.push(ReservationInfo {
                    r#type: Some(reservation_info::Type::Dynamic as i32),
                    role: Some(role.into()),
                    principal: Some("ops".into()),
                    labels: None,
                });
                r
            })
            .collect()
    }

    fn volume(id: &str, mb: f64, role: &str, path: &str) -> Resources {
        dynamic(&format!("disk:{mb}"), role)
            .into_vec()
            .into_iter()
            .map(|mut r| {
                r.disk = Some(Box::new(DiskInfo {
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
                }));
                r
            })
            .collect()
    }

    #[test]
    fn reserve_then_unreserve_round_trips() {
        let total = res("cpus:4;mem:1024;disk:100");
        let reserve = reserve(&dynamic("cpus:1;disk:50", "web")).unwrap();
        assert_eq!(reserve.consumed, res("cpus:1;disk:50"));
        let mut after = total.checked_sub(&reserve.consumed).unwrap();
        after.add(&reserve.converted);
        assert_eq!(after.scalar("cpus"), 4.0, "quantities do not change");
        assert!(!after.contains(&res("cpus:4")));
        assert_eq!(checkpointed(&after), dynamic("cpus:1;disk:50", "web"));
        assert_eq!(
            apply_checkpointed(&total, &checkpointed(&after)).unwrap(),
            after
        );

        let unreserve = unreserve(&dynamic("cpus:1;disk:50", "web")).unwrap();
        let mut back = after.checked_sub(&unreserve.consumed).unwrap();
        back.add(&unreserve.converted);
        assert_eq!(back, total);
    }

    #[test]
    fn volumes_are_made_of_reserved_disk() {
        let reserved = dynamic("disk:50", "web");
        let create = create(&volume("v1", 20.0, "web", "data")).unwrap();
        assert_eq!(create.consumed, dynamic("disk:20", "web"));
        let mut after = reserved.checked_sub(&create.consumed).unwrap();
        after.add(&create.converted);
        assert!(after.contains(&volume("v1", 20.0, "web", "data")));
        assert!(
            !after.contains(&volume("v2", 20.0, "web", "data")),
            "another ID is another volume"
        );
        let static_total = res("disk:100");
        let rebuilt = apply_checkpointed(&static_total, &checkpointed(&after)).unwrap();
        assert_eq!(rebuilt.scalar("disk"), 100.0);
        assert!(rebuilt.contains(&volume("v1", 20.0, "web", "data")));
        assert!(rebuilt.contains(&dynamic("disk:30", "web")));

        let destroy = destroy(&volume("v1", 20.0, "web", "data")).unwrap();
        let mut back = after.checked_sub(&destroy.consumed).unwrap();
        back.add(&destroy.converted);
        assert_eq!(back, reserved);
    }

    #[test]
    fn bad_operations_say_what_is_wrong() {
        assert!(matches!(
            reserve(&res("cpus:1")),
            Err(OperationError::NotDynamicallyReserved { .. })
        ));
        assert!(matches!(
            unreserve(&res("cpus(web):1")),
            Err(OperationError::NotDynamicallyReserved { .. }),
        ));
        assert!(matches!(
            unreserve(&volume("v", 1.0, "web", "d")),
            Err(OperationError::IsVolume { .. })
        ));
        assert!(matches!(
            create(&dynamic("disk:1", "web")),
            Err(OperationError::NotVolume { .. })
        ));
        let mut unreserved = volume("v", 1.0, "web", "d").into_vec();
        unreserved[0].reservations.clear();
        unreserved[0].role = None;
        unreserved[0].reservation = None;
        assert!(matches!(
            create(&Resources::from(unreserved)),
            Err(OperationError::UnreservedVolume { .. })
        ));
        for path in ["../up", "/abs", ""] {
            assert!(
                matches!(
                    create(&volume("v", 1.0, "web", path)),
                    Err(OperationError::VolumePath { .. })
                ),
                "{path}"
            );
        }
        assert!(matches!(
            create(&volume("a/b", 1.0, "web", "d")),
            Err(OperationError::VolumeId { .. })
        ));
        assert_eq!(reserve(&Resources::default()), Err(OperationError::Empty));
    }

    #[test]
    fn checkpoint_that_static_resources_cannot_hold_is_refused() {
        let checkpointed = dynamic("cpus:3", "web");
        assert!(apply_checkpointed(&res("cpus:2"), &checkpointed).is_none());
        assert!(apply_checkpointed(&res("cpus:3"), &checkpointed).is_some());
    }
}
