//! `cgroups/blkio` on the real kernel, through a real master and agent
//! with `--isolation=cgroups/all` (which brings it in with every other
//! cgroups isolator this host has controllers for): a task that writes and reads 1 MiB with direct I/O (past the page cache,
//! so the block layer sees it) finds both in its container's
//! `blkio_statistics` in `/monitor/statistics`, and its cgroup goes with
//! it. Needs root and the blkio (v1) or io (v2) controller; skipped with
//! the reason otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use mesos_proto::v1;
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;
use mesos_tests::require_root;

const MIB: u64 = 1 << 20;

/// The sum over devices of `field` (`io_service_bytes`) for `op`.
fn serviced(statistics: &serde_json::Value, field: &str, op: &str) -> u64 {
    statistics["blkio_statistics"]["throttling"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|device| device[field].as_array().cloned().unwrap_or_default())
        .filter(|value| value["op"] == op)
        .filter_map(|value| value["value"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_finds_its_direct_io_in_its_blkio_statistics() {
    let v1_cgroups = Path::new("/sys/fs/cgroup/blkio").is_dir();
    let v2_io = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"));
    if !require_root(
        v1_cgroups || v2_io,
        "cgroups/blkio needs root and the blkio (v1) or io (v2) controller",
    ) {
        return;
    }
    let cluster = Cluster::start_with(Options {
        agent_flags: vec!["--isolation=cgroups/all".into()],
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "blkio", false)
        .await
        .unwrap();
    // Direct I/O in the sandbox, which is on a disk (the agent's work
    // directory), then a wait to be measured.
    let command = "dd if=/dev/zero of=io.bin bs=64k count=16 oflag=direct 2>&1 && \
                   dd if=io.bin of=/dev/null bs=64k iflag=direct 2>&1 && sleep 1000";
    framework
        .launch_running(&["io".to_string()], command)
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let statistics = loop {
        let response =
            mesos_tests::raw_http::get(&cluster.agents[0], "/monitor/statistics").unwrap();
        let all: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let statistics = all
            .as_array()
            .and_then(|a| a.iter().find(|e| e["executor_id"] == "io"))
            .map(|e| e["statistics"].clone())
            .unwrap_or_default();
        if serviced(&statistics, "io_service_bytes", "READ") >= MIB {
            break statistics;
        }
        if Instant::now() > deadline {
            cluster.dump_logs();
            panic!("no 1 MiB read in {all}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        serviced(&statistics, "io_service_bytes", "WRITE") >= MIB,
        "{statistics}"
    );
    // 16 reads of 64 KiB, possibly split by the device's limits.
    assert!(
        serviced(&statistics, "io_serviced", "READ") >= 16,
        "{statistics}"
    );

    framework
        .client
        .kill(&v1::TaskId { value: "io".into() })
        .await
        .unwrap();
    let killed = framework
        .next_update(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(killed.state(), v1::TaskState::TaskKilled, "{killed:?}");
    let container_id = killed
        .container_status
        .as_ref()
        .and_then(|c| c.container_id.as_ref())
        .map(|c| c.value.clone())
        .unwrap();
    let cgroup = if v1_cgroups {
        Path::new("/sys/fs/cgroup/blkio/mesos").join(&container_id)
    } else {
        Path::new("/sys/fs/cgroup/mesos").join(&container_id)
    };
    // cgroups/all stands for the others too: only a memory cgroup
    // measures the total.
    let memory = statistics["mem_total_bytes"].as_u64().unwrap_or(0);
    assert!(memory > 0, "{statistics}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cgroup.exists() {
        assert!(Instant::now() < deadline, "{} is left", cgroup.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
