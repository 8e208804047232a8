//! Scalar quantities of the resources that count for shares and quota, as
//! whole thousandths (the grid `Resources` uses), so the hot loop compares
//! and adds integers instead of walking resource lists by name.

use mesos_proto::v1;
use mesos_resources::Resources;

/// The resources DRF and quota look at, in `Qty` slot order.
pub const KINDS: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

/// The `Qty` slot of a resource name.
pub fn kind(name: &str) -> Option<usize> {
    KINDS.iter().position(|k| *k == name)
}

pub fn to_millis(value: f64) -> i64 {
    // `as` saturates and maps NaN to 0: a corrupt value counts as nothing.
    (value * 1000.0).round() as i64
}

pub fn from_millis(millis: i64) -> f64 {
    millis as f64 / 1000.0 + 0.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qty(pub [i64; KINDS.len()]);

impl Qty {
    pub fn of(resources: &Resources) -> Qty {
        let mut q = Qty::default();
        for r in resources.iter() {
            q.add_entry(r);
        }
        q
    }

    pub fn add_entry(&mut self, r: &v1::Resource) {
        if let (Some(k), Some(s)) = (kind(&r.name), r.scalar.as_ref()) {
            self.0[k] = self.0[k].saturating_add(to_millis(s.value));
        }
    }

    pub fn add(&mut self, other: &Qty) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    /// `self - other`, floored at zero: accounting never goes negative even
    /// if a caller returns more than it was given.
    pub fn sub(&mut self, other: &Qty) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_sub(b).max(0);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }

    /// Largest fraction of `total` this is, over the kinds `total` has.
    pub fn dominant_share(&self, total: &Qty) -> f64 {
        self.0
            .iter()
            .zip(total.0)
            .filter(|(_, t)| *t > 0)
            .map(|(a, t)| *a as f64 / t as f64)
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_floor() {
        let total = Qty([4000, 1_024_000, 0, 0]);
        let used = Qty([1000, 512_000, 0, 0]);
        assert_eq!(used.dominant_share(&total), 0.5);
        let mut q = used;
        q.sub(&Qty([2000, 0, 0, 0]));
        assert_eq!(q.0[0], 0);
        assert_eq!(to_millis(0.1) * 3, to_millis(0.3));
    }
}
