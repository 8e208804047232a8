//! The bin-packing allocator answers the same built in, through the
//! envelope and as the `cdylib`, and packs: one agent is offered at a
//! time, the first that still has room.

use bin_packing_allocator::BinPacking;
use mesos_plugin_api::contract::{self, Limits};

#[test]
fn every_form_packs_the_first_agent_first() {
    let seen = contract::compare_allocator::<BinPacking>(
        &contract::artifact("bin_packing_allocator"),
        Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
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
