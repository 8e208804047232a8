//! Docker's seccomp profile format, which Mesos's `linux/seccomp` reads,
//! turned into [`Filter`] rules for one container.
//!
//! A profile names system calls; names this architecture does not have
//! are skipped (Docker's profiles list every architecture's). A rule's
//! `includes` and `excludes` are decided per container: `caps` against
//! the container's bounding set, `arches` against this machine's Go name
//! (`amd64`, `arm64`), `minKernel` against the running kernel. Only the
//! native ABI is admitted: `architectures` and `archMap` are read but
//! 32-bit system calls are killed whatever they say.

use std::str::FromStr;

use serde::Deserialize;

use super::bpf::{Action, ArgCheck, Filter, Op, Rule};
use crate::capabilities;

/// A parsed profile, before it is applied to a container.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u16>,
    #[serde(default)]
    syscalls: Option<Vec<Syscalls>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscalls {
    #[serde(default)]
    names: Option<Vec<String>>,
    /// The older single-name form.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u16>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Conditions>,
    #[serde(default)]
    excludes: Option<Conditions>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conditions {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("not a Docker seccomp profile: {0}")]
    Json(String),
    #[error(
        "unknown action '{0}' (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG)"
    )]
    Action(String),
    #[error(
        "unknown comparison '{0}' (expected SCMP_CMP_EQ, _NE, _LT, _LE, _GE, _GT or _MASKED_EQ)"
    )]
    Op(String),
    #[error("argument index {0} is out of range (0 to 5)")]
    ArgIndex(u8),
    #[error("unknown capability '{0}'")]
    Capability(String),
    #[error("minKernel '{0}' is not a kernel version like '4.8'")]
    Kernel(String),
    #[error("a syscalls entry names no system call")]
    NoNames,
}

/// What a profile's rules are decided against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The container's bounding set, one bit per capability.
    pub capabilities: u64,
    /// The running kernel's major and minor version.
    pub kernel: (u32, u32),
}

impl Target {
    /// The kernel this runs on, and a container with `capabilities`.
    pub fn running(capabilities: u64) -> Self {
        let kernel = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| u.release().to_str().and_then(kernel_version))
            .unwrap_or((0, 0));
        Target {
            capabilities,
            kernel,
        }
    }
}

/// `5.10.0-28-amd64` → (5, 10).
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// This architecture's name in profiles' `arches`.
fn go_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        std::env::consts::ARCH
    }
}

fn action(name: &str, errno: Option<u16>, default_errno: u16) -> Result<Action, ProfileError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(default_errno)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(default_errno)),
        "SCMP_ACT_LOG" => Action::Log,
        other => return Err(ProfileError::Action(other.to_string())),
    })
}

fn check(arg: &Arg) -> Result<ArgCheck, ProfileError> {
    if arg.index > 5 {
        return Err(ProfileError::ArgIndex(arg.index));
    }
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (Op::Eq, arg.value),
        "SCMP_CMP_NE" => (Op::Ne, arg.value),
        "SCMP_CMP_LT" => (Op::Lt, arg.value),
        "SCMP_CMP_LE" => (Op::Le, arg.value),
        "SCMP_CMP_GE" => (Op::Ge, arg.value),
        "SCMP_CMP_GT" => (Op::Gt, arg.value),
        // Docker's `value` is the mask and `valueTwo` what must remain.
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq { mask: arg.value }, arg.value_two),
        other => return Err(ProfileError::Op(other.to_string())),
    };
    Ok(ArgCheck {
        index: arg.index,
        op,
        value,
    })
}

fn capability_set(names: &[String]) -> Result<u64, ProfileError> {
    capabilities::set_of_names(names.iter().map(String::as_str))
        .map_err(|_| ProfileError::Capability(names.join(", ")))
}

fn min_kernel(version: &str) -> Result<(u32, u32), ProfileError> {
    kernel_version(version).ok_or_else(|| ProfileError::Kernel(version.to_string()))
}

impl Profile {
    /// Parses a profile and checks everything that does not depend on the
    /// container, so a bad profile is refused when it is read.
    pub fn parse(json: &[u8]) -> Result<Self, ProfileError> {
        let profile: Profile =
            serde_json::from_slice(json).map_err(|e| ProfileError::Json(e.to_string()))?;
        action(&profile.default_action, None, 1)?;
        for entry in profile.syscalls.iter().flatten() {
            if entry.names.as_ref().is_none_or(Vec::is_empty) && entry.name.is_none() {
                return Err(ProfileError::NoNames);
            }
            action(&entry.action, entry.errno_ret, 1)?;
            for arg in entry.args.iter().flatten() {
                check(arg)?;
            }
            for conditions in [&entry.includes, &entry.excludes].into_iter().flatten() {
                if let Some(caps) = &conditions.caps {
                    capability_set(caps)?;
                }
                if let Some(version) = &conditions.min_kernel {
                    min_kernel(version)?;
                }
            }
        }
        Ok(profile)
    }

    /// The rules that apply to a container on `target`, and the default.
    pub fn filter(&self, target: Target) -> Result<Filter, ProfileError> {
        // EPERM unless the profile says otherwise, as in Docker.
        let default_errno = self.default_errno_ret.unwrap_or(1);
        let default = action(&self.default_action, None, default_errno)?;
        let mut rules = Vec::new();
        for entry in self.syscalls.iter().flatten() {
            if !Self::applies(entry, target)? {
                continue;
            }
            let action = action(&entry.action, entry.errno_ret, default_errno)?;
            let checks = entry
                .args
                .iter()
                .flatten()
                .map(check)
                .collect::<Result<Vec<_>, _>>()?;
            let names = entry.names.iter().flatten().chain(entry.name.iter());
            for name in names {
                let Ok(sysno) = syscalls::Sysno::from_str(name) else {
                    tracing::trace!(name, "not a system call of this architecture");
                    continue;
                };
                let Ok(nr) = u32::try_from(sysno.id()) else {
                    continue;
                };
                rules.push(Rule {
                    nr,
                    checks: checks.clone(),
                    action,
                });
            }
        }
        Ok(Filter { default, rules })
    }

