//! Mesos's `--resources` and `--attributes` formats.

use mesos_proto::v1::{self, value};

use crate::ResourceError;
use crate::normalise::validate;
use crate::scalar;
use crate::value::{Parsed, parse_value};

fn resource_error(token: &str, reason: impl Into<String>) -> ResourceError {
    ResourceError::Resource {
        token: token.to_string(),
        reason: reason.into(),
    }
}

fn attribute_error(token: &str, reason: impl Into<String>) -> ResourceError {
    ResourceError::Attribute {
        token: token.to_string(),
        reason: reason.into(),
    }
}

/// Parses `--resources`: a JSON array of Resource, or `name(role):value;...`.
/// Resources that name no role get `default_role`; a role other than `*` is
/// a static reservation, written both as `reservations` and as the
/// pre-refinement `role` our frameworks read.
pub fn parse_resources(text: &str, default_role: &str) -> Result<Vec<v1::Resource>, ResourceError> {
    let trimmed = text.trim();
    // Mesos tries JSON first and falls back to the text format on any
    // JSON syntax error.
    if trimmed.starts_with('[')
        && let Ok(serde_json::Value::Array(items)) =
            serde_json::from_str::<serde_json::Value>(trimmed)
    {
        return items
            .iter()
            .map(|item| parse_json_resource(item, default_role))
            .collect();
    }
    trimmed
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|token| parse_resource_token(token, default_role))
        .collect()
}

fn parse_json_resource(
    item: &serde_json::Value,
    default_role: &str,
) -> Result<v1::Resource, ResourceError> {
    let mut r: v1::Resource =
        mesos_proto::json::from_json_value(item).map_err(|e| ResourceError::Json(e.to_string()))?;
    validate(&r).map_err(|e| ResourceError::Json(format!("resource '{}': {e}", r.name)))?;
    if r.role.is_none() && r.reservations.is_empty() {
        apply_role(&mut r, default_role);
    } else if let Some(role) = r.role.clone() {
        apply_role(&mut r, &role);
    }
    if let Some(s) = r.scalar.as_mut() {
        s.value = scalar::round(s.value);
    }
    Ok(r)
}

/// One `name(role):value` token.
fn parse_resource_token(token: &str, default_role: &str) -> Result<v1::Resource, ResourceError> {
    let parts: Vec<&str> = token.split(':').collect();
    let [name, raw] = parts.as_slice() else {
        return Err(resource_error(token, "expected 'name:value'"));
    };
    let (name, role) = parse_name_and_role(name.trim()).map_err(|e| resource_error(token, e))?;
    let mut r = v1::Resource {
        name,
        ..Default::default()
    };
    match parse_value(raw).map_err(|e| resource_error(token, e))? {
        Parsed::Scalar(v) => {
            r.r#type = value::Type::Scalar as i32;
            r.scalar = Some(value::Scalar {
                value: scalar::round(v),
            });
        }
        Parsed::Ranges(range) => {
            r.r#type = value::Type::Ranges as i32;
            r.ranges = Some(value::Ranges { range });
        }
        Parsed::Set(item) => {
            r.r#type = value::Type::Set as i32;
            r.set = Some(value::Set { item });
        }
        Parsed::Text(t) if t.is_empty() => return Err(resource_error(token, "empty value")),
        Parsed::Text(_) => r.r#type = value::Type::Text as i32,
    }
    validate(&r).map_err(|e| resource_error(token, e))?;
    apply_role(&mut r, role.as_deref().unwrap_or(default_role));
    Ok(r)
}

/// `cpus` or `cpus(role)`.
fn parse_name_and_role(name: &str) -> Result<(String, Option<String>), String> {
    let (name, role) = match name.split_once('(') {
        None => (name, None),
        Some((name, rest)) => {
            let role = rest.strip_suffix(')').ok_or("unterminated '(role)'")?;
            if role.is_empty() || role.contains(['(', ')']) || role.contains(char::is_whitespace) {
                return Err(format!("invalid role '{role}'"));
            }
            (name, Some(role.to_string()))
        }
    };
    if name.is_empty() || name.contains(')') {
        return Err(format!("invalid name '{name}'"));
    }
    Ok((name.to_string(), role))
}

