//! The envelope every plugin runtime speaks: `call(method, request bytes)
//! -> response bytes or an error`. Built-in plugins, dylibs and (later)
//! WASM components are all reached through [`Envelope`], so the host's
//! payload handling, failure policy and timeouts are the same for each.

use std::fmt;

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

/// One plugin instance as the host reaches it.
pub trait Envelope: Send + Sync {
    fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError>;
}
