//! The provisioner's plugins through a real master and agent.
//!
//! Rootfs backends: the `com.example.tmpfs_rootfs` backend
//! (`plugins/tmpfs-rootfs`, a dylib) chosen with
//! `--image_provisioner_backend`, as a built-in would be:
//! - a task in a three-layer busybox image runs on a tmpfs of the size
//!   the plugin was configured with, and sees the top layer's whiteout
//!   and file;
//! - while a task runs, its rootfs is a tmpfs mount under the agent's
//!   provisioner directory; once it is over, nothing of it is left;
//! - an agent asked for a backend nobody provides does not start, and
//!   says which backends there are.
//!
//! Image stores: the `com.example.image-dirs` store (`plugins/image-dirs`,
//! a dylib) in `--image_providers`, serving images kept as directories:
//! - a task in `com.example.image-dirs/tools:1` runs in that directory's
//!   files with its config's environment;
//! - a missing image fails the launch with the store's message, and a
//!   Docker Hub image fails it when `--image_providers` lists only the
//!   store.
//!
//! Needs root (mounts, pivot_root) and `/bin/busybox`; skipped with the
//! reason otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;

use mesos_proto::v1::TaskState;
use mesos_tests::cluster::agent_start_failure;
use mesos_tests::framework::Framework;
use mesos_tests::images::{
    BUSYBOX, RELEASE_FILE, mesos_container, mounts_under, wait_rootfs_gone, whiteout_layer,
    write_busybox_image_with, write_busybox_tree,
};
use mesos_tests::plugins::{self, Plugin};

const BACKEND: &str = "com.example.tmpfs_rootfs";

const STORE: &str = "com.example.image-dirs";

/// A `--plugin_dir` with the backend, configured for 32 MiB tmpfs, and the
/// image store, configured to serve the directories under `images`.
fn plugin_dir(images: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let built = plugins::build(&["tmpfs-rootfs", "image-dirs"]);
    for (name, kind, artifact, config) in [
        (
            BACKEND,
            "rootfs_backend",
            "libtmpfs_rootfs.so",
            "32m".to_string(),
        ),
        (
            STORE,
            "image_store",
            "libimage_dirs.so",
            images.display().to_string(),
        ),
    ] {
        let bytes = std::fs::read(built.join(artifact)).unwrap();
        let folder = plugins::install(
            root.path(),
            &Plugin {
                name,
                kind,
                runtime: "dylib",
                artifact,
                bytes: &bytes,
                extra: "config = \"config\"\n",
            },
        );
        std::fs::write(folder.join("config"), config).unwrap();
    }
    root
}

