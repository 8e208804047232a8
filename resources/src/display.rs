//! Text renderings: `cpus:4; mem:1024; ports:[31000-32000]`, with
//! `name(role)` for reserved resources, which `parse_resources` reads back.

use std::fmt;

use mesos_proto::v1::{self, value};

use crate::{Resources, ranges, scalar};

/// The role an entry is reserved for (the innermost reservation, else the
/// pre-refinement `role`), `None` when unreserved.
pub fn reserved_role(r: &v1::Resource) -> Option<&str> {
    r.reservations
        .last()
        .and_then(|res| res.role.as_deref())
        .or(r.role.as_deref())
        .filter(|role| *role != "*")
}

/// `{a, b}`.
pub(crate) fn format_set(items: &[String]) -> String {
    format!("{{{}}}", items.join(", "))
}

/// The value alone: `4`, `[1-2, 4-5]`, `{a, b}`.
pub(crate) fn value_text(r: &v1::Resource) -> String {
    match r.r#type() {
        value::Type::Scalar => {
            scalar::format_scalar(r.scalar.as_ref().map(|s| s.value).unwrap_or(0.0))
        }
        value::Type::Ranges => {
            ranges::format(r.ranges.as_ref().map(|x| x.range.as_slice()).unwrap_or(&[]))
        }
        value::Type::Set => format_set(r.set.as_ref().map(|s| s.item.as_slice()).unwrap_or(&[])),
        // Resources have no text value; validation keeps TEXT out of
        // parsed resources.
        value::Type::Text => String::new(),
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match reserved_role(r) {
                Some(role) => write!(f, "{}({role}):{}", r.name, value_text(r))?,
                None => write!(f, "{}:{}", r.name, value_text(r))?,
            }
        }
        Ok(())
    }
}
