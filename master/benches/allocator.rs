//! Allocator benchmark in the shape of Mesos's
//! `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers`: identical agents
//! (`cpus:2;mem:1024;disk:4096;ports:[31000-32000]`), frameworks in one role
//! that decline every offer with a long refuse filter. The first cycle hands
//! every agent out; each later cycle offers every agent to a framework that
//! has not refused it yet, so every cycle makes one offer per agent.
//!
//! `cargo bench -p mesos-master --bench allocator` prints a markdown table.
//! Times are wall clock and, where Linux tells, time on a CPU (robust on a
//! shared machine). Arguments: `--cycles N` (declining cycles measured per
//! shape, default 10)
//! and `--shapes 1000x100,5000x500` (agents x frameworks).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mesos_master::allocator::HierarchicalDrf;
use mesos_plugin_api::allocator::{AgentSpec, Allocator, FrameworkSpec};
use mesos_resources::{Resources, parse_resources};

/// Time this thread has spent on a CPU (Linux schedstat), so a busy
/// machine's waiting time does not count; `None` where unavailable.
fn on_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Wall-clock and on-CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<Duration>) {
    let cpu = on_cpu();
    let started = Instant::now();
    let out = f();
    let wall = started.elapsed();
    let cpu = cpu.zip(on_cpu()).map(|(a, b)| b.saturating_sub(a));
    (out, wall, cpu)
}

const AGENT_RESOURCES: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";
/// Longer than the benchmark runs: a refused agent is never offered again
/// to the same framework.
const REFUSE: Duration = Duration::from_secs(24 * 3600);

struct Row {
    agents: usize,
    frameworks: usize,
    add_agents: Duration,
    add_agents_cpu: Option<Duration>,
    add_frameworks: Duration,
    first_cycle: Duration,
    cycles: Vec<Duration>,
    cycles_cpu: Vec<Duration>,
    offers_per_cycle: usize,
}

fn run(agents: usize, frameworks: usize, cycles: usize) -> Row {
    let total = Resources::from(parse_resources(AGENT_RESOURCES, "*").unwrap());
    let mut drf = HierarchicalDrf::default();

    let specs: Vec<AgentSpec> = (0..agents)
        .map(|i| AgentSpec {
            id: format!("agent-{i}"),
            hostname: format!("agent-{i}"),
            total: total.clone(),
        })
        .collect();
    let ((), add_agents, add_agents_cpu) = timed(|| {
        for spec in specs {
            drf.add_agent(spec, &[]);
        }
    });

    let started = Instant::now();
    for i in 0..frameworks {
        drf.add_framework(
            FrameworkSpec {
                id: format!("framework-{i}"),
                roles: vec!["*".to_string()],
                suppressed_roles: vec![],
            },
            &[],
        );
    }
    let add_frameworks = started.elapsed();

    // Virtual time: every cycle is a second after the previous one, as with
    // the default --allocation_interval.
    let mut now = Instant::now();
    let cycle = |drf: &mut HierarchicalDrf, now: Instant| {
        let (grants, wall, cpu) = timed(|| drf.allocate(now));
        for g in &grants {
            drf.recover_resources(
                &g.framework_id,
                &g.agent_id,
                &g.resources,
                Some(REFUSE),
                now,
            );
        }
        (wall, cpu, grants.len())
    };
    let (first_cycle, _, _) = cycle(&mut drf, now);
    let mut measured = Vec::new();
    let mut measured_cpu = Vec::new();
    let mut offers_per_cycle = 0;
    for _ in 0..cycles {
        now += Duration::from_secs(1);
        let (wall, cpu, offers) = cycle(&mut drf, now);
        measured.push(wall);
        measured_cpu.extend(cpu);
        offers_per_cycle = offers;
    }
    Row {
        agents,
        frameworks,
        add_agents,
        add_agents_cpu,
        add_frameworks,
        first_cycle,
        cycles: measured,
        cycles_cpu: measured_cpu,
        offers_per_cycle,
    }
}

fn median(mut all: Vec<Duration>) -> Option<Duration> {
    all.sort();
    all.get(all.len() / 2).copied()
}

fn ms_or_dash(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), ms)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut cycles = 10;
    let mut shapes = vec![(1000, 100), (5000, 500), (10_000, 1000), (20_000, 2000)];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cycles" => cycles = args.next().and_then(|n| n.parse().ok()).unwrap_or(cycles),
            "--shapes" => {
                shapes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| {
                        let (a, f) = s.split_once('x')?;
                        Some((a.parse().ok()?, f.parse().ok()?))
                    })
                    .collect();
            }
            // `cargo bench` passes `--bench`; anything else is ignored too.
            _ => {}
        }
    }

    println!(
        "| agents | frameworks | add agents (ms) | on CPU (ms) | add frameworks (ms) | first cycle (ms) | declining cycle median (ms) | on CPU (ms) | max (ms) | offers per cycle |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (agents, frameworks) in shapes {
        let row = run(agents, frameworks, cycles);
        let max = row.cycles.iter().max().copied().unwrap_or_default();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.agents,
            row.frameworks,
            ms(row.add_agents),
            ms_or_dash(row.add_agents_cpu),
            ms(row.add_frameworks),
            ms(row.first_cycle),
            ms_or_dash(median(row.cycles)),
            ms_or_dash(median(row.cycles_cpu)),
            ms(max),
            row.offers_per_cycle
        );
    }
}
