//! Cutting an offer out of an agent's available resources: which entries a
//! role may use (unreserved ones and those reserved to the role or an
//! ancestor), unreserved scalars chopped to quota caps, and the
//! `--min_allocatable_resources` test.

use mesos_proto::v1;
use mesos_resources::{Resources, reserved_role};

use super::qty::{KINDS, Qty, from_millis, kind, to_millis};

/// What a framework would get from an agent.
#[derive(Debug)]
pub enum Carved {
    /// Everything available: the common case, taken without arithmetic.
    All,
    Part {
        offer: Resources,
        rest: Resources,
    },
}

/// Splits `available` into what a role may take and the rest.
/// `usable_reservation(role)` says whether entries reserved to `role` are
/// the taker's; `caps` bounds unreserved scalars per `Qty` slot.
pub fn carve(
    available: &Resources,
    usable_reservation: impl Fn(&str) -> bool,
    caps: Option<&Qty>,
) -> Carved {
    let mut unreserved = Qty::default();
    let mut usable = true;
    for r in available.iter() {
        match reserved_role(r) {
            Some(role) => usable &= usable_reservation(role),
            None => unreserved.add_entry(r),
        }
    }
    let fits = caps.is_none_or(|caps| unreserved.0.iter().zip(caps.0).all(|(a, c)| *a <= c));
    if usable && fits {
        return Carved::All;
    }
    let mut left = caps.copied();
    let mut offer = Vec::new();
    let mut rest = Vec::new();
    for r in available.iter() {
        match reserved_role(r) {
            Some(role) if usable_reservation(role) => offer.push(r.clone()),
            Some(_) => rest.push(r.clone()),
            None => match (left.as_mut(), kind(&r.name), r.scalar.as_ref()) {
                (Some(left), Some(k), Some(s)) => {
                    let have = to_millis(s.value);
                    let take = have.min(left.0[k]).max(0);
                    left.0[k] -= take;
                    if take > 0 {
                        offer.push(with_scalar(r, take));
                    }
                    if have > take {
                        rest.push(with_scalar(r, have - take));
                    }
                }
                _ => offer.push(r.clone()),
            },
        }
    }
    Carved::Part {
        offer: Resources::from(offer),
        rest: Resources::from(rest),
    }
}

fn with_scalar(r: &v1::Resource, millis: i64) -> v1::Resource {
    let mut out = r.clone();
    out.scalar = Some(v1::value::Scalar {
        value: from_millis(millis),
    });
    out
}

/// `--min_allocatable_resources`: alternatives (`|`) of quantities that must
/// all be present (`;`). An offer is worth making if it holds at least one
/// alternative; with no alternatives, anything non-empty is.
#[derive(Debug, Clone, PartialEq)]
pub struct MinAllocatable(pub Vec<Vec<(String, i64)>>);

impl Default for MinAllocatable {
    fn default() -> Self {
        MinAllocatable(vec![
            vec![("cpus".into(), to_millis(0.01))],
            vec![("mem".into(), to_millis(32.0))],
        ])
    }
}

impl MinAllocatable {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut alternatives = Vec::new();
        for alternative in text.split('|').filter(|a| !a.trim().is_empty()) {
            let mut all = Vec::new();
            for item in alternative.split(';').filter(|i| !i.trim().is_empty()) {
                let (name, value) = item.split_once(':').ok_or_else(|| {
                    format!("'{item}' is not NAME:QUANTITY in --min_allocatable_resources")
                })?;
                let value: f64 = value.trim().parse().map_err(|_| {
                    format!(
                        "'{item}': the quantity must be a number in --min_allocatable_resources"
                    )
                })?;
                if !value.is_finite() || value < 0.0 {
                    return Err(format!(
                        "'{item}': the quantity must be a non-negative number in --min_allocatable_resources"
                    ));
                }
                all.push((name.trim().to_string(), to_millis(value)));
            }
            alternatives.push(all);
        }
        Ok(MinAllocatable(alternatives))
    }

    pub fn allows(&self, offer: &Resources) -> bool {
        if offer.is_empty() {
            return false;
        }
        if self.0.is_empty() {
            return true;
        }
        let q = Qty::of(offer);
        self.0.iter().any(|all| {
            all.iter().all(|(name, min)| match kind(name) {
                Some(k) => q.0[k] >= *min,
                None => to_millis(offer.scalar(name)) >= *min,
            })
        })
    }
}

/// Caps per `Qty` slot with nothing capped.
pub fn unlimited() -> Qty {
    Qty([i64::MAX; KINDS.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(text: &str) -> Resources {
        Resources::from(mesos_resources::parse_resources(text, "*").unwrap())
    }

    #[test]
    fn reservations_and_caps() {
        let available = res("cpus:4;cpus(ops):2;mem:1024;ports:[1-10]");
        assert!(matches!(
            carve(&available, |r| r == "ops", None),
            Carved::All
        ));
        let Carved::Part { offer, rest } = carve(&available, |_| false, None) else {
            panic!("reserved cpus are not the taker's");
        };
        assert_eq!(offer, res("cpus:4;mem:1024;ports:[1-10]"));
        assert_eq!(rest, res("cpus(ops):2"));
        let mut caps = unlimited();
        caps.0[0] = to_millis(1.5);
        let Carved::Part { offer, rest } = carve(&available, |_| true, Some(&caps)) else {
            panic!("cpus are capped");
        };
        assert_eq!(offer, res("cpus:1.5;cpus(ops):2;mem:1024;ports:[1-10]"));
        assert_eq!(rest, res("cpus:2.5"));
    }

    #[test]
    fn min_allocatable_alternatives() {
        let min = MinAllocatable::default();
        assert!(min.allows(&res("cpus:0.01")));
        assert!(min.allows(&res("mem:32")));
        assert!(!min.allows(&res("mem:31;disk:100")));
        let both = MinAllocatable::parse("cpus:1;mem:128|gpus:1").unwrap();
        assert!(!both.allows(&res("cpus:1;mem:64")));
        assert!(both.allows(&res("cpus:1;mem:128")));
        assert!(both.allows(&res("gpus:1")));
        assert!(MinAllocatable::parse("cpus").is_err());
        assert!(MinAllocatable::parse("cpus:-1").is_err());
    }
}
