//! The C ABI of dylib plugins, version 1 (`include/mesos_plugin.h` is the
//! same contract for C authors).
//!
//! A plugin exports one symbol, [`ENTRY_SYMBOL`], returning a pointer to a
//! static [`VTableV1`]. The table only grows at its end: a host checks
//! `abi_version` and that `struct_size` covers the fields it uses. Every
//! byte crossing the boundary is a protobuf message of
//! `mesos.plugin.v1` or UTF-8 text, so no Rust type layout is part of
//! the contract.
//!
//! Memory a plugin returns in a [`Buffer`] belongs to the plugin and is
//! released with its own `free_buffer`, never with the host's allocator.

/// The envelope version this host and SDK speak.
pub const ABI_VERSION: u32 = 1;

/// The one exported symbol, NUL-terminated as `dlsym` wants it.
pub const ENTRY_SYMBOL: &[u8] = b"mesos_plugin_entry_v1\0";

/// The payload API version negotiated in `describe`/`configure`.
pub const API_VERSION: &str = "mesos.plugin.v1";

/// Status of a successful call. Any other status is a
/// `mesos.plugin.v1.Error.Code` and the output buffer holds a UTF-8
/// message.
pub const STATUS_OK: i32 = 0;

/// Bytes owned by the plugin that produced them.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    /// Whatever the plugin needs to free it (a Rust plugin: the capacity).
    pub cap: usize,
}

impl Buffer {
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// `describe(out)`: writes an encoded `PluginInfo`.
pub type DescribeFn = unsafe extern "C" fn(out: *mut Buffer) -> i32;

/// `configure(api_version, config, out)`: the negotiated payload version
/// and the plugin's opaque configuration; on error `out` holds a message.
pub type ConfigureFn = unsafe extern "C" fn(
    api_version: *const u8,
    api_version_len: usize,
    config: *const u8,
    config_len: usize,
    out: *mut Buffer,
) -> i32;

/// `call(method, request, out)`: `method` is UTF-8 (`isolator.prepare`),
/// `request` an encoded request message; `out` receives the encoded
/// response or an error message.
pub type CallFn = unsafe extern "C" fn(
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut Buffer,
) -> i32;

/// Releases a buffer the plugin filled.
pub type FreeBufferFn = unsafe extern "C" fn(buffer: Buffer);

/// The table [`ENTRY_SYMBOL`] returns.
#[repr(C)]
#[derive(Debug)]
pub struct VTableV1 {
    pub abi_version: u32,
    /// `size_of::<VTableV1>()` of the plugin's build.
    pub struct_size: u32,
    pub describe: DescribeFn,
    pub configure: ConfigureFn,
    pub call: CallFn,
    pub free_buffer: FreeBufferFn,
}

/// The type of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const VTableV1;

/// Method names of the isolator kind.
pub mod method {
    pub const RECOVER: &str = "isolator.recover";
    pub const PREPARE: &str = "isolator.prepare";
    pub const UPDATE: &str = "isolator.update";
    pub const LIMITATION: &str = "isolator.limitation";
    pub const USAGE: &str = "isolator.usage";
    pub const CLEANUP: &str = "isolator.cleanup";

    /// Method names of the hook kind (Mesos's hook names), the master's
    /// and the agent's.
    pub mod hook {
        pub const MASTER_LAUNCH_TASK_LABEL_DECORATOR: &str =
            "hook.master_launch_task_label_decorator";
        pub const MASTER_LAUNCH_TASK_RESOURCE_DECORATOR: &str =
            "hook.master_launch_task_resource_decorator";
        pub const MASTER_SLAVE_LOST_HOOK: &str = "hook.master_slave_lost_hook";
        pub const RESOURCES_DECORATOR: &str = "hook.slave_resources_decorator";
        pub const ATTRIBUTES_DECORATOR: &str = "hook.slave_attributes_decorator";
        pub const RUN_TASK_LABEL_DECORATOR: &str = "hook.slave_run_task_label_decorator";
        pub const EXECUTOR_ENVIRONMENT_DECORATOR: &str =
            "hook.slave_executor_environment_decorator";
        pub const PRE_LAUNCH_DECORATOR: &str = "hook.slave_pre_launch_decorator";
        pub const TASK_STATUS_DECORATOR: &str = "hook.slave_task_status_decorator";
        pub const POST_FETCH_HOOK: &str = "hook.slave_post_fetch_hook";
        pub const REMOVE_EXECUTOR_HOOK: &str = "hook.slave_remove_executor_hook";
    }

    /// Method names of the allocator kind.
    pub mod allocator {
        /// One allocation cycle: the events since the last one in, every
        /// grant out.
        pub const ALLOCATE: &str = "allocator.allocate";
    }

    /// Method names of the network kind.
    pub mod network {
        pub const ATTACH: &str = "network.attach";
        pub const DETACH: &str = "network.detach";
    }

    /// Method names of the volume driver kind.
    pub mod volume {
        pub const MOUNT: &str = "volume.mount";
        pub const UNMOUNT: &str = "volume.unmount";
    }

    /// Method names of the rootfs backend kind.
    pub mod rootfs {
        pub const PROVISION: &str = "rootfs.provision";
        pub const DESTROY: &str = "rootfs.destroy";
    }

    /// Method names of the image store kind.
    pub mod image {
        pub const FETCH: &str = "image.fetch";
    }
}

/// The plugin kinds, as `describe` and `plugin.toml` name them.
pub mod kind {
    pub const ISOLATOR: &str = "isolator";
    pub const HOOK: &str = "hook";
    pub const ALLOCATOR: &str = "allocator";
    pub const VOLUME_DRIVER: &str = "volume_driver";
    pub const NETWORK: &str = "network";
    pub const ROOTFS_BACKEND: &str = "rootfs_backend";
    pub const IMAGE_STORE: &str = "image_store";
}

// The layout `mesos_plugin.h` declares: two u32, then four pointers.
const _: () = assert!(size_of::<VTableV1>() == 8 + 4 * size_of::<usize>());
const _: () = assert!(size_of::<Buffer>() == 3 * size_of::<usize>());
