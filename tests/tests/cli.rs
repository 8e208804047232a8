//! `mesos-local` and `mesos-execute`, run the way the README tells a new
//! user to run them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesos_tests::cluster::{binary, free_port};

struct Local {
    child: Child,
    master: String,
    _dir: tempfile::TempDir,
}

impl Drop for Local {
    fn drop(&mut self) {
        // SIGTERM lets mesos-local stop its children.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn start_local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent_port = free_port();
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    let child = Command::new(binary("mesos-local"))
        .args([
            format!("--port={port}"),
            format!("--agent_port={agent_port}"),
            format!("--work_dir={}", dir.path().join("work").display()),
            "--resources=cpus:1;mem:512".to_string(),
            "--allocation_interval=100ms".to_string(),
        ])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let master = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let printed = std::fs::read_to_string(dir.path().join("out")).unwrap_or_default();
        if printed.contains("Mesos master listening on") {
            assert!(printed.contains(&master), "{printed}");
            assert!(
                printed.contains("mesos-execute"),
                "tells how to submit a task:\n{printed}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mesos-local did not come up:\n{printed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Local {
        child,
        master,
        _dir: dir,
    }
}

fn execute(master: &str, name: &str, command: &str) -> (bool, String) {
    let out = Command::new(binary("mesos-execute"))
        .args([
            format!("--master={master}"),
            format!("--name={name}"),
            format!("--command={command}"),
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn mesos_execute_against_mesos_local() {
    let local = start_local();
    let (ok, out) = execute(&local.master, "hi", "echo hi");
    assert!(ok, "{out}");
    assert!(
        out.contains("TASK_RUNNING") && out.contains("TASK_FINISHED"),
        "{out}"
    );

    let (ok, out) = execute(&local.master, "fails", "exit 3");
    assert!(!ok, "a failing task must make mesos-execute fail:\n{out}");
    assert!(
        out.contains("TASK_FAILED") && out.contains("exited with status 3"),
        "{out}"
    );
}

#[test]
fn bad_flags_are_named() {
    let out = Command::new(binary("mesos-execute"))
        .args(["--mastr=x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'mastr'"));
    for (daemon, required) in [
        ("mesos-master", &[][..]),
        (
            "mesos-agent",
            &["--master=m:5050", "--work_dir=/tmp/unused"][..],
        ),
    ] {
        let out = Command::new(binary(daemon))
            .args(required)
            .arg("--port=notaport")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{daemon}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("'port'"), "{daemon}: {err}");
        let help = Command::new(binary(daemon)).arg("--help").output().unwrap();
        assert!(help.status.success());
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("--work_dir"),
            "{daemon} --help"
        );
    }
    // A required flag that is missing is named too.
    let out = Command::new(binary("mesos-agent"))
        .arg("--work_dir=/tmp/unused")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'master'"));
}
