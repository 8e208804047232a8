//! The core-module form of a WASM plugin: the envelope's three
//! operations lowered by hand, for toolchains without component support
//! (hand-written WAT, clang's `--target=wasm32`, Rust's
//! `wasm32-unknown-unknown`). It is also the cheaper form per call: the
//! survey measured 15 ns for a bare core call against 0.23 µs for a
//! component's.
//!
//! # The ABI, version 1
//!
//! The module exports:
//! - `memory`: its linear memory;
//! - `mesos_plugin_abi() -> i32`: answers `1` (a new major answers
//!   another number and the host refuses what it does not speak). A
//!   function, not a global: C and Rust export a static as its address;
//! - `alloc(len: i32) -> i32`: room for `len` bytes of input. The host
//!   calls it once before `configure` and `call`, for all the entry's
//!   inputs back to back, and writes them there. A guest may reuse every
//!   byte of earlier exchanges (inputs and answers) when `alloc` is
//!   called, so a bump allocator reset in `alloc` is enough;
//! - `describe() -> i32`: answers an encoded `mesos.plugin.v1.PluginInfo`;
//! - `configure(api_ptr, api_len, config_ptr, config_len: i32) -> i32`;
//! - `call(method_ptr, method_len, request_ptr, request_len: i32) -> i32`:
//!   `method` is UTF-8 (`isolator.prepare`), `request` the encoded request.
//!
//! Each entry returns the address of its answer: three little-endian
//! `i32`s, `status`, `ptr`, `len`. Status 0 is success and `ptr`/`len`
//! the response bytes; any other status is a `mesos.plugin.v1.Error.Code`
//! (1 unimplemented, 2 invalid, 3 internal) and the bytes are a UTF-8
//! message. The answer stays readable until the host's next entry; the
//! host copies it out at once.
//!
//! The module may import the host calls of [`crate::host::calls`] from
//! module `mesos_host`, strings as (pointer, length) pairs into its
//! memory:
//! - `log(level, msg_ptr, msg_len: i32)`, level 0 error to 3 debug;
//! - `set_cgroup_knob(container_ptr, container_len, knob_ptr, knob_len,
//!   value_ptr, value_len: i32) -> i32`: 0 done, 1 refused or failed (the
//!   host's log says why).
//!
//! A host call naming bytes outside the memory, or text that is not
//! UTF-8, traps.

use wasmtime::{Caller, Engine, Instance, InstancePre, Linker, Memory, Module, Store, TypedFunc};

use super::{Entry, Exchange, Fault, Guest, Instantiation, cache, log_trapping_imports};
use crate::envelope::{ErrorCode, PluginError};
use crate::host::Problem;
use crate::host::manifest::Manifest;

/// The value of the `mesos_plugin_abi` export this host speaks.
pub const ABI_VERSION: i32 = 1;

/// The import module of the host calls.
pub const HOST_MODULE: &str = "mesos_host";

type Entry4 = TypedFunc<(i32, i32, i32, i32), i32>;

/// A compiled module, linked and ready to instantiate.
pub(super) struct Core {
    pre: InstancePre<Guest>,
}

impl Core {
    pub(super) fn open(
        engine: &Engine,
        manifest: &Manifest,
        binary: &[u8],
    ) -> Result<Self, Problem> {
        let module: Module = cache::compile(engine, &manifest.artifact, &manifest.sha256, binary)?;
        let granted = |module: &str| manifest.permissions.wasi && module == super::wasi::MODULE;
        let imports: Vec<String> = module
            .imports()
            .filter(|i| !granted(i.module()))
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect();
        log_trapping_imports(&manifest.name, &imports);
        let mut linker = Linker::new(engine);
        link_host_calls(&mut linker).map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        if manifest.permissions.wasi {
            super::wasi::link(&mut linker).map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        }
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        Ok(Self { pre })
    }

