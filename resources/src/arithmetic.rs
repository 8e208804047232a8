//! `Resources`: a normalised bag of resources with exact arithmetic.
//!
//! Scalars are kept on Mesos's fixed-point grid of 1/1000, so adding and
//! subtracting the same amounts any number of times gives back exactly
//! what was there (0.1 cpus taken and returned a million times is still
//! 0.1). Entries that differ only in their value (same name, type, role,
//! reservations, allocation, disk, ...) are merged.

use std::fmt;

use mesos_proto::v1::{self, value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    items: Vec<v1::Resource>,
}

fn round(x: f64) -> f64 {
    // `+ 0.0` turns -0.0 (the sum of nothing) into 0.0.
    (x * 1000.0).round() / 1000.0 + 0.0
}

/// The resource without its quantity: what decides whether two entries are
/// "the same resource".
fn identity(r: &v1::Resource) -> v1::Resource {
    v1::Resource {
        scalar: None,
        ranges: None,
        set: None,
        ..r.clone()
    }
}

fn coalesce(mut ranges: Vec<value::Range>) -> Vec<value::Range> {
    ranges.retain(|r| r.begin <= r.end);
    ranges.sort_by_key(|r| r.begin);
    let mut out: Vec<value::Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.begin <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// `a - b` for coalesced range lists, or `None` if `b` is not inside `a`.
fn subtract_ranges(a: &[value::Range], b: &[value::Range]) -> Option<Vec<value::Range>> {
    let mut out = a.to_vec();
    for cut in b {
        let i = out
            .iter()
            .position(|r| r.begin <= cut.begin && cut.end <= r.end)?;
        let r = out.remove(i);
        if r.begin < cut.begin {
            out.push(value::Range {
                begin: r.begin,
                end: cut.begin - 1,
            });
        }
        if cut.end < r.end {
            out.push(value::Range {
                begin: cut.end + 1,
                end: r.end,
            });
        }
    }
    Some(coalesce(out))
}

fn is_empty_value(r: &v1::Resource) -> bool {
    match r.r#type() {
        value::Type::Scalar => r.scalar.as_ref().is_none_or(|s| round(s.value) <= 0.0),
        value::Type::Ranges => r.ranges.as_ref().is_none_or(|x| x.range.is_empty()),
        value::Type::Set => r.set.as_ref().is_none_or(|x| x.item.is_empty()),
        value::Type::Text => true,
    }
}

