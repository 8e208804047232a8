//! The master at scale, with simulated agents speaking the real internal
//! link (`mesos_tests::sim`) and a real scheduler over the HTTP API, all
//! against the real `mesos-master` binary:
//!
//! - placement throughput: tasks reaching TASK_RUNNING at the scheduler
//!   per second, launched on every offer as fast as offers come;
//! - `/master/state` with that many agents and tasks, first and then again;
//! - the master's RSS;
//! - failover: the master killed and restarted, every agent registering
//!   again with its ID.
//!
//! Sizes: SIM_AGENTS (default 5000) and SIM_TASKS (default 50000).
//!
//! cargo build --release --bins && cargo bench -p mesos-tests --bench master_scale

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use futures::StreamExt;
use mesos_cli::scheduler_client::{SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::sim::SimAgents;

const TASK_CPUS: f64 = 0.1;
const TASK_MEM: f64 = 32.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let agents = env_usize("SIM_AGENTS", 5000);
    let tasks = env_usize("SIM_TASKS", 50_000);
    let mut cluster = Cluster::start_with(Options {
        agents: 0,
        master_flags: vec!["--allocation_interval=50ms".into()],
        ..Options::default()
    });
    let started = Instant::now();
    let sim = SimAgents::start(&cluster.master, agents, "cpus:8;mem:16384;disk:1024", None).await?;
    sim.wait_registered(Duration::from_secs(120)).await?;
    let registration = started.elapsed();

    let mut client = SchedulerClient::new(&cluster.master);
    let events_stream = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "placement".into(),
            ..Default::default()
        })
        .await?;
    // Drained on a task of its own: a scheduler busy sending ACCEPTs must
    // not leave its event stream unread (the master drops a framework
    // that falls too far behind).
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut stream = events_stream;
    tokio::spawn(async move {
        while let Ok(Some(event)) = stream.next().await {
            if events_tx.send(event).is_err() {
                return;
            }
        }
    });
    let mut launched = 0usize;
    let mut running = 0usize;
    let mut first_accept: Option<Instant> = None;
    while running < tasks {
        let Some(event) = tokio::time::timeout(Duration::from_secs(60), events.recv()).await?
        else {
            anyhow::bail!("subscription closed");
        };
        match event.r#type() {
            event::Type::Offers => {
                // One ACCEPT per agent (Mesos's rule), up to 64 in flight,
                // as a scheduler that pipelines its calls would.
                let mut accepts = Vec::new();
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let fit = (cpus_of(&offer) / TASK_CPUS + 1e-9).floor() as usize;
                    let n = fit.min(tasks - launched);
                    if n == 0 {
                        accepts.push((offer, Vec::new()));
                        continue;
                    }
                    let batch: Vec<v1::TaskInfo> = (launched..launched + n)
                        .map(|i| v1::TaskInfo {
                            name: format!("t{i}"),
                            task_id: v1::TaskId {
                                value: format!("t{i}"),
                            },
                            agent_id: offer.agent_id.clone(),
                            resources: vec![scalar("cpus", TASK_CPUS), scalar("mem", TASK_MEM)],
                            command: Some(v1::CommandInfo {
                                value: Some("sleep 1000".into()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect();
                    launched += n;
                    accepts.push((offer, batch));
                }
                first_accept.get_or_insert_with(Instant::now);
                let client = &client;
                let calls = accepts.into_iter().map(|(offer, batch)| async move {
                    if batch.is_empty() {
                        client.decline(&offer.id, 3600.0).await
                    } else {
                        client.launch(&offer.id, batch, Some(3600.0)).await
                    }
                });
                let results: Vec<_> = futures::stream::iter(calls)
                    .buffer_unordered(64)
                    .collect()
                    .await;
                for result in results {
                    result?;
                }
            }
            // The simulated agents do not wait for acknowledgements.
            event::Type::Update
                if event
                    .update
                    .is_some_and(|u| u.status.state() == TaskState::TaskRunning) =>
            {
                running += 1;
            }
            _ => {}
        }
    }
    let placement = first_accept.map(|t| t.elapsed()).unwrap_or_default();
    let rss_placed = cluster.master_pid().map(rss_kib).unwrap_or(0);

    // /master/state with everything running: the first request renders
    // every task; the master keeps each task's entry until it changes, so
    // the next ones (as a dashboard polling it) mostly copy.
    let mut state_times = Vec::new();
    let mut state_bytes = 0;
    for _ in 0..6 {
        let t = Instant::now();
        let response = mesos_tests::raw_http::get(&cluster.master, "/master/state")?;
        anyhow::ensure!(response.status == 200, "/master/state: {}", response.status);
        state_times.push(t.elapsed());
        state_bytes = response.body.len();
    }
    let first = state_times.remove(0);
    state_times.sort();
    let rss_kib = cluster.master_pid().map(rss_kib).unwrap_or(0);

    // Failover: the agents come back with their IDs to a new master.
    let state: serde_json::Value = serde_json::from_slice(
        &mesos_tests::raw_http::get(&cluster.master, "/master/state")?.body,
    )?;
    let ids: Vec<String> = state["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    drop(sim);
    cluster.kill_master();
    cluster.restart_master()?;
    let t = Instant::now();
    let again = SimAgents::start(
        &cluster.master,
        ids.len(),
        "cpus:8;mem:16384;disk:1024",
        Some(&ids),
    )
    .await?;
    again.wait_registered(Duration::from_secs(120)).await?;
    let failover = t.elapsed();

    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "Master at scale: {agents} simulated agents, {tasks} tasks (release build, 2-core VM)"
    );
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| {agents} agents registered | {} | |", ms(registration));
    println!(
        "| placement: {tasks} tasks ACCEPT -> TASK_RUNNING at the scheduler | {} ({:.0} tasks/s) | >= 5,000 tasks/s |",
        ms(placement),
        tasks as f64 / placement.as_secs_f64()
    );
    println!(
        "| first `/master/state` with {agents} agents and {tasks} tasks ({:.0} MB, every task rendered) | {} | |",
        state_bytes as f64 / 1e6,
        ms(first)
    );
    println!(
        "| `/master/state` with {agents} agents and {tasks} tasks (median of the next 5) | {} | <= 500 ms at 20k/200k |",
        ms(state_times[2])
    );
    println!(
        "| master RSS with everything running (after serving `/master/state`) | {:.0} MB ({:.0} MB) | < 1 GiB at 10k/100k |",
        rss_placed as f64 / 1024.0,
        rss_kib as f64 / 1024.0
    );
    println!(
        "| failover: {} agents re-registered with a restarted master | {} | <= 2 s at 10k |",
        ids.len(),
        ms(failover)
    );
    Ok(())
}

fn cpus_of(offer: &v1::Offer) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == "cpus")
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
