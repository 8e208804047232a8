//! Mesos's `--resources` and `--attributes` formats.

use mesos_proto::v1::{self, value};

use crate::ResourceError;

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

/// A parsed value in Mesos's text notation.
enum Parsed {
    Scalar(f64),
    Ranges(Vec<value::Range>),
    Set(Vec<String>),
    Text(String),
}

/// `[a-b,c-d]` ranges, `{x,y}` sets, numbers, else text; spaces ignored.
fn parse_value(raw: &str) -> Result<Parsed, String> {
    let text: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let opens = text.matches(['[', '{']).count();
    let closes = text.matches([']', '}']).count();
    if opens != closes {
        return Err("mismatched brackets".into());
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("a range list must end with ']'")?;
        let mut ranges = Vec::new();
        for part in inner.split(',').filter(|p| !p.is_empty()) {
            let (begin, end) = part
                .split_once('-')
                .ok_or_else(|| format!("expected 'begin-end', got '{part}'"))?;
            let begin: u64 = begin
                .parse()
                .map_err(|_| format!("invalid range bound '{begin}'"))?;
            let end: u64 = end
                .parse()
                .map_err(|_| format!("invalid range bound '{end}'"))?;
            if begin > end {
                return Err(format!("range {begin}-{end} ends before it begins"));
            }
            ranges.push(value::Range { begin, end });
        }
        return Ok(Parsed::Ranges(ranges));
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or("a set must end with '}'")?;
        let items = inner
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        return Ok(Parsed::Set(items));
    }
    if opens > 0 {
        return Err("'[' or '{' must start the value".into());
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Parsed::Scalar(v)),
        _ => Ok(Parsed::Text(text)),
    }
}

fn parse_role(name: &str) -> Result<(String, Option<String>), String> {
    match name.split_once('(') {
        None => Ok((name.to_string(), None)),
        Some((name, rest)) => {
            let role = rest.strip_suffix(')').ok_or("unterminated '(role)'")?;
            if role.is_empty() {
                return Err("empty role".into());
            }
            Ok((name.to_string(), Some(role.to_string())))
        }
    }
}

/// Parses `--resources`: a JSON array of Resource, or `name(role):value;...`.
/// Resources that name no role get `default_role`; a role other than `*` is
/// a static reservation.
pub fn parse_resources(text: &str, default_role: &str) -> Result<Vec<v1::Resource>, ResourceError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[')
        && let Ok(serde_json::Value::Array(items)) =
            serde_json::from_str::<serde_json::Value>(trimmed)
    {
        return items
            .iter()
            .map(|item| {
                let mut r: v1::Resource = mesos_proto::json::from_json_value(item)
                    .map_err(|e| ResourceError::Json(e.to_string()))?;
                if r.role.is_none() && r.reservations.is_empty() {
                    apply_role(&mut r, default_role);
                } else if let Some(role) = r.role.clone() {
                    apply_role(&mut r, &role);
                }
                Ok(r)
            })
            .collect();
    }
    let mut out = Vec::new();
    for token in trimmed.split(';').map(str::trim).filter(|t| !t.is_empty()) {
        let parts: Vec<&str> = token.split(':').collect();
        let [name, value] = parts.as_slice() else {
            return Err(resource_error(token, "expected 'name:value'"));
        };
        let (name, role) = parse_role(name.trim()).map_err(|e| resource_error(token, e))?;
        if name.is_empty() {
            return Err(resource_error(token, "empty name"));
        }
        let mut r = v1::Resource {
            name,
            ..Default::default()
        };
        match parse_value(value).map_err(|e| resource_error(token, e))? {
            Parsed::Scalar(v) if v < 0.0 => {
                return Err(resource_error(
                    token,
                    "a scalar resource cannot be negative",
                ));
            }
            Parsed::Scalar(v) => {
                r.r#type = value::Type::Scalar as i32;
                r.scalar = Some(value::Scalar { value: v });
            }
            Parsed::Ranges(ranges) => {
                r.r#type = value::Type::Ranges as i32;
                r.ranges = Some(value::Ranges { range: ranges });
            }
            Parsed::Set(items) => {
                r.r#type = value::Type::Set as i32;
                r.set = Some(value::Set { item: items });
            }
            Parsed::Text(_) => return Err(resource_error(token, "resources cannot be text")),
        }
        apply_role(&mut r, role.as_deref().unwrap_or(default_role));
        out.push(r);
    }
    Ok(out)
}

/// Unreserved resources carry no role; reserved ones carry both the
/// pre-refinement `role` and a STATIC reservation.
fn apply_role(r: &mut v1::Resource, role: &str) {
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
    let mut out = Vec::new();
    for token in text
        .split([';', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
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
            Parsed::Scalar(v) => {
                a.r#type = value::Type::Scalar as i32;
                a.scalar = Some(value::Scalar { value: v });
            }
            Parsed::Ranges(ranges) => {
                a.r#type = value::Type::Ranges as i32;
                a.ranges = Some(value::Ranges { range: ranges });
            }
            Parsed::Set(_) => {
                return Err(attribute_error(token, "set attributes are not supported"));
            }
            Parsed::Text(t) => {
                a.r#type = value::Type::Text as i32;
                a.text = Some(value::Text { value: t });
            }
        }
        out.push(a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let r = parse_resources(
            "cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];bugs(debug_role):{a,b,c}",
            "*",
        )
        .unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].scalar.as_ref().unwrap().value, 24.0);
        assert_eq!(r[4].ranges.as_ref().unwrap().range.len(), 2);
        assert_eq!(r[5].role.as_deref(), Some("debug_role"));
        assert_eq!(r[5].reservations[0].role.as_deref(), Some("debug_role"));
        assert_eq!(r[5].set.as_ref().unwrap().item, vec!["a", "b", "c"]);
        assert!(r[0].role.is_none());
    }

    #[test]
    fn parses_json_and_default_role() {
        let r = parse_resources(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":4}},{"name":"mem","type":"SCALAR","scalar":{"value":64},"role":"web"}]"#,
            "*",
        )
        .unwrap();
        assert_eq!(r[0].role, None);
        assert_eq!(r[1].role.as_deref(), Some("web"));
        let r = parse_resources("cpus:1", "ops").unwrap();
        assert_eq!(r[0].role.as_deref(), Some("ops"));
    }

    #[test]
    fn rejects_bad_resources() {
        for bad in [
            "cpus",
            "cpus:1:2",
            "cpus:abc",
            "cpus:-1",
            "ports:[1-2",
            "ports:1-[2]",
            "ports:[5-1]",
        ] {
            assert!(parse_resources(bad, "*").is_err(), "{bad}");
        }
        let err = parse_resources("cpus:abc", "*").unwrap_err();
        assert!(err.to_string().contains("cpus:abc"), "{err}");
    }

    #[test]
    fn parses_attributes() {
        let a = parse_attributes("rack:abc;zone:west;level:10;keys:[1000-1500]").unwrap();
        assert_eq!(a[0].text.as_ref().unwrap().value, "abc");
        assert_eq!(a[2].scalar.as_ref().unwrap().value, 10.0);
        assert_eq!(a[3].ranges.as_ref().unwrap().range[0].end, 1500);
        assert!(parse_attributes("rack").is_err());
        assert!(parse_attributes("s:{a,b}").is_err());
        assert!(parse_attributes(":x").is_err());
    }
}