fn normalise(mut r: v1::Resource) -> v1::Resource {
    // `*` is the default role: spelled out or not, it is the same resource.
    if r.role.as_deref() == Some("*") {
        r.role = None;
    }
    if let Some(s) = r.scalar.as_mut() {
        s.value = round(s.value);
    }
    if let Some(x) = r.ranges.as_mut() {
        x.range = coalesce(std::mem::take(&mut x.range));
    }
    if let Some(x) = r.set.as_mut() {
        x.item.sort();
        x.item.dedup();
    }
    r
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

impl Resources {
    pub fn iter(&self) -> impl Iterator<Item = &v1::Resource> {
        self.items.iter()
    }

    pub fn into_vec(self) -> Vec<v1::Resource> {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn add_one(&mut self, r: v1::Resource) {
        let r = normalise(r);
        if is_empty_value(&r) {
            return;
        }
        let id = identity(&r);
        match self.items.iter_mut().find(|x| identity(x) == id) {
            Some(existing) => match r.r#type() {
                value::Type::Scalar => {
                    if let (Some(a), Some(b)) = (existing.scalar.as_mut(), r.scalar.as_ref()) {
                        a.value = round(a.value + b.value);
                    }
                }
                value::Type::Ranges => {
                    if let (Some(a), Some(b)) = (existing.ranges.as_mut(), r.ranges.as_ref()) {
                        let mut all = std::mem::take(&mut a.range);
                        all.extend(b.range.iter().cloned());
                        a.range = coalesce(all);
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
            },
            None => self.items.push(r),
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
            let id = identity(r);
            let i = out.items.iter().position(|x| identity(x) == id)?;
            let existing = &mut out.items[i];
            match r.r#type() {
                value::Type::Scalar => {
                    let have = existing.scalar.as_ref()?.value;
                    let take = r.scalar.as_ref()?.value;
                    let left = round(have - take);
                    if left < 0.0 {
                        return None;
                    }
                    existing.scalar = Some(value::Scalar { value: left });
                }
                value::Type::Ranges => {
                    let left = subtract_ranges(
                        &existing.ranges.as_ref()?.range,
                        &r.ranges.as_ref()?.range,
                    )?;
                    existing.ranges = Some(value::Ranges { range: left });
                }
                value::Type::Set => {
                    let have = &existing.set.as_ref()?.item;
                    let take = &r.set.as_ref()?.item;
                    if !take.iter().all(|t| have.contains(t)) {
                        return None;
                    }
                    let left = have.iter().filter(|h| !take.contains(h)).cloned().collect();
                    existing.set = Some(value::Set { item: left });
                }
                value::Type::Text => return None,
            }
            if is_empty_value(&out.items[i]) {
                out.items.remove(i);
            }
        }
        Some(out)
    }

    pub fn contains(&self, other: &Resources) -> bool {
        self.checked_sub(other).is_some()
    }

    /// Sum of a scalar resource over every role.
    pub fn scalar(&self, name: &str) -> f64 {
        round(
            self.items
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.as_ref())
                .map(|s| s.value)
                .sum(),
        )
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
        Resources::from(
            self.items
                .iter()
                .cloned()
                .map(|mut r| {
                    r.allocation_info = None;
                    r
                })
                .collect::<Vec<_>>(),
        )
    }
}

/// The role an entry is reserved for, `None` when unreserved.
pub(crate) fn reserved_role(r: &v1::Resource) -> Option<&str> {
    r.reservations
        .last()
        .and_then(|res| res.role.as_deref())
        .or(r.role.as_deref())
        .filter(|role| *role != "*")
}

pub(crate) fn value_text(r: &v1::Resource) -> String {
    match r.r#type() {
        value::Type::Scalar => format_scalar(r.scalar.as_ref().map(|s| s.value).unwrap_or(0.0)),
        value::Type::Ranges => {
            format_ranges(r.ranges.as_ref().map(|x| x.range.as_slice()).unwrap_or(&[]))
        }
        value::Type::Set => format!(
            "{{{}}}",
            r.set
                .as_ref()
                .map(|s| s.item.join(", "))
                .unwrap_or_default()
        ),
        value::Type::Text => String::new(),
    }
}

pub(crate) fn format_scalar(v: f64) -> String {
    let v = round(v);
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub(crate) fn format_ranges(ranges: &[value::Range]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.begin, r.end))
        .collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .items
            .iter()
            .map(|r| match reserved_role(r) {
                Some(role) => format!("{}({role}):{}", r.name, value_text(r)),
                None => format!("{}:{}", r.name, value_text(r)),
            })
            .collect();
        write!(f, "{}", parts.join("; "))
    }
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
        let mut total = res("cpus:1;mem:1024");
        let task = res("cpus:0.1;mem:32");
        for _ in 0..10_000 {
            total = total.checked_sub(&task).unwrap();
            total.add(&task);
        }
        assert_eq!(total, res("cpus:1;mem:1024"));
        let mut pieces = Resources::default();
        for _ in 0..10 {
            pieces.add(&res("cpus:0.1"));
        }
        assert_eq!(pieces.scalar("cpus"), 1.0);
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
    fn star_role_is_the_default_role() {
        let mut spelled = parse_resources("cpus:1", "*").unwrap();
        spelled[0].role = Some("*".into());
        assert_eq!(Resources::from(spelled), res("cpus:1"));
    }

    #[test]
    fn allocation_keeps_quantities() {
        let mut r = res("cpus:1;mem:64");
        r.allocate("web");
        assert!(r.iter().all(|x| x.allocation_info.is_some()));
        assert_eq!(r.unallocated(), res("cpus:1;mem:64"));
    }
}