    pub(super) fn engine(&self) -> &Engine {
        self.pre.module().engine()
    }

    pub(super) fn instantiate(
        &self,
        mut store: Store<Guest>,
        ticks: u64,
    ) -> Result<Live, Instantiation> {
        // A start function is guest code too.
        store.set_epoch_deadline(ticks);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| Instantiation::Failed(super::describe_error(&e)))?;
        let abi: TypedFunc<(), i32> =
            typed(&instance, &mut store, "mesos_plugin_abi", "() -> i32")?;
        store.set_epoch_deadline(ticks);
        let abi = abi.call(&mut store, ()).map_err(|e| {
            Instantiation::Failed(format!("mesos_plugin_abi: {}", super::describe_error(&e)))
        })?;
        if abi != ABI_VERSION {
            return Err(Instantiation::Abi(format!(
                "the module speaks ABI version {abi}, this agent speaks {ABI_VERSION}"
            )));
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| missing("memory", "a memory"))?;
        Ok(Live {
            memory,
            alloc: typed(&instance, &mut store, "alloc", "(i32) -> i32")?,
            describe: typed(&instance, &mut store, "describe", "() -> i32")?,
            configure: typed(
                &instance,
                &mut store,
                "configure",
                "(i32, i32, i32, i32) -> i32",
            )?,
            call: typed(&instance, &mut store, "call", "(i32, i32, i32, i32) -> i32")?,
            store,
        })
    }
}

/// One instance and the store it lives in.
pub(super) struct Live {
    store: Store<Guest>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    describe: TypedFunc<(), i32>,
    configure: Entry4,
    call: Entry4,
}

impl Live {
    pub(super) fn guest(&mut self) -> &mut Guest {
        self.store.data_mut()
    }

    /// One entry: inputs in, answer out.
    pub(super) fn exchange(&mut self, entry: Entry<'_>, ticks: u64) -> Exchange {
        let what = entry.name();
        let trap = |error| Fault::Trap {
            what: what.to_string(),
            error,
        };
        let answer_at = match entry {
            Entry::Describe => {
                self.store.set_epoch_deadline(ticks);
                self.describe.call(&mut self.store, ()).map_err(trap)?
            }
            Entry::Configure { api: a, config: b }
            | Entry::Call {
                method: a,
                request: b,
            } => {
                let Ok(total) = i32::try_from(a.len() + b.len()) else {
                    return Ok(Err(PluginError::invalid(format!(
                        "{what}: {} bytes of input do not fit a 32-bit module",
                        a.len() + b.len()
                    ))));
                };
                self.store.set_epoch_deadline(ticks);
                let base =
                    self.alloc
                        .call(&mut self.store, total)
                        .map_err(|error| Fault::Trap {
                            what: "alloc".into(),
                            error,
                        })?;
                let a_at = base as u32 as usize;
                let b_at = a_at + a.len();
                self.memory
                    .write(&mut self.store, a_at, a)
                    .and_then(|()| self.memory.write(&mut self.store, b_at, b))
                    .map_err(|_| {
                        Fault::Answer(format!(
                            "alloc({total}) returned {base:#x}, outside the module's memory"
                        ))
                    })?;
                let params = (base, a.len() as i32, b_at as i32, b.len() as i32);
                let function = match entry {
                    Entry::Configure { .. } => &self.configure,
                    _ => &self.call,
                };
                self.store.set_epoch_deadline(ticks);
                function.call(&mut self.store, params).map_err(trap)?
            }
        };
        self.answer(&what, answer_at as u32 as usize)
    }

