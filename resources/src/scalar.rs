//! Mesos's fixed-point scalars: every quantity is a whole number of
//! thousandths. Arithmetic is done on those integers, so taking and
//! returning the same amounts any number of times gives back exactly what
//! was there.

/// Thousandths of a unit.
pub(crate) fn to_millis(value: f64) -> i64 {
    // `as` saturates and maps NaN to 0, which is what a corrupt value
    // should become rather than a panic.
    (value * 1000.0).round() as i64
}

/// The double closest to `millis / 1000`; `to_millis` gives `millis` back.
pub(crate) fn from_millis(millis: i64) -> f64 {
    // `+ 0.0` turns -0.0 into 0.0, which would otherwise print as "-0".
    millis as f64 / 1000.0 + 0.0
}

/// `value` snapped to the fixed-point grid.
pub(crate) fn round(value: f64) -> f64 {
    from_millis(to_millis(value))
}

/// As Mesos prints scalars: no fraction for whole numbers, else the
/// shortest decimal that reads back the same.
pub(crate) fn format_scalar(value: f64) -> String {
    let millis = to_millis(value);
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        from_millis(millis).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_round_trips() {
        for millis in [0, 1, 100, 999, 1000, 123_456_789, -5] {
            assert_eq!(to_millis(from_millis(millis)), millis);
        }
        assert_eq!(round(0.1 + 0.2), 0.3);
        assert_eq!(round(1.00049), 1.0);
        assert_eq!(round(1.0005), 1.001);
        assert_eq!(format_scalar(24.0), "24");
        assert_eq!(format_scalar(0.1), "0.1");
        assert_eq!(format_scalar(1.5), "1.5");
        assert_eq!(format_scalar(-0.0), "0");
        assert_eq!(to_millis(f64::NAN), 0);
    }
}
