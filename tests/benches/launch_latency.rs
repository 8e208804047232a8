//! Launch latency: time from sending ACCEPT (one command task) to the
//! scheduler receiving its TASK_RUNNING, over 100 tasks launched one after
//! another on one agent with `--isolation=posix/cpu,posix/mem`, then the
//! same with five WASM isolators after those (the env isolator of
//! `plugins/wasm-fixtures` under five names), as core modules and as
//! components; the three take turns, `LATENCY_ROUNDS` times (3). Prints
//! a table.
//!
//! cargo build --release --bins && cargo bench -p mesos-tests --bench launch_latency

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::{SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::plugins::{self, Plugin};

const TASKS: usize = 100;

/// How many WASM isolators the agent runs in the plugin rows.
const PLUGINS: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    println!(
        "ACCEPT -> TASK_RUNNING, {TASKS} command tasks one after another on one agent, per round"
    );
    println!("| isolation | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    let module = plugins::wasm_fixture("env-isolator.wat");
    let component = plugins::wasm_component("env-isolator.wat");
    let rows = [
        ("posix/cpu,posix/mem", None),
        ("+ 5 WASM modules", Some(module)),
        ("+ 5 WASM components", Some(component)),
    ];
    // The rows take turns, round after round, so that the machine's drift
    // spreads over all of them alike.
    let rounds: usize = std::env::var("LATENCY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut latencies = vec![Vec::new(); rows.len()];
    for _ in 0..rounds {
        for ((_, text), latencies) in rows.iter().zip(&mut latencies) {
            let plugin_dir = tempfile::tempdir()?;
            let isolation = install(plugin_dir.path(), text.as_deref());
            latencies.extend(
                run(vec![
                    format!("--plugin_dir={}", plugin_dir.path().display()),
                    format!("--isolation={isolation}"),
                ])
                .await?,
            );
        }
    }
    for ((row, _), mut latencies) in rows.iter().zip(latencies) {
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {row} | {} | {} | {} | {} |",
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(latencies[latencies.len() - 1])
        );
    }
    Ok(())
}

/// Installs [`PLUGINS`] copies of the env isolator `text` (none without
/// one) under `dir` and answers the `--isolation` naming them.
fn install(dir: &std::path::Path, text: Option<&str>) -> String {
    let mut isolation = "posix/cpu,posix/mem".to_string();
    let Some(text) = text else {
        return isolation;
    };
    for i in 0..PLUGINS {
        // Same length as the original, so the protobuf lengths in the
        // fixture's data hold.
        let name = format!("com.example.env_isolat_{i}");
        plugins::install(
            dir,
            &Plugin {
                name: &name,
                kind: "isolator",
                runtime: "wasm",
                artifact: "plugin.wat",
                bytes: text.replace("com.example.env_isolator", &name).as_bytes(),
                extra: "",
            },
        );
        isolation.push_str(&format!(",{name}"));
    }
    isolation
}

/// The sorted latencies of [`TASKS`] launches on a fresh cluster whose
/// agent gets `agent_flags`.
async fn run(agent_flags: Vec<String>) -> anyhow::Result<Vec<Duration>> {
    let cluster = Cluster::start_with(Options {
        agent_resources: "cpus:64;mem:65536;disk:1024".into(),
        master_flags: vec!["--allocation_interval=10ms".into()],
        agent_flags,
        ..Options::default()
    });
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "launch-latency".into(),
            ..Default::default()
        })
        .await?;
    let mut latencies = Vec::with_capacity(TASKS);
    let mut sent: Option<(String, Instant)> = None;
    while latencies.len() < TASKS {
        let Some(event) = tokio::time::timeout(Duration::from_secs(30), events.next()).await??
        else {
            anyhow::bail!("subscription closed");
        };
        match event.r#type() {
            event::Type::Offers => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    if sent.is_some() {
                        client.decline(&offer.id, 0.0).await?;
                        continue;
                    }
                    let id = format!("task-{}", latencies.len());
                    let task = v1::TaskInfo {
                        name: id.clone(),
                        task_id: v1::TaskId { value: id.clone() },
                        agent_id: offer.agent_id.clone(),
                        resources: vec![scalar("cpus", 0.01), scalar("mem", 16.0)],
                        command: Some(v1::CommandInfo {
                            value: Some("true".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    sent = Some((id, Instant::now()));
                    client.launch(&offer.id, vec![task], Some(0.0)).await?;
                }
            }
            event::Type::Update => {
                let Some(update) = event.update else { continue };
                let status = update.status;
                client.acknowledge(&status).await?;
                if status.state() == TaskState::TaskRunning
                    && let Some((id, at)) = &sent
                    && *id == status.task_id.value
                {
                    latencies.push(at.elapsed());
                    sent = None;
                }
            }
            _ => {}
        }
    }
    latencies.sort();
    Ok(latencies)
}
