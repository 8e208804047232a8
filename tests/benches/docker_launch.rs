//! Docker launch latency: ACCEPT of one DOCKER command task to the
//! scheduler's TASK_RUNNING through master, agent and docker executor,
//! against `docker run -d` of the same image and command, in the same run
//! and interleaved (so both see the same Engine and machine state). Each
//! container is removed before the next launch. Prints a table.
//!
//! cargo build --release --bins && cargo bench -p mesos-tests --bench docker_launch

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, container_info, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::docker::{self, BUSYBOX};

const ROUNDS: usize = 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Some(_engine) = docker::require().await else {
        return Ok(());
    };
    let cluster = Cluster::start_with(Options {
        agent_resources: "cpus:8;mem:8192;disk:1024".into(),
        master_flags: vec!["--allocation_interval=10ms".into()],
        agent_flags: vec!["--containerizers=docker,mesos".into()],
        ..Options::default()
    });
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "docker-launch".into(),
            ..Default::default()
        })
        .await?;

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // One unmeasured round of each warms the Engine and the page cache.
    for round in 0..=ROUNDS {
        let cli = docker_run(round)?;
        let agent = through_the_agent(&client, &mut events, round).await?;
        if round > 0 {
            theirs.push(cli);
            ours.push(agent);
        }
    }
    ours.sort();
    theirs.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    let p90 = |v: &[Duration]| v[(v.len() * 9 / 10).min(v.len() - 1)];
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("Launch of a busybox `sleep` container, {ROUNDS} rounds interleaved");
    println!("| path | median | p90 |");
    println!("|---|---|---|");
    println!(
        "| ACCEPT -> TASK_RUNNING (docker containerizer) | {} | {} |",
        ms(median(&ours)),
        ms(p90(&ours))
    );
    println!(
        "| `docker run -d` | {} | {} |",
        ms(median(&theirs)),
        ms(p90(&theirs))
    );
    println!(
        "| ratio (median) | {:.2} | |",
        median(&ours).as_secs_f64() / median(&theirs).as_secs_f64()
    );
    Ok(())
}

/// `docker run -d` of the same container, timed until the CLI returns
/// (the container is started then), and removed.
fn docker_run(round: usize) -> anyhow::Result<Duration> {
    let name = format!("docker-launch-bench-{}-{round}", std::process::id());
    let start = Instant::now();
    let status = Command::new("docker")
        .args(["run", "-d", "--network", "none", "--name", &name, BUSYBOX])
        .args(["sh", "-c", "sleep 1000"])
        .stdout(Stdio::null())
        .status()?;
    let took = start.elapsed();
    anyhow::ensure!(status.success(), "docker run failed");
    Command::new("docker")
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .status()?;
    Ok(took)
}

/// One DOCKER task on the next offer, timed from ACCEPT to TASK_RUNNING,
/// then killed (untimed).
async fn through_the_agent(
    client: &SchedulerClient,
    events: &mut EventStream,
    round: usize,
) -> anyhow::Result<Duration> {
    let id = format!("docker-{round}");
    let mut sent: Option<Instant> = None;
    let mut took = None;
    loop {
        let Some(event) = tokio::time::timeout(Duration::from_secs(60), events.next()).await??
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
                    let task = v1::TaskInfo {
                        name: id.clone(),
                        task_id: v1::TaskId { value: id.clone() },
                        agent_id: offer.agent_id.clone(),
                        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
                        command: Some(v1::CommandInfo {
                            value: Some("sleep 1000".into()),
                            ..Default::default()
                        }),
                        container: Some(v1::ContainerInfo {
                            r#type: container_info::Type::Docker as i32,
                            docker: Some(container_info::DockerInfo {
                                image: BUSYBOX.into(),
                                network: Some(container_info::docker_info::Network::None as i32),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    sent = Some(Instant::now());
                    client.launch(&offer.id, vec![task], Some(0.0)).await?;
                }
            }
            event::Type::Update => {
                let Some(update) = event.update else { continue };
                let status = update.status;
                client.acknowledge(&status).await?;
                if status.task_id.value != id {
                    continue;
                }
                match status.state() {
                    TaskState::TaskRunning => {
                        took = sent.map(|at| at.elapsed());
                        client.kill(&status.task_id).await?;
                    }
                    state if state.is_terminal() => {
                        return took.ok_or_else(|| {
                            anyhow::anyhow!("{id} ended {state:?}: {:?}", status.message)
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}
