//! The fetcher through a real master and agent: a task's `CommandInfo.URI`s
//! land in its sandbox before its command runs, from a local tarball
//! (extracted) or from an http server run by the test (made executable,
//! cached, through a redirect); a URI that cannot be fetched (404, stalled,
//! unreadable by the task's user) fails the task naming it; a kill while
//! fetching keeps the executor from starting; fetched files belong to the
//! task's user.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mesos_cli::scheduler_client::scalar;
use mesos_proto::v1::{self, TaskState, command_info::Uri, task_status::Reason};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::framework::Framework;
use mesos_tests::raw_http;

/// What the test server answers for a path.
#[derive(Clone)]
enum Reply {
    Body(Vec<u8>),
    /// Announces a large body, sends a little of it and then nothing, until
    /// the client hangs up (reported on `hung_up`).
    Stall,
    /// A 302 to this path.
    Redirect(&'static str),
}

/// A tiny http server on the loopback interface, counting requests per
/// path; unknown paths get a 404.
struct Server {
    addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    hung_up: mpsc::Receiver<String>,
}

impl Server {
    fn start(routes: HashMap<&str, Reply>) -> Server {
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (tx, hung_up) = mpsc::channel();
        let counts = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (routes, counts, tx) = (routes.clone(), counts.clone(), tx.clone());
                std::thread::spawn(move || answer(stream, &routes, &counts, &tx));
            }
        });
        Server {
            addr,
            hits,
            hung_up,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    counts: &Mutex<HashMap<String, usize>>,
    hung_up: &mpsc::Sender<String>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
    *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
    match routes.get(&path) {
        Some(Reply::Body(body)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
        Some(Reply::Stall) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\nstart"
            );
            let _ = stream.flush();
            let mut rest = [0u8; 64];
            while matches!(stream.read(&mut rest), Ok(n) if n > 0) {}
            let _ = hung_up.send(path);
        }
        Some(Reply::Redirect(to)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        None => {
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    }
}

/// Polls `done` until it holds; a minute without is a failure.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn uri(value: &str) -> Uri {
    Uri {
        value: value.to_string(),
        ..Default::default()
    }
}

