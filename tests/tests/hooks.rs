//! `--hooks` with a hook plugin built from `plugins/label-hook` with the
//! public SDK only, as a third party would:
//! - a mesos command task sees the variables the hook added to its
//!   executor and container, the agent's /state shows the hook's label on
//!   the task (each task of a group too), and the framework gets it on
//!   the task's status; the post-fetch hook saw the fetched URI in the
//!   sandbox before the task started; the agent registered with the
//!   attribute and resource the hook added;
//! - a DOCKER task's Engine container gets the hook's variables and label;
//! - the master's `--hooks`: a task launched on the agent's `hooked`
//!   resource takes a unit of it, the task the agent gets carries the
//!   master hook's label (the master's own record does not, as in Mesos),
//!   and an agent marked gone reaches the agent-lost hook;
//! - an unknown hook name stops the agent at start, naming it;
//! - a hook that panics or hangs is skipped: the task runs undecorated;
//!   only a `fail_closed` pre-launch hook fails the launch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState, container_info};
use mesos_tests::cluster::{self, Cluster};
use mesos_tests::docker::{self, BUSYBOX};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{self, Plugin};
use serde_json::Value;

const HOOK: &str = "com.example.label_hook";
const LIB: &str = "liblabel_hook.so";

/// A `--plugin_dir` holding the hook, configured with `config`, with
/// `extra` manifest lines.
fn plugin_dir(config: &str, extra: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(plugins::build(&["label-hook"]).join(LIB)).unwrap();
    let folder = plugins::install(
        root.path(),
        &Plugin {
            name: HOOK,
            kind: "hook",
            runtime: "dylib",
            artifact: LIB,
            bytes: &bytes,
            extra: &format!("config = \"config.txt\"\n{extra}"),
        },
    );
    std::fs::write(folder.join("config.txt"), config).unwrap();
    root
}

fn cluster(dir: &Path, extra: &[&str]) -> Cluster {
    let mut flags = vec![format!("--hooks={HOOK}")];
    flags.extend(extra.iter().map(|s| s.to_string()));
    plugins::cluster(dir, &flags)
}

/// A command task labelled `team=a`.
fn task(id: &str, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        labels: Some(v1::Labels {
            labels: vec![v1::Label {
                key: "team".into(),
                value: Some("a".into()),
            }],
        }),
        ..plugins::command_task(id, command)
    }
}