    /// Reads the answer record at `at` and the bytes it points to.
    fn answer(&self, what: &str, at: usize) -> Exchange {
        let memory = self.memory.data(&self.store);
        let field = |at: usize| -> Option<u32> {
            let bytes = memory.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes(bytes.try_into().ok()?))
        };
        let (status, ptr, len) = match (field(at), field(at + 4), field(at + 8)) {
            (Some(status), Some(ptr), Some(len)) => (status as i32, ptr as usize, len as usize),
            _ => {
                return Err(Fault::Answer(format!(
                    "{what} answered at {at:#x}, outside the module's memory"
                )));
            }
        };
        let bytes = ptr
            .checked_add(len)
            .and_then(|end| memory.get(ptr..end))
            .ok_or_else(|| {
                Fault::Answer(format!(
                    "{what} answered {len} bytes at {ptr:#x}, outside the module's memory"
                ))
            })?
            .to_vec();
        if status == crate::abi::STATUS_OK {
            return Ok(Ok(bytes));
        }
        let message = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Err(match ErrorCode::from_status(status) {
            Some(code) => PluginError::new(code, message),
            None => PluginError::internal(format!("unknown status {status}: {message}")),
        }))
    }
}

/// The host calls, as `mesos_host` functions.
fn link_host_calls(linker: &mut Linker<Guest>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "log",
        |mut caller: Caller<'_, Guest>, level: i32, ptr: i32, len: i32| {
            let message = guest_str(&mut caller, ptr, len)?;
            caller
                .data()
                .host
                .log(u32::try_from(level).unwrap_or(u32::MAX), &message);
            Ok(())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "set_cgroup_knob",
        |mut caller: Caller<'_, Guest>,
         container_ptr: i32,
         container_len: i32,
         knob_ptr: i32,
         knob_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> wasmtime::Result<i32> {
            let container = guest_str(&mut caller, container_ptr, container_len)?;
            let knob = guest_str(&mut caller, knob_ptr, knob_len)?;
            let value = guest_str(&mut caller, value_ptr, value_len)?;
            let done = caller
                .data()
                .host
                .set_cgroup_knob(&container, &knob, &value);
            Ok(if done.is_ok() { 0 } else { 1 })
        },
    )?;
    Ok(())
}

/// The UTF-8 text at `ptr..ptr + len` of the caller's memory.
fn guest_str(caller: &mut Caller<'_, Guest>, ptr: i32, len: i32) -> wasmtime::Result<String> {
    String::from_utf8(read_bytes(caller, ptr, len)?)
        .map_err(|_| wasmtime::Error::msg("a host call's text is not UTF-8"))
}

/// The caller's memory, and the range `ptr..ptr + len` of it (both read
/// as unsigned), if the range is inside.
fn guest_range(
    caller: &mut Caller<'_, Guest>,
    ptr: i32,
    len: usize,
) -> wasmtime::Result<(Memory, std::ops::Range<usize>)> {
    let memory = caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("a host call from a module without a memory"))?;
    let start = ptr as u32 as usize;
    start
        .checked_add(len)
        .filter(|end| *end <= memory.data_size(&*caller))
        .map(|end| (memory, start..end))
        .ok_or_else(|| wasmtime::Error::msg("a host call names bytes outside the memory"))
}

/// The bytes at `ptr..ptr + len` of the caller's memory.
pub(super) fn read_bytes(
    caller: &mut Caller<'_, Guest>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let (memory, range) = guest_range(caller, ptr, len as u32 as usize)?;
    Ok(memory.data(&*caller)[range].to_vec())
}

/// Writes `bytes` at `ptr` of the caller's memory.
pub(super) fn write_bytes(
    caller: &mut Caller<'_, Guest>,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let (memory, range) = guest_range(caller, ptr, bytes.len())?;
    memory.data_mut(&mut *caller)[range].copy_from_slice(bytes);
    Ok(())
}

fn missing(name: &str, what: &str) -> Instantiation {
    Instantiation::Abi(format!(
        "the module does not export `{name}` as {what} (ABI version {ABI_VERSION})"
    ))
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<Guest>,
    name: &str,
    signature: &str,
) -> Result<TypedFunc<P, R>, Instantiation> {
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map_err(|_| missing(name, &format!("a function {signature}")))
}
