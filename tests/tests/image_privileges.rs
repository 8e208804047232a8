//! `linux/capabilities` and `linux/nnp` for tasks in a container image,
//! under the Mesos containerizer and under the `oci` one (runc), through a
//! real master and agent: the executor stays root to set the rootfs up,
//! and the task gets the sets, as in Mesos. A root task has the agent's
//! bounding set; a `nobody` task asking for NET_RAW has it in every set
//! (ambient included); both run with `no_new_privs`. Needs root, runc and
//! `/bin/busybox`; skipped with the reason otherwise, and a failure with
//! `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::BTreeMap;
use std::path::Path;

use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::{Cluster, Options, files_named};
use mesos_tests::framework::Framework;
use mesos_tests::images::{BUSYBOX, mesos_container, write_busybox_image};
use mesos_tests::plugins::{command_task, run_task};
use mesos_tests::require_root;

/// A task in the busybox image writing its sets into the sandbox.
fn task(
    id: &str,
    user: Option<&str>,
    effective: &[v1::capability_info::Capability],
) -> v1::TaskInfo {
    let mut task = command_task(
        id,
        "grep -E '^(Cap(Bnd|Eff|Prm|Amb)|NoNewPrivs):' /proc/self/status > $MESOS_SANDBOX/status",
    );
    if let Some(command) = task.command.as_mut() {
        command.user = user.map(str::to_string);
    }
    let mut container = mesos_container("busybox");
    if !effective.is_empty() {
        container.linux_info = Some(v1::LinuxInfo {
            effective_capabilities: Some(v1::CapabilityInfo {
                capabilities: effective.iter().map(|c| *c as i32).collect(),
            }),
            ..Default::default()
        });
    }
    task.container = Some(container);
    task
}

/// The `status` file task `id` wrote, as a map.
fn status_of(cluster: &Cluster, id: &str) -> BTreeMap<String, String> {
    let mut found = Vec::new();
    files_named(cluster.dir.path(), "status", &mut found);
    let path = found
        .into_iter()
        .find(|p| p.components().any(|c| c.as_os_str() == id))
        .unwrap_or_else(|| panic!("{id} wrote no status"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

async fn sets_reach_the_task(containerizers: &str) {
    let runc = Path::new("/usr/sbin/runc").exists();
    if !require_root(
        runc && Path::new(BUSYBOX).exists(),
        "image privileges need root, runc and /bin/busybox",
    ) {
        return;
    }
    let registry = tempfile::tempdir().unwrap();
    assert!(write_busybox_image(
        registry.path(),
        serde_json::json!({"Env": ["PATH=/bin"]})
    ));
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            format!("--containerizers={containerizers}"),
            "--isolation=filesystem/linux,docker/runtime,linux/capabilities,linux/nnp".into(),
            r#"--bounding_capabilities={"capabilities":["CHOWN","NET_RAW"]}"#.into(),
            "--image_providers=docker".into(),
            format!("--docker_registry={}", registry.path().display()),
            format!(
                "--docker_store_dir={}",
                registry.path().join("store").display()
            ),
        ],
        ..Options::default()
    });
    // `nobody` must reach its sandbox.
    cluster.open_to_all_users();
    let mut framework = Framework::subscribe(&cluster.master, "image-privileges", false)
        .await
        .unwrap();
    use v1::capability_info::Capability::NetRaw;
    for task in [
        task("root", None, &[]),
        task("nobody", Some("nobody"), &[NetRaw]),
    ] {
        let id = task.task_id.value.clone();
        let status = run_task(&mut framework, task).await;
        if status.state() != TaskState::TaskFinished {
            cluster.dump_logs();
            panic!("{id}: {status:?}");
        }
    }
    let root = status_of(&cluster, "root");
    assert_eq!(root["CapBnd"], "0000000000002001", "{root:?}");
    assert_eq!(root["CapEff"], "0000000000002001", "{root:?}");
    assert_eq!(root["NoNewPrivs"], "1", "{root:?}");
    let nobody = status_of(&cluster, "nobody");
    assert_eq!(nobody["CapBnd"], "0000000000002001", "{nobody:?}");
    for set in ["CapEff", "CapPrm", "CapAmb"] {
        assert_eq!(nobody[set], "0000000000002000", "{set}: {nobody:?}");
    }
    assert_eq!(nobody["NoNewPrivs"], "1", "{nobody:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_reach_a_task_in_an_image_under_the_mesos_containerizer() {
    sets_reach_the_task("mesos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_reach_a_task_in_an_image_under_runc() {
    sets_reach_the_task("oci,mesos").await;
}
