//! The bin-packing allocator answers the same built in, through the
//! envelope, as the `cdylib` and, when the `wasm32-wasip1` and
//! `wasm32-wasip2` targets are installed, as a WASM core module and a
//! component built from the same source; and packs: one agent is offered
//! at a time, the first that still has room.

use bin_packing_allocator::BinPacking;
use mesos_plugin_api::contract::{self, Limits};

/// What every form must offer, cycle by cycle.
fn assert_packs(seen: &[String]) {
    let lines: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        lines,
        [
            // Only the first agent, whole.
            "f1@a1 as *: cpus:2; mem:1024",
            // What the task left of it, before touching the second.
            "f1@a1 as *: cpus:1.5; mem:896",
            // The first is refused for 5 s: the second.
            "f1@a2 as *: cpus:2; mem:1024",
            // Suppressed.
            "",
            // Revived: refusals are dropped, the first agent again.
            "f1@a1 as *: cpus:1.5; mem:896",
            // No framework left.
            "",
        ]
    );
}

#[test]
fn every_form_packs_the_first_agent_first() {
    let seen = contract::compare_allocator::<BinPacking>(
        &contract::artifact("bin_packing_allocator"),
        Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_packs(&seen);
}

/// The same source built for WASM `target`, compared with the others.
/// The SDK's allocator host reads the clock through the WASI its manifest
/// grants.
fn packs_alike_built_for(target: &str) {
    let built = contract::build_wasm(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "bin_packing_allocator",
        target,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let Some(built) = built else {
        return;
    };
    let seen = contract::compare_allocator_wasm::<BinPacking>(&built, Limits::default())
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    assert_packs(&seen);
}

/// A core module, the clock from WASI preview 1.
#[test]
fn the_same_source_built_for_wasm_packs_alike() {
    packs_alike_built_for("wasm32-wasip1");
}

/// A component, the clock from WASI 0.2.
#[test]
fn the_same_source_built_as_a_component_packs_alike() {
    packs_alike_built_for("wasm32-wasip2");
}
