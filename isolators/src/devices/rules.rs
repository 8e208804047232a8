//! Device access rules: Mesos's default whitelist and `--allowed_devices`,
//! written to a v1 cgroup in the kernel's syntax (`c 1:3 rwm`) or
//! compiled into a v2 cgroup's eBPF program.

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::Deserialize;

use super::DevicesError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

/// Access bits, the values of the kernel's `BPF_DEVCG_ACC_*`.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const ALL: u8 = MKNOD | READ | WRITE;

/// Access of `kind` devices numbered `major:minor` (`None` is any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    const fn char(major: Option<u32>, minor: Option<u32>, access: u8) -> Self {
        Self {
            kind: Kind::Char,
            major,
            minor,
            access,
        }
    }
}

/// Mesos's default whitelist.
pub const DEFAULT_WHITELIST: [Rule; 13] = [
    Rule::char(None, None, MKNOD), // mknod of any character device
    Rule {
        kind: Kind::Block,
        major: None,
        minor: None,
        access: MKNOD,
    }, // and any block device
    Rule::char(Some(1), Some(3), ALL), // /dev/null
    Rule::char(Some(1), Some(5), ALL), // /dev/zero
    Rule::char(Some(1), Some(7), ALL), // /dev/full
    Rule::char(Some(1), Some(8), ALL), // /dev/random
    Rule::char(Some(1), Some(9), ALL), // /dev/urandom
    Rule::char(Some(5), Some(0), ALL), // /dev/tty
    Rule::char(Some(5), Some(1), ALL), // /dev/console
    Rule::char(Some(5), Some(2), ALL), // /dev/ptmx
    Rule::char(Some(136), None, ALL), // /dev/pts/*
    Rule::char(Some(4), Some(0), ALL), // /dev/tty0
    Rule::char(Some(10), Some(200), ALL), // /dev/net/tun
];

/// The kernel's v1 syntax, `c 136:* rwm`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let access: String = [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
            .iter()
            .filter_map(|&(bit, c)| (self.access & bit != 0).then_some(c))
            .collect();
        write!(
            f,
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }
}

/// Mesos's `DeviceWhitelist`, as `--allowed_devices` gives it.
#[derive(Debug, Deserialize)]
struct Whitelist {
    #[serde(default)]
    allowed_devices: Vec<DeviceAccess>,
}

#[derive(Debug, Deserialize)]
struct DeviceAccess {
    device: Device,
    #[serde(default)]
    access: Access,
}

#[derive(Debug, Deserialize)]
struct Device {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    number: Option<Number>,
}

#[derive(Debug, Deserialize)]
struct Number {
    major_number: u32,
    minor_number: u32,
}

#[derive(Debug, Default, Deserialize)]
struct Access {
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    mknod: bool,
}

/// `--allowed_devices` as rules, each device looked up on the host by its
/// path (a numbered one is a character device). An entry granting no
/// access adds nothing.
pub fn parse_allowed(json: &str) -> Result<Vec<Rule>, DevicesError> {
    let whitelist: Whitelist =
        serde_json::from_str(json).map_err(|e| DevicesError::Json(e.to_string()))?;
    let mut rules = Vec::new();
    for entry in &whitelist.allowed_devices {
        let (kind, major, minor) = match (&entry.device.path, &entry.device.number) {
            (Some(path), _) => node(Path::new(path))?,
            (None, Some(n)) => (Kind::Char, n.major_number, n.minor_number),
            (None, None) => return Err(DevicesError::NoDevice),
        };
        let access = [
            (entry.access.read, READ),
            (entry.access.write, WRITE),
            (entry.access.mknod, MKNOD),
        ]
        .iter()
        .filter_map(|&(on, bit)| on.then_some(bit))
        .fold(0, |all, bit| all | bit);
        if access != 0 {
            rules.push(Rule {
                kind,
                major: Some(major),
                minor: Some(minor),
                access,
            });
        }
    }
    Ok(rules)
}

/// The type and number of the device node at `path`.
fn node(path: &Path) -> Result<(Kind, u32, u32), DevicesError> {
    let failed = |reason: String| DevicesError::Device {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
    let kind = if meta.file_type().is_char_device() {
        Kind::Char
    } else if meta.file_type().is_block_device() {
        Kind::Block
    } else {
        return Err(failed("not a device node".into()));
    };
    let rdev = meta.rdev();
    let number = |n: u64| u32::try_from(n).map_err(|_| failed(format!("device number {n}")));
    Ok((
        kind,
        number(nix::sys::stat::major(rdev))?,
        number(nix::sys::stat::minor(rdev))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_in_the_kernels_syntax() {
        let printed: Vec<String> = DEFAULT_WHITELIST.iter().map(Rule::to_string).collect();
        assert_eq!(printed[..3], ["c *:* m", "b *:* m", "c 1:3 rwm"]);
        assert_eq!(printed[10], "c 136:* rwm");
    }

    #[test]
    fn allowed_devices_are_looked_up_by_path_or_taken_by_number() {
        let rules = parse_allowed(
            r#"{"allowed_devices": [
                {"device": {"path": "/dev/null"}, "access": {"read": true, "write": true}},
                {"device": {"number": {"major_number": 10, "minor_number": 237}},
                 "access": {"read": true, "mknod": true}},
                {"device": {"path": "/dev/zero"}, "access": {}}
            ]}"#,
        )
        .unwrap();
        let printed: Vec<String> = rules.iter().map(Rule::to_string).collect();
        assert_eq!(printed, ["c 1:3 rw", "c 10:237 rm"]);
        for (json, expected) in [
            (r#"{"allowed_devices": 1}"#, "not a DeviceWhitelist"),
            (
                r#"{"allowed_devices": [{"device": {"path": "/nonexistent"}}]}"#,
                "'/nonexistent': No such file",
            ),
            (
                r#"{"allowed_devices": [{"device": {"path": "/etc/hostname"}}]}"#,
                "not a device node",
            ),
            (
                r#"{"allowed_devices": [{"device": {}}]}"#,
                "neither a device path nor a number",
            ),
        ] {
            let error = parse_allowed(json).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
