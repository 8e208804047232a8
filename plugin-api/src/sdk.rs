//! The SDK plugin authors use: implement [`IsolatorPlugin`] or
//! [`HookPlugin`] (every method defaults to "unimplemented", for which the
//! host applies Mesos's default) and write `export_isolator!(MyIsolator);`
//! or `export_hook!(MyHook);`; a volume driver implements
//! [`VolumeDriverPlugin`] and writes `export_volume_driver!(MyDriver);`, a
//! network [`NetworkPlugin`] and `export_network!(MyNetwork);`, a rootfs
//! backend [`RootfsBackendPlugin`] and `export_rootfs_backend!(MyBackend);`,
//! an image store [`ImageStorePlugin`] and `export_image_store!(MyStore);`;
//! an allocator implements [`Allocator`] and [`AllocatorPlugin`] and
//! writes `export_allocator!(MyAllocator);`. Built as a
//! `cdylib`, the crate then exports the C entry point of [`crate::abi`],
//! with every call guarded so that a panic becomes an `INTERNAL` error
//! instead of unwinding into the host; built for `wasm32-wasip2`, a
//! component of the `mesos:plugin` world; for another `wasm32` target, a
//! core module of the host's core-module ABI. The same type runs in-process
//! through [`InProcess`], which is how the contract tests compare forms.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};

mod allocator;
#[cfg(all(target_arch = "wasm32", target_env = "p2"))]
#[doc(hidden)]
pub mod component_guest;
mod hook;
mod image;
mod network;
mod rootfs;
mod volume;
#[cfg(all(target_arch = "wasm32", not(target_env = "p2")))]
#[doc(hidden)]
pub mod wasm_guest;
pub use allocator::{AllocatorHost, AllocatorPlugin, allocator_info};
pub use hook::{HookPlugin, Hooks, hook_dispatch, hook_info};
pub use image::{ImageStorePlugin, ImageStores};
pub use network::{NetworkPlugin, Networks, network_dispatch, network_info};
pub use rootfs::{RootfsBackendPlugin, RootfsBackends};
pub use volume::{VolumeDriverPlugin, VolumeDrivers, volume_driver_dispatch, volume_driver_info};

use prost::Message;

pub use crate::abi::{API_VERSION, kind, method};
/// The allocator contract, for `AllocatorPlugin`s.
pub use crate::allocator::{AgentSpec, Allocator, FrameworkSpec, Grant, QuotaConfig};
pub use crate::envelope::{Envelope, ErrorCode, PluginError, Response};
/// The request and response messages (`mesos.plugin.v1`).
pub use mesos_proto::plugin::v1 as proto;
/// Mesos's own messages the payloads embed (`Resource`, `Label`, ...).
pub use mesos_proto::v1 as mesos;
/// Resource arithmetic (`Resources`), as allocators use it.
pub use mesos_resources as resources;

use crate::abi::{ABI_VERSION, Buffer, STATUS_OK, VTableV1};
use proto::{
    CleanupResponse, ContainerRequest, LimitationResponse, PrepareRequest, PrepareResponse,
    RecoverRequest, RecoverResponse, UpdateRequest, UpdateResponse, UsageResponse,
};

/// An isolator written against the plugin envelope. One instance serves
/// every call; the host makes one call at a time.
pub trait IsolatorPlugin: Default + Send + Sync + 'static {
    /// Reverse-DNS name, the one `plugin.toml` and `--isolation` use.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }

    fn recover(&self, _request: RecoverRequest) -> Result<RecoverResponse, PluginError> {
        Err(PluginError::unimplemented(method::RECOVER))
    }

    fn prepare(&self, _request: PrepareRequest) -> Result<PrepareResponse, PluginError> {
        Err(PluginError::unimplemented(method::PREPARE))
    }

    fn update(&self, _request: UpdateRequest) -> Result<UpdateResponse, PluginError> {
        Err(PluginError::unimplemented(method::UPDATE))
    }

    fn limitation(&self, _request: ContainerRequest) -> Result<LimitationResponse, PluginError> {
        Err(PluginError::unimplemented(method::LIMITATION))
    }

    fn usage(&self, _request: ContainerRequest) -> Result<UsageResponse, PluginError> {
        Err(PluginError::unimplemented(method::USAGE))
    }

    fn cleanup(&self, _request: ContainerRequest) -> Result<CleanupResponse, PluginError> {
        Err(PluginError::unimplemented(method::CLEANUP))
    }
}

