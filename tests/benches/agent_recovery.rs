//! Agent footprint and recovery: idle RSS of the agent, extra memory per
//! running command task (the agent's RSS growth plus the command
//! executor's proportional set size, whose file pages are shared by all
//! executors; not the task's own process; its RSS is shown too), and the time from restarting a `kill -9`ed
//! agent with 100 running checkpointed tasks until every executor has
//! resubscribed and the agent has re-registered with its old ID (the
//! agent re-registers only once all recovered executors resubscribed, and
//! the master then shows all 100 tasks running on it). Prints a table.
//!
//! cargo build --release --bins && cargo bench -p mesos-tests --bench agent_recovery

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::{Framework, task_ids};

const SAMPLE_TASKS: usize = 20;
const RECOVERY_TASKS: usize = 100;
const ROUNDS: usize = 3;

/// A field (in KiB) of a `/proc/<pid>` file.
fn proc_kib(pid: u32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_kib(pid, "status", "VmRSS:")
}

/// Proportional set size: private pages plus a share of the pages
/// (the executor binary's, libc's) shared with other processes.
fn pss_kib(pid: u32) -> u64 {
    proc_kib(pid, "smaps_rollup", "Pss:")
}

/// Executors among the cluster's sandbox processes: they lead their own
/// session (their tasks are in the same session, in a process group of
/// their own).
fn executor_pids(cluster: &Cluster) -> Vec<u32> {
    cluster
        .sandbox_processes()
        .into_iter()
        .filter_map(|pid| u32::try_from(pid).ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let sid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(3)?.parse::<u32>().ok());
            sid == Some(*pid)
        })
        .collect()
}

fn options() -> Options {
    Options {
        agent_resources: "cpus:64;mem:65536;disk:4096".into(),
        master_flags: vec!["--allocation_interval=10ms".into()],
        ..Options::default()
    }
}

fn mib(kib: f64) -> String {
    format!("{:.1} MB", kib / 1024.0)
}

/// Whether the master shows the agent active under `id` with `tasks`
/// tasks running.
fn recovered(cluster: &Cluster, id: &str, tasks: usize) -> bool {
    let state = cluster.state();
    let active = state["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["id"] == id && a["active"] == true);
    let running = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .filter(|t| t["state"] == "TASK_RUNNING" && t["slave_id"] == id)
        .count();
    active && running == tasks
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Footprint.
    let cluster = Cluster::start_with(options());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let agent = cluster.agent_pid(0).unwrap();
    let idle = rss_kib(agent) as f64;
    let mut framework = Framework::subscribe(&cluster.master, "footprint", true).await?;
    framework
        .launch_running(&task_ids("rss", SAMPLE_TASKS), "sleep 1000")
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib(agent) as f64 - idle;
    let executors = executor_pids(&cluster);
    assert_eq!(executors.len(), SAMPLE_TASKS);
    let executor_rss: f64 = executors.iter().map(|p| rss_kib(*p) as f64).sum();
    let executor_pss: f64 = executors.iter().map(|p| pss_kib(*p) as f64).sum();
    let per_task = (grown + executor_pss) / SAMPLE_TASKS as f64;
    drop(cluster);

    // Recovery.
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let mut cluster = Cluster::start_with(options());
        let mut framework = Framework::subscribe(&cluster.master, "recovery", true).await?;
        framework
            .launch_running(
                &task_ids(&format!("r{round}"), RECOVERY_TASKS),
                "sleep 1000",
            )
            .await?;
        let id = cluster.state()["slaves"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Let the last acknowledgements reach the update logs.
        tokio::time::sleep(Duration::from_millis(200)).await;
        cluster.kill_agent(0);
        // The master must have seen the agent go, or its old link would
        // pass for the re-registration.
        while cluster.state()["slaves"][0]["active"] != false {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let start = Instant::now();
        cluster.restart_agent(0, &[])?;
        while !recovered(&cluster, &id, RECOVERY_TASKS) {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "not recovered in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        times.push(start.elapsed());
    }
    times.sort();

    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| agent idle RSS | {} | <= 20 MB |", mib(idle));
    println!(
        "| extra memory per running command task: agent RSS growth {} + executor PSS {} (RSS {}) | {} | <= 5 MB |",
        mib(grown / SAMPLE_TASKS as f64),
        mib(executor_pss / SAMPLE_TASKS as f64),
        mib(executor_rss / SAMPLE_TASKS as f64),
        mib(per_task)
    );
    println!(
        "| recovery of {RECOVERY_TASKS} running tasks after kill -9 (median of {ROUNDS}, min..max) | {:.0} ms ({:.0}..{:.0}) | <= 1000 ms |",
        times[ROUNDS / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[ROUNDS - 1].as_secs_f64() * 1000.0,
    );
    Ok(())
}
