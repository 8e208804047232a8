//! `linux/seccomp` on the real kernel, through a real master and agent:
//! the agent's default profile filters every task's system calls (a
//! non-root task's too), a task's `LinuxInfo.seccomp` picks another
//! profile or none, and a profile that cannot be read fails the task,
//! naming it. Needs root; skipped with the reason otherwise, and a failure
//! with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::BTreeMap;
use std::path::Path;

use mesos_proto::v1::{self, TaskState, task_status::Reason};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::command_task;
use mesos_tests::require_root;

/// The agent's default: everything but creating directories.
const DENY_MKDIR: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
}"#;

/// Another profile: directories, but `uname` answers ENOSYS.
const DENY_UNAME: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
}"#;

/// `command` in a Mesos container whose `LinuxInfo.seccomp` is `seccomp`.
fn task(id: &str, command: &str, seccomp: Option<v1::SeccompInfo>) -> v1::TaskInfo {
    let mut task = command_task(id, command);
    task.container = seccomp.map(|seccomp| v1::ContainerInfo {
        r#type: v1::container_info::Type::Mesos as i32,
        linux_info: Some(v1::LinuxInfo {
            seccomp: Some(seccomp),
            ..Default::default()
        }),
        ..Default::default()
    });
    task
}

fn profile(name: &str) -> Option<v1::SeccompInfo> {
    Some(v1::SeccompInfo {
        profile_name: Some(name.into()),
        unconfined: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_under_the_agents_profile_or_the_one_they_ask_for() {
    if !require_root(
        Path::new("/proc/self/status").exists(),
        "linux/seccomp needs root",
    ) {
        return;
    }
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(profiles.path().join("deny-mkdir.json"), DENY_MKDIR).unwrap();
    std::fs::write(profiles.path().join("deny-uname.json"), DENY_UNAME).unwrap();
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--isolation=posix/cpu,posix/mem,linux/seccomp".into(),
            format!("--seccomp_config_dir={}", profiles.path().display()),
            "--seccomp_profile_name=deny-mkdir.json".into(),
        ],
        ..Options::default()
    });
    // `nobody` must reach its sandbox.
    cluster.open_to_all_users();
    let mut framework = Framework::subscribe(&cluster.master, "seccomp", false)
        .await
        .unwrap();
    // Each command succeeds only if the filter is the expected one: the
    // refused call's error is part of what it checks.
    let refused_mkdir = "mkdir d 2>&1 | grep -q 'Operation not permitted' && test ! -d d";
    let mut nobody = task("nobody", refused_mkdir, None);
    if let Some(command) = nobody.command.as_mut() {
        command.user = Some("nobody".into());
    }
    let tasks = vec![
        task("default", refused_mkdir, None),
        nobody,
        task(
            "unconfined",
            "mkdir d && uname",
            Some(v1::SeccompInfo {
                profile_name: None,
                unconfined: Some(true),
            }),
        ),
        task(
            "own-profile",
            "mkdir d && uname 2>&1 | grep -q 'Function not implemented'",
            profile("deny-uname.json"),
        ),
        task("missing", "true", profile("missing.json")),
        task("escaping", "true", profile("../deny-uname.json")),
    ];
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.value.clone()).collect();
    framework.launch_tasks(tasks).await.unwrap();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let done: BTreeMap<String, v1::TaskStatus> = framework.wait_terminal(&ids).await.unwrap();
    for id in ["default", "nobody", "unconfined", "own-profile"] {
        if done[id].state() != TaskState::TaskFinished {
            cluster.dump_logs();
            panic!("{id}: {:?}", done[id]);
        }
    }
    for (id, expected) in [
        ("missing", "cannot read seccomp profile 'missing.json'"),
        ("escaping", "must be a file name or a relative path"),
    ] {
        let status = &done[id];
        assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
        assert_eq!(status.reason(), Reason::ContainerLaunchFailed, "{status:?}");
        assert!(
            status.message().contains("linux/seccomp") && status.message().contains(expected),
            "{status:?}"
        );
    }
}

#[test]
fn a_bad_default_profile_stops_the_agent() {
    if !require_root(true, "linux/seccomp needs root") {
        return;
    }
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("bad.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    )
    .unwrap();
    let dir = format!("--seccomp_config_dir={}", profiles.path().display());
    let failure = mesos_tests::cluster::agent_start_failure(&[
        "--isolation=linux/seccomp".into(),
        dir.clone(),
        "--seccomp_profile_name=bad.json".into(),
    ]);
    assert!(
        failure.contains("seccomp profile 'bad.json': unknown action 'SCMP_ACT_NOTIFY'"),
        "{failure}"
    );
    let failure = mesos_tests::cluster::agent_start_failure(&["--isolation=linux/seccomp".into()]);
    assert!(failure.contains("needs --seccomp_config_dir"), "{failure}");
}
