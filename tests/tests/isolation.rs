//! cgroups isolation on the real kernel, through a real master and agent
//! (`--isolation=cgroups/cpu,cgroups/mem`): a task runs inside its
//! container's cgroups with the shares and memory limit its resources
//! give; a task over its memory limit fails with
//! REASON_CONTAINER_LIMITATION_MEMORY; the cgroups are gone afterwards.
//! Needs root; skipped with the reason otherwise, and a failure with
//! `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState, task_status::Reason};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;

const CGROUPS: &str = "/sys/fs/cgroup";

fn require_root() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let mounted = Path::new(CGROUPS).join("memory").is_dir()
        || Path::new(CGROUPS).join("cgroup.controllers").exists();
    match (
        root && mounted,
        std::env::var("CI").as_deref() == Ok("true"),
    ) {
        (true, _) => true,
        (false, true) => panic!("cgroups tests need root and a cgroup filesystem in CI"),
        (false, false) => {
            eprintln!("SKIPPED: cgroups tests need root and {CGROUPS}");
            false
        }
    }
}

/// The directories that hold this agent's container cgroups.
fn container_dirs(root: &str) -> Vec<std::path::PathBuf> {
    if Path::new(CGROUPS).join("cgroup.controllers").exists() {
        vec![Path::new(CGROUPS).join(root)]
    } else {
        ["cpu", "cpuacct", "memory"]
            .iter()
            .map(|c| Path::new(CGROUPS).join(c).join(root))
            .collect()
    }
}

fn task(offer: &v1::Offer, id: &str, cpus: f64, mem: f64, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", cpus), scalar("mem", mem)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Each task's terminal status.
async fn terminal(framework: &mut Framework, n: usize) -> Vec<v1::TaskStatus> {
    let mut done = Vec::new();
    while done.len() < n {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        if status.state().is_terminal() {
            done.push(status);
        }
    }
    done
}

// Checks the task's own cgroups from inside: v1 (a hierarchy per
// controller) or v2.
const CHECK_LIMITS: &str = r#"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  p=$(sed -n 's/^0:://p' /proc/self/cgroup)
  test "$(cat /sys/fs/cgroup$p/cpu.weight)" = 20 &&
  test "$(cat /sys/fs/cgroup$p/memory.max)" = 67108864
else
  cpu=$(sed -n 's/^[0-9]*:cpu:\(.*\)/\1/p' /proc/self/cgroup)
  mem=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup)
  test "$(cat /sys/fs/cgroup/cpu$cpu/cpu.shares)" = 512 &&
  test "$(cat /sys/fs/cgroup/memory$mem/memory.limit_in_bytes)" = 67108864
fi
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_in_their_cgroups_and_an_oom_kill_is_reported() {
    if !require_root() {
        return;
    }
    let root = format!("mesos-test-{}", std::process::id());
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--isolation=cgroups/cpu,cgroups/mem".into(),
            format!("--cgroups_root={root}"),
        ],
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "isolation", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    let tasks = vec![
        task(&offer, "limits", 0.5, 64.0, CHECK_LIMITS),
        // Writes 256 MB into a 32 MB container.
        task(
            &offer,
            "hog",
            0.1,
            32.0,
            "python3 -c 'x = b\"a\" * (256 << 20); import time; time.sleep(60)'",
        ),
        task(&offer, "sleeper", 0.25, 48.0, "sleep 1000"),
    ];
    framework
        .client
        .launch(&offer.id, tasks, None)
        .await
        .unwrap();
    let done = terminal(&mut framework, 2).await;
    let of = |id: &str| done.iter().find(|s| s.task_id.value == id).unwrap();

    let limits = of("limits");
    assert_eq!(limits.state(), TaskState::TaskFinished, "{limits:?}");
    let hog = of("hog");
    assert_eq!(hog.state(), TaskState::TaskFailed, "{hog:?}");
    assert_eq!(
        hog.reason,
        Some(Reason::ContainerLimitationMemory as i32),
        "{hog:?}"
    );
    assert!(
        hog.message
            .as_deref()
            .unwrap_or_default()
            .contains("Memory limit exceeded"),
        "{hog:?}"
    );

    // The memory cgroup measures the running one for /monitor/statistics.
    let response = mesos_tests::raw_http::get(&cluster.agents[0], "/monitor/statistics").unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let sleeper = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "sleeper")
        .unwrap_or_else(|| panic!("sleeper missing from {stats}"));
    let s = &sleeper["statistics"];
    assert_eq!(s["mem_limit_bytes"].as_u64(), Some(48 << 20), "{s}");
    assert!(s["mem_total_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
    framework
        .client
        .kill(&v1::TaskId {
            value: "sleeper".into(),
        })
        .await
        .unwrap();
    let killed = terminal(&mut framework, 1).await;
    assert_eq!(killed[0].state(), TaskState::TaskKilled, "{killed:?}");

    // Every container's cgroups are removed once their executors are gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    for dir in container_dirs(&root) {
        while left(&dir) > 0 {
            assert!(
                Instant::now() < deadline,
                "{} still has cgroups",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::remove_dir(&dir);
    }
}
