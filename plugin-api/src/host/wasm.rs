//! WASM plugins (feature `wasm`): a core WebAssembly module run by
//! wasmtime, speaking the envelope through the core-module ABI below.
//!
//! # Why a core module and not a component
//!
//! `wit/plugin.wit` is the envelope as a WIT world. This host loads the
//! core-module form of the same three operations instead of a component:
//! it needs no component-model support in the host (a smaller, faster
//! wasmtime build), no toolchain to produce (hand-written WAT, clang's
//! `--target=wasm32`, Rust's `wasm32-unknown-unknown` all make one), and it
//! costs less per call (the survey measured ~1 µs for a 1 KiB round trip
//! either way, 15 ns for a bare core call against 0.23 µs for a
//! component's). Payloads are protobuf bytes in both, so nothing of the
//! schema is in the ABI.
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
//! host copies it out at once. The module imports nothing: there is no
//! WASI and no host function, and a module that imports anything is
//! refused at load, naming the import.
//!
//! # Containment
//!
//! One engine per process with epoch interruption and a 10 ms ticker; the
//! deadline (`call_timeout_ms`) is re-armed before every entry into the
//! guest (`alloc` included). The store caps linear memory at the
//! manifest's `memory_limit_bytes` (growing past it traps) and allows one
//! memory, one instance and a few tables. A trap (deadline, memory,
//! `unreachable`, out-of-bounds answer) throws the instance away; the
//! next call gets a fresh one, configured again, so a guest's in-memory
//! state is a cache. Faults count towards quarantine through the same
//! adapter as dylibs. Compiled modules are cached next to the plugin in
//! `.cache/`, keyed by the engine's compatibility hash and the artifact's
//! sha256.

mod cache;

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use prost::Message;
use wasmtime::{
    Config, Engine, Instance, InstancePre, Linker, Memory, ResourceLimiter, Store, Trap, TypedFunc,
};

use super::Problem;
use super::manifest::{Manifest, WasmLimits};
use crate::envelope::{Envelope, ErrorCode, PluginError, Response};
use mesos_proto::plugin::v1 as proto;

/// The value of the `mesos_plugin_abi` export this host speaks.
pub const ABI_VERSION: i32 = 1;

/// How often the engine's epoch advances: the deadline's resolution.
const TICK: Duration = Duration::from_millis(10);

/// The process's engine, and the thread advancing its epoch.
fn engine() -> Result<&'static Engine, Problem> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
            let ticking = engine.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(TICK);
                        ticking.increment_epoch();
                    }
                })
                .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| Problem::Engine(e.clone()))
}

/// Why a store refused to grow a memory: the manifest's cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (the module asked for {desired} bytes)")]
struct MemoryLimit {
    limit: usize,
    desired: usize,
}