    /// Whether an entry's `includes` all hold and none of its `excludes`.
    fn applies(entry: &Syscalls, target: Target) -> Result<bool, ProfileError> {
        if let Some(includes) = &entry.includes {
            if let Some(caps) = &includes.caps {
                let needed = capability_set(caps)?;
                if target.capabilities & needed != needed {
                    return Ok(false);
                }
            }
            if let Some(arches) = &includes.arches
                && !arches.iter().any(|a| a == go_arch())
            {
                return Ok(false);
            }
            if let Some(version) = &includes.min_kernel
                && target.kernel < min_kernel(version)?
            {
                return Ok(false);
            }
        }
        if let Some(excludes) = &entry.excludes {
            if let Some(caps) = &excludes.caps
                && target.capabilities & capability_set(caps)? != 0
            {
                return Ok(false);
            }
            if let Some(arches) = &excludes.arches
                && arches.iter().any(|a| a == go_arch())
            {
                return Ok(false);
            }
            if let Some(version) = &excludes.min_kernel
                && target.kernel >= min_kernel(version)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::bpf::{Arch, compile, tests::run};

    const ALL: u64 = u64::MAX;

    fn target(capabilities: u64) -> Target {
        Target {
            capabilities,
            kernel: (6, 1),
        }
    }

    fn nr(name: &str) -> u32 {
        u32::try_from(syscalls::Sysno::from_str(name).unwrap().id()).unwrap()
    }

    /// What a program built from `json` for `target` answers to `name`.
    fn answer(json: &str, target: Target, name: &str, args: [u64; 6]) -> u32 {
        let filter = Profile::parse(json.as_bytes())
            .unwrap()
            .filter(target)
            .unwrap();
        let arch = Arch::native().unwrap();
        run(&compile(arch, &filter).unwrap(), arch.audit, nr(name), args)
    }

    const ALLOW_LIST: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["read", "write", "not_a_syscall_here"], "action": "SCMP_ACT_ALLOW", "args": null},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone", "mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "includes": {"arches": ["amd64", "arm64"], "minKernel": "4.8"}},
            {"names": ["uname"], "action": "SCMP_ACT_ALLOW",
             "includes": {"minKernel": "99.0"}}
        ]
    }"#;

    #[test]
    fn docker_profiles_become_rules_for_the_container() {
        let eperm = Action::Errno(1).ret();
        let allow = Action::Allow.ret();
        let root = target(ALL);
        let admin_less = target(ALL & !(1 << 21));
        assert_eq!(answer(ALLOW_LIST, root, "read", [0; 6]), allow);
        assert_eq!(answer(ALLOW_LIST, root, "getpid", [0; 6]), allow);
        assert_eq!(answer(ALLOW_LIST, root, "openat", [0; 6]), eperm);
        assert_eq!(
            answer(ALLOW_LIST, root, "personality", [8, 0, 0, 0, 0, 0]),
            allow
        );
        assert_eq!(
            answer(ALLOW_LIST, root, "personality", [9, 0, 0, 0, 0, 0]),
            eperm
        );
        // CLONE_NEWUSER (0x10000000) only with CAP_SYS_ADMIN.
        let new_user = [0x1000_0000, 0, 0, 0, 0, 0];
        assert_eq!(answer(ALLOW_LIST, root, "clone", new_user), allow);
        assert_eq!(answer(ALLOW_LIST, admin_less, "clone", new_user), eperm);
        assert_eq!(answer(ALLOW_LIST, admin_less, "clone", [0x11; 6]), allow);
        assert_eq!(answer(ALLOW_LIST, root, "mount", [0; 6]), allow);
        assert_eq!(answer(ALLOW_LIST, admin_less, "mount", [0; 6]), eperm);
        assert_eq!(
            answer(ALLOW_LIST, root, "kill", [0; 6]),
            Action::Errno(38).ret()
        );
        // Not on kernels before 99.0.
        assert_eq!(answer(ALLOW_LIST, root, "uname", [0; 6]), eperm);
    }

    #[test]
    fn the_default_errno_can_be_set() {
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#;
        let filter = Profile::parse(json.as_bytes())
            .unwrap()
            .filter(target(ALL))
            .unwrap();
        assert_eq!(filter.default, Action::Errno(38));
        assert_eq!(filter.rules[0].action, Action::Errno(38));
    }

    #[test]
    fn bad_profiles_are_refused_when_read() {
        let cases = [
            ("[]", "not a Docker seccomp profile"),
            (r#"{"syscalls": []}"#, "missing field `defaultAction`"),
            (
                r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
                "unknown action 'SCMP_ACT_NOTIFY'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}"#,
                "unknown action 'ALLOW'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}"#,
                "names no system call",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                    "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_APPROX"}]}]}"#,
                "unknown comparison 'SCMP_CMP_APPROX'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                    "includes": {"caps": ["CAP_FLY"]}}]}"#,
                "unknown capability 'CAP_FLY'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                    "includes": {"minKernel": "new"}}]}"#,
                "minKernel 'new'",
            ),
        ];
        for (json, expected) in cases {
            let error = Profile::parse(json.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn kernel_releases_are_read_as_major_and_minor() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("5"), None);
    }
}