/// What `describe` answers for `P`.
pub fn info<P: IsolatorPlugin>() -> proto::PluginInfo {
    proto::PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        kinds: vec![kind::ISOLATOR.to_string()],
        api_versions: vec![API_VERSION.to_string()],
    }
}

/// Decodes `request`, runs `f` on it, encodes the response.
fn run<Req: Message + Default, Resp: Message>(
    method: &str,
    request: &[u8],
    f: impl FnOnce(Req) -> Result<Resp, PluginError>,
) -> Result<Vec<u8>, PluginError> {
    let request = Req::decode(request)
        .map_err(|e| PluginError::invalid(format!("{method}: undecodable request: {e}")))?;
    f(request).map(|response| response.encode_to_vec())
}

/// Decodes the request of `method`, runs it, encodes the response.
pub fn dispatch<P: IsolatorPlugin>(
    plugin: &P,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, PluginError> {
    match method {
        method::RECOVER => run(method, request, |r| plugin.recover(r)),
        method::PREPARE => run(method, request, |r| plugin.prepare(r)),
        method::UPDATE => run(method, request, |r| plugin.update(r)),
        method::LIMITATION => run(method, request, |r| plugin.limitation(r)),
        method::USAGE => run(method, request, |r| plugin.usage(r)),
        method::CLEANUP => run(method, request, |r| plugin.cleanup(r)),
        other => Err(PluginError::unimplemented(other)),
    }
}

/// Runs `f`, turning a panic into an `INTERNAL` error.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_string());
            // Dropping a panic payload can itself panic; forget it.
            std::mem::forget(payload);
            Err(PluginError::internal(format!("panicked: {what}")))
        }
    }
}

/// How the SDK serves the plugins of one kind: what `describe` answers,
/// and how configuration and calls reach the plugin. One marker type per
/// kind ([`Isolators`], [`Hooks`], [`VolumeDrivers`], [`Networks`],
/// [`RootfsBackends`], [`ImageStores`]).
pub trait Kind<P> {
    fn info() -> proto::PluginInfo;
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError>;
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError>;
}

/// The isolator kind ([`IsolatorPlugin`]).
#[derive(Debug)]
pub struct Isolators;

impl<P: IsolatorPlugin> Kind<P> for Isolators {
    fn info() -> proto::PluginInfo {
        info::<P>()
    }
    fn configure(plugin: &P, config: &[u8]) -> Result<(), PluginError> {
        plugin.configure(config)
    }
    fn dispatch(plugin: &P, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        dispatch(plugin, method, request)
    }
}

/// `P`, a plugin of kind `K`, called in the host's process: the built-in
/// form of a plugin, with the same payloads and panic guard as its dylib
/// form.
pub struct InProcess<P, K = Isolators>(P, PhantomData<fn() -> K>);

/// A hook in the host's process.
pub type InProcessHook<P> = InProcess<P, Hooks>;
/// A volume driver in the host's process.
pub type InProcessVolumeDriver<P> = InProcess<P, VolumeDrivers>;
/// A network in the host's process.
pub type InProcessNetwork<P> = InProcess<P, Networks>;

impl<P: Default, K: Kind<P>> InProcess<P, K> {
    /// Describes and configures `P` as a loader would.
    pub fn new(config: &[u8]) -> Result<(proto::PluginInfo, Self), PluginError> {
        let plugin = guarded(|| Ok(P::default()))?;
        guarded(|| K::configure(&plugin, config))?;
        Ok((K::info(), Self(plugin, PhantomData)))
    }
}

impl<P: Send + Sync, K: Kind<P>> Envelope for InProcess<P, K> {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
        guarded(|| K::dispatch(&self.0, method, request)).map(Response::from)
    }
}

impl<P, K> std::fmt::Debug for InProcess<P, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

// ---- The C exports `export_isolator!` and `export_hook!` instantiate. ----

/// What the exports need of a plugin of any kind; implemented by the
/// kind's `export_*!` macro.
pub trait Exported: Send + Sync + 'static {
    fn instance() -> &'static Self;
    /// What `describe` answers.
    fn exported_info() -> proto::PluginInfo;
    fn exported_configure(&self, config: &[u8]) -> Result<(), PluginError>;
    fn exported_dispatch(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError>;
}

