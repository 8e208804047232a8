//! What an allocator plugin costs the master per allocation cycle: the
//! bin-packing allocator called directly (as a built-in would be), through
//! the envelope in-process (journal encode, replay, grants decode and
//! check; no FFI), and as the loaded dylib (plus FFI and the watchdog's
//! thread hand-off).
//!
//! First the agents and 10 frameworks register and the first cycle runs
//! (through the envelope: one call carrying every registration). Then
//! each cycle the 10 frameworks decline what they were offered (10
//! events) and get new offers. Prints microseconds.
//!
//! Run: `cargo bench -p bin-packing-allocator --bench cycle`

#![allow(clippy::expect_used)] // a bench that cannot set up has nothing to measure

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bin_packing_allocator::BinPacking;
use mesos_plugin_api::adapter::{LoadedAllocator, Policy};
use mesos_plugin_api::allocator::{AgentSpec, Allocator, FrameworkSpec, Grant};
use mesos_plugin_api::contract;
use mesos_plugin_api::host::{self, manifest};
use mesos_plugin_api::sdk::mesos as v1;
use mesos_plugin_api::sdk::{AllocatorHost, AllocatorPlugin};

const FRAMEWORKS: usize = 10;
const CYCLES: usize = 200;

fn scalar(name: &str, value: f64) -> v1::Resource {
    v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    }
}

/// Registers `agents` agents and the frameworks; returns the time of the
/// registrations and first cycle, and the median of the next cycles.
fn run(allocator: &mut dyn Allocator, agents: usize) -> (Duration, Duration) {
    let started = Instant::now();
    let total: mesos_plugin_api::sdk::resources::Resources =
        vec![scalar("cpus", 8.0), scalar("mem", 16384.0)].into();
    for i in 0..agents {
        let spec = AgentSpec {
            id: format!("agent-{i}"),
            hostname: format!("host-{i}"),
            total: total.clone(),
        };
        allocator.add_agent(spec, &[]);
    }
    for i in 0..FRAMEWORKS {
        let spec = FrameworkSpec {
            id: format!("framework-{i}"),
            roles: vec!["*".into()],
            suppressed_roles: Vec::new(),
        };
        allocator.add_framework(spec, &[]);
    }
    let t0 = Instant::now();
    let mut grants: Vec<Grant> = allocator.allocate(t0);
    let first = started.elapsed();
    let mut times = Vec::with_capacity(CYCLES);
    for cycle in 1..=CYCLES {
        let now = t0 + Duration::from_secs(cycle as u64);
        let started = Instant::now();
        for g in &grants {
            allocator.recover_resources(&g.framework_id, &g.agent_id, &g.resources, None, now);
        }
        grants = black_box(allocator.allocate(now));
        times.push(started.elapsed());
    }
    assert_eq!(grants.len(), FRAMEWORKS, "every framework gets an offer");
    times.sort();
    (first, times[times.len() / 2])
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn enveloped() -> Box<dyn Allocator> {
    let (_, host) = AllocatorHost::<BinPacking>::in_process(&[]).expect("in-process form");
    let plugin = Arc::new(LoadedAllocator::new(
        BinPacking::NAME,
        Box::new(host),
        Policy::default(),
    ));
    Box::new(plugin.start().expect("started once"))
}

fn dylib() -> Box<dyn Allocator> {
    let artifact = contract::artifact("bin_packing_allocator");
    let bytes = std::fs::read(&artifact).expect("the cdylib cargo built beside the bench");
    let loaded = host::load_manifest(manifest::Manifest {
        name: BinPacking::NAME.into(),
        kind: manifest::Kind::Allocator,
        runtime: manifest::Runtime::Dylib,
        artifact,
        sha256: host::sha256_hex(&bytes),
        api_versions: vec![mesos_plugin_api::abi::API_VERSION.into()],
        policy: Policy::default(),
        call_timeout: Duration::from_secs(5),
        config: None,
        permissions: Default::default(),
    })
    .expect("the dylib loads");
    // The dylib's allocator is one per process: every size below reuses
    // it, so it is loaded once and sized to the largest run.
    Box::new(
        loaded
            .allocator()
            .and_then(|a| a.start())
            .expect("an allocator"),
    )
}

fn main() {
    println!("| agents | form | registration + first cycle (us) | median cycle (us) |");
    println!("|---:|---|---:|---:|");
    let mut dylib = Some(dylib());
    for agents in [1_000, 10_000] {
        let forms: Vec<(&str, Box<dyn Allocator>)> = vec![
            ("built-in", Box::new(BinPacking::default())),
            ("envelope in-process", enveloped()),
        ];
        for (name, mut allocator) in forms {
            let (first, median) = run(&mut *allocator, agents);
            println!(
                "| {agents} | {name} | {} | {} |",
                micros(first),
                micros(median)
            );
        }
        // Last: its plugin instance then holds only this size's agents.
        if agents == 10_000
            && let Some(mut allocator) = dylib.take()
        {
            let (first, median) = run(&mut *allocator, agents);
            println!(
                "| {agents} | dylib | {} | {} |",
                micros(first),
                micros(median)
            );
        }
    }
}
