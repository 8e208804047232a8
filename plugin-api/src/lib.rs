//! Stable traits for the pluggable parts of the master and the agent,
//! and the plugin platform around them.
//!
//! Built-in implementations live next to their host (the master's DRF
//! allocator, the agent's isolators) and implement the same traits
//! ([`allocator`], [`isolator`], [`hook`], [`network`], [`volume`],
//! [`rootfs`], [`image`]) that
//! third-party plugins do, so one contract describes both. Foreign
//! plugins speak one envelope ([`envelope`], `wit/plugin.wit`) with
//! protobuf payloads: a dylib through the C ABI of [`abi`] (written with
//! [`sdk`]), a WASM component of the `wit/plugin.wit` world or a core
//! module through the hand-lowered ABI of `host::wasm::core` (feature
//! `wasm`), loaded by [`host`] (feature `host`) and adapted to the traits
//! by [`adapter`]. A daemon calls its `--hooks` through [`hooks`].

pub mod abi;
pub mod adapter;
pub mod allocator;
pub mod context;
#[cfg(feature = "host")]
pub mod contract;
pub mod envelope;
pub mod hook;
pub mod hooks;
#[cfg(feature = "host")]
pub mod host;
pub mod image;
pub mod isolator;
pub mod network;
pub mod rootfs;
pub mod sdk;
pub mod volume;