/// The vtable of `P`, as a constant the entry point returns.
#[derive(Debug)]
pub struct Exports<P>(PhantomData<P>);

impl<P: Exported> Exports<P> {
    pub const V1: VTableV1 = VTableV1 {
        abi_version: ABI_VERSION,
        struct_size: size_of::<VTableV1>() as u32,
        describe: describe::<P>,
        configure: configure::<P>,
        call: call::<P>,
        free_buffer,
    };
}

/// # Safety
/// `ptr` is null with `len == 0`, or points to `len` readable bytes.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract (the host passes its own live
        // slice for the duration of the call).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Runs `f` guarded and hands its bytes (or error message) to the host.
///
/// # Safety
/// `out` is null or points to a writable `Buffer`.
unsafe fn export(out: *mut Buffer, f: impl FnOnce() -> Result<Vec<u8>, PluginError>) -> i32 {
    if out.is_null() {
        return ErrorCode::Invalid.status();
    }
    let (status, bytes) = match guarded(f) {
        Ok(bytes) => (STATUS_OK, bytes),
        Err(e) => (e.code.status(), e.message.into_bytes()),
    };
    // Ownership passes to the host until it calls `free_buffer`.
    let mut bytes = ManuallyDrop::new(bytes);
    // SAFETY: `out` is non-null and, by the caller's contract, writable.
    unsafe {
        out.write(Buffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        });
    }
    status
}

unsafe extern "C" fn describe<P: Exported>(out: *mut Buffer) -> i32 {
    // SAFETY: the ABI's contract for `describe`.
    unsafe { export(out, || Ok(P::exported_info().encode_to_vec())) }
}

/// `configure` of either ABI: the API version checked, then the plugin's.
pub(crate) fn checked_configure<P: Exported>(
    api: &[u8],
    config: &[u8],
) -> Result<Vec<u8>, PluginError> {
    if api != API_VERSION.as_bytes() {
        return Err(PluginError::invalid(format!(
            "API version '{}' is not spoken; this plugin speaks {API_VERSION}",
            String::from_utf8_lossy(api)
        )));
    }
    P::instance()
        .exported_configure(config)
        .map(|()| Vec::new())
}

/// `call` of either ABI: the method named in UTF-8, then the plugin's.
pub(crate) fn checked_call<P: Exported>(
    method: &[u8],
    request: &[u8],
) -> Result<Vec<u8>, PluginError> {
    let method = std::str::from_utf8(method)
        .map_err(|_| PluginError::invalid("the method name is not UTF-8"))?;
    P::instance().exported_dispatch(method, request)
}

unsafe extern "C" fn configure<P: Exported>(
    api_version: *const u8,
    api_version_len: usize,
    config: *const u8,
    config_len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: the ABI's contract for `configure`: both slices are valid
    // for the call, `out` is writable.
    unsafe {
        export(out, || {
            checked_configure::<P>(
                bytes(api_version, api_version_len),
                bytes(config, config_len),
            )
        })
    }
}

unsafe extern "C" fn call<P: Exported>(
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: the ABI's contract for `call`: both slices are valid for the
    // call, `out` is writable.
    unsafe {
        export(out, || {
            checked_call::<P>(bytes(method, method_len), bytes(request, request_len))
        })
    }
}

/// Releases a buffer [`export`] filled.
unsafe extern "C" fn free_buffer(buffer: Buffer) {
    if !buffer.ptr.is_null() {
        // SAFETY: the buffer came from `export`: a leaked Vec<u8> with
        // exactly this pointer, length and capacity, freed once.
        drop(unsafe { Vec::from_raw_parts(buffer.ptr, buffer.len, buffer.cap) });
    }
}

/// Exports an [`IsolatorPlugin`] (which must implement `Default`) as a
/// dylib plugin: `export_isolator!(MyIsolator);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_isolator {
    ($plugin:ty) => {
        $crate::export_kind!($plugin, Isolators);
    };
}

/// Exports a [`HookPlugin`] (which must implement `Default`) as a dylib
/// plugin: `export_hook!(MyHook);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_hook {
    ($plugin:ty) => {
        $crate::export_kind!($plugin, Hooks);
    };
}

