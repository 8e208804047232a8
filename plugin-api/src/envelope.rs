//! The envelope every plugin runtime speaks: `call(method, request bytes)
//! -> response bytes or an error`. Built-in plugins, dylibs and WASM
//! modules are all reached through [`Envelope`], so the host's
//! payload handling, failure policy and timeouts are the same for each.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::Deref;

use crate::abi::{Buffer, FreeBufferFn};

use mesos_proto::plugin::v1::error::Code as WireCode;

/// Why a plugin call did not produce a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The plugin does not implement the method: the host applies Mesos's
    /// default and does not retry.
    Unimplemented,
    /// The plugin rejected the request or its configuration.
    Invalid,
    /// The plugin failed (a panic the SDK caught is one).
    Internal,
    /// The call did not return in time (host side).
    Timeout,
    /// The plugin is wedged or quarantined; the call was not made (host
    /// side).
    Unavailable,
}

impl ErrorCode {
    /// The status a dylib call returns for this code.
    pub fn status(self) -> i32 {
        match self {
            Self::Unimplemented => WireCode::Unimplemented as i32,
            Self::Invalid => WireCode::Invalid as i32,
            // Host-side codes never cross the ABI; a plugin reporting them
            // has failed.
            Self::Internal | Self::Timeout | Self::Unavailable => WireCode::Internal as i32,
        }
    }

    /// The code of a dylib call's non-OK status.
    pub fn from_status(status: i32) -> Option<Self> {
        match WireCode::try_from(status).ok()? {
            WireCode::Ok => None,
            WireCode::Unimplemented => Some(Self::Unimplemented),
            WireCode::Invalid => Some(Self::Invalid),
            WireCode::Internal => Some(Self::Internal),
        }
    }

    /// Whether it counts towards the plugin's quarantine.
    pub fn is_fault(self) -> bool {
        matches!(self, Self::Internal | Self::Timeout)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unimplemented => "unimplemented",
            Self::Invalid => "invalid",
            Self::Internal => "internal error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PluginError {
    pub code: ErrorCode,
    pub message: String,
}

impl PluginError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn unimplemented(method: &str) -> Self {
        Self::new(ErrorCode::Unimplemented, method)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// A call's response bytes: the host's own, or lent by a dylib until
/// dropped (decoding straight from the plugin's buffer saves a copy).
#[derive(Debug)]
pub struct Response(Inner);

#[derive(Debug)]
enum Inner {
    Owned(Vec<u8>),
    Lent { buffer: Buffer, free: FreeBufferFn },
}

// SAFETY: a lent buffer is plain memory the plugin handed over until
// `free_buffer`, which the ABI allows from any thread.
unsafe impl Send for Response {}

impl Response {
    /// # Safety
    /// `buffer` was filled by the plugin whose `free_buffer` is `free`,
    /// holds `len` readable bytes (or a null pointer), and is not used or
    /// freed elsewhere.
    pub unsafe fn lent(buffer: Buffer, free: FreeBufferFn) -> Self {
        Self(Inner::Lent { buffer, free })
    }
}

impl From<Vec<u8>> for Response {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Inner::Owned(bytes))
    }
}

impl Deref for Response {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Owned(bytes) => bytes,
            Inner::Lent { buffer, .. } if buffer.ptr.is_null() => &[],
            // SAFETY: `lent`'s contract: `len` readable bytes, alive until
            // this response is dropped.
            Inner::Lent { buffer, .. } => unsafe {
                std::slice::from_raw_parts(buffer.ptr, buffer.len)
            },
        }
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        if let Inner::Lent { buffer, free } = &mut self.0 {
            let buffer = std::mem::replace(buffer, Buffer::empty());
            // SAFETY: `lent`'s contract: this plugin's buffer, freed once
            // (here), after its last use.
            unsafe { free(buffer) };
        }
    }
}

/// One plugin instance as the host reaches it.
pub trait Envelope: Send + Sync {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError>;
}
