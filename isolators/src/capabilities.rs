//! `linux/capabilities` and `linux/nnp`, under Mesos's names and rules.
//!
//! `linux/capabilities` works out the capability sets of a container from
//! the agent's `--effective_capabilities` and `--bounding_capabilities` and
//! from what the container's `LinuxInfo` asks for:
//! - a container asking for nothing gets the flags' sets;
//! - the effective set it asks for (or the flag's) must lie within its
//!   bounding set, and the bounding set it asks for within the flag's;
//!   otherwise its launch fails, naming the capabilities outside;
//! - without any bounding set, the effective set bounds itself.
//!
//! The launcher drops the others from the bounding set and sets the
//! effective, permitted, inheritable and ambient sets in the executor's
//! child before it execs (ambient ones survive the exec of a non-root
//! command). `linux/nnp` has the launcher set `no_new_privs` there.
//! Neither keeps state: a process's capabilities die with it.
//!
//! Sets are `u64` bit masks, one bit per Linux capability number
//! (`CAP_CHOWN` is bit 0), as `/proc/<pid>/status` shows them.

use mesos_plugin_api::isolator::{ContainerSpec, Isolator, IsolatorError, LaunchInfo};

/// Linux's capability names without `CAP_`, indexed by number: the names
/// of Mesos's `CapabilityInfo.Capability`, whose values are 1000 plus the
/// number.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The value of Mesos's `CapabilityInfo.Capability` for capability 0.
const MESOS_OFFSET: i32 = 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapabilityError {
    #[error("unknown capability '{0}' (expected one of {names})", names = NAMES.join(", "))]
    UnknownName(String),
    #[error("unknown capability value {0} (CapabilityInfo.Capability values are 1000 to 1040)")]
    UnknownValue(i32),
    #[error(
        "the effective capabilities [{outside}] are not within the bounding capabilities [{bounding}]"
    )]
    NotWithinBounding { outside: String, bounding: String },
}

/// A capability's number from its Mesos name (`NET_RAW`; `CAP_NET_RAW`
/// too).
pub fn by_name(name: &str) -> Option<u32> {
    let name = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u32::try_from(i).ok())
}

/// The set of the named capabilities.
pub fn set_of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<u64, CapabilityError> {
    names.into_iter().try_fold(0, |set, name| {
        by_name(name)
            .map(|cap| set | (1 << cap))
            .ok_or_else(|| CapabilityError::UnknownName(name.to_string()))
    })
}

/// The set of Mesos `CapabilityInfo.Capability` values.
pub fn set_of_values(values: &[i32]) -> Result<u64, CapabilityError> {
    values.iter().try_fold(0, |set, &value| {
        value
            .checked_sub(MESOS_OFFSET)
            .and_then(|cap| usize::try_from(cap).ok())
            .filter(|&cap| cap < NAMES.len())
            .map(|cap| set | (1 << cap))
            .ok_or(CapabilityError::UnknownValue(value))
    })
}

