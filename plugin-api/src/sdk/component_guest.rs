//! The component exports of WASM plugins written with this SDK and built
//! for `wasm32-wasip2`: `export_isolator!` (and the other `export_*!`
//! macros) then make the crate a component of the `mesos:plugin` world
//! (`wit/plugin.wit`) straight from `cargo build`, with no shell around a
//! core module. The canonical ABI and the world's type section come from
//! `wit-bindgen`, as they do for any Rust component; this module only
//! forwards the envelope to the plugin's [`Exported`] dispatch.
//!
//! A panic aborts (`panic = "abort"` is the target's default), which the
//! host sees as a trap: it fails the call and rebuilds the instance.

use std::marker::PhantomData;

use prost::Message;

use super::{Exported, checked_call, checked_configure};
use crate::envelope::{ErrorCode, PluginError};

wit_bindgen::generate!({
    path: "wit/plugin.wit",
    world: "plugin",
    // The plugin's crate expands the export macro (through `export_entry!`),
    // so it is exported from this crate.
    pub_export_macro: true,
    export_macro_name: "export_component",
});

use exports::mesos::plugin::envelope::{Guest, PluginError as WitError};

/// The component's implementation of the envelope for plugin `P`.
pub struct Component<P>(PhantomData<P>);

impl<P: Exported> Guest for Component<P> {
    fn describe() -> Vec<u8> {
        P::exported_info().encode_to_vec()
    }

    fn configure(api_version: String, config: Vec<u8>) -> Result<(), WitError> {
        checked_configure::<P>(api_version.as_bytes(), &config)
            .map(drop)
            .map_err(wit_error)
    }

    fn call(method: String, payload: Vec<u8>) -> Result<Vec<u8>, WitError> {
        checked_call::<P>(method.as_bytes(), &payload).map_err(wit_error)
    }
}

/// The world has three error cases; every other code is the plugin's
/// failure.
fn wit_error(e: PluginError) -> WitError {
    match e.code {
        ErrorCode::Unimplemented => WitError::Unimplemented(e.message),
        ErrorCode::Invalid => WitError::Invalid(e.message),
        _ => WitError::Internal(e.message),
    }
}
