//! WASM plugins (feature `wasm`), run by wasmtime in one of two forms,
//! told apart by the artifact itself:
//! - a **component** of the `mesos:plugin/plugin@1.0.0` world
//!   (`wit/plugin.wit`), as `wit-bindgen`, `cargo component` or any other
//!   component toolchain makes it ([`component`]);
//! - a **core module** speaking the same three operations through the
//!   hand-lowered ABI of [`core`], for toolchains without component
//!   support (clang with wasi-libc, Rust's `wasm32-unknown-unknown`,
//!   hand-written WAT). It costs less per call.
//!
//! Payloads are protobuf bytes in both, so nothing of the schema is in
//! either ABI.
//!
//! # Containment (both forms)
//!
//! - One engine per process with epoch interruption and a 10 ms ticker;
//!   the deadline (`call_timeout_ms`) is re-armed before every entry into
//!   the guest, instantiation included.
//! - The store caps the linear memory of the instance, all its memories
//!   together, at the manifest's `memory_limit_bytes`: growing past it
//!   traps. It also bounds the number of instances, memories and tables.
//! - The host calls of [`crate::host::calls`] are linked (each checked
//!   against the plugin's permissions when called), and when the manifest
//!   grants `wasi`, a small WASI: preview 1 for a core module (`wasi`),
//!   0.2 for a component (`wasi_p2`); stdio into the log, clocks, random;
//!   no files, sockets or environment. Any
//!   other import is satisfied by a function that traps when called,
//!   naming the import, so a guest whose toolchain linked WASI it never
//!   uses still runs. The imports are logged at load.
//! - A trap (deadline, memory, `unreachable`, an unknown import, an answer
//!   out of bounds) throws the instance away; the next call gets a fresh
//!   one, configured again, so a guest's in-memory state is a cache.
//!   Faults count towards quarantine through the same adapter as dylibs.
//! - Compiled artifacts are cached next to the plugin ([`cache`]).

mod cache;
pub mod component;
pub mod core;
mod wasi;
mod wasi_p2;

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use prost::Message;
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};

use super::Problem;
use super::calls::HostContext;
use super::manifest::{Manifest, WasmLimits};
use crate::envelope::{Envelope, ErrorCode, PluginError, Response};
use mesos_proto::plugin::v1 as proto;

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

/// Whether `binary` is a component rather than a core module: the
/// preamble's layer field (bytes 6 and 7) is 1 for components.
pub(crate) fn is_component(binary: &[u8]) -> bool {
    binary.get(6..8) == Some(&[1, 0])
}

/// Why a store refused to grow a memory: the manifest's cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (the guest asked for {desired} bytes in all)")]
struct MemoryLimit {
    limit: usize,
    desired: usize,
}

/// The limits of one instance's store. A component holds several core
/// instances (and may hold several memories); a core module is one.
struct Limits {
    memory_bytes: usize,
    /// What the store's memories hold together.
    memory_used: usize,
    instances: usize,
    memories: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_used
            .saturating_add(desired.saturating_sub(current));
        if total > self.memory_bytes {
            // An error, not a refusal: the guest traps at once with this
            // message instead of limping on with a failed `memory.grow`.
            return Err(wasmtime::Error::new(MemoryLimit {
                limit: self.memory_bytes,
                desired: total,
            }));
        }
        self.memory_used = total;
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
        self.instances
    }

    fn memories(&self) -> usize {
        self.memories
    }

    fn tables(&self) -> usize {
        self.instances.saturating_mul(4)
    }
}

/// What a store holds besides its instance: the limits it is held to,
/// the plugin's view of the host for its host calls, and what it wrote to
/// standard error during the current entry.
struct Guest {
    limits: Limits,
    host: HostContext,
    stderr: String,
}

/// How much of its standard error a faulting entry's error quotes: a
/// panic's message and location fit.
const STDERR_TAIL: usize = 512;

