//! A real registry: Debian's `docker-registry` (distribution v2) on
//! 127.0.0.1 behind htpasswd (bcrypt) basic auth, filled by `skopeo` with
//! a busybox image built offline, then pulled through the store with the
//! credentials of a docker config.json and run with `chroot`.
//!
//! Needs root (chroot) and the `docker-registry`, `skopeo` and `htpasswd`
//! (apache2-utils) binaries: without them the test is skipped with the
//! reason printed, and with `CI=true` a skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use mesos_provisioners::{DockerStore, Error, ImageReference, Provisioner};

const REGISTRY: &str = "/usr/bin/docker-registry";
const SKOPEO: &str = "/usr/bin/skopeo";
const HTPASSWD: &str = "/usr/bin/htpasswd";
const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pw";

/// `Some(())` when every tool is there; else skipped (or failed in CI).
fn require_tools() -> Option<()> {
    let missing: Vec<&str> = [REGISTRY, SKOPEO, HTPASSWD]
        .into_iter()
        .filter(|tool| !Path::new(tool).exists())
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    let reason = format!(
        "{} not found: apt-get install docker-registry skopeo apache2-utils (scripts/bootstrap does)",
        missing.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}");
    }
    eprintln!("SKIPPED: {reason}");
    None
}

/// The registry process, killed with the test.
struct RunningRegistry {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl RunningRegistry {
    fn start(dir: &Path) -> RunningRegistry {
        let htpasswd = Command::new(HTPASSWD)
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n\
             http:\n  addr: 127.0.0.1:{port}\n\
             auth:\n  htpasswd:\n    realm: mesos-test\n    path: {htpasswd}\n",
            data = dir.join("data").display(),
            htpasswd = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = dir.join("registry.log");
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut registry = RunningRegistry { child, port, log };
        registry.wait_listening();
        registry
    }

    /// Until the port accepts connections or the process is gone.
    fn wait_listening(&mut self) {
        for _ in 0..600 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry does not listen on 127.0.0.1:{}", self.port);
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pull_busybox_from_a_real_registry_with_basic_auth() {
    if require_tools().is_none() || require_root("chroot").is_none() {
        return;
    }
    let Some(archive) = busybox_archive() else {
        return;
    };
    let world = World::new();
    let registry = RunningRegistry::start(world.temp.path());
    let name = format!("{}/busybox:latest", registry.host());

    let archive_path = world.path("busybox.tar");
    std::fs::write(&archive_path, &archive).unwrap();
    let push = Command::new(SKOPEO)
        .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds={USER}:{PASSWORD}"))
        .arg(format!("docker-archive:{}", archive_path.display()))
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    std::fs::remove_file(&archive_path).unwrap();
    let image = ImageReference::parse(&name).unwrap();

    // Without credentials the registry says 401, and the error says why.
    let anonymous = DockerStore::from_flags(
        world.path("anonymous-store"),
        "https://registry-1.docker.io",
        None,
    )
    .unwrap();
    let error = anonymous.get(&image).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Registry { .. }), "{text}");
    assert!(text.contains("401") && text.contains(&name), "{text}");

    // With a docker config.json as --docker_config names it.
    let config = world.path("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"auths": {
            format!("http://{}", registry.host()): {
                "auth": STANDARD.encode(format!("{USER}:{PASSWORD}"))
            }
        }})
        .to_string(),
    )
    .unwrap();
    let store = DockerStore::from_flags(
        world.path("store"),
        "https://registry-1.docker.io",
        Some(config.to_str().unwrap()),
    )
    .unwrap();
    let provisioner = Provisioner::new(world.path("provisioner"), store, "copy").unwrap();
    let info = provisioner.provision("bb", &image).unwrap();
    assert!(info.rootfs.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read(info.rootfs.join("etc/hostname")).unwrap(),
        b"busybox\n"
    );
    assert_eq!(info.config.cmd, vec!["sh"]);
    assert_eq!(info.layers.len(), 2);
    assert_eq!(chroot_echo(&info.rootfs), "hi\n");
    provisioner.destroy("bb").unwrap();
}
