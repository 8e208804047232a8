//! The flat renderings of the legacy state endpoints.

use mesos_proto::v1::{self, value};
use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::display::format_set;
use crate::{Resources, ranges, scalar};

/// One key's value summed over roles and allocations.
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

impl<'a, I> StateJson<I>
where
    I: Iterator<Item = &'a v1::Resource> + Clone,
{
    fn totals(&self) -> Vec<(Cow<'a, str>, Total)> {
        let mut totals: Vec<(Cow<'a, str>, Total)> = ["cpus", "gpus", "mem", "disk"]
            .into_iter()
            .map(|name| (Cow::Borrowed(name), Total::Scalar(0)))
            .collect();
        for r in self.0.clone() {
            let key: Cow<'_, str> = if r.revocable.is_some() {
                Cow::Owned(format!("{}_revocable", r.name))
            } else {
                Cow::Borrowed(r.name.as_str())
            };
            let i = match totals.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    let empty = match r.r#type() {
                        value::Type::Ranges => Total::Ranges(Vec::new()),
                        value::Type::Set => Total::Set(Vec::new()),
                        value::Type::Scalar | value::Type::Text => Total::Scalar(0),
                    };
                    totals.push((key, empty));
                    totals.len() - 1
                }
            };
            // An entry whose type disagrees with the first one of its name is
            // malformed input; the first type decides.
            match (&mut totals[i].1, r.r#type()) {
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
        totals
    }
}

impl<'a, I> Serialize for StateJson<I>
where
    I: Iterator<Item = &'a v1::Resource> + Clone,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let totals = self.totals();
        let mut map = serializer.serialize_map(Some(totals.len()))?;
        for (key, total) in &totals {
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
