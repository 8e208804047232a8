//! Dylib plugins built from `plugins/` with the public SDK only, as a
//! third party would (their contract suites are in their own crates):
//! - a task under `--isolation=posix/cpu,posix/mem,com.example.env_isolator`
//!   sees the variable the plugin set;
//! - a panicking and a hanging plugin fail their launch with TASK_FAILED
//!   naming the plugin while the agent keeps running;
//! - a bad plugin (unknown name, sha256 mismatch) stops the agent at start.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::{Path, PathBuf};

use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::{self, Cluster};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{self, Plugin};

const ENV: &str = "com.example.env_isolator";
const PANICKING: &str = "com.example.panicking_isolator";
const HANGING: &str = "com.example.hanging_isolator";

/// Builds the plugin crates into the target directory the tests run
/// from, and returns that directory.
fn plugin_libs() -> PathBuf {
    plugins::build(&["env-isolator", "panicking-isolator", "hanging-isolator"])
}

/// Writes a `--plugin_dir` holding the given plugins:
/// (crate's library name, plugin name, extra manifest lines).
fn plugin_dir(list: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (lib, name, extra) in list {
        let artifact = format!("lib{lib}.so");
        let bytes = std::fs::read(plugin_libs().join(&artifact)).unwrap();
        plugins::install(
            root.path(),
            &Plugin {
                name,
                kind: "isolator",
                runtime: "dylib",
                artifact: &artifact,
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
async fn a_task_sees_the_variable_its_plugin_isolator_set() {
    let dir = plugin_dir(&[("env_isolator", ENV, "")]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,posix/mem,{ENV}"));
    let mut framework = Framework::subscribe(&cluster.master, "plugins", false)
        .await
        .unwrap();
    let status = run(
        &mut framework,
        "greeting",
        "test \"$PLUGIN_GREETING\" = hello-from-plugin",
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    // And the label it answered is the task's.
    assert_eq!(
        plugins::task_labels(&plugins::state_task(&cluster, "greeting")),
        [(
            "com.example.env_isolator".to_string(),
            "prepared".to_string()
        )]
    );
    // The same check fails for a value the plugin did not set, so the
    // task above passed because of the plugin.
    let status = run(&mut framework, "other", "test \"$PLUGIN_GREETING\" = other").await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_fails_the_launch_and_the_agent_keeps_running() {
    let dir = plugin_dir(&[
        ("panicking_isolator", PANICKING, ""),
        ("env_isolator", ENV, ""),
    ]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,{PANICKING},{ENV}"));
    let mut framework = Framework::subscribe(&cluster.master, "plugins", false)
        .await
        .unwrap();
    for id in ["first", "second"] {
        let status = run(&mut framework, id, "true").await;
        assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
        let message = status.message.clone().unwrap_or_default();
        assert!(
            message.contains(PANICKING) && message.contains("panicked"),
            "{status:?}"
        );
        assert!(plugins::agent_alive(&cluster), "the agent died after {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_open_plugin_that_panics_lets_the_launch_go_on() {
    let dir = plugin_dir(&[
        (
            "panicking_isolator",
            PANICKING,
            "failure_policy = \"fail_open\"\n",
        ),
        ("env_isolator", ENV, ""),
    ]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,{PANICKING},{ENV}"));
    let mut framework = Framework::subscribe(&cluster.master, "plugins", false)
        .await
        .unwrap();
    let status = run(
        &mut framework,
        "greeting",
        "test \"$PLUGIN_GREETING\" = hello-from-plugin",
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_plugin_fails_the_launch_at_its_timeout_and_is_wedged() {
    let dir = plugin_dir(&[("hanging_isolator", HANGING, "call_timeout_ms = 1000\n")]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,posix/mem,{HANGING}"));
    let mut framework = Framework::subscribe(&cluster.master, "plugins", false)
        .await
        .unwrap();
    let status = run(&mut framework, "first", "true").await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains(HANGING) && message.contains("did not return within 1000 ms"),
        "{status:?}"
    );
    let status = run(&mut framework, "second", "true").await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains(HANGING) && message.contains("wedged"),
        "{status:?}"
    );
    assert!(plugins::agent_alive(&cluster));
}

#[test]
fn bad_plugins_stop_the_agent_at_start_naming_them() {
    let dir = plugin_dir(&[("env_isolator", ENV, "")]);
    let plugin_dir_flag = format!("--plugin_dir={}", dir.path().display());

    let out = cluster::agent_start_failure(&[
        plugin_dir_flag.clone(),
        "--isolation=posix/cpu,com.example.missing".into(),
    ]);
    assert!(
        out.contains("unknown or unsupported isolator 'com.example.missing'"),
        "{out}"
    );
    assert!(out.contains(ENV), "the available plugins are listed: {out}");

    let out = cluster::agent_start_failure(&[format!("--isolation=posix/cpu,{ENV}")]);
    assert!(
        out.contains(&format!("'{ENV}'")),
        "without --plugin_dir: {out}"
    );

    let so = dir.path().join(ENV).join("libenv_isolator.so");
    let mut bytes = std::fs::read(&so).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&so, bytes).unwrap();
    let out = cluster::agent_start_failure(&[plugin_dir_flag, format!("--isolation={ENV}")]);
    assert!(
        out.contains(&format!("plugin '{ENV}': sha256 mismatch")),
        "{out}"
    );
}

/// Mesos's `--modules` JSON naming a library (one module each).
fn modules_json(library: &Path, module: &str) -> String {
    format!(
        r#"{{"libraries": [{{"file": "{}", "modules": [{{"name": "{module}",
            "parameters": [{{"key": "unused", "value": "by this plugin"}}]}}]}}]}}"#,
        library.display()
    )
}

/// The module list in each of the ways Mesos takes it: `file://`, a plain
/// absolute path, and `--modules_dir` (its files in name order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_modules_flag_loads_a_plugin_as_mesos_loaded_modules() {
    let dir = tempfile::tempdir().unwrap();
    let library = plugin_libs().join("libenv_isolator.so");
    let json = dir.path().join("10-env.json");
    std::fs::write(&json, modules_json(&library, ENV)).unwrap();
    for flag in [
        format!("--modules=file://{}", json.display()),
        format!("--modules={}", json.display()),
        format!("--modules_dir={}", dir.path().display()),
    ] {
        let cluster = Cluster::start_with(cluster::Options {
            agent_flags: vec![
                flag.clone(),
                format!("--isolation=posix/cpu,posix/mem,{ENV}"),
            ],
            ..cluster::Options::default()
        });
        let mut framework = Framework::subscribe(&cluster.master, "modules", false)
            .await
            .unwrap();
        let status = run(
            &mut framework,
            "greeting",
            "test \"$PLUGIN_GREETING\" = hello-from-plugin",
        )
        .await;
        assert_eq!(
            status.state(),
            TaskState::TaskFinished,
            "{flag}: {status:?}"
        );
    }
}

#[test]
fn bad_modules_stop_the_agent_at_start_naming_them() {
    let library = plugin_libs().join("libenv_isolator.so");
    // The library describes itself under another name.
    let out = cluster::agent_start_failure(&[format!(
        "--modules={}",
        modules_json(&library, "com.example.other")
    )]);
    assert!(
        out.contains("plugin 'com.example.other'") && out.contains(ENV),
        "{out}"
    );
    let out = cluster::agent_start_failure(&[
        r#"--modules={"libraries": [{"name": "env_isolator", "modules": []}]}"#.into(),
    ]);
    assert!(
        out.contains("--modules") && out.contains("by name only"),
        "{out}"
    );
    // Both flags, as Mesos refuses them; a bad file of --modules_dir,
    // named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-env.json"), modules_json(&library, ENV)).unwrap();
    let out = cluster::agent_start_failure(&[
        format!("--modules={}", modules_json(&library, ENV)),
        format!("--modules_dir={}", dir.path().display()),
    ]);
    assert!(
        out.contains("--modules: cannot be used together with --modules_dir"),
        "{out}"
    );
    std::fs::write(dir.path().join("20-bad.json"), "{").unwrap();
    let out = cluster::agent_start_failure(&[format!("--modules_dir={}", dir.path().display())]);
    assert!(
        out.contains("--modules_dir: ") && out.contains("20-bad.json: EOF"),
        "{out}"
    );
    // The same plugin from a folder and from --modules.
    let dir = plugin_dir(&[("env_isolator", ENV, "")]);
    let out = cluster::agent_start_failure(&[
        format!("--plugin_dir={}", dir.path().display()),
        format!("--modules={}", modules_json(&library, ENV)),
    ]);
    assert!(
        out.contains(&format!("two plugins are named '{ENV}'")),
        "{out}"
    );
}