/// The names of a set's capabilities, comma-separated, in number order.
pub fn names(set: u64) -> String {
    (0..64u32)
        .filter(|cap| set & (1 << cap) != 0)
        .map(|cap| {
            usize::try_from(cap)
                .ok()
                .and_then(|i| NAMES.get(i))
                .map_or_else(|| format!("capability {cap}"), |n| (*n).to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `inner` lies within `outer`, naming what does not.
fn within(inner: u64, outer: u64) -> Result<(), CapabilityError> {
    match inner & !outer {
        0 => Ok(()),
        outside => Err(CapabilityError::NotWithinBounding {
            outside: names(outside),
            bounding: names(outer),
        }),
    }
}

/// `linux/capabilities`.
#[derive(Debug)]
pub struct LinuxCapabilities {
    /// `--effective_capabilities`.
    effective: Option<u64>,
    /// `--bounding_capabilities`.
    bounding: Option<u64>,
}

impl LinuxCapabilities {
    pub const NAME: &'static str = "linux/capabilities";

    /// With the flags' sets; the effective one must lie within the
    /// bounding one, as in Mesos.
    pub fn new(effective: Option<u64>, bounding: Option<u64>) -> Result<Self, CapabilityError> {
        if let (Some(effective), Some(bounding)) = (effective, bounding) {
            within(effective, bounding)?;
        }
        Ok(Self {
            effective,
            bounding,
        })
    }

    /// The bounding and effective sets of a container asking for
    /// `spec.capabilities`; `None` when no set applies.
    pub fn sets(&self, spec: &ContainerSpec) -> Result<Option<(u64, Option<u64>)>, IsolatorError> {
        let failed = |e: CapabilityError| IsolatorError::Failed {
            isolator: Self::NAME,
            message: e.to_string(),
        };
        let requested = |values: &Option<Vec<i32>>| {
            values
                .as_deref()
                .map(set_of_values)
                .transpose()
                .map_err(failed)
        };
        let effective = requested(&spec.capabilities.effective)?.or(self.effective);
        let asked_bounding = requested(&spec.capabilities.bounding)?;
        if let (Some(asked), Some(allowed)) = (asked_bounding, self.bounding) {
            within(asked, allowed).map_err(|e| IsolatorError::Failed {
                isolator: Self::NAME,
                message: format!("requested bounding capabilities are not allowed: {e}"),
            })?;
        }
        let Some(bounding) = asked_bounding.or(self.bounding).or(effective) else {
            return Ok(None);
        };
        if let Some(effective) = effective {
            within(effective, bounding).map_err(|e| IsolatorError::Failed {
                isolator: Self::NAME,
                message: format!("requested capabilities are not allowed: {e}"),
            })?;
        }
        Ok(Some((bounding, effective)))
    }
}

impl Isolator for LinuxCapabilities {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        Ok(match self.sets(spec)? {
            Some((bounding, effective)) => LaunchInfo {
                bounding_capabilities: Some(bounding),
                effective_capabilities: effective,
                ..Default::default()
            },
            None => LaunchInfo::default(),
        })
    }
}

/// `linux/nnp`: every container's executor runs with `no_new_privs`, so
/// neither it nor its tasks gain privileges through setuid binaries or
/// file capabilities.
#[derive(Debug, Default)]
pub struct LinuxNnp;

impl Isolator for LinuxNnp {
    fn name(&self) -> &'static str {
        "linux/nnp"
    }

    fn prepare(&self, _spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        Ok(LaunchInfo {
            no_new_privileges: true,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_plugin_api::isolator::CapabilityRequest;

    const CHOWN: u64 = 1;
    const NET_RAW: u64 = 1 << 13;
    const NET_ADMIN: u64 = 1 << 12;

    fn spec(effective: Option<&[&str]>, bounding: Option<&[&str]>) -> ContainerSpec {
        let values = |names: &[&str]| {
            names
                .iter()
                .map(|n| 1000 + i32::try_from(by_name(n).unwrap()).unwrap())
                .collect()
        };
        ContainerSpec {
            container_id: "c1".into(),
            resources: Default::default(),
            capabilities: CapabilityRequest {
                effective: effective.map(values),
                bounding: bounding.map(values),
            },
            sandbox: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn names_map_to_linux_numbers_and_back() {
        assert_eq!(by_name("CHOWN"), Some(0));
        assert_eq!(by_name("NET_RAW"), Some(13));
        assert_eq!(by_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(by_name("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(by_name("net_raw"), None);
        assert_eq!(set_of_names(["CHOWN", "NET_RAW"]), Ok(0x2001));
        assert_eq!(
            set_of_names(["CHOWN", "NET_FLY"]),
            Err(CapabilityError::UnknownName("NET_FLY".into()))
        );
        assert_eq!(set_of_values(&[1000, 1013]), Ok(0x2001));
        assert_eq!(set_of_values(&[1040]), Ok(1 << 40));
        for bad in [0, 999, 1041] {
            assert_eq!(
                set_of_values(&[bad]),
                Err(CapabilityError::UnknownValue(bad))
            );
        }
        assert_eq!(names(0x2001), "CHOWN, NET_RAW");
        assert_eq!(names(1 << 50), "capability 50");
        assert_eq!(names(0), "");
    }

    #[test]
    fn the_flags_effective_set_must_lie_within_their_bounding_set() {
        let err = LinuxCapabilities::new(Some(CHOWN | NET_ADMIN), Some(CHOWN | NET_RAW))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[NET_ADMIN]"), "{err}");
        LinuxCapabilities::new(Some(CHOWN), Some(CHOWN | NET_RAW)).unwrap();
        LinuxCapabilities::new(Some(CHOWN), None).unwrap();
    }

    #[test]
    fn containers_get_the_flags_sets_unless_they_ask() {
        let none = LinuxCapabilities::new(None, None).unwrap();
        assert_eq!(
            none.prepare(&spec(None, None)).unwrap(),
            LaunchInfo::default()
        );
        // Without a bounding set, the effective one bounds.
        let info = none.prepare(&spec(Some(&["NET_ADMIN"]), None)).unwrap();
        assert_eq!(info.bounding_capabilities, Some(NET_ADMIN));
        assert_eq!(info.effective_capabilities, Some(NET_ADMIN));

        let flags = LinuxCapabilities::new(Some(NET_RAW), Some(CHOWN | NET_RAW)).unwrap();
        let info = flags.prepare(&spec(None, None)).unwrap();
        assert_eq!(info.bounding_capabilities, Some(CHOWN | NET_RAW));
        assert_eq!(info.effective_capabilities, Some(NET_RAW));
        // An empty request drops everything in its set.
        let info = flags.prepare(&spec(Some(&[]), Some(&["CHOWN"]))).unwrap();
        assert_eq!(info.bounding_capabilities, Some(CHOWN));
        assert_eq!(info.effective_capabilities, Some(0));

        let bounding_only = LinuxCapabilities::new(None, Some(CHOWN | NET_RAW)).unwrap();
        let info = bounding_only.prepare(&spec(None, None)).unwrap();
        assert_eq!(info.bounding_capabilities, Some(CHOWN | NET_RAW));
        assert_eq!(info.effective_capabilities, None);
        let info = bounding_only
            .prepare(&spec(Some(&["CHOWN"]), None))
            .unwrap();
        assert_eq!(info.effective_capabilities, Some(CHOWN));
    }

    #[test]
    fn requests_outside_the_allowed_bounding_set_fail_naming_them() {
        let flags = LinuxCapabilities::new(None, Some(CHOWN | NET_RAW)).unwrap();
        let err = flags
            .prepare(&spec(Some(&["NET_ADMIN", "CHOWN"]), None))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("linux/capabilities: "), "{err}");
        assert!(
            err.contains("[NET_ADMIN] are not within the bounding capabilities [CHOWN, NET_RAW]"),
            "{err}"
        );
        let err = flags
            .prepare(&spec(None, Some(&["SYS_ADMIN", "NET_RAW"])))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bounding capabilities are not allowed"),
            "{err}"
        );
        assert!(err.contains("[SYS_ADMIN]"), "{err}");
        // Within its own narrower bounding set, or not.
        let err = flags
            .prepare(&spec(Some(&["CHOWN"]), Some(&["NET_RAW"])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[CHOWN] are not within"), "{err}");
        let info = flags
            .prepare(&spec(Some(&["NET_RAW"]), Some(&["NET_RAW"])))
            .unwrap();
        assert_eq!(info.bounding_capabilities, Some(NET_RAW));
        assert_eq!(info.effective_capabilities, Some(NET_RAW));
        // A value that is no capability.
        let mut bad = spec(None, None);
        bad.capabilities.effective = Some(vec![7]);
        let err = flags.prepare(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown capability value 7"), "{err}");
    }

    #[test]
    fn nnp_asks_for_no_new_privs_only() {
        let info = LinuxNnp.prepare(&spec(None, None)).unwrap();
        assert_eq!(
            info,
            LaunchInfo {
                no_new_privileges: true,
                ..Default::default()
            }
        );
    }
}
