//! `network/cni` with Debian's real CNI plugins (bridge, host-local,
//! firewall, loopback), through a real master and agent: two tasks on a
//! bridge network get addresses of its subnet, reported in their status
//! updates, and reach each other; a task naming no network stays on the
//! host's; a task naming an unknown network fails, naming it; and once
//! the tasks are gone their namespaces and addresses are released. Needs
//! root and `containernetworking-plugins`; skipped with the reason
//! otherwise, and a failure with `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use mesos_proto::v1::{self, TaskState, task_status::Reason};
use mesos_tests::cluster::{Cluster, Options, entries};
use mesos_tests::framework::Framework;
use mesos_tests::plugins::command_task;
use mesos_tests::require_root;

const PLUGINS: &str = "/usr/lib/cni";
const SUBNET_PREFIX: &str = "10.231.7.";
const BRIDGE: &str = "mesos-test0";
/// The agent's address: executors in a container's network namespace
/// reach the agent through the bridge's gateway, so it cannot be
/// 127.0.0.1 (as with Mesos). The host's `lo` holds it (dummy links need
/// a module this kernel may not have).
const AGENT_IP: &str = "10.231.8.1";
/// Forwarded to the server task's port 8080 by the portmap plugin.
const HOST_PORT: u32 = 31080;

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes the agent's address and the plugin's bridge, whatever the
/// test's outcome.
struct LinksGuard;

impl Drop for LinksGuard {
    fn drop(&mut self) {
        ip(&["link", "delete", BRIDGE]);
        ip(&["addr", "delete", &format!("{AGENT_IP}/32"), "dev", "lo"]);
    }
}

