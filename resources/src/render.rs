//! The flat renderings of the legacy state endpoints.

use mesos_proto::v1::{self, value};
use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::display::format_set;
use crate::{Resources, ranges, scalar};

/// One key's value summed over roles and allocations.
#[derive(Debug, Clone)]
enum Total {
    Scalar(i64),
    Ranges(Vec<value::Range>),
    Set(Vec<String>),
}

/// `{"cpus":4,"gpus":0,"mem":1024,"disk":0,"ports":"[31000-32000]"}`:
/// every role and allocation summed, ranges and sets as text, revocable
/// resources under `<name>_revocable`; cpus, gpus, mem and disk always
/// present.
pub fn state_json(resources: &Resources) -> Value {
    serde_json::to_value(StateJson(resources.as_slice().iter())).unwrap_or(Value::Null)
}

/// [`state_json`] of any resource entries (summing them on the way, so
/// callers need not build a `Resources`), written straight to a
/// serializer for the large state endpoints that cannot afford a `Value`
/// per field.
#[derive(Clone)]
pub struct StateJson<I>(pub I);

impl<'a, I> Serialize for StateJson<I>
where
    I: Iterator<Item = &'a v1::Resource> + Clone,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateTotals::of(self.0.clone()).serialize(serializer)
    }
}

/// Resource entries summed per key as [`state_json`] shows them, to be
/// combined (`used` plus `offered`) before they are written.
#[derive(Debug, Clone, Default)]
pub struct StateTotals<'a> {
    /// cpus, gpus, mem and disk, always shown: kept apart so that the
    /// common case (a task's resources) allocates nothing.
    standard: [i64; 4],
    others: Vec<(Cow<'a, str>, Total)>,
}

const STANDARD: [&str; 4] = ["cpus", "gpus", "mem", "disk"];

impl<'a> StateTotals<'a> {
    pub fn of(resources: impl Iterator<Item = &'a v1::Resource>) -> Self {
        let mut totals = Self::default();
        for r in resources {
            totals.add(r);
        }
        totals
    }

    /// The four standard names are matched against literals: this runs
    /// for every entry of every task of a large state.
    fn standard_slot(name: &str) -> Option<usize> {
        match name {
            "cpus" => Some(0),
            "gpus" => Some(1),
            "mem" => Some(2),
            "disk" => Some(3),
            _ => None,
        }
    }

    /// The slot of a key other than the standard scalars, made if new.
    fn other_slot(&mut self, key: Cow<'a, str>, kind: value::Type) -> &mut Total {
        let i = match self.others.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let empty = match kind {
                    value::Type::Ranges => Total::Ranges(Vec::new()),
                    value::Type::Set => Total::Set(Vec::new()),
                    value::Type::Scalar | value::Type::Text => Total::Scalar(0),
                };
                self.others.push((key, empty));
                self.others.len() - 1
            }
        };
        &mut self.others[i].1
    }

    pub fn add(&mut self, r: &'a v1::Resource) {
        let kind = r.r#type();
        if r.revocable.is_none()
            && kind == value::Type::Scalar
            && let Some(i) = Self::standard_slot(&r.name)
        {
            let millis = r.scalar.as_ref().map(|s| scalar::to_millis(s.value));
            self.standard[i] = self.standard[i].saturating_add(millis.unwrap_or(0));
            return;
        }
        let key: Cow<'a, str> = if r.revocable.is_some() {
            Cow::Owned(format!("{}_revocable", r.name))
        } else {
            Cow::Borrowed(r.name.as_str())
        };
        // An entry whose type disagrees with the first one of its name is
        // malformed input; the first type decides.
        match (self.other_slot(key, kind), kind) {
            (Total::Scalar(sum), value::Type::Scalar) => {
                let millis = r.scalar.as_ref().map(|s| scalar::to_millis(s.value));
                *sum = sum.saturating_add(millis.unwrap_or(0));
            }
            (Total::Ranges(all), value::Type::Ranges) => {
                all.extend(r.ranges.iter().flat_map(|x| x.range.iter().cloned()));
                *all = ranges::coalesce(std::mem::take(all));
            }
            (Total::Set(all), value::Type::Set) => {
                all.extend(r.set.iter().flat_map(|x| x.item.iter().cloned()));
                all.sort();
                all.dedup();
            }
            _ => {}
        }
    }

    /// The same totals, owning their names, to be kept.
    pub fn into_owned(self) -> StateTotals<'static> {
        StateTotals {
            standard: self.standard,
            others: self
                .others
                .into_iter()
                .map(|(key, total)| (Cow::Owned(key.into_owned()), total))
                .collect(),
        }
    }

    /// Adds what `other` summed.
    pub fn merge(&mut self, other: &StateTotals<'a>) {
        for (mine, theirs) in self.standard.iter_mut().zip(other.standard) {
            *mine = mine.saturating_add(theirs);
        }
        for (key, total) in &other.others {
            let kind = match total {
                Total::Scalar(_) => value::Type::Scalar,
                Total::Ranges(_) => value::Type::Ranges,
                Total::Set(_) => value::Type::Set,
            };
            match (self.other_slot(key.clone(), kind), total) {
                (Total::Scalar(sum), Total::Scalar(more)) => *sum = sum.saturating_add(*more),
                (Total::Ranges(all), Total::Ranges(more)) => {
                    all.extend(more.iter().cloned());
                    *all = ranges::coalesce(std::mem::take(all));
                }
                (Total::Set(all), Total::Set(more)) => {
                    all.extend(more.iter().cloned());
                    all.sort();
                    all.dedup();
                }
                _ => {}
            }
        }
    }
}

