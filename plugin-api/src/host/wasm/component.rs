//! The component form of a WASM plugin: a component of the
//! `mesos:plugin/plugin@1.0.0` world of `wit/plugin.wit`, exporting the
//! `mesos:plugin/envelope` interface, as any component toolchain builds it
//! from that file. The bindings are generated from the same file, so the
//! host and the world cannot drift apart; a component exporting another
//! major version (or nothing) is refused at load.

use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::Linker;

use super::{Entry, Exchange, Fault, Guest, Instantiation, cache, log_trapping_imports};
use crate::envelope::{ErrorCode, PluginError};
use crate::host::Problem;
use crate::host::manifest::Manifest;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/plugin.wit",
        world: "plugin",
    });
}

use bindings::exports::mesos::plugin::envelope::PluginError as GuestError;
use bindings::mesos::plugin::host::{self as host_calls, Level};
use bindings::{Plugin, PluginPre};

/// The interface a plugin component exports.
const INTERFACE: &str = "mesos:plugin/envelope@1.0.0";

/// The interface of the host calls a component may import.
pub const HOST_INTERFACE: &str = "mesos:plugin/host@1.0.0";

impl host_calls::Host for Guest {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Error => 0,
            Level::Warn => 1,
            Level::Info => 2,
            Level::Debug => 3,
        };
        self.host.log(level, &message);
    }

    fn set_cgroup_knob(
        &mut self,
        container_id: String,
        knob: String,
        value: String,
    ) -> Result<(), String> {
        self.host.set_cgroup_knob(&container_id, &knob, &value)
    }
}

/// A compiled component, linked and ready to instantiate.
pub(super) struct Component {
    pre: PluginPre<Guest>,
}

impl Component {
    pub(super) fn open(
        engine: &Engine,
        manifest: &Manifest,
        binary: &[u8],
    ) -> Result<Self, Problem> {
        let component: wasmtime::component::Component =
            cache::compile(engine, &manifest.artifact, &manifest.sha256, binary)?;
        let imports: Vec<String> = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        log_trapping_imports(&manifest.name, &imports);
        let mut linker = Linker::new(engine);
        Plugin::add_to_linker::<Guest, wasmtime::component::HasSelf<Guest>>(&mut linker, |g| g)
            .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        if manifest.permissions.wasi {
            super::wasi_p2::link(&mut linker)
                .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        }
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| Problem::Instantiate(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| {
            Problem::Export(format!(
                "the component does not export {INTERFACE} as wit/plugin.wit defines it: {e:#}"
            ))
        })?;
        Ok(Self { pre })
    }

    pub(super) fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    pub(super) fn instantiate(
        &self,
        mut store: Store<Guest>,
        ticks: u64,
    ) -> Result<Live, Instantiation> {
        // Start functions are guest code too.
        store.set_epoch_deadline(ticks);
        let plugin = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| Instantiation::Failed(super::describe_error(&e)))?;
        Ok(Live { store, plugin })
    }
}

/// One instance and the store it lives in.
pub(super) struct Live {
    store: Store<Guest>,
    plugin: Plugin,
}

impl Live {
    pub(super) fn guest(&mut self) -> &mut Guest {
        self.store.data_mut()
    }

    pub(super) fn exchange(&mut self, entry: Entry<'_>, ticks: u64) -> Exchange {
        let trap = |error| Fault::Trap {
            what: entry.name().into_owned(),
            error,
        };
        let envelope = self.plugin.mesos_plugin_envelope();
        self.store.set_epoch_deadline(ticks);
        let answer = match entry {
            Entry::Describe => Ok(envelope.call_describe(&mut self.store).map_err(trap)?),
            Entry::Configure { api, config } => {
                let Ok(api) = std::str::from_utf8(api) else {
                    return Ok(Err(PluginError::invalid("the API version is not UTF-8")));
                };
                envelope
                    .call_configure(&mut self.store, api, config)
                    .map_err(trap)?
                    .map(|()| Vec::new())
            }
            Entry::Call { method, request } => {
                let Ok(method) = std::str::from_utf8(method) else {
                    return Ok(Err(PluginError::invalid("the method is not UTF-8")));
                };
                envelope
                    .call_call(&mut self.store, method, request)
                    .map_err(trap)?
            }
        };
        Ok(answer.map_err(|error| match error {
            GuestError::Unimplemented(message) => {
                PluginError::new(ErrorCode::Unimplemented, message)
            }
            GuestError::Invalid(message) => PluginError::invalid(message),
            GuestError::Internal(message) => PluginError::internal(message),
        }))
    }
}