/// `command` on the CNI networks named.
fn task(id: &str, command: &str, networks: &[&str]) -> v1::TaskInfo {
    let mut task = command_task(id, command);
    if !networks.is_empty() {
        task.container = Some(v1::ContainerInfo {
            r#type: v1::container_info::Type::Mesos as i32,
            hostname: Some(id.to_string()),
            network_infos: networks
                .iter()
                .map(|name| v1::NetworkInfo {
                    name: Some(name.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    task
}

/// The addresses a status update reports for the task's container.
fn addresses(status: &v1::TaskStatus) -> Vec<String> {
    status
        .container_status
        .iter()
        .flat_map(|c| &c.network_infos)
        .flat_map(|n| &n.ip_addresses)
        .filter_map(|ip| ip.ip_address.clone())
        .collect()
}

async fn running(framework: &mut Framework, id: &str) -> v1::TaskStatus {
    loop {
        let status = framework
            .next_update(Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!status.state().is_terminal(), "{status:?}");
        if status.task_id.value == id && status.state() == TaskState::TaskRunning {
            return status;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_a_bridge_network_get_addresses_and_reach_each_other() {
    let have_plugins = ["bridge", "host-local", "firewall", "loopback"]
        .iter()
        .all(|p| Path::new(PLUGINS).join(p).exists());
    if !require_root(
        have_plugins,
        "CNI tests need root and the CNI plugins (apt-get install containernetworking-plugins)",
    ) {
        return;
    }
    let _links = LinksGuard;
    ip(&["addr", "delete", &format!("{AGENT_IP}/32"), "dev", "lo"]);
    assert!(
        ip(&["addr", "add", &format!("{AGENT_IP}/32"), "dev", "lo"]),
        "cannot give the agent an address on lo"
    );
    let dir = tempfile::tempdir().unwrap();
    let (configs, ipam) = (dir.path().join("cni"), dir.path().join("ipam"));
    std::fs::create_dir_all(&configs).unwrap();
    // Docker's FORWARD policy drops bridged traffic; the firewall plugin
    // lets the containers' through.
    std::fs::write(
        configs.join("test.conflist"),
        serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "mesos-test",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": true,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "subnet": format!("{SUBNET_PREFIX}0/24"),
                        "dataDir": ipam,
                        // Through the bridge's address to the agent.
                        "routes": [{"dst": "0.0.0.0/0"}],
                    }
                },
                {"type": "firewall"},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let cluster = Cluster::start_with(Options {
        agent_flags: vec![
            format!("--ip={AGENT_IP}"),
            "--isolation=posix/cpu,posix/mem,network/cni".into(),
            format!("--network_cni_config_dir={}", configs.display()),
            format!("--network_cni_plugins_dir={PLUGINS}"),
        ],
        ..Options::default()
    });
    let mut framework = Framework::subscribe(&cluster.master, "cni", false)
        .await
        .unwrap();

    // Serves its sandbox on port 8080, forwarded from the host's 31080.
    let mut server = task(
        "server",
        "echo served > index.html && exec busybox httpd -f -p 8080 -h .",
        &["mesos-test"],
    );
    if let Some(network) = server
        .container
        .as_mut()
        .and_then(|c| c.network_infos.first_mut())
    {
        network.port_mappings.push(v1::network_info::PortMapping {
            host_port: HOST_PORT,
            container_port: 8080,
            protocol: None,
        });
    }
    framework.launch_tasks(vec![server]).await.unwrap();
    let server = running(&mut framework, "server").await;
    let server_ip = match addresses(&server).as_slice() {
        [ip] if ip.starts_with(SUBNET_PREFIX) => ip.clone(),
        other => panic!("server addresses {other:?}: {server:?}"),
    };

    // The host port reaches the server inside its namespace.
    assert_eq!(fetch_through_the_host_port().await, "served");

    let host_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let client = format!(
        "busybox ip -4 addr show eth0 | grep -q 'inet {SUBNET_PREFIX}' && \
         busybox ip link show lo | grep -q UP && \
         test \"$(hostname)\" = client && grep -q '^{SUBNET_PREFIX}.* client$' /etc/hosts && \
         busybox ping -c 1 -W 5 {server_ip}"
    );
    framework
        .launch_tasks(vec![
            task("client", &client, &["mesos-test"]),
            task(
                "host",
                &format!(
                    "test \"$(readlink /proc/self/ns/net)\" = '{}'",
                    host_netns.display()
                ),
                &[],
            ),
            task("elsewhere", "true", &["no-such-network"]),
        ])
        .await
        .unwrap();
    let done = framework
        .wait_terminal(&["client", "host", "elsewhere"])
        .await
        .unwrap();
    for id in ["client", "host"] {
        if done[id].state() != TaskState::TaskFinished {
            cluster.dump_logs();
            panic!("{id}: {:?}", done[id]);
        }
    }
    let client_ips = addresses(&done["client"]);
    assert!(
        client_ips.len() == 1
            && client_ips[0].starts_with(SUBNET_PREFIX)
            && client_ips[0] != server_ip,
        "{client_ips:?}"
    );
    assert!(addresses(&done["host"]).is_empty());
    // The client's hostname and /etc/hosts were its own.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .contains(" client\n")
    );
    let elsewhere = &done["elsewhere"];
    assert_eq!(elsewhere.state(), TaskState::TaskFailed, "{elsewhere:?}");
    assert_eq!(elsewhere.reason(), Reason::ContainerLaunchFailed);
    assert!(
        elsewhere
            .message()
            .contains("network/cni: unknown CNI network 'no-such-network'"),
        "{elsewhere:?}"
    );

    framework.client.kill(&server.task_id).await.unwrap();
    framework.wait_terminal(&["server"]).await.unwrap();
    // Cleanup follows the executors' exit: namespaces unmounted, the
    // addresses back in the pool.
    let state = cluster.dir.path().join("agent-0-run/isolators/network/cni");
    let leases = ipam.join("mesos-test");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (left, leased) = (
            entries(&state),
            entries(&leases)
                .into_iter()
                .filter(|f| f.starts_with(SUBNET_PREFIX))
                .collect::<Vec<_>>(),
        );
        if left.is_empty() && leased.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: containers {left:?}, leases {leased:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET /index.html from the server task through the host's forwarded
/// port; its body.
async fn fetch_through_the_host_port() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect((AGENT_IP, HOST_PORT as u16)).await?;
            stream
                .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
                .await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        match attempt.await {
            Ok(response) if response.starts_with("HTTP/1.") => {
                return response
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            }
            other => {
                // The server may not listen yet.
                assert!(
                    Instant::now() < deadline,
                    "no answer on {AGENT_IP}:{HOST_PORT}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