/// Exports a [`VolumeDriverPlugin`] as a plugin:
/// `export_volume_driver!(MyDriver);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_volume_driver {
    ($plugin:ty) => {
        $crate::export_kind!($plugin, VolumeDrivers);
    };
}

/// Exports a [`NetworkPlugin`] as a plugin:
/// `export_network!(MyNetwork);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_network {
    ($plugin:ty) => {
        $crate::export_kind!($plugin, Networks);
    };
}

/// Exports a [`RootfsBackendPlugin`] as a plugin:
/// `export_rootfs_backend!(MyBackend);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_rootfs_backend {
    ($plugin:ty) => {
        $crate::export_kind!($plugin, RootfsBackends);
    };
}

/// Exports an [`ImageStorePlugin`] as a plugin:
/// `export_image_store!(MyStore);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_image_store {
    ($plugin:ty) => {
        $crate::export_kind!($plugin, ImageStores);
    };
}

/// [`Exported`] for `$plugin`, a plugin of the SDK's [`Kind`] `$kind`,
/// and its entry points: what every `export_*!` macro but
/// `export_allocator!` expands to.
#[doc(hidden)]
#[macro_export]
macro_rules! export_kind {
    ($plugin:ty, $kind:ident) => {
        impl $crate::sdk::Exported for $plugin {
            fn instance() -> &'static Self {
                static INSTANCE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();
                INSTANCE.get_or_init(<$plugin as ::core::default::Default>::default)
            }

            fn exported_info() -> $crate::sdk::proto::PluginInfo {
                <$crate::sdk::$kind as $crate::sdk::Kind<$plugin>>::info()
            }

            fn exported_configure(&self, config: &[u8]) -> Result<(), $crate::sdk::PluginError> {
                <$crate::sdk::$kind as $crate::sdk::Kind<$plugin>>::configure(self, config)
            }

            fn exported_dispatch(
                &self,
                method: &str,
                request: &[u8],
            ) -> Result<::std::vec::Vec<u8>, $crate::sdk::PluginError> {
                <$crate::sdk::$kind as $crate::sdk::Kind<$plugin>>::dispatch(self, method, request)
            }
        }

        $crate::export_entry!($plugin);
    };
}

/// The entry points of an [`Exported`] plugin; used by the `export_*!`
/// macros. Built for `wasm32-wasip2`, a component's exports (see
/// `sdk::component_guest`); for another `wasm32` target, the core-module
/// exports of WASM plugins (see `sdk::wasm_guest`); otherwise the C entry
/// point of a dylib.
#[doc(hidden)]
#[macro_export]
macro_rules! export_entry {
    ($plugin:ty) => {
        /// The plugin's entry point (`mesos_plugin.h`).
        #[cfg(not(target_arch = "wasm32"))]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn mesos_plugin_entry_v1() -> *const $crate::abi::VTableV1 {
            static VTABLE: $crate::abi::VTableV1 = $crate::sdk::Exports::<$plugin>::V1;
            &VTABLE
        }

        #[cfg(all(target_arch = "wasm32", target_env = "p2"))]
        #[allow(unsafe_code)]
        const _: () = {
            // The export macro takes a name, not a generic type.
            type MesosPluginComponent = $crate::sdk::component_guest::Component<$plugin>;
            $crate::sdk::component_guest::export_component!(
                MesosPluginComponent with_types_in $crate::sdk::component_guest
            );
        };

        #[cfg(all(target_arch = "wasm32", not(target_env = "p2")))]
        #[allow(unsafe_code)]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn mesos_plugin_abi() -> i32 {
                1
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn alloc(len: i32) -> i32 {
                $crate::sdk::wasm_guest::alloc(len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn describe() -> i32 {
                $crate::sdk::wasm_guest::describe::<$plugin>()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn configure(
                api: i32,
                api_len: i32,
                config: i32,
                config_len: i32,
            ) -> i32 {
                // SAFETY: the host passes slices of the input of its last
                // `alloc` (the ABI's contract).
                unsafe {
                    $crate::sdk::wasm_guest::configure::<$plugin>(api, api_len, config, config_len)
                }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn call(
                method: i32,
                method_len: i32,
                request: i32,
                request_len: i32,
            ) -> i32 {
                // SAFETY: as for `configure`.
                unsafe {
                    $crate::sdk::wasm_guest::call::<$plugin>(
                        method,
                        method_len,
                        request,
                        request_len,
                    )
                }
            }
        };
    };
}
