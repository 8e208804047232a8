//! Parsing and rendering flag values in Mesos's notation.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A type a flag can have.
pub trait FlagValue: Sized {
    /// Booleans may be given as `--name` and `--no-name`.
    const IS_BOOL: bool = false;

    fn parse_flag(s: &str) -> Result<Self, String>;

    fn render_flag(&self) -> String;

    /// The value of a flag that is neither given nor defaulted; only
    /// optional flags have one.
    fn absent() -> Option<Self> {
        None
    }

    /// The rendering for `/flags`, `None` for an absent optional flag.
    fn render_present(&self) -> Option<String> {
        Some(self.render_flag())
    }
}

impl<T: FlagValue> FlagValue for Option<T> {
    const IS_BOOL: bool = T::IS_BOOL;

    fn parse_flag(s: &str) -> Result<Self, String> {
        T::parse_flag(s).map(Some)
    }

    fn render_flag(&self) -> String {
        self.as_ref().map(T::render_flag).unwrap_or_default()
    }

    fn absent() -> Option<Self> {
        Some(None)
    }

    fn render_present(&self) -> Option<String> {
        self.as_ref().map(T::render_flag)
    }
}

impl FlagValue for bool {
    const IS_BOOL: bool = true;

    fn parse_flag(s: &str) -> Result<Self, String> {
        match s {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("expected 'true' or 'false'".into()),
        }
    }

    fn render_flag(&self) -> String {
        self.to_string()
    }
}

impl FlagValue for String {
    fn parse_flag(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }

    fn render_flag(&self) -> String {
        self.clone()
    }
}

impl FlagValue for PathBuf {
    fn parse_flag(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("expected a path".into());
        }
        Ok(PathBuf::from(s))
    }

    fn render_flag(&self) -> String {
        self.display().to_string()
    }
}

macro_rules! from_str_flag {
    ($($ty:ty => $what:literal),* $(,)?) => {
        $(
            impl FlagValue for $ty {
                fn parse_flag(s: &str) -> Result<Self, String> {
                    <$ty>::from_str(s.trim()).map_err(|_| format!("expected {}", $what))
                }

                fn render_flag(&self) -> String {
                    self.to_string()
                }
            }
        )*
    };
}

from_str_flag! {
    u16 => "an integer between 0 and 65535",
    u32 => "a non-negative integer",
    u64 => "a non-negative integer",
    usize => "a non-negative integer",
    i32 => "an integer",
    f64 => "a number",
    IpAddr => "an IP address",
}

/// A Mesos duration: a number and a unit (`ns us ms secs mins hrs days
/// weeks`), e.g. `5secs`, `1.5mins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

const DURATION_UNITS: [(&str, u128); 8] = [
    ("weeks", 7 * 24 * 3600 * 1_000_000_000),
    ("days", 24 * 3600 * 1_000_000_000),
    ("hrs", 3600 * 1_000_000_000),
    ("mins", 60 * 1_000_000_000),
    ("secs", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

impl Duration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("expected a number and a unit (ns, us, ms, secs, mins, hrs, days, weeks) in '{s}'"))?;
        let (number, unit) = s.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("invalid number in duration '{s}'"))?;
        let nanos_per = DURATION_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("unknown duration unit '{unit}'"))?;
        let nanos = number * nanos_per as f64;
        if !nanos.is_finite() || nanos < 0.0 || nanos > u64::MAX as f64 {
            return Err(format!("duration '{s}' is out of range"));
        }
        Ok(Duration(std::time::Duration::from_nanos(nanos as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return write!(f, "0ns");
        }
        for (name, per) in DURATION_UNITS {
            if nanos.is_multiple_of(per) {
                return write!(f, "{}{name}", nanos / per);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl FlagValue for Duration {
    fn parse_flag(s: &str) -> Result<Self, String> {
        Duration::parse(s)
    }

    fn render_flag(&self) -> String {
        self.to_string()
    }
}

/// A byte size: a number and a unit (`B KB MB GB TB`, binary multiples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

const BYTE_UNITS: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("KB", 1 << 10),
    ("B", 1),
];

impl Bytes {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("expected a number and a unit (B, KB, MB, GB, TB) in '{s}'"))?;
        let (number, unit) = s.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("invalid number in size '{s}'"))?;
        let per = BYTE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("unknown size unit '{unit}'"))?;
        let bytes = number * per as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("size '{s}' is out of range"));
        }
        Ok(Bytes(bytes as u64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, per) in BYTE_UNITS {
            if self.0 >= per && self.0.is_multiple_of(per) {
                return write!(f, "{}{name}", self.0 / per);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FlagValue for Bytes {
    fn parse_flag(s: &str) -> Result<Self, String> {
        Bytes::parse(s)
    }

    fn render_flag(&self) -> String {
        self.to_string()
    }
}

/// `--hooks` (master and agent): hook plugin names, in call order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks(pub Vec<String>);

impl Hooks {
    /// The names the flag gives, none when it is not set.
    pub fn names(flag: &Option<Hooks>) -> &[String] {
        flag.as_ref().map_or(&[], |hooks| &hooks.0)
    }
}

impl FlagValue for Hooks {
    fn parse_flag(s: &str) -> Result<Self, String> {
        let names: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        // Whether a name is a hook is known only once the plugins are
        // loaded; a hook run twice would decorate twice.
        if let Some(twice) = names
            .iter()
            .enumerate()
            .find_map(|(i, n)| names[..i].contains(n).then_some(n))
        {
            return Err(format!("hook '{twice}' is named twice"));
        }
        Ok(Self(names))
    }

    fn render_flag(&self) -> String {
        self.0.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [
            ("5secs", 5.0),
            ("15mins", 900.0),
            ("1weeks", 604800.0),
            ("500ms", 0.5),
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.0.as_secs_f64(), secs);
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(Duration::parse("1.5mins").unwrap().to_string(), "90secs");
        assert!(Duration::parse("5").is_err());
        assert!(Duration::parse("5fortnights").is_err());
        assert!(Duration::parse("-1secs").is_err());
    }

    #[test]
    fn sizes_round_trip() {
        assert_eq!(Bytes::parse("2GB").unwrap().0, 2 << 30);
        assert_eq!(Bytes::parse("512MB").unwrap().to_string(), "512MB");
        assert_eq!(Bytes(1536).to_string(), "1536B");
        assert!(Bytes::parse("2XB").is_err());
    }
}
