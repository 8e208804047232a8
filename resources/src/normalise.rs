//! The canonical form of one resource entry, and what makes two entries
//! "the same resource" (everything but the quantity).
//!
//! Pre-refinement frameworks spell a reservation with the `role` field (and
//! `reservation` for dynamic ones), newer code with `reservations`. Mesos
//! upgrades the first form on the way in and fills it back in on the way
//! out; keeping both forms filled in here lets entries compare equal
//! whichever way a client spelled them.

use mesos_proto::v1::resource::{ReservationInfo, reservation_info};
use mesos_proto::v1::{self, value};

use crate::{ranges, scalar};

/// The entry in canonical form: `*` spelled as no role, both reservation
/// spellings filled in, scalar on the fixed-point grid, ranges coalesced,
/// set items sorted and unique.
pub(crate) fn normalise(mut r: v1::Resource) -> v1::Resource {
    if r.role.as_deref() == Some("*") {
        r.role = None;
    }
    match (r.role.clone(), r.reservations.last().cloned()) {
        (Some(role), None) => r.reservations.push(upgraded(&r, role)),
        (None, Some(last)) => {
            r.role = last.role.clone().filter(|role| role != "*");
            if last.r#type == Some(reservation_info::Type::Dynamic as i32)
                && r.reservation.is_none()
            {
                r.reservation = Some(ReservationInfo {
                    principal: last.principal,
                    labels: last.labels,
                    ..Default::default()
                });
            }
        }
        _ => {}
    }
    if let Some(s) = r.scalar.as_mut() {
        s.value = scalar::round(s.value);
    }
    if let Some(x) = r.ranges.as_mut() {
        x.range = ranges::coalesce(std::mem::take(&mut x.range));
    }
    if let Some(x) = r.set.as_mut() {
        x.item.sort();
        x.item.dedup();
    }
    r
}

/// The refinement-style reservation for a pre-refinement `role`: dynamic
/// when the old `reservation` field says who reserved it, else static.
fn upgraded(r: &v1::Resource, role: String) -> ReservationInfo {
    match &r.reservation {
        Some(old) => ReservationInfo {
            r#type: Some(reservation_info::Type::Dynamic as i32),
            role: Some(role),
            principal: old.principal.clone(),
            labels: old.labels.clone(),
        },
        None => ReservationInfo {
            r#type: Some(reservation_info::Type::Static as i32),
            role: Some(role),
            ..Default::default()
        },
    }
}

/// Whether two normalised entries differ only in quantity.
pub(crate) fn same_resource(a: &v1::Resource, b: &v1::Resource) -> bool {
    // Cheap checks first: most pairs differ by name.
    if a.name != b.name || a.r#type != b.r#type || a.role != b.role {
        return false;
    }
    // Comparing the whole message minus its value keeps this right when
    // fields are added to `Resource`.
    without_value(a) == without_value(b)
}

fn without_value(r: &v1::Resource) -> v1::Resource {
    v1::Resource {
        scalar: None,
        ranges: None,
        set: None,
        ..r.clone()
    }
}

/// Whether the entry holds nothing and so is dropped from a bag.
pub(crate) fn is_empty(r: &v1::Resource) -> bool {
    match r.r#type() {
        value::Type::Scalar => r
            .scalar
            .as_ref()
            .is_none_or(|s| scalar::to_millis(s.value) <= 0),
        value::Type::Ranges => r.ranges.as_ref().is_none_or(|x| x.range.is_empty()),
        value::Type::Set => r.set.as_ref().is_none_or(|x| x.item.is_empty()),
        value::Type::Text => true,
    }
}

/// Mesos's checks on a single resource: a name, a value matching the
/// type, no negative or non-finite scalar, no text.
pub fn validate(r: &v1::Resource) -> Result<(), String> {
    if r.name.is_empty() {
        return Err("empty name".into());
    }
    let Ok(kind) = value::Type::try_from(r.r#type) else {
        return Err(format!("unknown type {}", r.r#type));
    };
    match kind {
        value::Type::Scalar => match &r.scalar {
            None => Err("a SCALAR resource needs a 'scalar' value".into()),
            Some(s) if !s.value.is_finite() => Err("a scalar must be finite".into()),
            Some(s) if s.value < 0.0 => Err("a scalar resource cannot be negative".into()),
            Some(_) => Ok(()),
        },
        value::Type::Ranges => match &r.ranges {
            None => Err("a RANGES resource needs a 'ranges' value".into()),
            Some(x) => match x.range.iter().find(|range| range.begin > range.end) {
                Some(bad) => Err(format!(
                    "range {}-{} ends before it begins",
                    bad.begin, bad.end
                )),
                None => Ok(()),
            },
        },
        value::Type::Set => match &r.set {
            None => Err("a SET resource needs a 'set' value".into()),
            Some(_) => Ok(()),
        },
        value::Type::Text => Err("resources cannot be text".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(value: f64) -> v1::Resource {
        v1::Resource {
            name: "cpus".into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value }),
            ..Default::default()
        }
    }

    #[test]
    fn pre_refinement_role_becomes_a_static_reservation() {
        let r = normalise(v1::Resource {
            role: Some("web".into()),
            ..cpus(1.0)
        });
        assert_eq!(r.reservations.len(), 1);
        assert_eq!(r.reservations[0].role.as_deref(), Some("web"));
        assert_eq!(
            r.reservations[0].r#type,
            Some(reservation_info::Type::Static as i32)
        );
        let star = normalise(v1::Resource {
            role: Some("*".into()),
            ..cpus(1.0)
        });
        assert_eq!(star, cpus(1.0));
    }

    #[test]
    fn both_reservation_spellings_meet() {
        let old = normalise(v1::Resource {
            role: Some("web".into()),
            reservation: Some(ReservationInfo {
                principal: Some("ops".into()),
                ..Default::default()
            }),
            ..cpus(2.0)
        });
        let new = normalise(v1::Resource {
            reservations: vec![ReservationInfo {
                r#type: Some(reservation_info::Type::Dynamic as i32),
                role: Some("web".into()),
                principal: Some("ops".into()),
                labels: None,
            }],
            ..cpus(1.0)
        });
        assert!(same_resource(&old, &new), "{old:?}\n{new:?}");
        assert!(!same_resource(&old, &normalise(cpus(1.0))));
    }

    #[test]
    fn validation() {
        assert!(validate(&cpus(1.0)).is_ok());
        assert!(validate(&cpus(-1.0)).is_err());
        assert!(validate(&cpus(f64::INFINITY)).is_err());
        assert!(
            validate(&v1::Resource {
                scalar: None,
                ..cpus(0.0)
            })
            .is_err()
        );
        assert!(
            validate(&v1::Resource {
                r#type: value::Type::Text as i32,
                ..cpus(0.0)
            })
            .is_err()
        );
        assert!(
            validate(&v1::Resource {
                r#type: 42,
                ..cpus(0.0)
            })
            .is_err()
        );
        assert!(is_empty(&cpus(0.0004)));
        assert!(!is_empty(&cpus(0.001)));
    }
}