/// Unreserved resources carry no role; reserved ones carry both the
/// pre-refinement `role` and a STATIC reservation.
pub(crate) fn apply_role(r: &mut v1::Resource, role: &str) {
    if role == "*" {
        r.role = None;
        return;
    }
    r.role = Some(role.to_string());
    if r.reservations.is_empty() {
        r.reservations = vec![v1::resource::ReservationInfo {
            r#type: Some(v1::resource::reservation_info::Type::Static as i32),
            role: Some(role.to_string()),
            ..Default::default()
        }];
    }
}

/// Parses `--attributes`: `name:value` separated by `;` or newlines; values
/// are scalars, ranges or text (sets are not allowed).
pub fn parse_attributes(text: &str) -> Result<Vec<v1::Attribute>, ResourceError> {
    text.split([';', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(parse_attribute_token)
        .collect()
}

fn parse_attribute_token(token: &str) -> Result<v1::Attribute, ResourceError> {
    // Only the first ':' separates: text values may contain more.
    let (name, raw) = token
        .split_once(':')
        .ok_or_else(|| attribute_error(token, "expected 'name:value'"))?;
    let (name, raw) = (name.trim(), raw.trim());
    if name.is_empty() || raw.is_empty() {
        return Err(attribute_error(token, "name and value must not be empty"));
    }
    let mut a = v1::Attribute {
        name: name.to_string(),
        ..Default::default()
    };
    match parse_value(raw).map_err(|e| attribute_error(token, e))? {
        Parsed::Scalar(v) if v >= 0.0 => {
            a.r#type = value::Type::Scalar as i32;
            a.scalar = Some(value::Scalar { value: v });
        }
        Parsed::Ranges(range) => {
            a.r#type = value::Type::Ranges as i32;
            a.ranges = Some(value::Ranges { range });
        }
        Parsed::Set(_) => {
            return Err(attribute_error(token, "set attributes are not supported"));
        }
        // Mesos reads a negative number as text.
        Parsed::Scalar(_) | Parsed::Text(_) => {
            a.r#type = value::Type::Text as i32;
            a.text = Some(value::Text {
                value: raw.chars().filter(|c| !c.is_whitespace()).collect(),
            });
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::resource::reservation_info;

    #[test]
    fn parses_the_documented_example() {
        let r = parse_resources(
            "cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];bugs(debug_role):{a,b,c}",
            "*",
        )
        .unwrap();
        assert_eq!(r.len(), 6);
        let names: Vec<&str> = r.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["cpus", "gpus", "mem", "disk", "ports", "bugs"]);
        assert_eq!(r[0].r#type(), value::Type::Scalar);
        assert_eq!(r[0].scalar.as_ref().unwrap().value, 24.0);
        assert_eq!(r[2].scalar.as_ref().unwrap().value, 24576.0);
        assert_eq!(r[4].r#type(), value::Type::Ranges);
        assert_eq!(
            r[4].ranges.as_ref().unwrap().range,
            vec![
                value::Range {
                    begin: 21000,
                    end: 24000
                },
                value::Range {
                    begin: 30000,
                    end: 34000
                }
            ]
        );
        assert_eq!(r[5].r#type(), value::Type::Set);
        assert_eq!(r[5].role.as_deref(), Some("debug_role"));
        assert_eq!(r[5].reservations.len(), 1);
        assert_eq!(r[5].reservations[0].role.as_deref(), Some("debug_role"));
        assert_eq!(
            r[5].reservations[0].r#type,
            Some(reservation_info::Type::Static as i32)
        );
        assert_eq!(r[5].set.as_ref().unwrap().item, vec!["a", "b", "c"]);
        assert!(r[0].role.is_none() && r[0].reservations.is_empty());
    }

    #[test]
    fn explicit_star_and_default_role() {
        let r = parse_resources("cpus(*):2;mem:64", "ops").unwrap();
        assert!(r[0].role.is_none() && r[0].reservations.is_empty());
        assert_eq!(r[1].role.as_deref(), Some("ops"));
        assert_eq!(r[1].reservations[0].role.as_deref(), Some("ops"));
        let r = parse_resources("cpus(role):2", "*").unwrap();
        assert_eq!(r[0].role.as_deref(), Some("role"));
    }

    #[test]
    fn scalars_are_fixed_point() {
        let r = parse_resources("cpus:0.12345;mem:1.0005", "*").unwrap();
        assert_eq!(r[0].scalar.as_ref().unwrap().value, 0.123);
        assert_eq!(r[1].scalar.as_ref().unwrap().value, 1.001);
    }

    #[test]
    fn parses_the_documented_json() {
        let r = parse_resources(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":24}},
                {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":21000,"end":24000}]}},
                {"name":"bugs","type":"SET","set":{"item":["a","b","c"]},"role":"debug_role"}]"#,
            "*",
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].role, None);
        assert_eq!(r[1].ranges.as_ref().unwrap().range[0].end, 24000);
        assert_eq!(r[2].role.as_deref(), Some("debug_role"));
        assert_eq!(r[2].reservations[0].role.as_deref(), Some("debug_role"));
        let r = parse_resources(
            r#"[{"name":"mem","type":"SCALAR","scalar":{"value":64}}]"#,
            "web",
        )
        .unwrap();
        assert_eq!(r[0].role.as_deref(), Some("web"), "default role applies");
    }

    #[test]
    fn rejects_bad_json_resources() {
        for bad in [
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]"#,
            r#"[{"name":"cpus","type":"SCALAR"}]"#,
            r#"[{"name":"os","type":"TEXT","text":{"value":"x"}}]"#,
            r#"[{"type":"SCALAR","scalar":{"value":1}}]"#,
            r#"[{"name":"cpus","type":"BOGUS","scalar":{"value":1}}]"#,
        ] {
            let err = parse_resources(bad, "*").unwrap_err();
            assert!(matches!(err, ResourceError::Json(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_bad_resources() {
        for (bad, why) in [
            ("cpus", "expected 'name:value'"),
            ("cpus:1:2", "expected 'name:value'"),
            ("cpus:abc", "resources cannot be text"),
            ("cpus:", "empty value"),
            ("cpus:-1", "cannot be negative"),
            ("ports:[1-2", "mismatched brackets"),
            ("ports:{a,b", "mismatched brackets"),
            ("ports:1-[2]", "must start the value"),
            ("ports:[5-1]", "ends before it begins"),
            ("(web):1", "invalid name"),
            ("cpus(web:1", "unterminated"),
            ("cpus():1", "invalid role"),
        ] {
            let err = parse_resources(bad, "*").unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
        assert!(parse_resources("", "*").unwrap().is_empty());
        assert!(parse_resources(" ; cpus:1 ;", "*").unwrap().len() == 1);
    }

    #[test]
    fn parses_attributes() {
        let a =
            parse_attributes("rack:abc;zone:west;os:centos5;level:10;keys:[1000-1500]").unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].r#type(), value::Type::Text);
        assert_eq!(a[0].text.as_ref().unwrap().value, "abc");
        assert_eq!(a[3].r#type(), value::Type::Scalar);
        assert_eq!(a[3].scalar.as_ref().unwrap().value, 10.0);
        assert_eq!(a[4].r#type(), value::Type::Ranges);
        assert_eq!(a[4].ranges.as_ref().unwrap().range[0].end, 1500);

        let a = parse_attributes("rack:2\nu:1\nurl:http://x;neg:-3").unwrap();
        assert_eq!(a.len(), 4, "newlines separate too");
        assert_eq!(a[2].text.as_ref().unwrap().value, "http://x");
        assert_eq!(a[3].text.as_ref().unwrap().value, "-3");

        for bad in ["rack", "s:{a,b}", ":x", "x:", "k:[1-2"] {
            assert!(parse_attributes(bad).is_err(), "{bad}");
        }
        assert!(parse_attributes("").unwrap().is_empty());
    }
}