impl Guest {
    /// Logs each line of `bytes` written to standard output (`stream` 1,
    /// as information) or standard error (2, as warnings), and keeps the
    /// end of what went to standard error, for the error of a trap that
    /// follows (a Rust panic prints, then traps).
    fn print(&mut self, stream: u32, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let level = if stream == 2 { 1 } else { 2 };
        for line in text.lines() {
            self.host.log(level, line);
        }
        if stream == 2 {
            self.stderr.push_str(&text);
            if self.stderr.len() > STDERR_TAIL {
                let mut cut = self.stderr.len() - STDERR_TAIL;
                while !self.stderr.is_char_boundary(cut) {
                    cut += 1;
                }
                self.stderr.drain(..cut);
            }
        }
    }
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

/// What an entry answered: the guest's answer, or a fault after which
/// the instance is no longer trusted and is rebuilt.
type Exchange = Result<Result<Vec<u8>, PluginError>, Fault>;

enum Fault {
    /// The guest trapped (or ran out of time) in `what`.
    Trap {
        what: String,
        error: wasmtime::Error,
    },
    /// The guest's answer cannot be read.
    Answer(String),
}

/// Why an instance could not be made.
enum Instantiation {
    /// The module or component does not export the ABI.
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

/// The compiled artifact, in its form.
enum Compiled {
    Core(core::Core),
    Component(component::Component),
}

/// One instance of it, with the store it lives in.
enum Live {
    Core(Box<core::Live>),
    Component(component::Live),
}

impl Live {
    fn guest(&mut self) -> &mut Guest {
        match self {
            Self::Core(live) => live.guest(),
            Self::Component(live) => live.guest(),
        }
    }
}

/// A loaded WASM plugin: its compiled artifact, and the instance calls go
/// to (none after a fault, until the next call rebuilds it).
pub struct Wasm {
    name: String,
    compiled: Compiled,
    limits: WasmLimits,
    timeout: Duration,
    /// The deadline in epoch ticks.
    ticks: u64,
    /// What the instance was configured with, to configure a rebuilt one.
    configured: Mutex<Option<(String, Vec<u8>)>>,
    live: Mutex<Option<Live>>,
    host: HostContext,
}

impl std::fmt::Debug for Wasm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wasm")
            .field("name", &self.name)
            .field("form", &self.form())
            .field("limits", &self.limits)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Wasm {
    /// Compiles (or loads from the cache) the module or component in
    /// `bytes` (binary or text), the manifest's checked artifact, and
    /// instantiates it once to check its exports.
    pub fn open(
        manifest: &Manifest,
        limits: WasmLimits,
        bytes: &[u8],
        host: HostContext,
    ) -> Result<Self, Problem> {
        let engine = engine()?;
        let binary = wat::parse_bytes(bytes).map_err(|e| Problem::Compile(e.to_string()))?;
        let compiled = if is_component(&binary) {
            Compiled::Component(component::Component::open(engine, manifest, &binary)?)
        } else {
            Compiled::Core(core::Core::open(engine, manifest, &binary)?)
        };
        let timeout = manifest.call_timeout;
        let ticks = u64::try_from(timeout.as_millis().div_ceil(TICK.as_millis()))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let plugin = Self {
            name: manifest.name.clone(),
            compiled,
            limits,
            timeout,
            ticks,
            configured: Mutex::new(None),
            live: Mutex::new(None),
            host,
        };
        let live = plugin.instantiate().map_err(|e| match e {
            Instantiation::Abi(message) => Problem::Export(message),
            Instantiation::Failed(message) => Problem::Instantiate(message),
        })?;
        *plugin.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(live);
        Ok(plugin)
    }

    /// `"component"` or `"core module"`.
    pub fn form(&self) -> &'static str {
        match self.compiled {
            Compiled::Core(_) => "core module",
            Compiled::Component(_) => "component",
        }
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

    /// Replaces the instance with a fresh one, configured as the last
    /// was: what a fault costs the next call.
    pub fn restart(&self) -> Result<(), PluginError> {
        let live = self.rebuild()?;
        *self.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(live);
        Ok(())
    }

    fn instantiate(&self) -> Result<Live, Instantiation> {
        let (engine, instances, memories) = match &self.compiled {
            Compiled::Core(core) => (core.engine(), 1, 1),
            Compiled::Component(component) => (component.engine(), 32, 8),
        };
        let limits = Limits {
            memory_bytes: usize::try_from(self.limits.memory_bytes).unwrap_or(usize::MAX),
            memory_used: 0,
            instances,
            memories,
        };
        let guest = Guest {
            limits,
            host: self.host.clone(),
            stderr: String::new(),
        };
        let mut store = Store::new(engine, guest);
        store.limiter(|guest| &mut guest.limits);
        match &self.compiled {
            Compiled::Core(core) => core
                .instantiate(store, self.ticks)
                .map(|live| Live::Core(Box::new(live))),
            Compiled::Component(component) => component
                .instantiate(store, self.ticks)
                .map(Live::Component),
        }
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
            let exchange = self.exchange(&mut live, entry);
            exchange
                .map_err(|fault| self.fault(fault, &mut live))
                .and_then(|answer| answer)
                .map_err(|e| {
                    PluginError::internal(format!("the rebuilt instance's configure failed: {e}"))
                })?;
        }
        tracing::info!(
            plugin = %self.name,
            micros = started.elapsed().as_micros() as u64,
            "WASM instance rebuilt"
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
            Err(fault) => {
                let error = self.fault(fault, live);
                *slot = None;
                tracing::warn!(plugin = %self.name, "{error}; the instance is dropped");
                Err(error)
            }
        }
    }