/// Launches `task` and returns its terminal status.
async fn run(framework: &mut Framework, task: v1::TaskInfo) -> v1::TaskStatus {
    plugins::run_task(framework, task).await
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesos_task_gets_the_hooks_variables_and_label() {
    let dir = plugin_dir("", "");
    let cluster = cluster(dir.path(), &[]);
    let mut framework = Framework::subscribe(&cluster.master, "hooks", false)
        .await
        .unwrap();
    // A URI to fetch: the post-fetch hook lists it in `.hooked`.
    let files = tempfile::tempdir().unwrap();
    let artifact = files.path().join("artifact.txt");
    std::fs::write(&artifact, "fetched").unwrap();
    let mut hooked = task(
        "hooked",
        "test \"$HOOKED\" = 1 && test \"$HOOKED_CONTAINERIZER\" = mesos \
         && grep -qx artifact.txt .hooked && test \"$(cat artifact.txt)\" = fetched",
    );
    if let Some(command) = hooked.command.as_mut() {
        command.uris.push(v1::command_info::Uri {
            value: artifact.display().to_string(),
            ..Default::default()
        });
    }
    let status = run(&mut framework, hooked).await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    // The hook's label follows the task's own.
    assert_eq!(
        plugins::task_labels(&plugins::state_task(&cluster, "hooked")),
        [pair("team", "a"), pair("hooked", "true")]
    );
    // The agent registered with the resource and attribute the hook
    // added to its own.
    let state = cluster.state();
    let agent = &state["slaves"][0];
    assert_eq!(agent["attributes"]["hooked"], "true", "{agent}");
    assert_eq!(agent["resources"]["hooked"], 1.0, "{agent}");
    assert!(agent["resources"]["cpus"].as_f64() > Some(0.0), "{agent}");
    // The status decorator labelled the update the framework got.
    let status_labels = status.labels.unwrap_or_default().labels;
    assert!(
        status_labels
            .iter()
            .any(|l| l.key == "hooked" && l.value.as_deref() == Some("true")),
        "{status_labels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_masters_hooks_decorate_a_launch_and_hear_of_a_lost_agent() {
    let dir = plugin_dir("", "");
    let hooks = vec![
        format!("--plugin_dir={}", dir.path().display()),
        format!("--hooks={HOOK}"),
    ];
    let cluster = Cluster::start_with(cluster::Options {
        master_flags: [vec!["--allocation_interval=100ms".into()], hooks.clone()].concat(),
        // The agent's hook gives it the `hooked` resource.
        agent_flags: hooks,
        ..cluster::Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "master-hooks", false)
        .await
        .unwrap();
    let status = run(&mut framework, task("decorated", "true")).await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    assert_eq!(
        plugins::task_labels(&plugins::state_task(&cluster, "decorated")),
        [
            pair("team", "a"),
            pair("master_hooked", "true"),
            pair("hooked", "true")
        ],
        "the agent's copy: the master's hook, then the agent's"
    );
    let state = cluster.state();
    let task = state["completed_frameworks"]
        .as_array()
        .into_iter()
        .chain(state["frameworks"].as_array())
        .flatten()
        .flat_map(|f| {
            f["tasks"]
                .as_array()
                .into_iter()
                .chain(f["completed_tasks"].as_array())
        })
        .flatten()
        .find(|t| t["id"] == "decorated")
        .cloned()
        .unwrap_or_else(|| panic!("the master lists the task: {state}"));
    assert_eq!(
        plugins::task_labels(&task),
        [pair("team", "a")],
        "the master's record"
    );
    assert_eq!(task["resources"]["hooked"], 1.0, "{task}");

    let agent_id = state["slaves"][0]["id"].as_str().unwrap().to_string();
    let gone = format!(
        r#"{{"type":"MARK_AGENT_GONE","mark_agent_gone":{{"agent_id":{{"value":"{agent_id}"}}}}}}"#
    );
    let answer = mesos_tests::raw_http::request(
        &cluster.master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        gone.as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let said = format!("{HOOK}: agent {agent_id} (");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cluster.master_log().contains(&said) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cluster.master_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_of_a_group_gets_the_hooks_label() {
    let dir = plugin_dir("", "");
    let cluster = cluster(dir.path(), &[]);
    let mut framework = Framework::subscribe(&cluster.master, "hooks", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    let executor = v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Default as i32),
        executor_id: v1::ExecutorId {
            value: "pod".into(),
        },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        ..Default::default()
    };
    let tasks: Vec<_> = ["pod-a", "pod-b"]
        .into_iter()
        .map(|id| v1::TaskInfo {
            agent_id: offer.agent_id.clone(),
            ..task(id, "true")
        })
        .collect();
    framework
        .client
        .launch_group(&offer.id, executor, tasks)
        .await
        .unwrap();
    let done = framework.wait_terminal(&["pod-a", "pod-b"]).await.unwrap();
    for (id, status) in done {
        assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
        assert_eq!(
            plugins::task_labels(&plugins::state_task(&cluster, &id)),
            [pair("team", "a"), pair("hooked", "true")]
        );
    }
}

/// Tasks run undecorated beside a hook in failure `mode`.
async fn failing_hook_is_skipped(mode: &str, extra: &str) {
    let dir = plugin_dir(mode, extra);
    let cluster = cluster(dir.path(), &[]);
    let mut framework = Framework::subscribe(&cluster.master, "hooks", false)
        .await
        .unwrap();
    // Twice: the second launch meets a quarantined or wedged hook.
    for id in ["first", "second"] {
        let status = run(&mut framework, task(id, "test -z \"$HOOKED\"")).await;
        assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
        assert_eq!(
            plugins::task_labels(&plugins::state_task(&cluster, id)),
            [pair("team", "a")]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_hook_is_skipped_and_the_task_runs() {
    failing_hook_is_skipped("panic", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_hook_is_skipped_at_its_timeout_and_the_task_runs() {
    failing_hook_is_skipped("hang", "call_timeout_ms = 500\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_closed_pre_launch_hook_that_panics_fails_the_launch() {
    let dir = plugin_dir(
        "panic",
        "failure_policy = \"fail_closed\"\nquarantine_after = 0\n",
    );
    let cluster = cluster(dir.path(), &[]);
    let mut framework = Framework::subscribe(&cluster.master, "hooks", false)
        .await
        .unwrap();
    let status = run(&mut framework, task("closed", "true")).await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains(HOOK) && message.contains("pre-launch: configured to panic"),
        "{status:?}"
    );
}

#[test]
fn an_unknown_hook_stops_the_agent_at_start_naming_it() {
    let dir = plugin_dir("", "");
    let out = cluster::agent_start_failure(&[
        format!("--plugin_dir={}", dir.path().display()),
        format!("--hooks={HOOK},com.example.missing"),
    ]);
    assert!(
        out.contains("--hooks: unknown hook 'com.example.missing'"),
        "{out}"
    );
    assert!(out.contains(HOOK), "the loaded hooks are listed: {out}");

    let out = cluster::agent_start_failure(&[format!("--hooks={HOOK}")]);
    assert!(
        out.contains(&format!("unknown hook '{HOOK}'")),
        "without --plugin_dir: {out}"
    );
}

/// `docker inspect` of one field of a container, as JSON.
fn inspect(container: &str, field: &str) -> Value {
    let out = Command::new("docker")
        .args(["inspect", "--format", &format!("{{{{json {field}}}}}")])
        .arg(container)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker inspect {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_container_gets_the_hooks_variables_and_label() {
    if docker::require().await.is_none() {
        return;
    }
    let dir = plugin_dir("", "");
    let cluster = cluster(dir.path(), &["--containerizers=docker,mesos"]);
    let mut framework = Framework::subscribe(&cluster.master, "hooks", false)
        .await
        .unwrap();
    let mut task = task(
        "docker",
        "test \"$HOOKED\" = 1 && test \"$HOOKED_CONTAINERIZER\" = docker && sleep 600",
    );
    task.container = Some(v1::ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(container_info::DockerInfo {
            image: BUSYBOX.into(),
            network: Some(container_info::docker_info::Network::Host as i32),
            ..Default::default()
        }),
        ..Default::default()
    });
    framework.launch_tasks(vec![task]).await.unwrap();
    let running = loop {
        let status = framework
            .next_update(Duration::from_secs(120))
            .await
            .unwrap();
        assert!(!status.state().is_terminal(), "{status:?}");
        if status.state() == TaskState::TaskRunning {
            break status;
        }
    };
    let container_id = running
        .container_status
        .as_ref()
        .and_then(|c| c.container_id.as_ref())
        .map(|id| id.value.clone())
        .expect("the status names its container");
    let name = format!("mesos-{container_id}");
    let container_labels = inspect(&name, ".Config.Labels");
    assert_eq!(container_labels["hooked"], "true", "{container_labels}");
    assert_eq!(container_labels["team"], "a", "{container_labels}");
    let env = inspect(&name, ".Config.Env");
    let env: Vec<&str> = env
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"HOOKED=1"), "{env:?}");
    assert!(env.contains(&"HOOKED_CONTAINERIZER=docker"), "{env:?}");
    assert_eq!(
        plugins::task_labels(&plugins::state_task(&cluster, "docker")),
        [pair("team", "a"), pair("hooked", "true")]
    );

    // Still running: the command's own checks of the variables passed.
    framework
        .client
        .kill(&v1::TaskId {
            value: "docker".into(),
        })
        .await
        .unwrap();
    let status = framework
        .wait_terminal(&["docker"])
        .await
        .unwrap()
        .remove("docker")
        .unwrap();
    assert_eq!(status.state(), TaskState::TaskKilled, "{status:?}");
}
