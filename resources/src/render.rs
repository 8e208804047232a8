//! The flat renderings of the legacy state endpoints.

use mesos_proto::v1::{self, value};
use serde_json::{Map, Value, json};

use crate::Resources;
use crate::arithmetic::{format_ranges, value_text};

/// `{"cpus":4,"gpus":0,"mem":1024,"disk":0,"ports":"[31000-32000]"}`:
/// scalars summed over roles, ranges and sets as text; cpus, gpus, mem and
/// disk always present.
pub fn state_json(resources: &Resources) -> Value {
    let mut out = Map::new();
    for name in ["cpus", "gpus", "mem", "disk"] {
        out.insert(name.to_string(), json!(0.0));
    }
    for r in resources.iter() {
        let key = if r.revocable.is_some() {
            format!("{}_revocable", r.name)
        } else {
            r.name.clone()
        };
        match r.r#type() {
            value::Type::Scalar => {
                let add = r.scalar.as_ref().map(|s| s.value).unwrap_or(0.0);
                let sum = out.get(&key).and_then(Value::as_f64).unwrap_or(0.0) + add;
                out.insert(key, json!((sum * 1000.0).round() / 1000.0));
            }
            _ => {
                out.insert(key, json!(value_text(r)));
            }
        }
    }
    Value::Object(out)
}

/// `{"rack":"abc","level":10,"keys":"[1000-1500]"}`.
pub fn attributes_state_json(attributes: &[v1::Attribute]) -> Value {
    let mut out = Map::new();
    for a in attributes {
        let v = match a.r#type() {
            value::Type::Scalar => json!(a.scalar.as_ref().map(|s| s.value).unwrap_or(0.0)),
            value::Type::Ranges => json!(format_ranges(
                a.ranges.as_ref().map(|r| r.range.as_slice()).unwrap_or(&[])
            )),
            value::Type::Set => json!(format!(
                "{{{}}}",
                a.set
                    .as_ref()
                    .map(|s| s.item.join(", "))
                    .unwrap_or_default()
            )),
            value::Type::Text => {
                json!(a.text.as_ref().map(|t| t.value.clone()).unwrap_or_default())
            }
        };
        out.insert(a.name.clone(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_state_shapes() {
        let r = Resources::from(
            crate::parse_resources("cpus:2;cpus(web):1.5;mem:64;ports:[1-2,4-5]", "*").unwrap(),
        );
        assert_eq!(
            state_json(&r),
            json!({"cpus": 3.5, "gpus": 0.0, "mem": 64.0, "disk": 0.0, "ports": "[1-2, 4-5]"})
        );
        let a = crate::parse_attributes("rack:abc;level:10;keys:[1000-1500]").unwrap();
        assert_eq!(
            attributes_state_json(&a),
            json!({"rack": "abc", "level": 10.0, "keys": "[1000-1500]"})
        );
    }
}
