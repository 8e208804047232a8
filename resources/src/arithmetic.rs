//! `Resources`: a normalised bag of resources with exact arithmetic.
//!
//! Entries that differ only in their value (same name, type, role,
//! reservations, allocation, disk, ...) are merged: scalars added, ranges
//! coalesced, sets unioned. Scalars are added and subtracted as whole
//! thousandths, so accepting and returning resources never drifts.

use mesos_proto::v1::{self, value};

use crate::normalise::{is_empty, normalise, same_resource};
use crate::{ranges, scalar};

#[derive(Debug, Clone, Default)]
pub struct Resources {
    items: Vec<v1::Resource>,
}

impl From<Vec<v1::Resource>> for Resources {
    fn from(items: Vec<v1::Resource>) -> Self {
        let mut out = Resources::default();
        for r in items {
            out.add_one(r);
        }
        out
    }
}

impl From<Resources> for Vec<v1::Resource> {
    fn from(resources: Resources) -> Self {
        resources.items
    }
}

impl FromIterator<v1::Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = v1::Resource>>(iter: I) -> Self {
        let mut out = Resources::default();
        for r in iter {
            out.add_one(r);
        }
        out
    }
}

/// Equal when they hold the same resources, in whatever order they were
/// added.
impl PartialEq for Resources {
    fn eq(&self, other: &Self) -> bool {
        // Normalisation leaves at most one entry per resource, so equal
        // lengths plus every entry found means the same bag.
        self.items.len() == other.items.len() && self.items.iter().all(|r| other.items.contains(r))
    }
}

impl Resources {
    pub fn iter(&self) -> std::slice::Iter<'_, v1::Resource> {
        self.items.iter()
    }

    pub fn as_slice(&self) -> &[v1::Resource] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<v1::Resource> {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn add_one(&mut self, r: v1::Resource) {
        let r = normalise(r);
        if is_empty(&r) {
            return;
        }
        let Some(existing) = self.items.iter_mut().find(|x| same_resource(x, &r)) else {
            self.items.push(r);
            return;
        };
        match r.r#type() {
            value::Type::Scalar => {
                if let (Some(a), Some(b)) = (existing.scalar.as_mut(), r.scalar.as_ref()) {
                    a.value = scalar::from_millis(
                        scalar::to_millis(a.value).saturating_add(scalar::to_millis(b.value)),
                    );
                }
            }
            value::Type::Ranges => {
                if let (Some(a), Some(b)) = (existing.ranges.as_mut(), r.ranges.as_ref()) {
                    let mut all = std::mem::take(&mut a.range);
                    all.extend(b.range.iter().cloned());
                    a.range = ranges::coalesce(all);
                }
            }
            value::Type::Set => {
                if let (Some(a), Some(b)) = (existing.set.as_mut(), r.set.as_ref()) {
                    a.item.extend(b.item.iter().cloned());
                    a.item.sort();
                    a.item.dedup();
                }
            }
            value::Type::Text => {}
        }
    }

    pub fn add(&mut self, other: &Resources) {
        for r in &other.items {
            self.add_one(r.clone());
        }
    }

    /// `self - other`, or `None` if `other` is not contained in `self`.
    pub fn checked_sub(&self, other: &Resources) -> Option<Resources> {
        let mut out = self.clone();
        for r in &other.items {
            let i = out.items.iter().position(|x| same_resource(x, r))?;
            let left = take(&out.items[i], r)?;
            if is_empty(&left) {
                out.items.remove(i);
            } else {
                out.items[i] = left;
            }
        }
        Some(out)
    }

    pub fn contains(&self, other: &Resources) -> bool {
        self.checked_sub(other).is_some()
    }

    /// Sum of a scalar resource over every role and allocation.
    pub fn scalar(&self, name: &str) -> f64 {
        let millis = self
            .items
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref())
            .map(|s| scalar::to_millis(s.value))
            .fold(0i64, i64::saturating_add);
        scalar::from_millis(millis)
    }

    /// Marks every entry as allocated to `role`.
    pub fn allocate(&mut self, role: &str) {
        let items = std::mem::take(&mut self.items);
        for mut r in items {
            r.allocation_info = Some(v1::resource::AllocationInfo {
                role: Some(role.to_string()),
            });
            self.add_one(r);
        }
    }

    /// The same resources without allocation information.
    pub fn unallocated(&self) -> Resources {
        self.items
            .iter()
            .cloned()
            .map(|mut r| {
                r.allocation_info = None;
                r
            })
            .collect()
    }
}

