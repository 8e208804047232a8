//! Container launch on one agent with `cgroups/cpu,cgroups/mem,
//! namespaces/pid,filesystem/linux` and a cached busybox image: ACCEPT of
//! one image task to the scheduler's TASK_RUNNING under the Mesos
//! containerizer and under the `oci` containerizer (runc), against
//! `runc run` of the same rootfs and command, interleaved in one run; then
//! launches per second with 50 tasks in one ACCEPT. Each task is `true`;
//! a round waits for it to end (untimed) before the next. Prints a table.
//!
//! cargo build --release --bins && cargo bench -p mesos-tests --bench container_launch
//!
//! `LAUNCH_BENCH_ROUNDS` sets the rounds (30), to profile the batch alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesos_agent::command_executor::rootfs::RootfsLaunch;
use mesos_agent::oci::OciRuntime;
use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, TaskState, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::images::{BUSYBOX, mesos_container, write_busybox_image};

const ROUNDS: usize = 30;

fn rounds() -> usize {
    std::env::var("LAUNCH_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS)
}
const BATCH: usize = 50;
const RUNC: &str = "/usr/sbin/runc";

struct Agent {
    _cluster: Cluster,
    client: SchedulerClient,
    events: EventStream,
}

async fn agent(registry: &Path, containerizers: &str) -> anyhow::Result<Agent> {
    let cluster = Cluster::start_with(Options {
        agent_resources: "cpus:64;mem:65536;disk:1024".into(),
        master_flags: vec!["--allocation_interval=10ms".into()],
        agent_flags: vec![
            format!("--containerizers={containerizers}"),
            "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux,docker/runtime"
                .into(),
            "--image_providers=docker".into(),
            format!("--docker_registry={}", registry.display()),
            format!(
                "--docker_store_dir={}",
                registry.join(format!("store-{containerizers}")).display()
            ),
            format!("--oci_runtime={RUNC}"),
        ],
        ..Options::default()
    });
    let mut client = SchedulerClient::new(&cluster.master);
    let events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: format!("launch-{containerizers}"),
            ..Default::default()
        })
        .await?;
    Ok(Agent {
        _cluster: cluster,
        client,
        events,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root()
        || !Path::new(RUNC).exists()
        || !Path::new(BUSYBOX).exists()
    {
        eprintln!("SKIPPED: the container launch bench needs root, {RUNC} and {BUSYBOX}");
        return Ok(());
    }
    let registry = tempfile::tempdir()?;
    anyhow::ensure!(write_busybox_image(
        registry.path(),
        serde_json::json!({"Env": ["PATH=/bin"]})
    ));
    let mut mesos = agent(registry.path(), "mesos").await?;
    let mut oci = agent(registry.path(), "oci").await?;
    let bundle = RuncBundle::new(registry.path())?;

    let (mut by_mesos, mut by_oci, mut by_runc) = (Vec::new(), Vec::new(), Vec::new());
    // Round 0 pulls the image into each store and warms the caches.
    let rounds = rounds();
    for round in 0..=rounds {
        let runc = bundle.run(round)?;
        let (m, _) = launch(&mut mesos, &format!("m{round}"), 1).await?;
        let (o, _) = launch(&mut oci, &format!("o{round}"), 1).await?;
        if round > 0 {
            by_runc.push(runc);
            by_mesos.push(m[0]);
            by_oci.push(o[0]);
        }
    }
    let (_, mesos_all) = launch(&mut mesos, "mb", BATCH).await?;
    let (_, oci_all) = launch(&mut oci, "ob", BATCH).await?;

    for v in [&mut by_mesos, &mut by_oci, &mut by_runc] {
        v.sort();
    }
    let median = |v: &[Duration]| v[v.len() / 2];
    let p90 = |v: &[Duration]| v[(v.len() * 9 / 10).min(v.len() - 1)];
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let rate = |d: Duration| format!("{:.0}/s", BATCH as f64 / d.as_secs_f64());
    println!("Launch of a busybox `true` container in a cached image, {rounds} rounds interleaved");
    println!("| path | median | p90 | {BATCH} in one ACCEPT |");
    println!("|---|---|---|---|");
    println!(
        "| ACCEPT -> TASK_RUNNING, mesos containerizer | {} | {} | {} |",
        ms(median(&by_mesos)),
        ms(p90(&by_mesos)),
        rate(mesos_all)
    );
    println!(
        "| ACCEPT -> TASK_RUNNING, oci containerizer (runc) | {} | {} | {} |",
        ms(median(&by_oci)),
        ms(p90(&by_oci)),
        rate(oci_all)
    );
    println!(
        "| `runc run` of the same rootfs, to exit | {} | {} | |",
        ms(median(&by_runc)),
        ms(p90(&by_runc))
    );
    Ok(())
}

/// `n` image tasks in one ACCEPT on the next offer: each one's ACCEPT to
/// TASK_RUNNING, and the time until all were running; returns once all
/// ended.
async fn launch(
    agent: &mut Agent,
    prefix: &str,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let mut sent: Option<Instant> = None;
    let (mut running, mut ended) = (Vec::new(), 0);
    let mut all_running = None;
    // Acknowledged concurrently, as frameworks do: a task's next update
    // leaves the agent only once its last one is acknowledged.
    let mut acks = tokio::task::JoinSet::new();
    while ended < n {
        let Some(event) =
            tokio::time::timeout(Duration::from_secs(120), agent.events.next()).await??
        else {
            anyhow::bail!("subscription closed");
        };
        match event.r#type() {
            event::Type::Offers => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    if sent.is_some() {
                        agent.client.decline(&offer.id, 0.0).await?;
                        continue;
                    }
                    let tasks = ids
                        .iter()
                        .map(|id| v1::TaskInfo {
                            name: id.clone(),
                            task_id: v1::TaskId { value: id.clone() },
                            agent_id: offer.agent_id.clone(),
                            resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
                            command: Some(v1::CommandInfo {
                                value: Some("true".into()),
                                ..Default::default()
                            }),
                            container: Some(mesos_container("busybox")),
                            ..Default::default()
                        })
                        .collect();
                    sent = Some(Instant::now());
                    agent.client.launch(&offer.id, tasks, Some(0.0)).await?;
                }
            }
            event::Type::Update => {
                let Some(update) = event.update else { continue };
                let status = update.status;
                let client = agent.client.clone();
                let acked = status.clone();
                acks.spawn(async move { client.acknowledge(&acked).await });
                if !ids.contains(&status.task_id.value) {
                    continue;
                }
                match status.state() {
                    TaskState::TaskRunning => {
                        let at = sent.map(|s| s.elapsed()).unwrap_or_default();
                        running.push(at);
                        if running.len() == n {
                            all_running = Some(at);
                        }
                    }
                    TaskState::TaskFinished => ended += 1,
                    state if state.is_terminal() => {
                        anyhow::bail!(
                            "{} ended {state:?}: {:?}",
                            status.task_id.value,
                            status.message
                        )
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    while let Some(acked) = acks.join_next().await {
        acked??;
    }
    let all = all_running.ok_or_else(|| anyhow::anyhow!("not every task reported RUNNING"))?;
    Ok((running, all))
}

/// A bundle around a busybox rootfs, with the `oci` containerizer's own
/// `config.json` for `true`.
struct RuncBundle {
    dir: PathBuf,
}

impl RuncBundle {
    fn new(under: &Path) -> anyhow::Result<Self> {
        let dir = under.join("runc-bundle");
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin"))?;
        for d in ["proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d))?;
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox"))?;
        for applet in ["sh", "true"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
        }
        let runtime = OciRuntime {
            binary: RUNC.into(),
            root: dir.join("oci"),
            cgroups_root: "mesos-bench".into(),
        };
        let launch = RootfsLaunch {
            rootfs,
            argv: vec!["true".into()],
            env: vec![("PATH".into(), "/bin".into())],
            working_dir: "/".into(),
            mounts: Vec::new(),
            user: None,
            privileges: Default::default(),
        };
        let resources = [scalar("cpus", 0.1), scalar("mem", 32.0)];
        let config = runtime.launch("bench").config(&launch, &resources, []);
        std::fs::write(dir.join("config.json"), config.to_string())?;
        Ok(Self { dir })
    }

    /// `runc run` of the bundle in the foreground, until `true` exits and
    /// runc has deleted the container.
    fn run(&self, round: usize) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let status = Command::new(RUNC)
            .arg("--root")
            .arg(self.dir.join("state"))
            .args(["run", "--bundle"])
            .arg(&self.dir)
            .arg(format!("bench-{round}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        let took = start.elapsed();
        anyhow::ensure!(status.success(), "runc run failed");
        Ok(took)
    }
}