fn need_root_and_busybox() -> bool {
    mesos_tests::require_root(
        Path::new(BUSYBOX).exists(),
        "image tasks need root and /bin/busybox (apt-get install busybox-static)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_on_the_rootfs_a_backend_plugin_builds() {
    if !need_root_and_busybox() {
        return;
    }
    let registry = tempfile::tempdir().unwrap();
    assert!(write_busybox_image_with(
        registry.path(),
        "layered",
        vec![whiteout_layer(
            RELEASE_FILE,
            "etc/motd",
            "from-the-top-layer\n"
        )],
        serde_json::json!({"Env": ["PATH=/bin"]}),
    ));
    let store = registry.path().join("store");
    let dir = plugin_dir(registry.path());
    let cluster = plugins::cluster(
        dir.path(),
        &[
            "--isolation=filesystem/linux,docker/runtime".to_string(),
            "--image_providers=docker".to_string(),
            format!("--docker_registry={}", registry.path().display()),
            format!("--docker_store_dir={}", store.display()),
            format!("--image_provisioner_backend={BACKEND}"),
        ],
    );
    let work_dir = cluster.agent_work_dir(0);
    let mut framework = Framework::subscribe(&cluster.master, "rootfs-plugins", false)
        .await
        .unwrap();

    // `/` is the plugin's tmpfs (32 MiB is 32768k), the top layer deleted
    // the release file and added its own, and the rootfs takes writes.
    let mut task = plugins::command_task(
        "on-tmpfs",
        &format!(
            "grep ' / / ' /proc/self/mountinfo | grep -q ' - tmpfs tmpfs .*size=32768k' \
             && ! test -e /{RELEASE_FILE} && grep -q from-the-top-layer /etc/motd \
             && test -x /bin/busybox && echo written > /written && test -s /written"
        ),
    );
    task.container = Some(mesos_container("layered"));
    let status = plugins::run_task(&mut framework, task).await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");

    // While a task runs, the host sees its rootfs mounted as a tmpfs.
    framework
        .launch_running_in(
            &["sleeper".to_string()],
            "sleep 3",
            Some(mesos_container("layered")),
        )
        .await
        .unwrap();
    let mounted = mounts_under(&work_dir.join("provisioner"));
    assert!(
        mounted.len() == 1
            && mounted[0].starts_with("tmpfs ")
            && mounted[0].contains("/rootfs tmpfs "),
        "{mounted:?}"
    );
    let done = framework.wait_terminal(&["sleeper"]).await.unwrap();
    assert_eq!(done["sleeper"].state(), TaskState::TaskFinished, "{done:?}");
    let (mounts, dirs) = wait_rootfs_gone(&work_dir, &store);
    assert!(mounts.is_empty(), "still mounted: {mounts:?}");
    assert!(dirs.is_empty(), "rootfs left: {dirs:?}");
    assert!(plugins::agent_alive(&cluster));
}

#[test]
fn an_agent_asked_for_a_backend_nobody_provides_does_not_start() {
    let registry = tempfile::tempdir().unwrap();
    let dir = plugin_dir(registry.path());
    let out = agent_start_failure(&[
        format!("--plugin_dir={}", dir.path().display()),
        "--isolation=filesystem/linux,docker/runtime".to_string(),
        "--image_providers=docker".to_string(),
        format!("--docker_registry={}", registry.path().display()),
        format!(
            "--docker_store_dir={}",
            registry.path().join("store").display()
        ),
        "--image_provisioner_backend=com.example.zfs_rootfs".to_string(),
    ]);
    assert!(
        out.contains(
            "--image_provisioner_backend: unknown provisioner backend 'com.example.zfs_rootfs' \
             (known: copy, overlay, com.example.tmpfs_rootfs)"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_in_an_image_a_store_plugin_serves() {
    if !need_root_and_busybox() {
        return;
    }
    let images = tempfile::tempdir().unwrap();
    let tools = images.path().join("tools/1");
    assert!(write_busybox_tree(&tools.join("rootfs")));
    std::fs::write(tools.join("rootfs/etc/motd"), "kept-as-a-directory\n").unwrap();
    std::fs::write(
        tools.join("config.json"),
        r#"{"Env": ["PATH=/bin", "FROM_STORE=image-dirs"]}"#,
    )
    .unwrap();
    let dir = plugin_dir(images.path());
    let store = images.path().join(".store");
    let cluster = plugins::cluster(
        dir.path(),
        &[
            "--isolation=filesystem/linux,docker/runtime".to_string(),
            format!("--image_providers={STORE}"),
            format!("--docker_store_dir={}", store.display()),
        ],
    );
    let mut framework = Framework::subscribe(&cluster.master, "image-plugins", false)
        .await
        .unwrap();
    let in_image = |id: &str, image: &str, command: &str| {
        let mut task = plugins::command_task(id, command);
        task.container = Some(mesos_container(image));
        task
    };
    let status = plugins::run_task(
        &mut framework,
        in_image(
            "from-store",
            &format!("{STORE}/tools:1"),
            "test \"$FROM_STORE\" = image-dirs && grep -q kept-as-a-directory /etc/motd \
             && ! test -e /etc/debian_version",
        ),
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");

    for (id, image, expected) in [
        (
            "missing",
            format!("{STORE}/tools:2"),
            format!("no image '{STORE}/tools:2'"),
        ),
        (
            "hub",
            "busybox".to_string(),
            "--image_providers does not list docker".to_string(),
        ),
    ] {
        let status = plugins::run_task(&mut framework, in_image(id, &image, "true")).await;
        assert_eq!(status.state(), TaskState::TaskFailed, "{id}: {status:?}");
        let message = status.message.clone().unwrap_or_default();
        assert!(message.contains(&expected), "{id}: {status:?}");
    }
    assert!(plugins::agent_alive(&cluster));
}
