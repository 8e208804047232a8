//! Tasks with a Docker image under the Mesos containerizer, through a real
//! master and agent (`--isolation=filesystem/linux,docker/runtime,...`,
//! `--image_providers=docker`, `--docker_registry=<dir>`), with a busybox
//! image built offline from the host's `/bin/busybox`:
//! - the task sees the image's root filesystem, not the host's; with
//!   `namespaces/pid` only its container's processes;
//! - it writes to `$MESOS_SANDBOX`, which is the host's sandbox, where
//!   its URIs were fetched;
//! - a `host_path` volume is there, read-only when asked, and a
//!   `SANDBOX_PATH` one shows a directory of the sandbox;
//! - the image's Env, WorkingDir-less default and Cmd apply
//!   (`docker/runtime`);
//! - a command health check runs inside the image too;
//! - a task with a user runs as that user (the executor sets the rootfs up
//!   as root);
//! - a missing image fails the task with its name; an agent without
//!   `filesystem/linux` refuses image tasks, naming the isolator;
//! - every rootfs is unmounted and removed once its task is over, and
//!   after an agent restart for a container that died meanwhile.
//!
//! Needs root (mounts, pivot_root) and `/bin/busybox`; skipped with the
//! reason otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;
use mesos_tests::images::{
    BUSYBOX, RELEASE, RELEASE_FILE, mesos_container, mounts_under, wait_rootfs_gone,
    write_busybox_image,
};
use serde_json::json;

/// Whether the test can run; otherwise skipped with the reason, or a
/// failure with `CI=true`.
fn require_root_and_busybox() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let busybox = Path::new(BUSYBOX).exists();
    let why = match (root, busybox) {
        (true, true) => return true,
        (false, _) => "image tests need root (mounts, pivot_root)",
        (true, false) => "image tests need /bin/busybox (apt-get install busybox-static)",
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (in CI)");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// The image's config: an Env to find in tasks and a Cmd that leaves a
/// file in the sandbox.
fn image_runtime() -> serde_json::Value {
    json!({
        "Env": ["PATH=/bin", "IMAGE_GREETING=from-the-image"],
        "Cmd": ["sh", "-c", "echo image-cmd-ran > $MESOS_SANDBOX/cmd.txt"],
    })
}

struct ImageCluster {
    cluster: Cluster,
    registry: tempfile::TempDir,
    store: PathBuf,
}

fn start(extra_flags: &[&str]) -> ImageCluster {
    let registry = tempfile::tempdir().unwrap();
    assert!(write_busybox_image(registry.path(), image_runtime()));
    // Beside the registry, so the whole test cleans up after itself.
    let store = registry.path().join("store");
    let mut agent_flags = vec![
        "--isolation=filesystem/linux,docker/runtime,namespaces/pid".to_string(),
        "--image_providers=docker".to_string(),
        format!("--docker_registry={}", registry.path().display()),
        format!("--docker_store_dir={}", store.display()),
    ];
    agent_flags.extend(extra_flags.iter().map(|f| f.to_string()));
    let cluster = Cluster::start_with(Options {
        agent_flags,
        ..Options::default()
    });
    ImageCluster {
        cluster,
        registry,
        store,
    }
}

fn task(id: &str, command: v1::CommandInfo, container: v1::ContainerInfo) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(command),
        container: Some(container),
        ..Default::default()
    }
}

fn shell(command: &str) -> v1::CommandInfo {
    v1::CommandInfo {
        value: Some(command.into()),
        ..Default::default()
    }
}

/// The host's sandbox of the command executor of task `id`.
fn sandbox_of(work_dir: &Path, id: &str) -> Option<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize) -> Option<PathBuf> {
        if depth > 8 {
            return None;
        }
        for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
            let path = entry.path();
            if !entry.file_type().ok()?.is_dir() {
                continue;
            }
            if path.file_name()? == id && dir.file_name()? == "executors" {
                let runs = std::fs::read_dir(path.join("runs")).ok()?;
                return runs
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.is_dir() && !p.is_symlink());
            }
            if let Some(found) = walk(&path, id, depth + 1) {
                return Some(found);
            }
        }
        None
    }
    walk(&work_dir.join("slaves"), id, 0)
}