    fn exchange(&self, live: &mut Live, entry: Entry<'_>) -> Exchange {
        live.guest().stderr.clear();
        match live {
            Live::Core(live) => live.exchange(entry, self.ticks),
            Live::Component(live) => live.exchange(entry, self.ticks),
        }
    }

    /// The error of `fault` in an entry into `live`.
    fn fault(&self, fault: Fault, live: &mut Live) -> PluginError {
        // What the guest said on its way down (a panic's message) is the
        // best clue to a trap.
        // One line, as a status message shows it.
        let lines: Vec<&str> = live
            .guest()
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = if lines.is_empty() {
            String::new()
        } else {
            format!("; it wrote to stderr: {}", lines.join(" | "))
        };
        match fault {
            Fault::Trap { what, error } => {
                if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                    PluginError::new(
                        ErrorCode::Timeout,
                        format!(
                            "{what} did not return within {} ms (the instance was stopped and is rebuilt for the next call)",
                            self.timeout.as_millis()
                        ),
                    )
                } else {
                    PluginError::internal(format!(
                        "{what} trapped: {}{said}",
                        describe_error(&error)
                    ))
                }
            }
            Fault::Answer(message) => PluginError::internal(message),
        }
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

/// Logs the imports a plugin gets as traps: all but the host calls.
fn log_trapping_imports(plugin: &str, imports: &[String]) {
    let imports: Vec<&str> = imports
        .iter()
        .map(String::as_str)
        .filter(|i| !i.starts_with(core::HOST_MODULE) && !i.starts_with(component::HOST_INTERFACE))
        .collect();
    if !imports.is_empty() {
        tracing::warn!(
            plugin,
            imports = %imports.join(", "),
            "the plugin imports what this host does not give it (WASI unless granted, or beyond the grant; unknown host calls); calling them traps"
        );
    }
}

/// What a trap or a host-side refusal says, without the backtrace.
fn describe_error(error: &wasmtime::Error) -> String {
    if let Some(limit) = error.downcast_ref::<MemoryLimit>() {
        return limit.to_string();
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return trap.to_string();
    }
    // wasmtime's context (a backtrace of guest frames) comes first and the
    // root cause last; the cause is what the operator can act on.
    error.root_cause().to_string()
}
