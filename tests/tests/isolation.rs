//! Isolation on the real kernel, through a real master and agent:
//! - `cgroups/cpu,cgroups/mem`: a task runs inside its container's cgroups
//!   with the shares and memory limit its resources give; a task over its
//!   memory limit fails with REASON_CONTAINER_LIMITATION_MEMORY;
//! - `cgroups/pids`: a fork bomb stops at `--cgroups_pids_max`;
//! - `namespaces/pid`: a task sees only its container's processes, and the
//!   executor is still recovered and killed after an agent restart;
//! - `namespaces/ipc`: a task has an IPC namespace of its own;
//! - `linux/capabilities`: a task's bounding and effective sets are what
//!   the flags and its `LinuxInfo` ask for, and asking for a capability
//!   outside the agent's bounding set fails the task, naming it;
//! - `linux/nnp`: a task runs with `no_new_privs`.
//!
//! Every container's cgroups are gone afterwards. Needs root; skipped
//! with the reason otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState, task_status::Reason};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;
use mesos_tests::require_root as require;

const CGROUPS: &str = "/sys/fs/cgroup";

fn require_root() -> bool {
    let mounted = Path::new(CGROUPS).join("memory").is_dir()
        || Path::new(CGROUPS).join("cgroup.controllers").exists();
    require(mounted, "cgroups tests need root and a cgroup filesystem")
}

/// The directories that hold this agent's container cgroups.
fn container_dirs(root: &str) -> Vec<std::path::PathBuf> {
    if Path::new(CGROUPS).join("cgroup.controllers").exists() {
        vec![Path::new(CGROUPS).join(root)]
    } else {
        ["cpu", "cpuacct", "memory"]
            .iter()
            .map(|c| Path::new(CGROUPS).join(c).join(root))
            .collect()
    }
}

fn task(offer: &v1::Offer, id: &str, cpus: f64, mem: f64, command: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", cpus), scalar("mem", mem)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Each task's terminal status.
async fn terminal(framework: &mut Framework, n: usize) -> Vec<v1::TaskStatus> {
    let mut done = Vec::new();
    while done.len() < n {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        if status.state().is_terminal() {
            done.push(status);
        }
    }
    done
}

// Checks the task's own cgroups from inside: v1 (a hierarchy per
// controller) or v2.
const CHECK_LIMITS: &str = r#"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  p=$(sed -n 's/^0:://p' /proc/self/cgroup)
  test "$(cat /sys/fs/cgroup$p/cpu.weight)" = 20 &&
  test "$(cat /sys/fs/cgroup$p/memory.max)" = 67108864
else
  cpu=$(sed -n 's/^[0-9]*:cpu:\(.*\)/\1/p' /proc/self/cgroup)
  mem=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup)
  test "$(cat /sys/fs/cgroup/cpu$cpu/cpu.shares)" = 512 &&
  test "$(cat /sys/fs/cgroup/memory$mem/memory.limit_in_bytes)" = 67108864
