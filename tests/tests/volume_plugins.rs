//! Volume driver plugins through a real master and agent: the
//! `com.example.local_volumes` driver (`plugins/local-volume-driver`, a
//! dylib) behind `--isolation=posix/cpu,docker/volume`. Tasks name it in a
//! DOCKER_VOLUME volume:
//! - one task writes into the named volume at its `container_path`,
//!   another reads it back, and the data is in the driver's directory on
//!   the host;
//! - a read-only volume cannot be written;
//! - an unknown driver, an absolute `container_path` and a name the driver
//!   refuses fail the launch with a message naming the problem;
//! - a task in a container image finds the volume under its sandbox too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;

use mesos_proto::v1::{self, TaskState, volume};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{self, Plugin};

const DRIVER: &str = "com.example.local_volumes";

/// A `--plugin_dir` with the driver, configured to keep volumes under
/// `volumes`.
fn plugin_dir(volumes: &Path) -> tempfile::TempDir {
    let artifact = "liblocal_volume_driver.so";
    let bytes = std::fs::read(plugins::build(&["local-volume-driver"]).join(artifact)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let folder = plugins::install(
        root.path(),
        &Plugin {
            name: DRIVER,
            kind: "volume_driver",
            runtime: "dylib",
            artifact,
            bytes: &bytes,
            extra: "config = \"root\"\n",
        },
    );
    std::fs::write(folder.join("root"), volumes.display().to_string()).unwrap();
    root
}

/// A command task with one DOCKER_VOLUME volume.
fn task(id: &str, command: &str, driver: &str, name: &str, path: &str, ro: bool) -> v1::TaskInfo {
    let mut task = plugins::command_task(id, command);
    task.container = Some(v1::ContainerInfo {
        r#type: v1::container_info::Type::Mesos as i32,
        volumes: vec![docker_volume(driver, name, path, ro)],
        ..Default::default()
    });
    task
}

fn docker_volume(driver: &str, name: &str, path: &str, ro: bool) -> v1::Volume {
    v1::Volume {
        container_path: path.into(),
        mode: if ro {
            volume::Mode::Ro
        } else {
            volume::Mode::Rw
        } as i32,
        source: Some(volume::Source {
            r#type: Some(volume::source::Type::DockerVolume as i32),
            docker_volume: Some(volume::source::DockerVolume {
                driver: Some(driver.into()),
                name: name.into(),
                driver_options: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_share_a_named_volume_through_a_driver_plugin() {
    let volumes = tempfile::tempdir().unwrap();
    let dir = plugin_dir(volumes.path());
    let cluster = plugins::cluster(
        dir.path(),
        &["--isolation=posix/cpu,docker/volume".to_string()],
    );
    let mut framework = Framework::subscribe(&cluster.master, "volume-plugins", false)
        .await
        .unwrap();
    let status = plugins::run_task(
        &mut framework,
        task(
            "writer",
            "echo hello > data/greeting",
            DRIVER,
            "shared",
            "data",
            false,
        ),
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    assert_eq!(
        std::fs::read_to_string(volumes.path().join("shared/greeting")).unwrap(),
        "hello\n"
    );

    let status = plugins::run_task(
        &mut framework,
        task(
            "reader",
            "grep -q hello in/greeting",
            DRIVER,
            "shared",
            "in",
            false,
        ),
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");

    // Read-only: the data is there, and cannot be changed.
    let status = plugins::run_task(
        &mut framework,
        task(
            "read-only",
            "grep -q hello ro/greeting && ! touch ro/other",
            DRIVER,
            "shared",
            "ro",
            true,
        ),
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    assert!(!volumes.path().join("shared/other").exists());

    for (id, driver, name, path, expected) in [
        (
            "unknown-driver",
            "com.example.nfs",
            "shared",
            "data",
            "no volume driver named 'com.example.nfs' is loaded (loaded: com.example.local_volumes)",
        ),
        (
            "absolute",
            DRIVER,
            "shared",
            "/data",
            "container_path '/data' is absolute",
        ),
        (
            "bad-name",
            DRIVER,
            "../etc",
            "data",
            "volume name '../etc' is not a plain name",
        ),
    ] {
        let status =
            plugins::run_task(&mut framework, task(id, "true", driver, name, path, false)).await;
        assert_eq!(status.state(), TaskState::TaskFailed, "{id}: {status:?}");
        let message = status.message.clone().unwrap_or_default();
        assert!(message.contains(expected), "{id}: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_in_an_image_finds_its_volume_under_its_sandbox() {
    use mesos_tests::images::{BUSYBOX, mesos_container, write_busybox_image};
    if !mesos_tests::require_root(
        Path::new(BUSYBOX).exists(),
        "image tasks need root and /bin/busybox (apt-get install busybox-static)",
    ) {
        return;
    }
    let registry = tempfile::tempdir().unwrap();
    assert!(write_busybox_image(
        registry.path(),
        serde_json::json!({"Env": ["PATH=/bin"]})
    ));
    let volumes = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(volumes.path().join("shared")).unwrap();
    std::fs::write(volumes.path().join("shared/greeting"), "from-the-host\n").unwrap();
    let dir = plugin_dir(volumes.path());
    let cluster = plugins::cluster(
        dir.path(),
        &[
            "--isolation=filesystem/linux,docker/runtime,docker/volume".to_string(),
            "--image_providers=docker".to_string(),
            format!("--docker_registry={}", registry.path().display()),
            format!(
                "--docker_store_dir={}",
                registry.path().join("store").display()
            ),
        ],
    );
    let mut framework = Framework::subscribe(&cluster.master, "volume-plugins", false)
        .await
        .unwrap();
    let mut container = mesos_container("busybox");
    container
        .volumes
        .push(docker_volume(DRIVER, "shared", "data", false));
    let mut task = plugins::command_task(
        "in-image",
        "grep -q from-the-host $MESOS_SANDBOX/data/greeting \
         && echo from-the-image > $MESOS_SANDBOX/data/reply \
         && test -f /bin/busybox && ! test -e /etc/debian_version",
    );
    task.container = Some(container);
    let status = plugins::run_task(&mut framework, task).await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    assert_eq!(
        std::fs::read_to_string(volumes.path().join("shared/reply")).unwrap(),
        "from-the-image\n"
    );
}
