//! The `oci` containerizer with the real runc, through a real master and
//! agent (`--containerizers=oci,mesos`, the busybox image built offline):
//! a command task in an image runs under runc, as pid 1 of its own PID
//! namespace, in the image's root filesystem, with `$MESOS_SANDBOX` the
//! host's sandbox and its memory limit on its own cgroup; it is killed
//! through the runtime, after which neither the runtime's container nor
//! its bundle is left; a task without an image goes to the Mesos
//! containerizer. Needs root, runc and `/bin/busybox`; skipped with the
//! reason otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::{Cluster, Options, entries, files_named};
use mesos_tests::framework::Framework;
use mesos_tests::images::{BUSYBOX, RELEASE, RELEASE_FILE, mesos_container, write_busybox_image};
use mesos_tests::plugins::command_task;
use mesos_tests::require_root;

fn runc() -> Option<PathBuf> {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn image_task(id: &str, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        container: Some(mesos_container("busybox")),
        ..command_task(id, command)
    }
}

/// The runtime's containers, by name.
fn runc_list(runc: &Path, state: &Path) -> Vec<String> {
    let out = std::process::Command::new(runc)
        .arg("--root")
        .arg(state)
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_tasks_run_under_runc_and_go_with_their_kill() {
    let Some(runc) = runc().filter(|_| Path::new(BUSYBOX).exists()) else {
        require_root(false, "the oci test needs runc and /bin/busybox");
        return;
    };
    if !require_root(true, "the oci test needs root") {
        return;
    }
    let registry = tempfile::tempdir().unwrap();
    let runtime = serde_json::json!({"Env": ["PATH=/bin"]});
    assert!(write_busybox_image(registry.path(), runtime));
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--containerizers=oci,mesos".into(),
            "--isolation=filesystem/linux,docker/runtime,cgroups/mem".into(),
            "--image_providers=docker".into(),
            format!("--docker_registry={}", registry.path().display()),
            format!(
                "--docker_store_dir={}",
                registry.path().join("store").display()
            ),
            format!("--oci_runtime={}", runc.display()),
        ],
        ..Options::default()
    });
    let oci_dir = cluster.dir.path().join("agent-0-run/oci");
    let mut framework = Framework::subscribe(&cluster.master, "oci", false)
        .await
        .unwrap();

    let inside = format!(
        "grep -q {RELEASE} /{RELEASE_FILE} && test $$ = 1 && \
         echo from-runc > $MESOS_SANDBOX/oci.txt && exec sleep 1000"
    );
    framework
        .launch_tasks(vec![
            image_task("in-image", &inside),
            command_task("on-host", "test -d /proc/1 && ! test -f /{RELEASE_FILE}"),
        ])
        .await
        .unwrap();
    let (mut running, mut on_host) = (None, None);
    while running.is_none() || on_host.is_none() {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        match (status.task_id.value.as_str(), status.state()) {
            ("in-image", TaskState::TaskRunning) => running = Some(status),
            ("on-host", state) if state.is_terminal() => on_host = Some(status),
            (_, state) if state.is_terminal() => {
                cluster.dump_logs();
                panic!("{status:?}");
            }
            _ => {}
        }
    }
    let on_host = on_host.unwrap();
    assert_eq!(on_host.state(), TaskState::TaskFinished, "{on_host:?}");
    let running = running.unwrap();
    let container_id = running
        .container_status
        .as_ref()
        .and_then(|c| c.container_id.as_ref())
        .map(|c| c.value.clone())
        .unwrap();
    let name = format!("mesos-{container_id}");

    // The task got as far as its sandbox write: it is in the image, pid 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    let sandbox_file = loop {
        let mut found = Vec::new();
        files_named(cluster.dir.path(), "oci.txt", &mut found);
        if let Some(file) = found.pop() {
            break file;
        }
        if Instant::now() > deadline {
            cluster.dump_logs();
            panic!("the task never wrote to its sandbox");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        std::fs::read_to_string(sandbox_file).unwrap(),
        "from-runc\n"
    );
    assert_eq!(runc_list(&runc, &oci_dir.join("state")), [name]);
    assert_eq!(
        entries(&oci_dir.join("bundles")),
        std::slice::from_ref(&container_id)
    );
    // Its own cgroup, under its container's, holds its memory limit.
    let v1_limit = Path::new("/sys/fs/cgroup/memory/mesos")
        .join(&container_id)
        .join("task/memory.limit_in_bytes");
    let v2_limit = Path::new("/sys/fs/cgroup/mesos")
        .join(&container_id)
        .join("task/memory.max");
    let limit = std::fs::read_to_string(&v1_limit)
        .or_else(|_| std::fs::read_to_string(&v2_limit))
        .unwrap();
    assert_eq!(limit.trim(), (32 * 1024 * 1024).to_string());

    framework.client.kill(&running.task_id).await.unwrap();
    let killed = framework.wait_terminal(&["in-image"]).await.unwrap();
    assert_eq!(
        killed["in-image"].state(),
        TaskState::TaskKilled,
        "{killed:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !runc_list(&runc, &oci_dir.join("state")).is_empty()
        || !entries(&oci_dir.join("bundles")).is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the OCI container was left behind"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn oci_needs_images_and_a_runtime() {
    if !require_root(true, "the oci test needs root") {
        return;
    }
    let failure = mesos_tests::cluster::agent_start_failure(&["--containerizers=oci,mesos".into()]);
    assert!(
        failure.contains("needs --image_providers=docker"),
        "{failure}"
    );
    let registry = tempfile::tempdir().unwrap();
    let failure = mesos_tests::cluster::agent_start_failure(&[
        "--containerizers=oci".into(),
        "--isolation=filesystem/linux,docker/runtime".into(),
        "--image_providers=docker".into(),
        format!("--docker_registry={}", registry.path().display()),
        "--oci_runtime=no-such-runtime".into(),
    ]);
    assert!(
        failure.contains("cannot find the OCI runtime 'no-such-runtime'"),
        "{failure}"
    );
}
