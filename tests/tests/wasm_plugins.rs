//! WASM plugins (the hand-written modules of `plugins/wasm-fixtures`, as
//! core modules and as components of the `mesos:plugin` world) loaded by
//! a real agent from `--plugin_dir`:
//! - a task under `--isolation=posix/cpu,posix/mem,com.example.env_isolator`
//!   sees the variable the WASM isolator set, in its WAT forms (module and
//!   component), in its C form (`plugins/c-env-isolator`, compiled by
//!   clang-14 with wasi-libc) and in its Rust form (`plugins/env-isolator`
//!   built for `wasm32-wasip2`, a component);
//! - a looping WASM isolator under `fail_open` is stopped at its deadline
//!   and the task runs anyway, twice (the instance is rebuilt); under
//!   `fail_closed` each launch fails at the deadline, none is refused as
//!   wedged;
//! - a trapping, a memory-hogging and a WASI-calling component each fail
//!   every launch with TASK_FAILED naming the plugin and the fault, and
//!   the agent runs on; a panicking Rust component granted `wasi`, with
//!   the panic's message;
//! - a WASM isolator granted `cpu.shares` sets it, through the host call,
//!   in the cgroup of the container it prepares (`cgroups/cpu` before it
//!   made the cgroup), and the task sees the value;
//! - a core module granted `wasi` prints to stdout, which lands in the
//!   agent's log, and the task runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;

use mesos_proto::v1::{self, TaskState};
use mesos_tests::cluster::Cluster;
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{self, Plugin};

const ENV: &str = "com.example.env_isolator";
const LOOPING: &str = "com.example.looping_isolator";
const TRAPPING: &str = "com.example.trapping_isolator";
const HOG: &str = "com.example.memory_hog";
const WASI: &str = "com.example.wasi_import";
const CGROUP: &str = "com.example.cgroup_isolator";

