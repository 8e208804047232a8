//! Range lists (`[a-b, c-d]`) kept sorted, disjoint and non-adjacent.

use mesos_proto::v1::value::Range;

/// Sorts and merges overlapping or touching ranges; drops inverted ones.
pub(crate) fn coalesce(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.retain(|r| r.begin <= r.end);
    ranges.sort_by_key(|r| (r.begin, r.end));
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.begin <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// `have - take` for coalesced lists, or `None` if `take` is not inside
/// `have`.
pub(crate) fn subtract(have: &[Range], take: &[Range]) -> Option<Vec<Range>> {
    let mut out = have.to_vec();
    for cut in take {
        // Both lists are coalesced, so a contained cut lies within a single
        // range and never spans the gap a previous cut left.
        let i = out
            .iter()
            .position(|r| r.begin <= cut.begin && cut.end <= r.end)?;
        let r = out.remove(i);
        if r.begin < cut.begin {
            out.push(Range {
                begin: r.begin,
                end: cut.begin - 1,
            });
        }
        if cut.end < r.end {
            out.push(Range {
                begin: cut.end + 1,
                end: r.end,
            });
        }
    }
    Some(coalesce(out))
}

/// `[31000-32000]`, `[1-2, 4-5]`.
pub(crate) fn format(ranges: &[Range]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.begin, r.end))
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(begin: u64, end: u64) -> Range {
        Range { begin, end }
    }

    #[test]
    fn coalesces_overlapping_and_touching() {
        assert_eq!(
            coalesce(vec![r(10, 20), r(1, 3), r(4, 5), r(15, 30), r(40, 41)]),
            vec![r(1, 5), r(10, 30), r(40, 41)]
        );
        assert_eq!(
            coalesce(vec![r(0, u64::MAX), r(5, 6)]),
            vec![r(0, u64::MAX)]
        );
    }

    #[test]
    fn subtracts_only_what_is_inside() {
        let have = [r(1, 10), r(20, 30)];
        assert_eq!(
            subtract(&have, &[r(1, 1), r(5, 6), r(30, 30)]),
            Some(vec![r(2, 4), r(7, 10), r(20, 29)])
        );
        assert_eq!(subtract(&have, &[r(10, 20)]), None);
        assert_eq!(subtract(&have, &[r(1, 10), r(20, 30)]), Some(vec![]));
        assert_eq!(format(&[r(1, 2), r(4, 5)]), "[1-2, 4-5]");
        assert_eq!(format(&[]), "[]");
    }
}
