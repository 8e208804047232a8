//! Plugins as a third party ships them, for the end-to-end tests: the
//! example crates of `plugins/` built with cargo, and `--plugin_dir`
//! folders holding an artifact and its `plugin.toml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1;
use sha2::{Digest, Sha256};

use crate::cluster::{self, Cluster, Options};
use crate::framework::Framework;

/// Builds `crates` of `plugins/` into the target directory the tests run
/// from (each once per test binary) and returns the directory holding the
/// libraries.
pub fn build(crates: &[&str]) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let dir = cluster::bin_dir();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = crates
        .iter()
        .copied()
        .filter(|c| !built.contains(*c))
        .collect();
    if missing.is_empty() {
        return dir;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["build", "--quiet"]);
    for name in &missing {
        command.args(["-p", name]);
    }
    command
        .arg("--target-dir")
        .arg(dir.parent().expect("target dir"));
    if dir.ends_with("release") {
        command.arg("--release");
    }
    assert!(
        command.status().expect("cargo runs").success(),
        "building {missing:?}"
    );
    built.extend(missing.iter().map(|c| c.to_string()));
    dir
}

/// Whether the cluster's first agent is still running (not gone, not a
/// zombie).
pub fn agent_alive(cluster: &Cluster) -> bool {
    let Some(pid) = cluster.agent_pid(0) else {
        return false;
    };
    let pid = pid as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// The text of `plugins/wasm-fixtures/<file>`.
pub fn wasm_fixture(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/wasm-fixtures")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The component form of the core-module fixture `file`: the module in
/// component shell (`plugin-api/wit/component-shell.wat`).
pub fn wasm_component(file: &str) -> String {
    mesos_plugin_api::contract::in_component_shell(&wasm_fixture(file))
        .unwrap_or_else(|| panic!("{file} holds no module"))
}

/// What goes into one plugin folder.
pub struct Plugin<'a> {
    pub name: &'a str,
    /// `isolator` or `hook`.
    pub kind: &'a str,
    /// `dylib` or `wasm`.
    pub runtime: &'a str,
    /// The artifact's file name in the folder.
    pub artifact: &'a str,
    pub bytes: &'a [u8],
    /// More manifest lines (limits, failure policy, config).
    pub extra: &'a str,
}

/// Writes `plugin` as a folder of `root` (a `--plugin_dir`), with the
/// artifact's sha256 in its manifest; returns the folder.
pub fn install(root: &Path, plugin: &Plugin<'_>) -> PathBuf {
    let folder = root.join(plugin.name);
    std::fs::create_dir_all(&folder).expect("plugin folder");
    std::fs::write(folder.join(plugin.artifact), plugin.bytes).expect("artifact");
    let sha = format!("{:x}", Sha256::digest(plugin.bytes));
    std::fs::write(
        folder.join("plugin.toml"),
        format!(
            "name = \"{}\"\nkind = \"{}\"\nruntime = \"{}\"\n\
             artifact = \"{}\"\nsha256 = \"{sha}\"\n{}",
            plugin.name, plugin.kind, plugin.runtime, plugin.artifact, plugin.extra
        ),
    )
    .expect("plugin.toml");
    folder
}

/// A master and an agent with `--plugin_dir=dir` and `flags`.
pub fn cluster(dir: &Path, flags: &[String]) -> Cluster {
    let mut agent_flags = vec![format!("--plugin_dir={}", dir.display())];
    agent_flags.extend(flags.iter().cloned());
    Cluster::start_with(Options {
        agent_flags,
        ..Options::default()
    })
}

/// A command task of a tenth of a cpu and 32 MB.
pub fn command_task(id: &str, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Launches `task` and returns its terminal status.
pub async fn run_task(framework: &mut Framework, task: v1::TaskInfo) -> v1::TaskStatus {
    let id = task.task_id.value.clone();
    framework.launch_tasks(vec![task]).await.expect("launched");
    framework
        .wait_terminal(&[&id])
        .await
        .expect("a terminal status")
        .remove(&id)
        .expect("the task's status")
}

/// Compiles `plugins/c-env-isolator` (C, Debian's clang-14 and wasi-libc)
/// into a WASM module in `dir`: `None`, the test skipping with the reason,
/// without the toolchain, except with `CI=true`, where that fails.
pub fn build_c_env_isolator(dir: &Path) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/c-env-isolator/build.sh");
    let artifact = dir.join("env_isolator.wasm");
    let built = std::process::Command::new("bash")
        .arg(&script)
        .arg(&artifact)
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&built.stderr);
    match built.status.code() {
        Some(0) => Some(artifact),
        Some(3) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: {}", stderr.trim());
            None
        }
        _ => panic!("{} failed: {stderr}", script.display()),
    }
}

/// Builds the plugin crate `plugins/<folder>` for `wasm32-wasip2` into a
/// component (`<lib>.wasm`): `None`, said on stdout, when the toolchain
/// lacks that target.
pub fn build_rust_component(folder: &str, lib: &str) -> Option<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(folder);
    mesos_plugin_api::contract::build_wasm(&crate_dir, lib, "wasm32-wasip2")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The task `id` in the first agent's /state, wherever it is listed.
pub fn state_task(cluster: &Cluster, id: &str) -> serde_json::Value {
    use serde_json::Value;
    fn find(value: &Value, id: &str) -> Option<Value> {
        match value {
            Value::Object(object) => {
                if object.get("id").and_then(Value::as_str) == Some(id)
                    && object.contains_key("executor_id")
                {
                    return Some(value.clone());
                }
                object.values().find_map(|v| find(v, id))
            }
            Value::Array(items) => items.iter().find_map(|v| find(v, id)),
            _ => None,
        }
    }
    let state = crate::raw_http::get(&cluster.agents[0], "/state").unwrap();
    let state: Value = serde_json::from_slice(&state.body).unwrap();
    find(&state, id).unwrap_or_else(|| panic!("task {id} not in the agent's state: {state}"))
}

/// A task's labels in /state, as (key, value) pairs.
pub fn task_labels(task: &serde_json::Value) -> Vec<(String, String)> {
    task["labels"]
        .as_array()
        .map(|labels| {
            labels
                .iter()
                .map(|l| {
                    let text = |k: &str| l[k].as_str().unwrap_or_default().to_string();
                    (text("key"), text("value"))
                })
                .collect()
        })
        .unwrap_or_default()
}