/// Writes a `--plugin_dir` holding the given WASM plugins:
/// (module or component text, plugin name, extra manifest lines).
fn plugin_dir(list: &[(String, &str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (text, name, extra) in list {
        plugins::install(
            root.path(),
            &Plugin {
                name,
                kind: "isolator",
                runtime: "wasm",
                artifact: "plugin.wat",
                bytes: text.as_bytes(),
                extra,
            },
        );
    }
    root
}

fn core(file: &str) -> String {
    plugins::wasm_fixture(file)
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
    let dir = plugin_dir(&[(core("env-isolator.wat"), ENV, "")]);
    the_env_isolator_sets_the_variable(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sees_the_variable_its_wasm_component_isolator_set() {
    let dir = plugin_dir(&[(plugins::wasm_component("env-isolator.wat"), ENV, "")]);
    the_env_isolator_sets_the_variable(dir.path()).await;
}

/// The same isolator written in C and compiled to WASM by clang-14.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sees_the_variable_its_c_wasm_isolator_set() {
    let build = tempfile::tempdir().unwrap();
    let Some(artifact) = plugins::build_c_env_isolator(build.path()) else {
        return;
    };
    let dir = built_plugin_dir(ENV, &artifact, "");
    the_env_isolator_sets_the_variable(dir.path()).await;
}

/// A `--plugin_dir` holding the built WASM plugin `name` at `artifact`.
fn built_plugin_dir(name: &str, artifact: &Path, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = artifact.file_name().unwrap().to_string_lossy();
    plugins::install(
        dir.path(),
        &Plugin {
            name,
            kind: "isolator",
            runtime: "wasm",
            artifact: &file,
            bytes: &std::fs::read(artifact).unwrap(),
            extra,
        },
    );
    dir
}

/// The same isolator's Rust source (`plugins/env-isolator`, the one the
/// dylib tests load), built for `wasm32-wasip2`: a component straight
/// from `cargo build`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sees_the_variable_its_rust_component_isolator_set() {
    let Some(artifact) = plugins::build_rust_component("env-isolator", "env_isolator") else {
        return;
    };
    let dir = built_plugin_dir(ENV, &artifact, "");
    the_env_isolator_sets_the_variable(dir.path()).await;
}

async fn the_env_isolator_sets_the_variable(plugin_dir: &Path) {
    let cluster = cluster(plugin_dir, &format!("posix/cpu,posix/mem,{ENV}"));
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
    assert_eq!(
        plugins::task_labels(&plugins::state_task(&cluster, "greeting")),
        [(
            "com.example.env_isolator".to_string(),
            "prepared".to_string()
        )],
        "the label the plugin answered"
    );
    // The same check fails for a value the plugin did not set, so the
    // task above passed because of the plugin.
    let status = run(&mut framework, "other", "test \"$PLUGIN_GREETING\" = other").await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_open_looping_wasm_isolator_does_not_stop_the_task() {
    let dir = plugin_dir(&[
        (
            core("looping-isolator.wat"),
            LOOPING,
            "call_timeout_ms = 300\nfailure_policy = \"fail_open\"\nquarantine_after = 0\n",
        ),
        (core("env-isolator.wat"), ENV, ""),
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
        core("looping-isolator.wat"),
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

/// Each misbehaving component fails every launch, naming itself and
/// what went wrong; its instance is rebuilt for the next launch, and the
/// agent stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_wasm_components_fail_the_launch_naming_them() {
    let cases = [
        (
            plugins::wasm_component("trapping-isolator.wat"),
            TRAPPING,
            "",
            "isolator.prepare trapped: wasm trap: wasm `unreachable` instruction executed",
        ),
        (
            plugins::wasm_component("memory-hog.wat"),
            HOG,
            "memory_limit_bytes = 1048576\n",
            "memory limit of 1048576 bytes reached",
        ),
        (
            plugins::wasm_fixture("wasi-import.component.wat"),
            WASI,
            "",
            "wasi:random/insecure@0.2.0",
        ),
    ];
    for (text, name, extra, fault) in cases {
        let extra = format!("{extra}quarantine_after = 0\n");
        let dir = plugin_dir(&[(text, name, &extra)]);
        let cluster = cluster(dir.path(), &format!("posix/cpu,posix/mem,{name}"));
        let mut framework = Framework::subscribe(&cluster.master, "wasm-plugins", false)
            .await
            .unwrap();
        for id in ["first", "second"] {
            let status = run(&mut framework, id, "true").await;
            assert_eq!(
                status.state(),
                TaskState::TaskFailed,
                "{name} {id}: {status:?}"
            );
            let message = status.message.clone().unwrap_or_default();
            assert!(
                message.contains(name) && message.contains(fault),
                "{name} {id}: {status:?}"
            );
            assert!(
                plugins::agent_alive(&cluster),
                "{name}: the agent died after {id}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_isolator_sets_a_granted_cgroup_knob_of_its_container() {
    let v1_cpu = Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists();
    if !mesos_tests::require_root(
        v1_cpu,
        "the cpu.shares knob needs root and cgroups v1's cpu controller",
    ) {
        return;
    }
    let dir = plugin_dir(&[(
        core("cgroup-isolator.wat"),
        CGROUP,
        "[permissions]\ncgroup_knobs = [\"cpu.shares\"]\n",
    )]);
    let root = format!("mesos-test-knobs-{}", std::process::id());
    let cluster = plugins::cluster(
        dir.path(),
        &[
            format!("--isolation=cgroups/cpu,{CGROUP}"),
            format!("--cgroups_root={root}"),
        ],
    );
    let mut framework = Framework::subscribe(&cluster.master, "wasm-knobs", false)
        .await
        .unwrap();
    // cgroups/cpu gave the container 102 shares for its 0.1 cpus; the
    // plugin, after it, set 321.
    let status = run(
        &mut framework,
        "knob",
        r#"cpu=$(sed -n 's/^[0-9]*:cpu:\(.*\)/\1/p' /proc/self/cgroup)
           test "$(cat /sys/fs/cgroup/cpu$cpu/cpu.shares)" = 321"#,
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    assert!(plugins::agent_alive(&cluster));
}

/// A Rust component that panics in prepare, granted `wasi`: the launch
/// fails with the panic's message, which is also in the agent's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_rust_component_fails_the_launch_with_its_message() {
    let Some(artifact) = plugins::build_rust_component("panicking-isolator", "panicking_isolator")
    else {
        return;
    };
    let name = "com.example.panicking_isolator";
    let dir = built_plugin_dir(name, &artifact, "[permissions]\nwasi = true\n");
    let cluster = cluster(dir.path(), &format!("posix/cpu,posix/mem,{name}"));
    let mut framework = Framework::subscribe(&cluster.master, "wasm-panic", false)
        .await
        .unwrap();
    let status = run(&mut framework, "panics", "true").await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains(name)
            && message.contains("isolator.prepare trapped")
            && message.contains("refusing to prepare"),
        "{status:?}"
    );
    let log = cluster.agent_log(0);
    assert!(
        log.lines()
            .any(|l| l.contains("panicked at") && l.contains(name)),
        "{log}"
    );
    assert!(plugins::agent_alive(&cluster));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_granted_wasi_prints_into_the_agent_log() {
    let dir = plugin_dir(&[(
        core("wasi-import.wat"),
        WASI,
        "[permissions]\nwasi = true\n",
    )]);
    let cluster = cluster(dir.path(), &format!("posix/cpu,posix/mem,{WASI}"));
    let mut framework = Framework::subscribe(&cluster.master, "wasm-wasi", false)
        .await
        .unwrap();
    let status = run(&mut framework, "wasi", "true").await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    let log = cluster.agent_log(0);
    assert!(
        log.lines()
            .any(|l| l.contains("hello from WASI") && l.contains(WASI)),
        "{log}"
    );
}
