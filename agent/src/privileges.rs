//! What `linux/capabilities` and `linux/nnp` prepared, applied by the
//! launcher in the executor's forked child before it execs, in Mesos's
//! order:
//! 1. as root, before the switch to the executor's user: the capabilities
//!    outside the bounding set are dropped from it (that needs
//!    `CAP_SETPCAP`, which the effective set may not keep), and when a
//!    user switch follows, `keepcaps` is set so it keeps the permitted set;
//! 2. after the switch: the effective, permitted and inheritable sets
//!    become the effective set asked for, and so does the ambient set (on
//!    kernels that have one), so a non-root command keeps them across
//!    exec; then `no_new_privs`.
//!
//! A root command gets its permitted and effective sets back from the
//! bounding set at exec (the kernel treats root's executables as having
//! every file capability), as in Mesos: for root, the bounding set is what
//! counts.
//!
//! The steps take their system calls as a parameter, so their order and
//! arguments are tested without root.

use nix::errno::Errno;
use nix::libc::{c_int, c_ulong};

/// The capability sets and `no_new_privs` of an executor, or of the task
/// of an image (see [`crate::command_executor::rootfs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Privileges {
    /// Capabilities kept in the bounding set (bit N is capability N).
    pub bounding: Option<u64>,
    /// The effective, permitted, inheritable and ambient sets.
    pub effective: Option<u64>,
    pub no_new_privs: bool,
}