fn task(id: &str, command: &str, uris: Vec<Uri>) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        resources: vec![scalar("cpus", 0.01), scalar("mem", 4.0)],
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            uris,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A cluster whose agent keeps its fetcher cache in `cache_dir` (not the
/// shared default, which every agent started elsewhere empties).
fn cluster(cache_dir: &Path) -> Cluster {
    cluster_with(cache_dir, &[])
}

fn cluster_with(cache_dir: &Path, flags: &[&str]) -> Cluster {
    let mut agent_flags = vec![format!("--fetcher_cache_dir={}", cache_dir.display())];
    agent_flags.extend(flags.iter().map(|f| f.to_string()));
    Cluster::start_with(Options {
        agent_flags,
        ..Default::default()
    })
}

/// Runs `tasks` together and returns their terminal updates.
async fn run(cluster: &Cluster, tasks: Vec<v1::TaskInfo>) -> HashMap<String, v1::TaskStatus> {
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.value.clone()).collect();
    let mut framework = Framework::subscribe(&cluster.master, "fetcher", false)
        .await
        .unwrap();
    framework.launch_tasks(tasks).await.unwrap();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    framework
        .wait_terminal(&ids)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn assert_finished(statuses: &HashMap<String, v1::TaskStatus>, cluster: &Cluster) {
    for (id, status) in statuses {
        if status.state() != TaskState::TaskFinished {
            cluster.dump_logs();
            panic!("task {id} did not finish: {status:?}");
        }
    }
}

fn tar_gz(dir: &Path, name: &str, contents: &[(&str, &str)]) -> PathBuf {
    let source = dir.join("tree");
    for (path, text) in contents {
        let path = source.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let archive = dir.join(name);
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&source)
        .arg("-czf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    archive
}

#[tokio::test]
async fn a_local_tarball_is_extracted_into_the_sandbox() {
    let files = tempfile::tempdir().unwrap();
    let archive = tar_gz(
        files.path(),
        "bundle.tar.gz",
        &[("data/hello.txt", "hello")],
    );
    let plain = files.path().join("notes.txt");
    std::fs::write(&plain, "notes").unwrap();
    let cluster = cluster(&files.path().join("cache"));

    let mut copied = uri(&format!("file://{}", plain.display()));
    copied.output_file = Some("sub/copy.txt".into());
    let mut kept = uri(archive.to_str().unwrap());
    kept.extract = Some(false);
    kept.output_file = Some("packed/bundle.tar.gz".into());
    let statuses = run(
        &cluster,
        vec![task(
            "local",
            "test \"$(cat data/hello.txt)\" = hello && test -f bundle.tar.gz \
             && test \"$(cat sub/copy.txt)\" = notes \
             && test -f packed/bundle.tar.gz && test ! -e packed/data",
            vec![uri(archive.to_str().unwrap()), copied, kept],
        )],
    )
    .await;
    assert_finished(&statuses, &cluster);
}

#[tokio::test]
async fn an_http_script_is_made_executable_and_run() {
    let server = Server::start(HashMap::from([
        (
            "/bin/run.sh",
            Reply::Body(b"#!/bin/sh\necho fetched > marker\n".to_vec()),
        ),
        ("/latest/run.sh", Reply::Redirect("/bin/run.sh")),
    ]));
    let files = tempfile::tempdir().unwrap();
    let cluster = cluster(&files.path().join("cache"));
    // Through a redirect: the file keeps the name in the URI.
    let mut script = uri(&server.url("/latest/run.sh"));
    script.executable = Some(true);
    let statuses = run(
        &cluster,
        vec![task(
            "script",
            "./run.sh && test \"$(cat marker)\" = fetched",
            vec![script],
        )],
    )
    .await;
    assert_finished(&statuses, &cluster);
    assert_eq!(server.hits("/latest/run.sh"), 1);
    assert_eq!(server.hits("/bin/run.sh"), 1);
}

#[tokio::test]
async fn a_cached_uri_is_downloaded_once() {
    let files = tempfile::tempdir().unwrap();
    let archive = tar_gz(files.path(), "tool.tgz", &[("tool/version", "7")]);
    let server = Server::start(HashMap::from([(
        "/tool.tgz",
        Reply::Body(std::fs::read(&archive).unwrap()),
    )]));
    let cluster = cluster(&files.path().join("cache"));
    let cached = || {
        let mut u = uri(&server.url("/tool.tgz"));
        u.cache = Some(true);
        u
    };
    let command = "test \"$(cat tool/version)\" = 7";
    // Both at once: the second waits for the first one's download.
    let statuses = run(
        &cluster,
        vec![
            task("cached-1", command, vec![cached()]),
            task("cached-2", command, vec![cached()]),
        ],
    )
    .await;
    assert_finished(&statuses, &cluster);
    assert_eq!(server.hits("/tool.tgz"), 1);

    let statuses = run(&cluster, vec![task("cached-3", command, vec![cached()])]).await;
    assert_finished(&statuses, &cluster);
    assert_eq!(server.hits("/tool.tgz"), 1, "served from the cache");

    // The same URI without `cache` is downloaded again.
    let statuses = run(
        &cluster,
        vec![task(
            "uncached",
            command,
            vec![uri(&server.url("/tool.tgz"))],
        )],
    )
    .await;
    assert_finished(&statuses, &cluster);
    assert_eq!(server.hits("/tool.tgz"), 2);
}

#[tokio::test]
async fn a_uri_bigger_than_the_cache_is_fetched_uncached() {
    let server = Server::start(HashMap::from([("/big.txt", Reply::Body(vec![b'x'; 4096]))]));
    let files = tempfile::tempdir().unwrap();
    let cache_dir = files.path().join("cache");
    let cluster = cluster_with(&cache_dir, &["--fetcher_cache_size=1KB"]);
    let mut big = uri(&server.url("/big.txt"));
    big.cache = Some(true);
    for id in ["big-1", "big-2"] {
        let statuses = run(
            &cluster,
            vec![task(
                id,
                "test $(wc -c < big.txt) -eq 4096",
                vec![big.clone()],
            )],
        )
        .await;
        assert_finished(&statuses, &cluster);
    }
    assert_eq!(server.hits("/big.txt"), 2);
    assert_eq!(std::fs::read_dir(&cache_dir).unwrap().count(), 0);
}

#[tokio::test]
async fn a_stalled_download_fails_the_task() {
    let server = Server::start(HashMap::from([("/stuck.tgz", Reply::Stall)]));
    let files = tempfile::tempdir().unwrap();
    let cluster = cluster_with(
        &files.path().join("cache"),
        &["--fetcher_stall_timeout=1secs"],
    );
    let stuck = server.url("/stuck.tgz");
    let statuses = run(&cluster, vec![task("stuck", "true", vec![uri(&stuck)])]).await;
    let status = &statuses["stuck"];
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    assert_eq!(
        status.message(),
        format!("Failed to fetch '{stuck}': no data for 1secs (--fetcher_stall_timeout)")
    );
    let hung_up = server.hung_up.recv_timeout(Duration::from_secs(30));
    assert_eq!(hung_up.as_deref(), Ok("/stuck.tgz"));
}

#[tokio::test]
async fn a_failed_fetch_fails_the_task_naming_the_uri() {
    let server = Server::start(HashMap::new());
    let files = tempfile::tempdir().unwrap();
    let cluster = cluster(&files.path().join("cache"));
    let missing = server.url("/missing.tgz");
    let mut escaping = uri("/etc/hostname");
    escaping.output_file = Some("../outside".into());
    let statuses = run(
        &cluster,
        vec![
            task("not-found", "true", vec![uri(&missing)]),
            task("escape", "true", vec![escaping]),
        ],
    )
    .await;

    let status = &statuses["not-found"];
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    assert_eq!(status.reason(), Reason::ContainerLaunchFailed);
    assert_eq!(
        status.message(),
        format!("Failed to fetch '{missing}': HTTP 404 Not Found")
    );
    assert_eq!(server.hits("/missing.tgz"), 1);

    let status = &statuses["escape"];
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    assert!(
        status.message().contains("'/etc/hostname'") && status.message().contains("output_file"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_task_killed_while_fetching_never_starts() {
    let server = Server::start(HashMap::from([("/slow.tgz", Reply::Stall)]));
    let files = tempfile::tempdir().unwrap();
    let cluster = cluster(&files.path().join("cache"));
    let mut framework = Framework::subscribe(&cluster.master, "fetcher", false)
        .await
        .unwrap();
    framework
        .launch_tasks(vec![task(
            "slow",
            "true",
            vec![uri(&server.url("/slow.tgz"))],
        )])
        .await
        .unwrap();
    // The download has begun once the server saw the request.
    eventually("the download to begin", || server.hits("/slow.tgz") > 0).await;
    framework
        .client
        .kill(&v1::TaskId {
            value: "slow".into(),
        })
        .await
        .unwrap();
    let statuses = framework.wait_terminal(&["slow"]).await.unwrap();
    let status = &statuses["slow"];
    assert_eq!(status.state(), TaskState::TaskKilled, "{status:?}");

    // The download is given up (the agent hangs up) and the executor is
    // archived without having been started: no `stdout` in its sandbox.
    let hung_up = server.hung_up.recv_timeout(Duration::from_secs(30));
    assert_eq!(hung_up.as_deref(), Ok("/slow.tgz"));
    eventually("the executor to be archived", || {
        let state: serde_json::Value =
            serde_json::from_str(&raw_http::get(&cluster.agents[0], "/state").unwrap().text())
                .unwrap();
        ["frameworks", "completed_frameworks"].iter().any(|list| {
            state[list].as_array().into_iter().flatten().any(|f| {
                f["completed_executors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["id"] == "slow")
            })
        })
    })
    .await;
    let framework_id = framework.client.framework_id().unwrap().value.clone();
    let run_dir = cluster
        .agent_work_dir(0)
        .join("slaves/latest/frameworks")
        .join(framework_id)
        .join("executors/slow/runs/latest");
    assert!(run_dir.is_dir(), "{}", run_dir.display());
    assert!(
        !run_dir.join("stdout").exists(),
        "the executor was started after its task was killed"
    );
}

#[tokio::test]
async fn fetched_files_belong_to_the_tasks_user_who_reads_local_files_as_itself() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: switching to another user needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let files = tempfile::tempdir().unwrap();
    let archive = tar_gz(
        files.path(),
        "bundle.tar.gz",
        &[("data/hello.txt", "hello")],
    );
    let secret = files.path().join("secret.txt");
    std::fs::write(&secret, "root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cluster = cluster(&files.path().join("cache"));
    // Temporary directories are private; `nobody` must reach its sandbox
    // and the tarball.
    for dir in [files.path(), cluster.dir.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let as_nobody = |mut task: v1::TaskInfo| {
        task.command.as_mut().unwrap().user = Some("nobody".into());
        task
    };
    let statuses = run(
        &cluster,
        vec![
            as_nobody(task(
                "owned",
                "test \"$(id -un)\" = nobody && test -O bundle.tar.gz \
                 && test -O data && test -O data/hello.txt && echo more > data/hello.txt",
                vec![uri(archive.to_str().unwrap())],
            )),
            as_nobody(task("secret", "true", vec![uri(secret.to_str().unwrap())])),
        ],
    )
    .await;
    let owned = &statuses["owned"];
    if owned.state() != TaskState::TaskFinished {
        cluster.dump_logs();
        panic!("{owned:?}");
    }
    let status = &statuses["secret"];
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    assert!(
        status
            .message()
            .starts_with(&format!("Failed to fetch '{}'", secret.display()))
            && status.message().contains("Permission denied"),
        "{status:?}"
    );
}