/// `have - take` for two entries of the same resource, `None` when `take`
/// is more than `have`.
fn take(have: &v1::Resource, take: &v1::Resource) -> Option<v1::Resource> {
    let mut left = have.clone();
    match take.r#type() {
        value::Type::Scalar => {
            let millis = scalar::to_millis(have.scalar.as_ref()?.value)
                .checked_sub(scalar::to_millis(take.scalar.as_ref()?.value))?;
            if millis < 0 {
                return None;
            }
            left.scalar = Some(value::Scalar {
                value: scalar::from_millis(millis),
            });
        }
        value::Type::Ranges => {
            let range =
                ranges::subtract(&have.ranges.as_ref()?.range, &take.ranges.as_ref()?.range)?;
            left.ranges = Some(value::Ranges { range });
        }
        value::Type::Set => {
            let have = &have.set.as_ref()?.item;
            let take = &take.set.as_ref()?.item;
            if !take.iter().all(|t| have.contains(t)) {
                return None;
            }
            let item = have.iter().filter(|h| !take.contains(h)).cloned().collect();
            left.set = Some(value::Set { item });
        }
        value::Type::Text => return None,
    }
    Some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_resources;

    fn res(text: &str) -> Resources {
        Resources::from(parse_resources(text, "*").unwrap())
    }

    #[test]
    fn scalar_arithmetic_never_drifts() {
        let start = res("cpus:1;mem:1024");
        let mut total = start.clone();
        let task = res("cpus:0.1;mem:32");
        for _ in 0..10_000 {
            total = total.checked_sub(&task).unwrap();
            total.add(&task);
        }
        assert_eq!(total, start);
        // Taking 0.1 ten times empties one cpu exactly; an eleventh fails.
        for _ in 0..10 {
            total = total.checked_sub(&res("cpus:0.1")).unwrap();
        }
        assert_eq!(total.scalar("cpus"), 0.0);
        assert!(!total.contains(&res("cpus:0.1")));
        assert_eq!(total, res("mem:1024"), "an emptied entry disappears");

        let mut pieces = Resources::default();
        for _ in 0..3_000 {
            pieces.add(&res("cpus:0.1"));
        }
        assert_eq!(pieces.scalar("cpus"), 300.0);
        assert_eq!(pieces.to_string(), "cpus:300");
        for _ in 0..2_999 {
            pieces = pieces.checked_sub(&res("cpus:0.1")).unwrap();
        }
        assert_eq!(pieces.scalar("cpus"), 0.1);
        assert_eq!(pieces, res("cpus:0.1"));
    }

    #[test]
    fn ranges_and_sets() {
        let total = res("ports:[31000-32000];disks:{a,b,c}");
        let left = total
            .checked_sub(&res("ports:[31000-31000,31500-31600];disks:{b}"))
            .unwrap();
        assert_eq!(
            left.to_string(),
            "ports:[31001-31499, 31601-32000]; disks:{a, c}"
        );
        assert!(!total.contains(&res("ports:[30000-31000]")));
        assert!(!total.contains(&res("disks:{z}")));
        let mut back = left;
        back.add(&res("ports:[31000-31000,31500-31600];disks:{b}"));
        assert_eq!(back, total);
        let all = total
            .checked_sub(&res("ports:[31000-32000];disks:{a,b,c}"))
            .unwrap();
        assert!(all.is_empty());
    }

    #[test]
    fn merges_same_resources() {
        let r = res("cpus:1;mem:10;cpus:2.5;ports:[1-2];ports:[3-5,9-9];s:{b,a};s:{c,a}");
        assert_eq!(r.iter().count(), 4);
        assert_eq!(
            r.to_string(),
            "cpus:3.5; mem:10; ports:[1-5, 9-9]; s:{a, b, c}"
        );
        assert_eq!(
            r,
            res("s:{a,b,c};ports:[9-9,1-5];mem:10;cpus:3.5"),
            "order-free"
        );
        assert_ne!(r, res("cpus:3.5;mem:10"));
        assert!(
            res("cpus:0;mem:0.0001").is_empty(),
            "empty entries are dropped"
        );
    }

    #[test]
    fn reservations_are_distinct_resources() {
        let total = res("cpus:2;cpus(web):1");
        assert_eq!(total.scalar("cpus"), 3.0);
        assert!(!total.contains(&res("cpus(db):1")));
        assert!(total.contains(&res("cpus(web):1;cpus:2")));
        assert!(
            !total.contains(&res("cpus:3")),
            "unreserved cpus are only 2"
        );
        assert_eq!(total.to_string(), "cpus:2; cpus(web):1");
    }

    #[test]
    fn star_role_and_old_style_roles_are_understood() {
        let mut spelled = parse_resources("cpus:1", "*").unwrap();
        spelled[0].role = Some("*".into());
        assert_eq!(Resources::from(spelled), res("cpus:1"));
        // A framework echoing only the deprecated `role` field gets back
        // what was reserved with both.
        let mut old_style = parse_resources("cpus:1", "*").unwrap();
        old_style[0].role = Some("web".into());
        assert!(res("cpus(web):2").contains(&Resources::from(old_style)));
    }

    #[test]
    fn allocation_keeps_quantities() {
        let mut r = res("cpus:1;mem:64");
        r.allocate("web");
        assert!(r.iter().all(|x| {
            x.allocation_info.as_ref().and_then(|a| a.role.as_deref()) == Some("web")
        }));
        assert!(!r.contains(&res("cpus:1")), "allocated is not unallocated");
        assert_eq!(r.scalar("cpus"), 1.0);
        assert_eq!(r.unallocated(), res("cpus:1;mem:64"));
        let mut twice = res("cpus:1");
        twice.allocate("a");
        twice.add(&res("cpus:1"));
        assert_eq!(twice.iter().count(), 2);
        twice.allocate("b");
        assert_eq!(twice.iter().count(), 1, "same allocation merges");
        assert_eq!(twice.scalar("cpus"), 2.0);
    }
}
