//! A third party's allocator behind `--allocator`: the bin-packing plugin
//! of `plugins/bin-packing-allocator`, loaded by the master from
//! `--plugin_dir`, fills one agent before the next where the built-in
//! DRF spreads tasks over every agent. Mesos's `--modules` JSON loads it
//! too; a name the master cannot resolve stops it at start with the names
//! it knows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::{self, Cluster, Options};
use mesos_tests::framework::{Framework, cpus_of};
use mesos_tests::plugins::{self, Plugin};

const BIN_PACKING: &str = "com.example.bin_packing";
/// Each agent runs four tasks.
const TASK_CPUS: f64 = 0.25;

/// A `--plugin_dir` with the bin-packing allocator's dylib.
fn plugin_dir() -> tempfile::TempDir {
    let libs = plugins::build(&["bin-packing-allocator"]);
    let artifact = "libbin_packing_allocator.so";
    let bytes = std::fs::read(libs.join(artifact)).unwrap();
    let root = tempfile::tempdir().unwrap();
    plugins::install(
        root.path(),
        &Plugin {
            name: BIN_PACKING,
            kind: "allocator",
            runtime: "dylib",
            artifact,
            bytes: &bytes,
            extra: "",
        },
    );
    root
}

/// Three agents of one cpu each, the master with `flags`. Cycles are a
/// second apart, so the scheduler has always answered an offer before the
/// next cycle: otherwise a bin packer offers the next agent while the
/// first one's resources sit in an unanswered offer.
fn cluster(flags: &[String]) -> Cluster {
    let mut master_flags = vec!["--allocation_interval=1secs".to_string()];
    master_flags.extend(flags.iter().cloned());
    Cluster::start_with(Options {
        agents: 3,
        agent_resources: "cpus:1;mem:512;disk:1024;ports:[31000-31100]".into(),
        master_flags,
        ..Options::default()
    })
}

/// Launches `n` sleeping tasks, one per offer as offers come, declining
/// offers too small for one; returns the agent each task went to, once
/// all of them run.
async fn place(cluster: &Cluster, n: usize) -> Vec<String> {
    let mut framework = Framework::subscribe(&cluster.master, "placement", false)
        .await
        .unwrap();
    let mut updates = Vec::new();
    let mut placed = Vec::new();
    while placed.len() < n {
        let offer = framework.offer_amid_updates(&mut updates).await.unwrap();
        if cpus_of(&offer) < TASK_CPUS {
            framework.client.decline(&offer.id, 60.0).await.unwrap();
            continue;
        }
        let id = format!("t{}", placed.len());
        let task = v1::TaskInfo {
            name: id.clone(),
            task_id: v1::TaskId { value: id },
            agent_id: offer.agent_id.clone(),
            resources: vec![scalar("cpus", TASK_CPUS), scalar("mem", 32.0)],
            command: Some(v1::CommandInfo {
                value: Some("sleep 1000".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Refusing nothing: what the task leaves is offered again next cycle.
        framework
            .client
            .launch(&offer.id, vec![task], Some(0.0))
            .await
            .unwrap();
        placed.push(offer.agent_id.value);
    }
    let running = |updates: &[v1::TaskStatus]| {
        updates
            .iter()
            .filter(|s| s.state() == TaskState::TaskRunning)
            .count()
    };
    while running(&updates) < n {
        let status = framework
            .next_update(std::time::Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!status.state().is_terminal(), "{status:?}");
        updates.push(status);
    }
    placed
}

fn distinct(agents: &[String]) -> usize {
    agents.iter().collect::<BTreeSet<_>>().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bin_packing_plugin_fills_one_agent_before_the_next() {
    let dir = plugin_dir();
    let cluster = cluster(&[
        format!("--plugin_dir={}", dir.path().display()),
        format!("--allocator={BIN_PACKING}"),
    ]);
    let placed = place(&cluster, 6).await;
    assert_eq!(
        distinct(&placed[..4]),
        1,
        "the first agent takes four: {placed:?}"
    );
    assert_eq!(distinct(&placed[4..]), 1, "then the next one: {placed:?}");
    assert_ne!(placed[0], placed[4], "{placed:?}");
    // The master's books agree with where the tasks run.
    let state = cluster.state();
    let used: Vec<f64> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["used_resources"]["cpus"].as_f64().unwrap_or(0.0))
        .collect();
    let mut used_sorted = used.clone();
    used_sorted.sort_by(f64::total_cmp);
    assert_eq!(
        used_sorted,
        [0.0, 0.5, 1.0],
        "cpus used per agent: {used:?}"
    );
}

/// Mesos's `--modules` JSON loads the same library as a plugin folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_loads_its_allocator_from_the_modules_flag_too() {
    let library = plugins::build(&["bin-packing-allocator"]).join("libbin_packing_allocator.so");
    let modules = format!(
        r#"{{"libraries": [{{"file": "{}", "modules": [{{"name": "{BIN_PACKING}"}}]}}]}}"#,
        library.display()
    );
    let cluster = cluster(&[
        format!("--modules={modules}"),
        format!("--allocator={BIN_PACKING}"),
    ]);
    let placed = place(&cluster, 2).await;
    assert_eq!(distinct(&placed), 1, "packed, not spread: {placed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drf_spreads_the_same_tasks_over_every_agent() {
    let cluster = cluster(&[]);
    let placed = place(&cluster, 6).await;
    assert_eq!(
        distinct(&placed[..3]),
        3,
        "one task per agent first: {placed:?}"
    );
}

#[test]
fn an_unknown_allocator_stops_the_master_naming_what_it_knows() {
    let dir = plugin_dir();
    let out = master_output(dir.path(), "com.example.missing");
    assert!(
        out.contains("unknown allocator 'com.example.missing'"),
        "{out}"
    );
    assert!(out.contains(BIN_PACKING), "{out}");
}

/// A plugin folder whose artifact does not match its manifest stops the
/// master, naming the plugin.
#[test]
fn a_tampered_allocator_plugin_stops_the_master() {
    let dir = plugin_dir();
    let artifact = dir
        .path()
        .join(BIN_PACKING)
        .join("libbin_packing_allocator.so");
    let mut bytes = std::fs::read(&artifact).unwrap();
    bytes.push(0);
    std::fs::write(&artifact, bytes).unwrap();
    let out = master_output(dir.path(), BIN_PACKING);
    assert!(
        out.contains(BIN_PACKING) && out.contains("sha256 mismatch"),
        "{out}"
    );
}

/// What a master with `--plugin_dir` and `--allocator` that must not
/// start printed.
fn master_output(plugin_dir: &Path, allocator: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(cluster::binary("mesos-master"))
        .arg("--ip=127.0.0.1")
        .arg(format!("--port={}", cluster::free_port()))
        .arg("--registry=in_memory")
        .arg(format!("--work_dir={}", work.path().display()))
        .arg(format!("--plugin_dir={}", plugin_dir.display()))
        .arg(format!("--allocator={allocator}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the master started");
    String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
}
