//! A small WASI preview 1 for core modules whose manifest grants it
//! (`[permissions] wasi = true`): what toolchains' runtimes reach for to
//! start and to print. Standard output and error become lines of the
//! agent's log, named after the plugin; the clocks and randomness are the
//! host's; the environment and the arguments are empty; `proc_exit` ends
//! the call as a trap. There are no files, no sockets and no other
//! descriptors: every other WASI function stays a trap, and a descriptor
//! other than 1 and 2 is `EBADF`.

use std::io::Read;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Linker};

use super::Guest;
use super::core::{read_bytes, write_bytes};

/// The import module of preview 1.
pub(super) const MODULE: &str = "wasi_snapshot_preview1";

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ESPIPE: i32 = 70;

/// Bytes one `fd_write` or `random_get` may move.
const MAX_BYTES: u32 = 64 << 10;

/// `__WASI_FILETYPE_CHARACTER_DEVICE`: stdout and stderr look like a
/// terminal, so C's stdio flushes them by line.
const CHARACTER_DEVICE: u8 = 2;

fn is_stdio(fd: i32) -> bool {
    fd == 1 || fd == 2
}

/// Links the functions above into `linker`.
pub(super) fn link(linker: &mut Linker<Guest>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, Guest>, fd: i32, iovs: i32, count: i32, written: i32| {
            if !is_stdio(fd) {
                return Ok(EBADF);
            }
            let mut text = Vec::new();
            for i in 0..u32::try_from(count).unwrap_or(0).min(1024) {
                let at = (iovs as u32).wrapping_add(i * 8);
                let iovec = read_bytes(&mut caller, at as i32, 8)?;
                let ptr = u32::from_le_bytes([iovec[0], iovec[1], iovec[2], iovec[3]]);
                let len = u32::from_le_bytes([iovec[4], iovec[5], iovec[6], iovec[7]]);
                let room = MAX_BYTES.saturating_sub(text.len() as u32);
                text.extend(read_bytes(&mut caller, ptr as i32, len.min(room) as i32)?);
            }
            caller.data_mut().print(fd as u32, &text);
            write_bytes(&mut caller, written, &(text.len() as u32).to_le_bytes())?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut caller: Caller<'_, Guest>, fd: i32, stat: i32| {
            if !is_stdio(fd) {
                return Ok(EBADF);
            }
            let mut bytes = [0u8; 24];
            bytes[0] = CHARACTER_DEVICE;
            bytes[8..24].fill(0xff);
            write_bytes(&mut caller, stat, &bytes)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |fd: i32| {
        Ok(if is_stdio(fd) { SUCCESS } else { EBADF })
    })?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |fd: i32, _offset: i64, _whence: i32, _to: i32| {
            Ok(if is_stdio(fd) { ESPIPE } else { EBADF })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut caller: Caller<'_, Guest>, buf: i32, len: i32| {
            let Ok(len) = u32::try_from(len) else {
                return Ok(EINVAL);
            };
            if len > MAX_BYTES {
                return Ok(EINVAL);
            }
            let bytes = random_bytes(len as usize)
                .map_err(|e| wasmtime::Error::msg(format!("random_get: {e}")))?;
            write_bytes(&mut caller, buf, &bytes)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, Guest>, clock: i32, _precision: i64, time: i32| {
            let nanos = match clock {
                0 => wall_clock().as_nanos(),
                1 => monotonic_nanos().into(),
                _ => return Ok(EINVAL),
            };
            let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
            write_bytes(&mut caller, time, &nanos.to_le_bytes())?;
            Ok(SUCCESS)
        },
    )?;
    // An empty environment and argument list: counts and sizes are zero.
    for (sizes, values) in [
        ("environ_sizes_get", "environ_get"),
        ("args_sizes_get", "args_get"),
    ] {
        linker.func_wrap(
            MODULE,
            sizes,
            |mut caller: Caller<'_, Guest>, count: i32, size: i32| {
                write_bytes(&mut caller, count, &0u32.to_le_bytes())?;
                write_bytes(&mut caller, size, &0u32.to_le_bytes())?;
                Ok(SUCCESS)
            },
        )?;
        linker.func_wrap(MODULE, values, |_: i32, _: i32| Ok(SUCCESS))?;
    }
    linker.func_wrap(MODULE, "sched_yield", || Ok(SUCCESS))?;
    linker.func_wrap(MODULE, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!(
            "the plugin exited (proc_exit {code})"
        )))
    })?;
    Ok(())
}

/// The monotonic clock, in nanoseconds since the first time it was read
/// (both previews).
pub(super) fn monotonic_nanos() -> u64 {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let started = *STARTED.get_or_init(Instant::now);
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The time since the Unix epoch (both previews).
pub(super) fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `len` bytes from the kernel's generator (both previews).
pub(super) fn random_bytes(len: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| std::io::Error::new(e.kind(), format!("/dev/urandom: {e}")))?;
    Ok(bytes)
}
