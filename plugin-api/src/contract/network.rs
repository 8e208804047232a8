//! The contract suite for networks. A network changes the kernel, not
//! its answers alone, so the observation includes what `ip` sees in the
//! container's namespace after each step. Both forms are observed in
//! turn in one scratch namespace, which must be empty again when each is
//! done: a network that leaves an interface behind fails the comparison.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Limits, load_dylib, same};
use crate::adapter;
use crate::host::manifest;
use crate::network::{Attachment, Network};
use crate::sdk::NetworkPlugin;

/// What the agent can observe of a network, each call's result or error
/// as text, and the namespace's IPv4 addresses after the steps that
/// change them: container `c1` attached as `eth0` and `eth1`, then as
/// `eth0` again (which must leave the first attachment alone), `c2` with
/// an interface name no kernel takes, `c3` into a namespace that does not
/// exist (`missing`), then `c1` detached twice (a detach must be
/// idempotent, as CNI's DEL is).
pub fn observe_network(network: &dyn Network, netns: &Path, missing: &Path) -> Vec<String> {
    let text = |e: crate::network::NetworkError| e.to_string();
    let on = |container_id, netns, ifname| Attachment {
        container_id,
        netns,
        ifname,
        port_mappings: &[],
    };
    let (eth0, eth1) = (on("c1", netns, "eth0"), on("c1", netns, "eth1"));
    vec![
        format!("{:?}", network.attach(&eth0).map_err(text)),
        format!("{:?}", network.attach(&eth1).map_err(text)),
        addresses(netns),
        format!("{:?}", network.attach(&eth0).map_err(text)),
        format!(
            "{:?}",
            network.attach(&on("c2", netns, "bad/name")).map_err(text)
        ),
        format!(
            "{:?}",
            network.attach(&on("c3", missing, "eth0")).map_err(text)
        ),
        format!("{:?}", network.detach(&eth1).map_err(text)),
        format!("{:?}", network.detach(&eth0).map_err(text)),
        addresses(netns),
        format!("{:?}", network.detach(&eth0).map_err(text)),
    ]
}

/// `addresses: eth0 10.1.0.2/24, ...` of the namespace's interfaces but
/// loopback, sorted.
fn addresses(netns: &Path) -> String {
    let output = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["ip", "-o", "-4", "addr", "show"])
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            return format!(
                "addresses: cannot list: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Err(e) => return format!("addresses: cannot run nsenter: {e}"),
    };
    // `2: eth0    inet 10.1.0.2/24 brd ... scope global eth0\ ...`
    let mut seen: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            let ifname = words.next()?;
            let address = words.skip_while(|w| *w != "inet").nth(1)?;
            (ifname != "lo").then(|| format!("{ifname} {address}"))
        })
        .collect();
    seen.sort();
    format!("addresses: {}", seen.join(", "))
}

/// A network namespace of the test's own, deleted when dropped (with
/// whatever interfaces a failed observation left in it).
struct ScratchNetns {
    name: String,
}

impl ScratchNetns {
    fn new(name: String) -> Result<Self, String> {
        ip(&["netns", "add", &name])
            .map_err(|e| format!("a scratch network namespace needs root and iproute2: {e}"))?;
        Ok(Self { name })
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            tracing::warn!(
                netns = self.name,
                "cannot delete the scratch namespace: {e}"
            );
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// [`super::compare`] for a network plugin configured with `config`,
/// observed with [`observe_network`] in a scratch namespace (which needs
/// root), one form after the other.
pub fn compare_network<P: NetworkPlugin>(
    artifact: &Path,
    config: &[u8],
    limits: Limits,
) -> Result<Vec<String>, String> {
    let builtin = adapter::builtin_network::<P>(config, limits.call_timeout, limits.policy)
        .map_err(|e| format!("built-in form: {e}"))?;
    let dylib = load_dylib(
        P::NAME,
        manifest::Kind::Network,
        artifact,
        limits,
        Some(config),
    )?;
    let network = dylib
        .network()
        .ok_or("dylib form: loaded as another kind")?;

    let netns = ScratchNetns::new(format!("mesos-contract-{}", std::process::id()))?;
    let missing = netns.path().with_extension("missing");
    let seen_builtin = observe_network(&builtin, &netns.path(), &missing);
    let seen_dylib = observe_network(&*network, &netns.path(), &missing);
    same(seen_builtin, seen_dylib, "dylib")
}
