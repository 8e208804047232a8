//! Network plugins through a real master and agent: the
//! `com.example.veth_network` plugin (`plugins/veth-network`, a dylib)
//! behind `--isolation=posix/cpu,network/cni`, without any CNI
//! configuration. A task whose `network_infos` name it:
//! - runs in a network namespace of its own, where the plugin's interface
//!   `eth0` has the address the plugin chose and `/etc/resolv.conf` the
//!   plugin's nameserver, and reaches the agent through the plugin's link
//!   to the host (its executor does);
//! - has that address in its TASK_RUNNING's `container_status`;
//! - leaves no namespace behind.
//!
//! A task naming no network stays on the host's; one naming an unknown
//! network fails, naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::Duration;

use mesos_proto::v1::{self, TaskState};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::{self, Plugin};

const NETWORK: &str = "com.example.veth_network";
/// The agent's address: executors in a container's namespace reach the
/// agent through the plugin's link to the host, so it cannot be 127.0.0.1
/// (as with Mesos). The host's `lo` holds it.
const AGENT_IP: &str = "10.199.8.1";

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes the agent's address, whatever the test's outcome.
struct AddressGuard;

impl Drop for AddressGuard {
    fn drop(&mut self) {
        ip(&["addr", "delete", &format!("{AGENT_IP}/32"), "dev", "lo"]);
    }
}

fn task(id: &str, command: &str, network: Option<&str>) -> v1::TaskInfo {
    let mut task = plugins::command_task(id, command);
    task.container = Some(v1::ContainerInfo {
        r#type: v1::container_info::Type::Mesos as i32,
        network_infos: network
            .map(|name| v1::NetworkInfo {
                name: Some(name.to_string()),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    });
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_plugin_puts_tasks_on_its_network() {
    if !mesos_tests::require_root(true, "network namespaces and links need root") {
        return;
    }
    let _address = AddressGuard;
    ip(&["addr", "delete", &format!("{AGENT_IP}/32"), "dev", "lo"]);
    assert!(
        ip(&["addr", "add", &format!("{AGENT_IP}/32"), "dev", "lo"]),
        "cannot give the agent an address on lo"
    );
    let artifact = "libveth_network.so";
    let bytes = std::fs::read(plugins::build(&["veth-network"]).join(artifact)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = plugins::install(
        dir.path(),
        &Plugin {
            name: NETWORK,
            kind: "network",
            runtime: "dylib",
            artifact,
            bytes: &bytes,
            extra: "config = \"network\"\n",
        },
    );
    std::fs::write(folder.join("network"), "10.199.7\n10.199.7.1\n").unwrap();
    let cluster = plugins::cluster(
        dir.path(),
        &[
            "--isolation=posix/cpu,network/cni".to_string(),
            format!("--ip={AGENT_IP}"),
        ],
    );
    let mut framework = Framework::subscribe(&cluster.master, "network-plugins", false)
        .await
        .unwrap();

    framework
        .launch_tasks(vec![task(
            "on-network",
            "ip -4 -o addr show eth0 | grep -q 'inet 10.199.7.' \
             && grep -qx 'nameserver 10.199.7.1' /etc/resolv.conf && sleep 1",
            Some(NETWORK),
        )])
        .await
        .unwrap();
    let running = loop {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!status.state().is_terminal(), "{status:?}");
        if status.state() == TaskState::TaskRunning {
            break status;
        }
    };
    let addresses: Vec<String> = running
        .container_status
        .iter()
        .flat_map(|c| &c.network_infos)
        .flat_map(|n| &n.ip_addresses)
        .filter_map(|ip| ip.ip_address.clone())
        .collect();
    assert_eq!(addresses.len(), 1, "{running:?}");
    assert!(addresses[0].starts_with("10.199.7."), "{running:?}");
    let finished = framework.wait_terminal(&["on-network"]).await.unwrap();
    assert_eq!(
        finished["on-network"].state(),
        TaskState::TaskFinished,
        "{finished:?}"
    );

    // Without a network, the host's: no plugin interface.
    let status = plugins::run_task(
        &mut framework,
        task("on-host", "! ip -o addr | grep -q 'inet 10.199.7.'", None),
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");

    let status = plugins::run_task(
        &mut framework,
        task("unknown", "true", Some("com.example.nowhere")),
    )
    .await;
    assert_eq!(status.state(), TaskState::TaskFailed, "{status:?}");
    assert!(
        status
            .message
            .clone()
            .unwrap_or_default()
            .contains("unknown CNI network 'com.example.nowhere'"),
        "{status:?}"
    );

    // The namespaces go with their containers (cleanup follows the
    // executors' exit).
    let state = cluster.dir.path().join("agent-0-run/isolators/network/cni");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<_> = std::fs::read_dir(&state)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
