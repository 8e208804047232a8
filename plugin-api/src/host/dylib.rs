//! Opening a dylib plugin and calling through its vtable.
//!
//! Libraries are never closed: code or thread-locals of a plugin may
//! still be in use (a wedged call's thread never returns), and unloading
//! then is undefined behaviour. Mesos never unloads its modules either.
#![allow(unsafe_code)]

use std::path::Path;

use prost::Message;

use crate::abi::{Buffer, ENTRY_SYMBOL, EntryFn, STATUS_OK, VTableV1};
use crate::envelope::{Envelope, ErrorCode, PluginError, Response};
use mesos_proto::plugin::v1 as proto;

use super::Problem;

/// A loaded plugin's vtable; valid for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct Dylib {
    vtable: &'static VTableV1,
}

impl Dylib {
    /// Opens `path` and checks its entry point and ABI version.
    pub fn open(path: &Path) -> Result<Self, Problem> {
        // SAFETY: opening runs the library's initialisers. Dylib plugins
        // are trusted code (their sha256 was checked against a manifest
        // the operator installed), as Mesos modules are.
        let library =
            unsafe { libloading::Library::new(path) }.map_err(|e| Problem::Open(e.to_string()))?;
        // Never closed (see the module's comment).
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: the symbol is declared by the ABI as `EntryFn`; a
        // library exporting it with another type breaks the contract it
        // claims to implement.
        let entry =
            unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) }.map_err(|_| Problem::MissingEntry)?;
        // SAFETY: `entry` is the plugin's entry point, callable without
        // arguments at any time.
        let table = unsafe { entry() };
        if table.is_null() {
            return Err(Problem::NullVTable);
        }
        // SAFETY: every version of the table starts with `abi_version` and
        // `struct_size`, so reading those two is valid whatever the
        // version; the rest only after the checks below.
        let (abi_version, struct_size) = unsafe { ((*table).abi_version, (*table).struct_size) };
        if abi_version != crate::abi::ABI_VERSION {
            return Err(Problem::AbiVersion(abi_version));
        }
        if (struct_size as usize) < size_of::<VTableV1>() {
            return Err(Problem::VTableSize(struct_size));
        }
        // SAFETY: a version-1 table of at least our size, static in a
        // library that is never unloaded.
        let vtable: &'static VTableV1 = unsafe { &*table };
        Ok(Self { vtable })
    }

    /// The response in a buffer the plugin filled, freed with the
    /// plugin's own allocator once dropped.
    fn take(&self, status: i32, out: Buffer) -> Result<Response, PluginError> {
        // SAFETY: `out` was just filled by this plugin's function and is
        // owned by nobody else; its `free_buffer` releases it.
        let response = unsafe { Response::lent(out, self.vtable.free_buffer) };
        if status == STATUS_OK {
            return Ok(response);
        }
        let message = String::from_utf8_lossy(&response).into_owned();
        Err(match ErrorCode::from_status(status) {
            Some(code) => PluginError::new(code, message),
            None => PluginError::internal(format!("unknown status {status}: {message}")),
        })
    }

    pub fn describe(&self) -> Result<proto::PluginInfo, PluginError> {
        let mut out = Buffer::empty();
        // SAFETY: `out` is a valid, writable buffer for the call.
        let status = unsafe { (self.vtable.describe)(&mut out) };
        let bytes = self.take(status, out)?;
        proto::PluginInfo::decode(&*bytes)
            .map_err(|e| PluginError::internal(format!("undecodable describe answer: {e}")))
    }

    pub fn configure(&self, api_version: &str, config: &[u8]) -> Result<(), PluginError> {
        let mut out = Buffer::empty();
        // SAFETY: both slices are alive for the call, `out` is writable.
        let status = unsafe {
            (self.vtable.configure)(
                api_version.as_ptr(),
                api_version.len(),
                config.as_ptr(),
                config.len(),
                &mut out,
            )
        };
        self.take(status, out).map(drop)
    }
}

impl Envelope for Dylib {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
        let mut out = Buffer::empty();
        // SAFETY: both slices are alive for the call, `out` is writable.
        let status = unsafe {
            (self.vtable.call)(
                method.as_ptr(),
                method.len(),
                request.as_ptr(),
                request.len(),
                &mut out,
            )
        };
        self.take(status, out)
    }
}
