//! Mesos's text notation for values, shared by `--resources` and
//! `--attributes`: `[a-b,c-d]` ranges, `{x,y}` sets, numbers, else text.

use mesos_proto::v1::value::Range;

use crate::ranges;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    /// Any finite number, negative included: resources reject those and
    /// attributes keep them as text, as Mesos does.
    Scalar(f64),
    Ranges(Vec<Range>),
    Set(Vec<String>),
    Text(String),
}

/// Parses one value; whitespace anywhere is ignored.
pub(crate) fn parse_value(raw: &str) -> Result<Parsed, String> {
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
        return parse_ranges(inner).map(Parsed::Ranges);
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or("a set must end with '}'")?;
        if inner.contains(['{', '}', '[', ']']) {
            return Err("sets cannot be nested".into());
        }
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

/// `a-b,c-d` (inside the brackets), coalesced.
fn parse_ranges(inner: &str) -> Result<Vec<Range>, String> {
    let mut out = Vec::new();
    for part in inner.split(',').filter(|p| !p.is_empty()) {
        let (begin, end) = part
            .split_once('-')
            .ok_or_else(|| format!("expected 'begin-end', got '{part}'"))?;
        let bound = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("invalid range bound '{s}' in '{part}'"))
        };
        let (begin, end) = (bound(begin)?, bound(end)?);
        if begin > end {
            return Err(format!("range {begin}-{end} ends before it begins"));
        }
        out.push(Range { begin, end });
    }
    Ok(ranges::coalesce(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_values() {
        assert_eq!(parse_value("24"), Ok(Parsed::Scalar(24.0)));
        assert_eq!(parse_value(" 1.5 "), Ok(Parsed::Scalar(1.5)));
        assert_eq!(parse_value("-1"), Ok(Parsed::Scalar(-1.0)));
        assert_eq!(
            parse_value("[21000-24000, 30000-34000]"),
            Ok(Parsed::Ranges(vec![
                Range {
                    begin: 21000,
                    end: 24000
                },
                Range {
                    begin: 30000,
                    end: 34000
                },
            ]))
        );
        assert_eq!(
            parse_value("[5-6,1-4]"),
            Ok(Parsed::Ranges(vec![Range { begin: 1, end: 6 }])),
            "coalesced"
        );
        assert_eq!(
            parse_value("{a, b,c}"),
            Ok(Parsed::Set(vec!["a".into(), "b".into(), "c".into()]))
        );
        assert_eq!(parse_value("centos5"), Ok(Parsed::Text("centos5".into())));
        assert_eq!(parse_value("inf"), Ok(Parsed::Text("inf".into())));
    }

    #[test]
    fn malformed_values() {
        for bad in [
            "[1-2", "1-2]", "{a,b", "x[1-2]", "[1-2]x", "[1]", "[a-b]", "[5-1]", "[1-2-3]",
            "{a,{b}}",
        ] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }
}