/// The system calls the steps make; [`Kernel`] makes them for real.
pub trait Syscalls {
    /// `prctl(PR_CAPBSET_DROP, cap)`.
    fn drop_bounding(&self, cap: u32) -> Result<(), Errno>;
    /// `prctl(PR_SET_KEEPCAPS, 1)`.
    fn keep_caps(&self) -> Result<(), Errno>;
    /// `capset(2)` on this thread.
    fn set_caps(&self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno>;
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
    fn clear_ambient(&self) -> Result<(), Errno>;
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)`.
    fn raise_ambient(&self, cap: u32) -> Result<(), Errno>;
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn no_new_privs(&self) -> Result<(), Errno>;
}

fn caps_in(set: u64) -> impl Iterator<Item = u32> {
    (0..64u32).filter(move |cap| set & (1 << cap) != 0)
}

impl Privileges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Step 1, as root: `switching` when the user switch follows.
    pub fn before_switch(&self, sys: &impl Syscalls, switching: bool) -> Result<(), Errno> {
        if let Some(keep) = self.bounding {
            for cap in caps_in(!keep) {
                match sys.drop_bounding(cap) {
                    Ok(()) => {}
                    // Past the kernel's last capability: none to drop.
                    Err(Errno::EINVAL) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if self.effective.is_some() && switching {
            sys.keep_caps()?;
        }
        Ok(())
    }

    /// Step 2, as the executor's user, last before exec.
    pub fn after_switch(&self, sys: &impl Syscalls) -> Result<(), Errno> {
        if let Some(caps) = self.effective {
            sys.set_caps(caps, caps, caps)?;
            // EINVAL: a kernel without ambient capabilities (before 4.3);
            // the command must then get them back from file capabilities.
            match sys.clear_ambient() {
                Ok(()) => {
                    for cap in caps_in(caps) {
                        sys.raise_ambient(cap)?;
                    }
                }
                Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
        if self.no_new_privs {
            sys.no_new_privs()?;
        }
        Ok(())
    }
}

/// The real system calls. Each is async-signal-safe and allocates
/// nothing, so the steps can run between fork and exec.
#[derive(Debug, Clone, Copy)]
pub struct Kernel;

/// `struct __user_cap_header_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct` (linux/capability.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two `CapData`.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// prctl(2) with integer arguments.
#[allow(unsafe_code)]
fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong) -> Result<(), Errno> {
    let zero: c_ulong = 0;
    // SAFETY: the options used here take integers only and read or write
    // no memory of the caller's; unused arguments are zero, as prctl(2)
    // asks.
    let rc = unsafe { nix::libc::prctl(option, arg2, arg3, zero, zero) };
    Errno::result(rc).map(drop)
}

impl Syscalls for Kernel {
    fn drop_bounding(&self, cap: u32) -> Result<(), Errno> {
        prctl(nix::libc::PR_CAPBSET_DROP, c_ulong::from(cap), 0)
    }

    fn keep_caps(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_keepcaps(true)
    }

    #[allow(unsafe_code)]
    fn set_caps(&self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        // Version 3 splits each set into its low and high 32 bits.
        let half = |set: u64, high: bool| {
            let shifted = if high { set >> 32 } else { set };
            (shifted & 0xffff_ffff) as u32
        };
        let data = [false, true].map(|high| CapData {
            effective: half(effective, high),
            permitted: half(permitted, high),
            inheritable: half(inheritable, high),
        });
        // SAFETY: capset(2) reads a version-3 header and the two data
        // structs version 3 defines, both alive and laid out as the
        // kernel's (repr(C)) for the duration of the call; pid 0 is this
        // thread.
        let rc =
            unsafe { nix::libc::syscall(nix::libc::SYS_capset, &raw const header, data.as_ptr()) };
        Errno::result(rc).map(drop)
    }

    fn clear_ambient(&self) -> Result<(), Errno> {
        prctl(
            nix::libc::PR_CAP_AMBIENT,
            nix::libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
            0,
        )
    }

    fn raise_ambient(&self, cap: u32) -> Result<(), Errno> {
        prctl(
            nix::libc::PR_CAP_AMBIENT,
            nix::libc::PR_CAP_AMBIENT_RAISE as c_ulong,
            c_ulong::from(cap),
        )
    }

    fn no_new_privs(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_no_new_privs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records the calls; fails the ones `fail` names.
    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<String>>,
        fail: Vec<(&'static str, Errno)>,
        last_cap: u32,
    }

    impl Recorder {
        fn call(&self, name: &'static str, call: String) -> Result<(), Errno> {
            self.calls.borrow_mut().push(call);
            match self.fail.iter().find(|(n, _)| *n == name) {
                Some((_, e)) => Err(*e),
                None => Ok(()),
            }
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.borrow_mut())
        }
    }

    impl Syscalls for Recorder {
        fn drop_bounding(&self, cap: u32) -> Result<(), Errno> {
            if cap > self.last_cap {
                return Err(Errno::EINVAL);
            }
            self.call("drop", format!("drop {cap}"))
        }
        fn keep_caps(&self) -> Result<(), Errno> {
            self.call("keepcaps", "keepcaps".into())
        }
        fn set_caps(&self, e: u64, p: u64, i: u64) -> Result<(), Errno> {
            self.call("capset", format!("capset {e:#x} {p:#x} {i:#x}"))
        }
        fn clear_ambient(&self) -> Result<(), Errno> {
            self.call("clear", "ambient clear".into())
        }
        fn raise_ambient(&self, cap: u32) -> Result<(), Errno> {
            self.call("raise", format!("ambient {cap}"))
        }
        fn no_new_privs(&self) -> Result<(), Errno> {
            self.call("nnp", "nnp".into())
        }
    }

    #[test]
    fn the_bounding_set_keeps_only_what_was_asked_up_to_the_kernels_last_capability() {
        let sys = Recorder {
            last_cap: 40,
            ..Default::default()
        };
        let privileges = Privileges {
            bounding: Some(0x2001),
            ..Default::default()
        };
        privileges.before_switch(&sys, true).unwrap();
        let expected: Vec<String> = (1..=40)
            .filter(|&cap| cap != 13)
            .map(|cap| format!("drop {cap}"))
            .collect();
        assert_eq!(sys.take(), expected, "no keepcaps without an effective set");
        privileges.after_switch(&sys).unwrap();
        assert!(sys.take().is_empty());
    }

    #[test]
    fn the_effective_set_is_set_after_the_switch_and_made_ambient() {
        let sys = Recorder {
            last_cap: 40,
            ..Default::default()
        };
        let privileges = Privileges {
            bounding: Some(u64::MAX),
            effective: Some((1 << 13) | (1 << 33)),
            no_new_privs: true,
        };
        privileges.before_switch(&sys, true).unwrap();
        assert_eq!(
            sys.take(),
            ["keepcaps"],
            "nothing to drop from the bounding set"
        );
        privileges.before_switch(&sys, false).unwrap();
        assert!(sys.take().is_empty(), "keepcaps only for a user switch");
        privileges.after_switch(&sys).unwrap();
        assert_eq!(
            sys.take(),
            [
                "capset 0x200002000 0x200002000 0x200002000",
                "ambient clear",
                "ambient 13",
                "ambient 33",
                "nnp"
            ]
        );
    }

    #[test]
    fn no_ambient_set_is_not_an_error_but_other_failures_are() {
        let old_kernel = Recorder {
            last_cap: 36,
            fail: vec![("clear", Errno::EINVAL)],
            ..Default::default()
        };
        let privileges = Privileges {
            effective: Some(1),
            ..Default::default()
        };
        privileges.after_switch(&old_kernel).unwrap();
        assert_eq!(old_kernel.take(), ["capset 0x1 0x1 0x1", "ambient clear"]);

        let refused = Recorder {
            last_cap: 40,
            fail: vec![("drop", Errno::EPERM), ("capset", Errno::EPERM)],
            ..Default::default()
        };
        let privileges = Privileges {
            bounding: Some(0),
            effective: Some(0),
            no_new_privs: true,
        };
        assert_eq!(privileges.before_switch(&refused, false), Err(Errno::EPERM));
        assert_eq!(refused.take(), ["drop 0"]);
        assert_eq!(privileges.after_switch(&refused), Err(Errno::EPERM));
        assert_eq!(refused.take(), ["capset 0x0 0x0 0x0"], "nnp is not reached");

        let nnp_only = Recorder::default();
        let privileges = Privileges {
            no_new_privs: true,
            ..Default::default()
        };
        privileges.before_switch(&nnp_only, true).unwrap();
        privileges.after_switch(&nnp_only).unwrap();
        assert_eq!(nnp_only.take(), ["nnp"]);
    }
}
