//! `cgroups/devices` on the real kernel, through a real master and agent:
//! a root task can use the default whitelist's devices and what
//! `--allowed_devices` adds, with the access given, and no other device;
//! its cgroup goes with it. Once with the v1 devices controller, once
//! with cgroups v2 and its eBPF device program (on a hybrid host, in the
//! unified hierarchy at `/sys/fs/cgroup/unified`). Needs root and both;
//! skipped with the reason otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;

use mesos_proto::v1::TaskState;
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{command_task, run_task};
use mesos_tests::require_root;

/// `open` in a child shell, so that a refused one does not end the task.
fn opens(redirect: &str) -> String {
    format!("sh -c 'exec 3{redirect}' 2>/dev/null")
}

/// The allowed, read-only and refused opens, in a task of an agent with
/// `flags`; `cgroups` is where the agent makes its containers' cgroups.
async fn only_whitelisted_devices(flags: Vec<String>, cgroups: &Path) {
    let mut agent_flags = vec![
        "--isolation=cgroups/devices".into(),
        r#"--allowed_devices={"allowed_devices":[{"device":{"path":"/dev/kmsg"},"access":{"read":true}}]}"#
            .into(),
    ];
    agent_flags.extend(flags);
    let cluster = Cluster::start_with(Options {
        agent_flags,
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "devices", false)
        .await
        .unwrap();
    let checks = [
        // The default whitelist.
        "head -c 1 /dev/urandom > /dev/null".to_string(),
        // Added by the flag, for reading only.
        opens("</dev/kmsg"),
        format!("! {}", opens(">/dev/kmsg")),
        // Neither: root or not, the cgroup refuses it.
        format!("! {}", opens("</dev/loop-control")),
    ];
    let status = run_task(
        &mut framework,
        command_task("devices", &checks.join(" && ")),
    )
    .await;
    if status.state() != TaskState::TaskFinished {
        cluster.dump_logs();
        panic!("{status:?}");
    }
    // The container's cgroup goes with it.
    let container_id = status
        .container_status
        .as_ref()
        .and_then(|c| c.container_id.as_ref())
        .map(|c| c.value.clone())
        .unwrap();
    let cgroup = cgroups.join(container_id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cgroup.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} is left",
            cgroup.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The same refused open works on the host: the cgroup made the
    // difference.
    let host = std::process::Command::new("sh")
        .args(["-c", "exec 3</dev/loop-control"])
        .status()
        .unwrap();
    assert!(host.success());
}

fn devices_present() -> bool {
    Path::new("/dev/kmsg").exists() && Path::new("/dev/loop-control").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reaches_only_the_whitelisted_devices() {
    let present = Path::new("/sys/fs/cgroup/devices/devices.allow").exists() && devices_present();
    if !require_root(
        present,
        "cgroups/devices needs root, the v1 devices controller, /dev/kmsg and /dev/loop-control",
    ) {
        return;
    }
    only_whitelisted_devices(Vec::new(), Path::new("/sys/fs/cgroup/devices/mesos")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cgroups_v2_an_ebpf_program_does_the_same() {
    let v2 = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.controllers").exists());
    if !require_root(
        v2.is_some() && devices_present(),
        "cgroups/devices on v2 needs root, a cgroup2 mount, /dev/kmsg and /dev/loop-control",
    ) {
        return;
    }
    let v2 = v2.unwrap();
    let root = format!("mesos-devices-{}", std::process::id());
    only_whitelisted_devices(
        vec![
            format!("--cgroups_hierarchy={}", v2.display()),
            format!("--cgroups_root={root}"),
        ],
        &v2.join(&root),
    )
    .await;
    let _ = std::fs::remove_dir(v2.join(&root));
}