/// The limits of one instance's store.
struct Limits {
    memory_bytes: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // An error, not a refusal: the guest traps at once with this
            // message instead of limping on with a failed `memory.grow`.
            return Err(wasmtime::Error::new(MemoryLimit {
                limit: self.memory_bytes,
                desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

type Entry4 = TypedFunc<(i32, i32, i32, i32), i32>;

/// One instance and the store it lives in.
struct Live {
    store: Store<Limits>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    describe: TypedFunc<(), i32>,
    configure: Entry4,
    call: Entry4,
}

/// An entry into the guest.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Describe,
    Configure { api: &'a [u8], config: &'a [u8] },
    Call { method: &'a [u8], request: &'a [u8] },
}

impl<'a> Entry<'a> {
    /// How errors name it: the method of a call.
    fn name(&self) -> Cow<'a, str> {
        match self {
            Self::Describe => Cow::Borrowed("describe"),
            Self::Configure { .. } => Cow::Borrowed("configure"),
            Self::Call { method, .. } => String::from_utf8_lossy(method),
        }
    }
}

/// A fault: the instance is no longer trusted and is rebuilt.
struct Fault(PluginError);

/// A loaded WASM plugin: its compiled module, and the instance calls go
/// to (none after a fault, until the next call rebuilds it).
pub struct Wasm {
    name: String,
    pre: InstancePre<Limits>,
    limits: WasmLimits,
    timeout: Duration,
    /// The deadline in epoch ticks.
    ticks: u64,
    /// What the instance was configured with, to configure a rebuilt one.
    configured: Mutex<Option<(String, Vec<u8>)>>,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Wasm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wasm")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Wasm {
    /// Compiles (or loads from the cache) the module in `bytes`, the
    /// manifest's checked artifact, and instantiates it once to check its
    /// exports.
    pub fn open(manifest: &Manifest, limits: WasmLimits, bytes: &[u8]) -> Result<Self, Problem> {
        let engine = engine()?;
        let module = cache::compile(engine, &manifest.artifact, &manifest.sha256, bytes)?;
        if let Some(import) = module.imports().next() {
            return Err(Problem::Import {
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
        let pre = Linker::new(engine)
            .instantiate_pre(&module)
            .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        let timeout = manifest.call_timeout;
        let ticks = u64::try_from(timeout.as_millis().div_ceil(TICK.as_millis()))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let plugin = Self {
            name: manifest.name.clone(),
            pre,
            limits,
            timeout,
            ticks,
            configured: Mutex::new(None),
            live: Mutex::new(None),
        };
        let live = plugin.instantiate().map_err(|e| match e {
            Instantiation::Abi(message) => Problem::Export(message),
            Instantiation::Failed(message) => Problem::Instantiate(message),
        })?;
        *plugin.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(live);
        Ok(plugin)
    }

    /// Asks the plugin what it is.
    pub fn describe(&self) -> Result<proto::PluginInfo, PluginError> {
        let bytes = self.enter(Entry::Describe)?;
        proto::PluginInfo::decode(&*bytes)
            .map_err(|e| PluginError::internal(format!("undecodable describe answer: {e}")))
    }

    /// Configures the plugin; a rebuilt instance gets the same.
    pub fn configure(&self, api_version: &str, config: Vec<u8>) -> Result<(), PluginError> {
        self.enter(Entry::Configure {
            api: api_version.as_bytes(),
            config: &config,
        })?;
        *self
            .configured
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((api_version.to_string(), config));
        Ok(())
    }

    fn instantiate(&self) -> Result<Live, Instantiation> {
        let memory_bytes = usize::try_from(self.limits.memory_bytes).unwrap_or(usize::MAX);
        let mut store = Store::new(self.pre.module().engine(), Limits { memory_bytes });
        store.limiter(|limits| limits);
        // A start function is guest code too.
        store.set_epoch_deadline(self.ticks);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| Instantiation::Failed(describe_error(&e)))?;
        let abi: TypedFunc<(), i32> =
            typed(&instance, &mut store, "mesos_plugin_abi", "() -> i32")?;
        store.set_epoch_deadline(self.ticks);
        let abi = abi.call(&mut store, ()).map_err(|e| {
            Instantiation::Failed(format!("mesos_plugin_abi: {}", describe_error(&e)))
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

    /// A fresh instance, configured as the last one was.
    fn rebuild(&self) -> Result<Live, PluginError> {
        let started = Instant::now();
        let mut live = self.instantiate().map_err(|e| {
            PluginError::internal(format!("cannot rebuild the instance: {}", e.message()))
        })?;
        let configured = self
            .configured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((api, config)) = configured {
            let entry = Entry::Configure {
                api: api.as_bytes(),
                config: &config,
            };
            self.exchange(&mut live, entry)
                .map_err(|Fault(e)| e)
                .and_then(|answer| answer)
                .map_err(|e| {
                    PluginError::internal(format!("the rebuilt instance's configure failed: {e}"))
                })?;
        }
        tracing::info!(
            plugin = %self.name,
            micros = started.elapsed().as_micros() as u64,
            "WASM instance rebuilt after a fault"
        );
        Ok(live)
    }

    /// Enters the guest, rebuilding the instance first if the last entry
    /// faulted, and dropping it if this one does.
    fn enter(&self, entry: Entry<'_>) -> Result<Vec<u8>, PluginError> {
        let mut slot = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let live = match &mut *slot {
            Some(live) => live,
            empty => empty.insert(self.rebuild()?),
        };
        match self.exchange(live, entry) {
            Ok(answer) => answer,
            Err(Fault(error)) => {
                *slot = None;
                tracing::warn!(plugin = %self.name, "{error}; the instance is dropped");
                Err(error)
            }
        }
    }

    /// One entry: inputs in, answer out. The outer error is a fault; the
    /// inner one what the guest answered.
    fn exchange(
        &self,
        live: &mut Live,
        entry: Entry<'_>,
    ) -> Result<Result<Vec<u8>, PluginError>, Fault> {
        let what = entry.name();
        let answer_at = match entry {
            Entry::Describe => {
                live.store.set_epoch_deadline(self.ticks);
                live.describe
                    .call(&mut live.store, ())
                    .map_err(|e| self.fault(&what, e))?
            }
            Entry::Configure { api: a, config: b }
            | Entry::Call {
                method: a,
                request: b,
            } => {
                let total = i32::try_from(a.len() + b.len()).map_err(|_| {
                    Fault(PluginError::invalid(format!(
                        "{what}: {} bytes of input do not fit a 32-bit module",
                        a.len() + b.len()
                    )))
                })?;
                live.store.set_epoch_deadline(self.ticks);
                let base = live
                    .alloc
                    .call(&mut live.store, total)
                    .map_err(|e| self.fault("alloc", e))?;
                let a_at = base as u32 as usize;
                let b_at = a_at + a.len();
                live.memory
                    .write(&mut live.store, a_at, a)
                    .and_then(|()| live.memory.write(&mut live.store, b_at, b))
                    .map_err(|_| {
                        Fault(PluginError::internal(format!(
                            "alloc({total}) returned {base:#x}, outside the module's memory"
                        )))
                    })?;
                let params = (base, a.len() as i32, b_at as i32, b.len() as i32);
                let function = match entry {
                    Entry::Configure { .. } => &live.configure,
                    _ => &live.call,
                };
                live.store.set_epoch_deadline(self.ticks);
                function
                    .call(&mut live.store, params)
                    .map_err(|e| self.fault(&what, e))?
            }
        };
        let memory = live.memory.data(&live.store);
        let field = |at: usize| -> Option<u32> {
            let bytes = memory.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes(bytes.try_into().ok()?))
        };
        let at = answer_at as u32 as usize;
        let out_of_bounds = || {
            Fault(PluginError::internal(format!(
                "{what} answered at {at:#x}, outside the module's memory"
            )))
        };
        let (status, ptr, len) = match (field(at), field(at + 4), field(at + 8)) {
            (Some(status), Some(ptr), Some(len)) => (status as i32, ptr as usize, len as usize),
            _ => return Err(out_of_bounds()),
        };
        let bytes = ptr
            .checked_add(len)
            .and_then(|end| memory.get(ptr..end))
            .ok_or_else(|| {
                Fault(PluginError::internal(format!(
                    "{what} answered {len} bytes at {ptr:#x}, outside the module's memory"
                )))
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

    fn fault(&self, what: &str, error: wasmtime::Error) -> Fault {
        let error = if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            PluginError::new(
                ErrorCode::Timeout,
                format!(
                    "{what} did not return within {} ms (the instance was stopped and is rebuilt for the next call)",
                    self.timeout.as_millis()
                ),
            )
        } else {
            PluginError::internal(format!("{what} trapped: {}", describe_error(&error)))
        };
        Fault(error)
    }
}

impl Envelope for Wasm {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
        self.enter(Entry::Call {
            method: method.as_bytes(),
            request,
        })
        .map(Response::from)
    }
}

/// Why an instance could not be made.
enum Instantiation {
    /// The module does not export the ABI.
    Abi(String),
    Failed(String),
}

impl Instantiation {
    fn message(&self) -> &str {
        match self {
            Self::Abi(m) | Self::Failed(m) => m,
        }
    }
}

fn missing(name: &str, what: &str) -> Instantiation {
    Instantiation::Abi(format!(
        "the module does not export `{name}` as {what} (ABI version {ABI_VERSION})"
    ))
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<Limits>,
    name: &str,
    signature: &str,
) -> Result<TypedFunc<P, R>, Instantiation> {
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map_err(|_| missing(name, &format!("a function {signature}")))
}

/// What a trap or a host-side refusal says, without the backtrace.
fn describe_error(error: &wasmtime::Error) -> String {
    if let Some(limit) = error.downcast_ref::<MemoryLimit>() {
        return limit.to_string();
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return trap.to_string();
    }
    format!("{error:#}")
}
