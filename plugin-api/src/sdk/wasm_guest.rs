//! The core-module ABI of WASM plugins (the host's side is
//! `host/wasm/core.rs`), for plugins written with this SDK: built for `wasm32`,
//! `export_isolator!` (and the other `export_*!` macros) emit these
//! exports instead of the C entry point, so one source builds as a dylib
//! and as a WASM module.
//!
//! Each exchange's bytes (the host's inputs, the answer and its record)
//! live in one static until the next `alloc`, as the ABI allows. A panic
//! aborts, which the host sees as a trap: it fails the call and rebuilds
//! the instance.

use std::sync::{Mutex, MutexGuard, PoisonError};

use prost::Message;

use super::{Exported, checked_call, checked_configure};
use crate::envelope::PluginError;

struct Exchange {
    input: Vec<u8>,
    answer: Vec<u8>,
    /// `status, ptr, len`, the address of which every entry returns.
    record: [i32; 3],
}

static EXCHANGE: Mutex<Exchange> = Mutex::new(Exchange {
    input: Vec::new(),
    answer: Vec::new(),
    record: [0; 3],
});

fn exchange() -> MutexGuard<'static, Exchange> {
    EXCHANGE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A linear-memory address, as the ABI's `i32`s carry them.
fn address<T>(ptr: *const T) -> i32 {
    ptr as usize as i32
}

/// # Safety
/// `ptr`/`len` are a slice of the input `alloc` handed out, which lives
/// until the next `alloc`.
unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    match usize::try_from(len) {
        Ok(len) if len > 0 => {
            // SAFETY: the caller's contract.
            unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len) }
        }
        _ => &[],
    }
}

fn answer(result: Result<Vec<u8>, PluginError>) -> i32 {
    let (status, bytes) = match result {
        Ok(bytes) => (crate::abi::STATUS_OK, bytes),
        Err(e) => (e.code.status(), e.message.into_bytes()),
    };
    let mut exchange = exchange();
    exchange.answer = bytes;
    let (ptr, len) = (
        address(exchange.answer.as_ptr()),
        exchange.answer.len() as i32,
    );
    exchange.record = [status, ptr, len];
    address(exchange.record.as_ptr())
}

/// `alloc(len)`: room for the next entry's inputs.
pub fn alloc(len: i32) -> i32 {
    let mut exchange = exchange();
    exchange.answer = Vec::new();
    exchange.input = vec![0; usize::try_from(len).unwrap_or(0)];
    address(exchange.input.as_ptr())
}

pub fn describe<P: Exported>() -> i32 {
    answer(Ok(P::exported_info().encode_to_vec()))
}

/// # Safety
/// The arguments are slices of the input of the last `alloc`.
pub unsafe fn configure<P: Exported>(api: i32, api_len: i32, config: i32, config_len: i32) -> i32 {
    // SAFETY: the caller's contract.
    let (api, config) = unsafe { (input(api, api_len), input(config, config_len)) };
    answer(checked_configure::<P>(api, config))
}

/// # Safety
/// The arguments are slices of the input of the last `alloc`.
pub unsafe fn call<P: Exported>(
    method: i32,
    method_len: i32,
    request: i32,
    request_len: i32,
) -> i32 {
    // SAFETY: the caller's contract.
    let (method, request) = unsafe { (input(method, method_len), input(request, request_len)) };
    answer(checked_call::<P>(method, request))
}
