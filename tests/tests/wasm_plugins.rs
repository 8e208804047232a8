//! WASM plugins (the hand-written modules of `plugins/wasm-fixtures`)
//! loaded by a real agent from `--plugin_dir`:
//! - a task under `--isolation=posix/cpu,com.example.env_isolator` sees
//!   the variable the WASM isolator set, in its WAT form and in its C form
//!   (`plugins/c-env-isolator`, compiled by clang-14 with wasi-libc);
//! - a looping WASM isolator under `fail_open` is stopped at its deadline
//!   and the task runs anyway, twice (the instance is rebuilt); under
//!   `fail_closed` each launch fails at the deadline, none is refused as
//!   wedged;
//! - a module importing WASI stops the agent at start, naming the plugin
//!   and the import.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;

use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::{self, Cluster};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{self, Plugin};

const ENV: &str = "com.example.env_isolator";
const LOOPING: &str = "com.example.looping_isolator";
const WASI: &str = "com.example.wasi_import";

/// Writes a `--plugin_dir` holding the given WASM plugins:
/// (fixture file, plugin name, extra manifest lines).
fn plugin_dir(list: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/wasm-fixtures");
    let root = tempfile::tempdir().unwrap();
    for (file, name, extra) in list {
        let bytes = std::fs::read(fixtures.join(file)).unwrap();
        plugins::install(
            root.path(),
            &Plugin {
                name,
                kind: "isolator",
                runtime: "wasm",
                artifact: file,
                bytes: &bytes,
                extra,
            },
        );
    }
    root
}

fn cluster(dir: &Path, isolation: &str) -> Cluster {
    plugins::cluster(dir, &[format!("--isolation={isolation}")])
}

/// Launches `command` as task `id` and returns its terminal status.
async fn run(framework: &mut Framework, id: &str, command: &str) -> v1::TaskStatus {
    plugins::run_task(framework, plugins::command_task(id, command)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sees_the_variable_its_wasm_isolator_set() {
    let dir = plugin_dir(&[("env-isolator.wat", ENV, "")]);
    the_env_isolator_sets_the_variable(dir.path()).await;
}

/// The same isolator written in C and compiled to WASM by clang-14.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sees_the_variable_its_c_wasm_isolator_set() {
    let build = tempfile::tempdir().unwrap();
    let Some(artifact) = plugins::build_c_env_isolator(build.path()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    plugins::install(
        dir.path(),
        &Plugin {
            name: ENV,
            kind: "isolator",
            runtime: "wasm",
            artifact: "env_isolator.wasm",
            bytes: &std::fs::read(&artifact).unwrap(),
            extra: "",
        },
    );
    the_env_isolator_sets_the_variable(dir.path()).await;
}

async fn the_env_isolator_sets_the_variable(plugin_dir: &Path) {
    let cluster = cluster(plugin_dir, &format!("posix/cpu,{ENV}"));
    let mut framework = Framework::subscribe(&cluster.master, "wasm-plugins", false)
        .await
        .unwrap();
    let status = run(
        &mut framework,
        "greeting",
        "test \"$PLUGIN_GREETING\" = hello-from-plugin && test -n \"$PLUGIN_CONTAINER_ID\"",
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    // The same check fails for a value the plugin did not set, so the
    // task above passed because of the plugin.
    let status = run(&mut framework, "other", "test \"$PLUGIN_GREETING\" = other").await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_open_looping_wasm_isolator_does_not_stop_the_task() {
    let dir = plugin_dir(&[
        (
            "looping-isolator.wat",
            LOOPING,
            "call_timeout_ms = 300\nfailure_policy = \"fail_open\"\nquarantine_after = 0\n",
        ),
        ("env-isolator.wat", ENV, ""),
    ]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,{LOOPING},{ENV}"));
    let mut framework = Framework::subscribe(&cluster.master, "wasm-plugins", false)
        .await
        .unwrap();
    // Each launch runs into the deadline; the next gets a new instance.
    for id in ["first", "second"] {
        let status = run(
            &mut framework,
            id,
            "test \"$PLUGIN_GREETING\" = hello-from-plugin",
        )
        .await;
        assert_eq!(status.state(), TaskState::TaskFinished, "{id}: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_closed_looping_wasm_isolator_fails_each_launch_at_its_deadline() {
    let dir = plugin_dir(&[(
        "looping-isolator.wat",
        LOOPING,
        "call_timeout_ms = 300\nquarantine_after = 0\n",
    )]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,{LOOPING}"));
    let mut framework = Framework::subscribe(&cluster.master, "wasm-plugins", false)
        .await
        .unwrap();
    // Unlike a dylib's, a WASM plugin's stuck call is stopped: the next
    // launch runs the plugin again instead of finding it wedged.
    for id in ["first", "second"] {
        let status = run(&mut framework, id, "true").await;
        assert_eq!(status.state(), TaskState::TaskFailed, "{id}: {status:?}");
        let message = status.message.clone().unwrap_or_default();
        assert!(
            message.contains(LOOPING) && message.contains("did not return within 300 ms"),
            "{id}: {status:?}"
        );
    }
}

#[test]
fn a_wasm_plugin_importing_wasi_stops_the_agent_at_start() {
    let dir = plugin_dir(&[("wasi-import.wat", WASI, "")]);
    let out = cluster::agent_start_failure(&[
        format!("--plugin_dir={}", dir.path().display()),
        format!("--isolation=posix/cpu,{WASI}"),
    ]);
    assert!(
        out.contains(&format!("plugin '{WASI}'"))
            && out.contains("wasi_snapshot_preview1::fd_write"),
        "{out}"
    );
}