impl Serialize for StateTotals<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(STANDARD.len() + self.others.len()))?;
        for (key, millis) in STANDARD.iter().zip(self.standard) {
            map.serialize_entry(key, &scalar::from_millis(millis))?;
        }
        for (key, total) in &self.others {
            match total {
                Total::Scalar(millis) => map.serialize_entry(key, &scalar::from_millis(*millis))?,
                Total::Ranges(r) => map.serialize_entry(key, &ranges::format(r))?,
                Total::Set(items) => map.serialize_entry(key, &format_set(items))?,
            }
        }
        map.end()
    }
}

/// `{"rack":"abc","level":10,"keys":"[1000-1500]"}`.
pub fn attributes_state_json(attributes: &[v1::Attribute]) -> Value {
    let out: Map<String, Value> = attributes
        .iter()
        .map(|a| {
            let v = match a.r#type() {
                value::Type::Scalar => json!(a.scalar.as_ref().map(|s| s.value).unwrap_or(0.0)),
                value::Type::Ranges => json!(ranges::format(
                    a.ranges.as_ref().map(|r| r.range.as_slice()).unwrap_or(&[])
                )),
                value::Type::Set => {
                    json!(format_set(
                        a.set.as_ref().map(|s| s.item.as_slice()).unwrap_or(&[])
                    ))
                }
                value::Type::Text => {
                    json!(a.text.as_ref().map(|t| t.value.clone()).unwrap_or_default())
                }
            };
            (a.name.clone(), v)
        })
        .collect();
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(text: &str) -> Resources {
        Resources::from(crate::parse_resources(text, "*").unwrap())
    }

    #[test]
    fn renders_state_shapes() {
        let r =
            res("cpus:2;cpus(web):1.5;mem:64;ports:[1-2,4-5];ports(web):[3-3];s:{b};s(web):{a}");
        let json = state_json(&r);
        assert_eq!(
            json,
            json!({"cpus": 3.5, "gpus": 0.0, "mem": 64.0, "disk": 0.0,
                   "ports": "[1-5]", "s": "{a, b}"})
        );
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["cpus", "gpus", "mem", "disk", "ports", "s"]);
    }

    #[test]
    fn empty_and_revocable() {
        assert_eq!(
            state_json(&Resources::default()),
            json!({"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0})
        );
        let mut revocable = crate::parse_resources("cpus:1", "*").unwrap();
        revocable[0].revocable = Some(v1::resource::RevocableInfo {});
        revocable.extend(crate::parse_resources("cpus:2", "*").unwrap());
        assert_eq!(
            state_json(&Resources::from(revocable)),
            json!({"cpus": 2.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0, "cpus_revocable": 1.0})
        );
    }

    #[test]
    fn sums_stay_exact() {
        let mut r = Resources::default();
        for _ in 0..1000 {
            r.add(&res("cpus(a):0.1"));
            r.add(&res("cpus(b):0.1"));
        }
        r.add(&res("cpus:0.1"));
        assert_eq!(state_json(&r)["cpus"], json!(200.1));
    }

    #[test]
    fn renders_attributes() {
        let a = crate::parse_attributes("rack:abc;level:10;keys:[1000-1500]").unwrap();
        assert_eq!(
            attributes_state_json(&a),
            json!({"rack": "abc", "level": 10.0, "keys": "[1000-1500]"})
        );
        assert_eq!(attributes_state_json(&[]), json!({}));
    }
}