fi
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_in_their_cgroups_and_an_oom_kill_is_reported() {
    if !require_root() {
        return;
    }
    let root = format!("mesos-test-{}", std::process::id());
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--isolation=cgroups/cpu,cgroups/mem".into(),
            format!("--cgroups_root={root}"),
        ],
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "isolation", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    let tasks = vec![
        task(&offer, "limits", 0.5, 64.0, CHECK_LIMITS),
        // Writes 256 MB into a 32 MB container.
        task(
            &offer,
            "hog",
            0.1,
            32.0,
            "python3 -c 'x = b\"a\" * (256 << 20); import time; time.sleep(60)'",
        ),
        task(&offer, "sleeper", 0.25, 48.0, "sleep 1000"),
    ];
    framework
        .client
        .launch(&offer.id, tasks, None)
        .await
        .unwrap();
    let done = terminal(&mut framework, 2).await;
    let of = |id: &str| done.iter().find(|s| s.task_id.value == id).unwrap();

    let limits = of("limits");
    assert_eq!(limits.state(), TaskState::TaskFinished, "{limits:?}");
    let hog = of("hog");
    assert_eq!(hog.state(), TaskState::TaskFailed, "{hog:?}");
    assert_eq!(
        hog.reason,
        Some(Reason::ContainerLimitationMemory as i32),
        "{hog:?}"
    );
    assert!(
        hog.message
            .as_deref()
            .unwrap_or_default()
            .contains("Memory limit exceeded"),
        "{hog:?}"
    );

    // The memory cgroup measures the running one for /monitor/statistics.
    let response = mesos_tests::raw_http::get(&cluster.agents[0], "/monitor/statistics").unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let sleeper = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "sleeper")
        .unwrap_or_else(|| panic!("sleeper missing from {stats}"));
    let s = &sleeper["statistics"];
    assert_eq!(s["mem_limit_bytes"].as_u64(), Some(48 << 20), "{s}");
    assert!(s["mem_total_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
    framework
        .client
        .kill(&v1::TaskId {
            value: "sleeper".into(),
        })
        .await
        .unwrap();
    let killed = terminal(&mut framework, 1).await;
    assert_eq!(killed[0].state(), TaskState::TaskKilled, "{killed:?}");

    // Every container's cgroups are removed once their executors are gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    for dir in container_dirs(&root) {
        while left(&dir) > 0 {
            assert!(
                Instant::now() < deadline,
                "{} still has cgroups",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

/// The sandbox directory of the agent's executor `id` (live or finished).
fn sandbox_of(cluster: &Cluster, id: &str) -> std::path::PathBuf {
    let state = mesos_tests::raw_http::get(&cluster.agents[0], "/state").unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    ["frameworks", "completed_frameworks"]
        .iter()
        .flat_map(|key| state[*key].as_array().cloned().unwrap_or_default())
        .flat_map(|f| {
            ["executors", "completed_executors"]
                .iter()
                .flat_map(|key| f[*key].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .find(|e| e["id"] == id)
        .and_then(|e| e["directory"].as_str().map(std::path::PathBuf::from))
        .unwrap_or_else(|| panic!("no executor {id} in {state}"))
}

/// A file's content once a task has written a whole line into it.
async fn written_line(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `dir` holds no cgroup, then removes it.
async fn wait_removed(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    while left(dir) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} still has cgroups",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir(dir);
}

/// Forks (each child sleeps) until fork fails or 200 children are up;
/// writes how many it forked and why it stopped, then frees three pids so
/// the executor can still work, and sleeps.
const FORK_BOMB: &str = r#"python3 -c '
import os, time
children = []
try:
    while len(children) < 200:
        pid = os.fork()
        if pid == 0:
            time.sleep(1000)
            os._exit(0)
        children.append(pid)
    stopped = "unbounded"
except OSError as e:
    stopped = "errno=%d" % e.errno
for pid in children[:3]:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
open("bomb", "w").write("%d %s\n" % (len(children), stopped))
time.sleep(1000)
'"#;

const PIDS_MAX: u64 = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    let pids = if Path::new(CGROUPS).join("cgroup.controllers").exists() {
        Path::new(CGROUPS).to_path_buf()
    } else {
        Path::new(CGROUPS).join("pids")
    };
    if !require(
        pids.is_dir(),
        "cgroups/pids needs root and the pids cgroup controller",
    ) {
        return;
    }
    let root = format!("mesos-test-pids-{}", std::process::id());
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--isolation=cgroups/pids".into(),
            format!("--cgroups_root={root}"),
            format!("--cgroups_pids_max={PIDS_MAX}"),
        ],
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "pids", false)
        .await
        .unwrap();
    framework
        .launch_running(&["bomb".to_string()], FORK_BOMB)
        .await
        .unwrap();
    let sandbox = sandbox_of(&cluster, "bomb");
    let outcome = written_line(&sandbox.join("bomb")).await;
    let (forked, stopped) = outcome.split_once(' ').unwrap();
    let forked: u64 = forked.parse().unwrap();
    assert_eq!(
        stopped,
        format!("errno={}", nix::libc::EAGAIN),
        "fork fails at the limit: {outcome}"
    );
    assert!(
        forked > 0 && forked < PIDS_MAX,
        "{forked} children forked under a limit of {PIDS_MAX}"
    );

    // The container's cgroup holds the limit and counts the bomb.
    let containers = pids.join(&root);
    let cgroups: Vec<_> = std::fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    assert_eq!(cgroups.len(), 1, "{cgroups:?}");
    let knob = |name: &str| {
        std::fs::read_to_string(cgroups[0].join(name))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(knob("pids.max"), PIDS_MAX.to_string());
    let current: u64 = knob("pids.current").parse().unwrap();
    assert!(
        current <= PIDS_MAX && current > forked.saturating_sub(3),
        "pids.current {current}, limit {PIDS_MAX}, {forked} forked"
    );

    framework
        .client
        .kill(&v1::TaskId {
            value: "bomb".into(),
        })
        .await
        .unwrap();
    let killed = terminal(&mut framework, 1).await;
    assert_eq!(killed[0].state(), TaskState::TaskKilled, "{killed:?}");
    wait_removed(&containers).await;
}

/// Passes only in a PID namespace of the executor's: pid 1 is the
/// executor, and the agent (outside) cannot be seen. `{agent}` is the
/// agent's pid.
const PID_NAMESPACE_CHECK: &str = r#"test "$(cat /proc/1/comm)" = mesos-executor && test ! -e /proc/{agent} && ls /proc | grep -c '^[0-9]' > seen"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_namespace_shows_only_the_container_and_survives_an_agent_restart() {
    if !require(
        Path::new("/proc/self/ns/pid").exists(),
        "namespaces/pid needs root and PID namespaces",
    ) {
        return;
    }
    let mut cluster = Cluster::start_with(Options {
        agent_flags: vec!["--isolation=namespaces/pid".into()],
        ..Options::default()
    });
    let agent = cluster.agent_pid(0).unwrap();
    let check = PID_NAMESPACE_CHECK.replace("{agent}", &agent.to_string());
    // Without the namespace (here, on the host) the check fails.
    let on_host = std::process::Command::new("/bin/sh")
        .args(["-c", &check])
        .current_dir(cluster.dir.path())
        .status()
        .unwrap();
    assert!(
        !on_host.success(),
        "the check must fail outside a namespace"
    );

    let mut framework = Framework::subscribe(&cluster.master, "pidns", true)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    framework
        .client
        .launch(
            &offer.id,
            vec![
                task(&offer, "check", 0.1, 32.0, &check),
                // One sleep escapes the executor's session and process
                // group; the namespace's end still takes it.
                task(
                    &offer,
                    "sleeper",
                    0.1,
                    32.0,
                    "setsid sleep 1000 & sleep 1000",
                ),
            ],
            None,
        )
        .await
        .unwrap();
    let done = terminal(&mut framework, 1).await;
    assert_eq!(done[0].task_id.value, "check");
    assert_eq!(done[0].state(), TaskState::TaskFinished, "{done:?}");
    // The executor, the task's shell and what it ran for the count.
    let seen: usize = written_line(&sandbox_of(&cluster, "check").join("seen"))
        .await
        .parse()
        .unwrap();
    assert!(seen <= 6, "{seen} processes seen in the namespace");

    // The checkpointed pid is the sleeper executor's host pid: pid 1 of
    // its namespace.
    let mut pid_files = Vec::new();
    files_named(
        &cluster.agent_work_dir(0).join("meta"),
        "forked.pid",
        &mut pid_files,
    );
    let sleeper_dir = pid_files
        .iter()
        .find(|p| p.to_string_lossy().contains("/executors/sleeper/"))
        .unwrap_or_else(|| panic!("no forked.pid of sleeper in {pid_files:?}"));
    let executor: u32 = std::fs::read_to_string(sleeper_dir)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(nspids(executor), vec![executor, 1]);

    // A restarted agent finds the executor by that pid, and killing the
    // task still takes down every process of the namespace.
    cluster.kill_agent(0);
    wait_until("the master to notice the agent's end", || {
        !agent_active(&cluster)
    })
    .await;
    cluster.restart_agent(0, &[]).unwrap();
    wait_until("the agent to re-register", || agent_active(&cluster)).await;
    let in_namespace = processes_in_pid_namespace_of(executor);
    // The executor and the two sleeps, one in a session of its own.
    assert!(in_namespace.len() >= 3, "{in_namespace:?}");
    assert!(
        in_namespace
            .iter()
            .any(|pid| session_of(*pid).is_some_and(|s| s != executor)),
        "nothing escaped the executor's session: {in_namespace:?}"
    );
    framework
        .client
        .kill(&v1::TaskId {
            value: "sleeper".into(),
        })
        .await
        .unwrap();
    // The check's TASK_FINISHED may come again: updates are at least once.
    let killed = &framework.wait_terminal(&["sleeper"]).await.unwrap()["sleeper"];
    assert_eq!(killed.state(), TaskState::TaskKilled, "{killed:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while in_namespace
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "{in_namespace:?} outlived the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A process's pid in each PID namespace it is in, outermost first.
fn nspids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// The session of a process, in host pids.
fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Host pids of the processes in the PID namespace `pid` is in.
fn processes_in_pid_namespace_of(pid: u32) -> Vec<u32> {
    let namespace = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == namespace))
        .collect()
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            files_named(&path, name, out);
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipc_namespace_is_the_tasks_own() {
    if !require(
        Path::new("/proc/self/ns/ipc").exists(),
        "namespaces/ipc needs root and IPC namespaces",
    ) {
        return;
    }
    let cluster = Cluster::start_with(Options {
        agent_flags: vec!["--isolation=namespaces/ipc".into()],
        ..Options::default()
    });
    // POSIX shared memory (files in /dev/shm) is the container's own too.
    let shm = format!("mesos-test-shm-{}", std::process::id());
    let mut framework = Framework::subscribe(&cluster.master, "ipcns", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    framework
        .client
        .launch(
            &offer.id,
            vec![task(
                &offer,
                "ipc",
                0.1,
                32.0,
                &format!("readlink /proc/self/ns/ipc > ipc && echo x > /dev/shm/{shm}"),
            )],
            None,
        )
        .await
        .unwrap();
    let done = terminal(&mut framework, 1).await;
    assert_eq!(done[0].state(), TaskState::TaskFinished, "{done:?}");
    let inside = written_line(&sandbox_of(&cluster, "ipc").join("ipc")).await;
    let host = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert!(inside.starts_with("ipc:["), "{inside}");
    assert_ne!(
        Path::new(&inside),
        host,
        "the task shares the host's IPC namespace"
    );
    assert!(
        !Path::new("/dev/shm").join(&shm).exists(),
        "the task wrote into the host's /dev/shm"
    );
}

fn agent_active(cluster: &Cluster) -> bool {
    cluster.state()["slaves"][0]["active"].as_bool() == Some(true)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A task that writes its capability sets and `NoNewPrivs` into `status`
/// in its sandbox; `linux` goes into its `ContainerInfo`.
fn status_task(
    offer: &v1::Offer,
    id: &str,
    user: Option<&str>,
    linux: Option<v1::LinuxInfo>,
) -> v1::TaskInfo {
    let mut task = task(
        offer,
        id,
        0.1,
        32.0,
        "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status > status",
    );
    if let Some(command) = task.command.as_mut() {
        command.user = user.map(str::to_string);
    }
    task.container = linux.map(|linux| v1::ContainerInfo {
        r#type: v1::container_info::Type::Mesos as i32,
        linux_info: Some(linux),
        ..Default::default()
    });
    task
}

fn capabilities(names: &[v1::capability_info::Capability]) -> Option<v1::CapabilityInfo> {
    Some(v1::CapabilityInfo {
        capabilities: names.iter().map(|c| *c as i32).collect(),
    })
}

/// The fields of the `status` file a [`status_task`] wrote.
fn status_of(cluster: &Cluster, id: &str) -> std::collections::BTreeMap<String, String> {
    fields(&std::fs::read_to_string(sandbox_of(cluster, id).join("status")).unwrap())
}

/// `Name: value` lines as a map.
fn fields(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// This test's own /proc/self/status, what an unrestricted task inherits.
fn own_status() -> std::collections::BTreeMap<String, String> {
    fields(&std::fs::read_to_string("/proc/self/status").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_bounded_by_the_agent_and_asked_for_by_tasks() {
    use v1::capability_info::Capability::{Chown, NetAdmin, NetRaw};
    if !require(
        Path::new("/proc/sys/kernel/cap_last_cap").exists(),
        "linux/capabilities needs root",
    ) {
        return;
    }
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            "--isolation=linux/capabilities".into(),
            r#"--bounding_capabilities={"capabilities":["CHOWN","NET_RAW"]}"#.into(),
        ],
        ..Options::default()
    });
    // `nobody` must reach its sandbox.
    cluster.open_to_all_users();
    let mut framework = Framework::subscribe(&cluster.master, "caps", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    let linux = |effective, bounding| v1::LinuxInfo {
        effective_capabilities: effective,
        bounding_capabilities: bounding,
        ..Default::default()
    };
    framework
        .client
        .launch(
            &offer.id,
            vec![
                // The agent's bounding set only.
                status_task(&offer, "root", None, None),
                // NET_RAW effective, for a non-root user (ambient).
                status_task(
                    &offer,
                    "nobody",
                    Some("nobody"),
                    Some(linux(capabilities(&[NetRaw]), None)),
                ),
                // A narrower bounding set of its own.
                status_task(
                    &offer,
                    "narrower",
                    None,
                    Some(linux(None, capabilities(&[NetRaw]))),
                ),
                // Outside the agent's bounding set.
                status_task(
                    &offer,
                    "net-admin",
                    None,
                    Some(linux(capabilities(&[NetAdmin, Chown]), None)),
                ),
            ],
            None,
        )
        .await
        .unwrap();
    let done = terminal(&mut framework, 4).await;
    let by_id = |id: &str| {
        done.iter()
            .find(|s| s.task_id.value == id)
            .unwrap_or_else(|| panic!("no status of {id}: {done:?}"))
    };
    for id in ["root", "nobody", "narrower"] {
        if by_id(id).state() != TaskState::TaskFinished {
            cluster.dump_logs();
            panic!("{id}: {:?}", by_id(id));
        }
    }
    let refused = by_id("net-admin");
    assert_eq!(refused.state(), TaskState::TaskFailed, "{refused:?}");
    assert_eq!(
        refused.reason(),
        Reason::ContainerLaunchFailed,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("linux/capabilities")
            && refused.message().contains("[NET_ADMIN] are not within")
            && refused.message().contains("[CHOWN, NET_RAW]"),
        "{refused:?}"
    );

    // Root gets its bounding set back at exec (as in Mesos).
    let root = status_of(&cluster, "root");
    assert_eq!(root["CapBnd"], "0000000000002001", "{root:?}");
    assert_eq!(root["CapEff"], "0000000000002001", "{root:?}");
    assert_eq!(root["NoNewPrivs"], own_status()["NoNewPrivs"], "{root:?}");
    let nobody = status_of(&cluster, "nobody");
    assert_eq!(nobody["CapBnd"], "0000000000002001", "{nobody:?}");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(nobody[set], "0000000000002000", "{set}: {nobody:?}");
    }
    let narrower = status_of(&cluster, "narrower");
    assert_eq!(narrower["CapBnd"], "0000000000002000", "{narrower:?}");
    assert_eq!(narrower["CapEff"], "0000000000002000", "{narrower:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nnp_sets_no_new_privs_for_tasks() {
    if !require(true, "linux/nnp is tested as root") {
        return;
    }
    let cluster = Cluster::start_with(Options {
        agent_flags: vec!["--isolation=linux/nnp".into()],
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "nnp", false)
        .await
        .unwrap();
    let offer = framework.offer().await.unwrap();
    framework
        .client
        .launch(
            &offer.id,
            vec![status_task(&offer, "nnp", None, None)],
            None,
        )
        .await
        .unwrap();
    let done = terminal(&mut framework, 1).await;
    if done[0].state() != TaskState::TaskFinished {
        cluster.dump_logs();
        panic!("{done:?}");
    }
    let status = status_of(&cluster, "nnp");
    assert_eq!(status["NoNewPrivs"], "1", "{status:?}");
    // Its capabilities are root's own: linux/nnp takes none away.
    let own = own_status();
    assert_eq!(status["CapBnd"], own["CapBnd"], "{status:?}");
    assert_eq!(status["CapEff"], own["CapEff"], "{status:?}");
}
