//! The real Docker Engine for the docker containerizer's tests, and a
//! busybox image built offline from Debian's `busybox-static` (no registry
//! needed). Without an Engine a test is skipped with the reason printed;
//! with `CI=true` a skip is a failure (`.ci/run` starts `dockerd`).

use std::path::Path;
use std::process::Command;

use mesos_docker::Engine;

/// The image the tests run.
pub const BUSYBOX: &str = "mesos-test/busybox:1";
const SOCKET: &str = "/var/run/docker.sock";
/// The busybox applets the tests' commands use.
const APPLETS: [&str; 14] = [
    "sh", "echo", "sleep", "cat", "ls", "true", "false", "env", "httpd", "mkdir", "id", "hostname",
    "printf", "wget",
];

/// The Engine with the test image loaded, or `None` (test skipped) when
/// there is no Engine outside CI.
pub async fn require() -> Option<Engine> {
    match prepare().await {
        Ok(engine) => Some(engine),
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("docker test cannot run in CI: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

async fn prepare() -> Result<Engine, String> {
    if !Path::new(SOCKET).exists() {
        return Err(format!(
            "{SOCKET} not found: start dockerd (apt-get install docker.io)"
        ));
    }
    let engine = Engine::connect(Path::new(SOCKET))
        .await
        .map_err(|e| e.to_string())?;
    if !engine.image_exists(BUSYBOX).await {
        let tarball = busybox_rootfs()?;
        engine
            .import_rootfs(tarball, BUSYBOX)
            .await
            .map_err(|e| format!("cannot import {BUSYBOX}: {e}"))?;
    }
    Ok(engine)
}

/// A root filesystem holding busybox and its applets, as a tarball.
fn busybox_rootfs() -> Result<Vec<u8>, String> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err("/bin/busybox not found: apt-get install busybox-static".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = dir.path().join("bin");
    let io = |e: std::io::Error| e.to_string();
    std::fs::create_dir_all(&bin).map_err(io)?;
    std::fs::create_dir_all(dir.path().join("tmp")).map_err(io)?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(io)?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(io)?;
    }
    let output = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "-", "."])
        .output()
        .map_err(|e| format!("tar: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tar failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}