/// The task's stdout and stderr, to explain a failure.
fn output(work_dir: &Path, id: &str) -> String {
    let Some(sandbox) = sandbox_of(work_dir, id) else {
        return format!("(no sandbox for {id})");
    };
    let read = |name: &str| std::fs::read_to_string(sandbox.join(name)).unwrap_or_default();
    format!("stdout:\n{}\nstderr:\n{}", read("stdout"), read("stderr"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_in_their_image_with_the_overlay_backend() {
    if require_root_and_busybox() {
        tasks_run_in_their_image("overlay").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_in_their_image_with_the_copy_backend() {
    if require_root_and_busybox() {
        tasks_run_in_their_image("copy").await;
    }
}

/// Every task of the module comment, at once, each in its own container;
/// then every rootfs must be gone.
async fn tasks_run_in_their_image(backend: &str) {
    let host_pids = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(
        host_pids > 12,
        "too few host processes ({host_pids}) to tell a PID namespace apart"
    );
    let ImageCluster {
        cluster,
        registry: _registry,
        store,
    } = start(&[&format!("--image_provisioner_backend={backend}")]);
    let work_dir = cluster.agent_work_dir(0);
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("marker"), "host-volume\n").unwrap();
    let fetched = volume.path().join("fetched.txt");
    std::fs::write(&fetched, "fetched-content\n").unwrap();
    let busybox = mesos_container("busybox");
    let mut with_volume = busybox.clone();
    with_volume.volumes.push(v1::Volume {
        mode: v1::volume::Mode::Ro as i32,
        container_path: "/data".into(),
        host_path: Some(volume.path().display().to_string()),
        ..Default::default()
    });
    with_volume.volumes.push(v1::Volume {
        mode: v1::volume::Mode::Rw as i32,
        container_path: "/shared".into(),
        source: Some(v1::volume::Source {
            r#type: Some(v1::volume::source::Type::SandboxPath as i32),
            sandbox_path: Some(v1::volume::source::SandboxPath {
                r#type: Some(v1::volume::source::sandbox_path::Type::Self_ as i32),
                path: "shared".into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let host_only = cluster.dir.path().display().to_string();
    let mut with_env = shell(
        r#"test "$IMAGE_GREETING" = from-the-image && test "$TASK_VAR" = from-the-task && test "$PATH" = /bin"#,
    );
    with_env.environment = Some(v1::Environment {
        variables: vec![v1::environment::Variable {
            name: "TASK_VAR".into(),
            value: Some("from-the-task".into()),
            ..Default::default()
        }],
    });
    let tasks = vec![
        task(
            "rootfs",
            shell(&format!(
                "test -x /bin/busybox && test ! -e /etc/os-release && test ! -e {host_only} && \
                 test \"$(cat /{RELEASE_FILE})\" = {RELEASE} && grep -q localhost /etc/hosts"
            )),
            busybox.clone(),
        ),
        task(
            "pids",
            shell("n=$(ls /proc | grep -c '^[0-9]'); echo pids=$n; test $n -le 10"),
            busybox.clone(),
        ),
        task(
            "sandbox",
            shell(
                r#"test "$MESOS_SANDBOX" = /mnt/mesos/sandbox && test "$(pwd)" = /mnt/mesos/sandbox && echo written-inside > $MESOS_SANDBOX/inside.txt && test -c /dev/null && test -L /dev/stderr && echo gone > /dev/null"#,
            ),
            busybox.clone(),
        ),
        task("env", with_env, busybox.clone()),
        task(
            "volume",
            shell(
                r#"test "$(cat /data/marker)" = host-volume && ! touch /data/new 2>/dev/null && echo shared > /shared/out.txt"#,
            ),
            with_volume,
        ),
        task(
            "image-cmd",
            v1::CommandInfo {
                shell: Some(false),
                ..Default::default()
            },
            busybox.clone(),
        ),
        task(
            "user",
            v1::CommandInfo {
                user: Some("nobody".into()),
                ..shell(r#"test "$(id -u)" = 65534 && echo as-nobody > $MESOS_SANDBOX/user.txt"#)
            },
            busybox.clone(),
        ),
        task(
            "fetched",
            v1::CommandInfo {
                uris: vec![v1::command_info::Uri {
                    value: fetched.display().to_string(),
                    ..Default::default()
                }],
                ..shell(r#"test "$(cat $MESOS_SANDBOX/fetched.txt)" = fetched-content"#)
            },
            busybox.clone(),
        ),
        task("missing", shell("true"), mesos_container("no-such-image")),
    ];
    let mut framework = Framework::subscribe(&cluster.master, "images", false)
        .await
        .unwrap();
    framework.launch_tasks(tasks).await.unwrap();
    let ids = [
        "rootfs",
        "pids",
        "sandbox",
        "env",
        "volume",
        "image-cmd",
        "user",
        "fetched",
        "missing",
    ];
    let done = framework.wait_terminal(&ids).await.unwrap();
    for id in &ids[..8] {
        let status = &done[*id];
        assert_eq!(
            status.state(),
            TaskState::TaskFinished,
            "{id}: {status:?}\n{}",
            output(&work_dir, id)
        );
    }
    let missing = &done["missing"];
    assert_eq!(missing.state(), TaskState::TaskFailed, "{missing:?}");
    assert!(missing.message().contains("no-such-image"), "{missing:?}");

    let sandbox = sandbox_of(&work_dir, "sandbox").unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.join("inside.txt")).unwrap(),
        "written-inside\n"
    );
    let sandbox = sandbox_of(&work_dir, "image-cmd").unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.join("cmd.txt")).unwrap(),
        "image-cmd-ran\n",
        "the image's Cmd ran"
    );
    assert!(
        !volume.path().join("new").exists(),
        "the volume was read-only"
    );
    let shared = sandbox_of(&work_dir, "volume")
        .unwrap()
        .join("shared/out.txt");
    assert_eq!(std::fs::read_to_string(shared).unwrap(), "shared\n");
    let written = sandbox_of(&work_dir, "user").unwrap().join("user.txt");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&written).unwrap()),
        65534,
        "the task ran as its user"
    );
    let stdout =
        std::fs::read_to_string(sandbox_of(&work_dir, "pids").unwrap().join("stdout")).unwrap();
    assert!(stdout.contains("pids="), "{stdout}");

    let (mounts, dirs) = wait_rootfs_gone(&work_dir, &store);
    assert!(mounts.is_empty(), "still mounted: {mounts:#?}");
    assert!(dirs.is_empty(), "rootfs left: {dirs:?}");
}

/// A command health check runs where the task runs: it finds the image's
/// file, which the host does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_health_checks_run_inside_the_image() {
    if !require_root_and_busybox() {
        return;
    }
    let ImageCluster {
        cluster,
        registry: _registry,
        store,
    } = start(&[]);
    let work_dir = cluster.agent_work_dir(0);
    let mut checked = task("checked", shell("sleep 1000"), mesos_container("busybox"));
    checked.health_check = Some(v1::HealthCheck {
        r#type: Some(v1::health_check::Type::Command as i32),
        command: Some(shell(&format!(
            "test -f /{RELEASE_FILE} && test ! -e /etc/os-release"
        ))),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.2),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(1),
        ..Default::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "images", false)
        .await
        .unwrap();
    framework.launch_tasks(vec![checked]).await.unwrap();
    let healthy = loop {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            !status.state().is_terminal(),
            "{status:?}\n{}",
            output(&work_dir, "checked")
        );
        if let Some(healthy) = status.healthy {
            break healthy;
        }
    };
    assert!(healthy, "{}", output(&work_dir, "checked"));
    framework
        .client
        .kill(&v1::TaskId {
            value: "checked".into(),
        })
        .await
        .unwrap();
    let done = framework.wait_terminal(&["checked"]).await.unwrap();
    assert_eq!(done["checked"].state(), TaskState::TaskKilled);
    let (mounts, dirs) = wait_rootfs_gone(&work_dir, &store);
    assert!(mounts.is_empty(), "still mounted: {mounts:#?}");
    assert!(dirs.is_empty(), "rootfs left: {dirs:?}");
}

/// Whether the master sees its one agent as active.
fn agent_active(cluster: &Cluster) -> bool {
    cluster.state()["slaves"]
        .as_array()
        .is_some_and(|agents| agents.iter().all(|a| a["active"].as_bool() == Some(true)))
}

/// Waits (bounded) for `done`; the caller asserts what it needs after.
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The executor pid of task `id` (its sandbox is its working directory).
fn executor_pid(cluster: &Cluster, id: &str) -> Option<i32> {
    let needle = format!("/executors/{id}/");
    cluster.sandbox_processes().into_iter().find(|pid| {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|cwd| cwd.display().to_string().contains(&needle))
    })
}

/// The rootfs of a container that died while the agent was down goes when
/// the agent recovers; the rootfs of one that survived stays until its
/// task is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_destroys_the_rootfs_of_containers_gone_and_keeps_the_others() {
    if !require_root_and_busybox() {
        return;
    }
    let ImageCluster {
        mut cluster,
        registry: _registry,
        store,
    } = start(&["--image_provisioner_backend=overlay"]);
    let work_dir = cluster.agent_work_dir(0);
    let containers = work_dir.join("provisioner/containers");
    let count = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let rootfs_mounts = || mounts_under(&work_dir.join("provisioner")).len();
    let mut framework = Framework::subscribe(&cluster.master, "images", true)
        .await
        .unwrap();
    let busybox = mesos_container("busybox");
    framework
        .launch_tasks(vec![
            task("survivor", shell("sleep 1000"), busybox.clone()),
            task("victim", shell("sleep 1000"), busybox),
        ])
        .await
        .unwrap();
    let mut running = Vec::new();
    while running.len() < 2 {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!status.state().is_terminal(), "{status:?}");
        if status.state() == TaskState::TaskRunning {
            running.push(status.task_id.value);
        }
    }
    assert_eq!((count(&containers), rootfs_mounts()), (2, 2));

    cluster.kill_agent(0);
    wait_until(|| !agent_active(&cluster));
    let victim = executor_pid(&cluster, "victim").expect("the victim's executor");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    cluster.restart_agent(0, &[]).unwrap();
    wait_until(|| agent_active(&cluster));
    // The victim's end is reported once the agent has recovered.
    let victim = loop {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        if status.task_id.value == "victim" && status.state().is_terminal() {
            break status;
        }
    };
    assert!(
        matches!(
            victim.state(),
            TaskState::TaskFailed | TaskState::TaskLost | TaskState::TaskGone
        ),
        "{victim:?}"
    );

    wait_until(|| (count(&containers), rootfs_mounts()) == (1, 1));
    assert_eq!(
        (count(&containers), rootfs_mounts()),
        (1, 1),
        "only the survivor's rootfs is left"
    );
    // The survivor's executor reconnected: a kill goes through it to the
    // task in the image.
    framework
        .client
        .kill(&v1::TaskId {
            value: "survivor".into(),
        })
        .await
        .unwrap();
    let killed = loop {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        if status.task_id.value == "survivor" && status.state().is_terminal() {
            break status;
        }
    };
    assert_eq!(killed.state(), TaskState::TaskKilled, "{killed:?}");
    let (mounts, dirs) = wait_rootfs_gone(&work_dir, &store);
    assert!(mounts.is_empty(), "still mounted: {mounts:#?}");
    assert!(dirs.is_empty(), "rootfs left: {dirs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_filesystem_linux_refuses_image_tasks() {
    // No image is provisioned: this runs without root.
    let cluster = Cluster::start();
    let mut framework = Framework::subscribe(&cluster.master, "images", false)
        .await
        .unwrap();
    framework
        .launch_tasks(vec![task(
            "refused",
            shell("true"),
            mesos_container("busybox"),
        )])
        .await
        .unwrap();
    let done = framework.wait_terminal(&["refused"]).await.unwrap();
    let status = &done["refused"];
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    assert!(status.message().contains("filesystem/linux"), "{status:?}");
}

/// PRUNE_IMAGES on the agent's operator API, as JSON.
fn prune(cluster: &Cluster, excluded: serde_json::Value) -> mesos_tests::raw_http::Response {
    let call = json!({"type": "PRUNE_IMAGES", "prune_images": {"excluded_images": excluded}});
    mesos_tests::raw_http::request(
        &cluster.agents[0],
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        call.to_string().as_bytes(),
    )
    .unwrap()
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// PRUNE_IMAGES keeps what it is told to and what a live container uses,
/// removes the rest, and the image comes back by pulling again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_images_keeps_excluded_and_used_images_and_removes_the_rest() {
    if !require_root_and_busybox() {
        return;
    }
    let ImageCluster {
        cluster,
        registry: _registry,
        store,
    } = start(&[]);
    let work_dir = cluster.agent_work_dir(0);
    let (images, layers) = (store.join("images"), store.join("layers"));
    let busybox = json!([{"type": "DOCKER", "docker": {"name": "busybox"}}]);
    let mut framework = Framework::subscribe(&cluster.master, "prune", false)
        .await
        .unwrap();
    let run = |id: &str, command: &str| task(id, shell(command), mesos_container("busybox"));

    framework
        .launch_tasks(vec![run("first", "true")])
        .await
        .unwrap();
    let done = framework.wait_terminal(&["first"]).await.unwrap();
    assert_eq!(done["first"].state(), TaskState::TaskFinished);
    let (mounts, dirs) = wait_rootfs_gone(&work_dir, &store);
    assert!(mounts.is_empty() && dirs.is_empty(), "{mounts:?} {dirs:?}");
    let cached = count(&layers);
    assert!(
        cached > 0 && count(&images) == 1,
        "nothing cached in {store:?}"
    );

    // Excluded: nothing goes.
    let response = prune(&cluster, busybox.clone());
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!((count(&images), count(&layers)), (1, cached));

    // Not excluded, but a running container uses its layers: only the
    // image's record goes.
    framework
        .launch_running_in(
            &["runner".to_string()],
            "sleep 1000",
            Some(mesos_container("busybox")),
        )
        .await
        .unwrap();
    let response = prune(&cluster, json!([]));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!((count(&images), count(&layers)), (0, cached));

    framework
        .client
        .kill(&v1::TaskId {
            value: "runner".into(),
        })
        .await
        .unwrap();
    framework.wait_terminal(&["runner"]).await.unwrap();
    let (mounts, dirs) = wait_rootfs_gone(&work_dir, &store);
    assert!(mounts.is_empty() && dirs.is_empty(), "{mounts:?} {dirs:?}");
    let response = prune(&cluster, json!([]));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!((count(&images), count(&layers)), (0, 0));

    // An image the store cannot name is refused, naming it.
    let response = prune(&cluster, json!([{"type": "APPC", "appc": {"name": "x"}}]));
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.text().contains("APPC"), "{}", response.text());

    // The image is pulled again for the next task.
    framework
        .launch_tasks(vec![run("again", "true")])
        .await
        .unwrap();
    let done = framework.wait_terminal(&["again"]).await.unwrap();
    assert_eq!(
        done["again"].state(),
        TaskState::TaskFinished,
        "{}",
        output(&work_dir, "again")
    );
    assert_eq!(count(&layers), cached);
}
