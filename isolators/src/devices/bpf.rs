//! The two bpf(2) calls cgroups v2 device control needs: load a device
//! program once, attach it to each container's cgroup. The attachment
//! holds the program for as long as the cgroup lives, so nothing has to
//! be detached: removing the cgroup drops it.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::program::Insn;

const BPF_PROG_LOAD: nix::libc::c_long = 5;
const BPF_PROG_ATTACH: nix::libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the cgroup's ancestors (systemd's, say) keep running too:
/// an access must pass them all.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`; the kernel reads as
/// many bytes as it is given, and the fields past these stay zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The `BPF_PROG_ATTACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: nix::libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, initialized `repr(C)` prefix of `union
    // bpf_attr` for `cmd`, and the size passed is its own; the kernel reads
    // it (and, for a load's log, writes the buffer it points to) only
    // during the call.
    let ret = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Something that puts a device program on a cgroup: the kernel, or a
/// test's recorder.
pub trait Attach: Send + Sync {
    fn attach(&self, cgroup: &Path) -> io::Result<()>;
}

/// A loaded device program.
#[derive(Debug)]
pub struct DeviceProgram {
    fd: OwnedFd,
}

impl DeviceProgram {
    /// Loads `program`; a refusal carries the verifier's log.
    pub fn load(program: &[Insn]) -> io::Result<Self> {
        let license = c"Apache-2.0";
        let mut log = vec![0u8; 64 * 1024];
        let mut name = [0u8; 16];
        name[..12].copy_from_slice(b"mesos_device");
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: u32::try_from(program.len())
                .map_err(|_| io::Error::other("device program too long"))?,
            insns: program.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_name: name,
            ..Default::default()
        };
        let fd = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]);
            io::Error::new(
                e.kind(),
                format!("loading the device program: {e}; {}", verifier.trim()),
            )
        })?;
        // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor that
        // nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Self { fd })
    }
}

impl Attach for DeviceProgram {
    fn attach(&self, cgroup: &Path) -> io::Result<()> {
        let dir = std::fs::File::open(cgroup)?;
        let mut attr = ProgAttach {
            target_fd: dir.as_raw_fd() as u32,
            attach_bpf_fd: self.fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
        };
        bpf(BPF_PROG_ATTACH, &mut attr)
            .map(drop)
            .map_err(|e| io::Error::new(e.kind(), format!("attaching the device program: {e}")))
    }
}
