//! `network/cni`: a container whose `ContainerInfo.network_infos` name CNI
//! networks gets a network namespace of its own, attached to each of them
//! by its plugins (`eth0`, `eth1`, … in order, and `lo` brought up by the
//! `loopback` plugin when there is one); a container naming none stays on
//! the host's network, as in Mesos. A name may also be a network plugin's
//! (plugin kind `network`, [`mesos_plugin_api::network::Network`]): that
//! plugin attaches and detaches the interface instead of a CNI chain, and
//! everything else is the same.
//!
//! For each container the isolator keeps, under
//! `<runtime_dir>/isolators/network/cni/<container id>/`, the namespace
//! (`ns`, a bind mount) and what it attached (`networks.json`: each
//! network's configuration as used, its interface and the plugins'
//! result), so that cleanup, after an agent restart too, detaches with
//! the configuration and result of the attach even if the configuration
//! directory changed meanwhile. Status updates report the addresses.
//!
//! As in Mesos, such a container also gets a UTS namespace named by its
//! `ContainerInfo.hostname` (or its ID), and its own `/etc/hosts` (its
//! addresses under that name), `/etc/hostname` and `/etc/resolv.conf`
//! (the plugins' DNS answer, else the host's), written beside the
//! namespace and bound over the host's in a mount namespace of its own; a
//! task in an image gets them in its rootfs the same way.

mod netns;
mod plugin;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mesos_plugin_api::isolator::{
    ContainerSpec, ContainerStatus, Isolator, IsolatorError, LaunchInfo, Namespace, NetworkStatus,
    PortMapping,
};
use mesos_plugin_api::network::{self as network_plugin, Attachment as PluginAttachment};
use serde_json::{Value, json};

pub use plugin::{CniError, Network, PluginDirs};

/// A network plugin, as the isolator holds it.
type PluginNetwork = Arc<dyn network_plugin::Network>;

/// What a container names: a CNI network or a network plugin.
enum Target<'a> {
    Cni(&'a Network),
    Plugin(&'a PluginNetwork),
}

/// What one attachment left behind, as written to `networks.json`.
#[derive(Debug, Clone)]
struct Attached {
    /// For a network plugin, its name and no CNI plugins.
    network: Network,
    /// Whether the network plugin of that name attached it (rather than
    /// a CNI chain).
    by_plugin: bool,
    ifname: String,
    /// A CNI result (a network plugin's answer in that shape).
    result: Value,
}

impl Attached {
    fn to_json(&self) -> Value {
        json!({
            "name": self.network.name,
            "plugins": self.network.plugins,
            "network_plugin": self.by_plugin,
            "ifname": self.ifname,
            "result": self.result,
        })
    }

    fn from_json(value: &Value) -> Option<Attached> {
        Some(Attached {
            network: Network {
                name: value.get("name")?.as_str()?.to_string(),
                plugins: value.get("plugins")?.as_array()?.clone(),
            },
            by_plugin: value
                .get("network_plugin")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ifname: value.get("ifname")?.as_str()?.to_string(),
            result: value.get("result")?.clone(),
        })
    }

    fn status(&self) -> NetworkStatus {
        NetworkStatus {
            name: self.network.name.clone(),
            ip_addresses: plugin::addresses(&self.result),
        }
    }
}

/// A network plugin's answer as a CNI result, so that addresses, status
/// and `resolv.conf` come out of both the same way.
fn cni_result(attached: &network_plugin::Attached) -> Value {
    let mut result = json!({
        "ips": attached.ip_addresses.iter().map(|a| json!({"address": a})).collect::<Vec<_>>(),
    });
    if let Some(dns) = &attached.dns {
        result["dns"] = json!({
            "nameservers": dns.nameservers,
            "domain": dns.domain.clone().unwrap_or_default(),
            "search": dns.search,
            "options": dns.options,
        });
    }
    result
}

/// `resolv.conf` from a result's `dns`, when it names a nameserver.
fn dns(result: &Value) -> Option<String> {
    let dns = result.get("dns")?;
    let list = |key: &str| -> Vec<String> {
        dns.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let nameservers = list("nameservers");
    if nameservers.is_empty() {
        return None;
    }
    let mut text: String = nameservers
        .iter()
        .map(|n| format!("nameserver {n}\n"))
        .collect();
    if let Some(domain) = dns
        .get("domain")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        text.push_str(&format!("domain {domain}\n"));
    }
    for (key, words) in [("search", list("search")), ("options", list("options"))] {
        if !words.is_empty() {
            text.push_str(&format!("{key} {}\n", words.join(" ")));
        }
    }
    Some(text)
}

/// `network/cni`.
pub struct NetworkCni {
    networks: BTreeMap<String, Network>,
    /// Network plugins, by name.
    plugin_networks: BTreeMap<String, PluginNetwork>,
    plugins: PluginDirs,
    /// `<runtime_dir>/isolators/network/cni`.
    root: PathBuf,
    /// By container: what its status updates report.
    attached: Mutex<HashMap<String, Vec<NetworkStatus>>>,
}

impl NetworkCni {
    pub const NAME: &'static str = "network/cni";

    /// Reads every network of `config_dir` and checks that their plugins
    /// are in `plugins`: a network that cannot work stops the agent.
    pub fn new(config_dir: &Path, plugins: PluginDirs, root: PathBuf) -> Result<Self, CniError> {
        let networks = plugin::load_networks(config_dir)?;
        for (network, _) in networks.values() {
            plugins.check(network)?;
        }
        tracing::info!(
            networks = ?networks.keys().collect::<Vec<_>>(),
            "CNI networks loaded"
        );
        Ok(NetworkCni {
            networks: networks
                .into_iter()
                .map(|(name, (network, _))| (name, network))
                .collect(),
            plugin_networks: BTreeMap::new(),
            plugins,
            root,
            attached: Mutex::new(HashMap::new()),
        })
    }

    /// Adds network plugins, named by `NetworkInfo.name` like the CNI
    /// networks; a name both use stops the agent.
    pub fn with_networks(mut self, networks: &[PluginNetwork]) -> Result<Self, CniError> {
        for network in networks {
            let name = network.name().to_string();
            if self.networks.contains_key(&name) {
                return Err(CniError::Shadowed(name));
            }
            self.plugin_networks.insert(name, network.clone());
        }
        Ok(self)
    }

    /// With no network: every container naming one fails to launch.
    pub fn empty(root: PathBuf) -> Self {
        NetworkCni {
            networks: BTreeMap::new(),
            plugin_networks: BTreeMap::new(),
            plugins: PluginDirs(Vec::new()),
            root,
            attached: Mutex::new(HashMap::new()),
        }
    }

    fn failed(message: impl ToString) -> IsolatorError {
        IsolatorError::Failed {
            isolator: Self::NAME,
            message: message.to_string(),
        }
    }

    fn dir(&self, container_id: &str) -> Result<PathBuf, IsolatorError> {
        // Container IDs are the agent's UUIDs; anything else is refused
        // rather than joined into a path.
        if container_id.is_empty()
            || !container_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || container_id.starts_with('.')
        {
            return Err(Self::failed(format!(
                "unusable container id '{container_id}'"
            )));
        }
        Ok(self.root.join(container_id))
    }

    fn record(&self, dir: &Path, attached: &[Attached]) -> Result<(), IsolatorError> {
        let json = Value::Array(attached.iter().map(Attached::to_json).collect());
        let path = dir.join("networks.json");
        let temporary = dir.join("networks.json.tmp");
        std::fs::write(&temporary, json.to_string())
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| IsolatorError::Io {
                isolator: Self::NAME,
                path,
                source,
            })
    }

    fn recorded(dir: &Path) -> Vec<Attached> {
        let path = dir.join("networks.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<Value>>(&bytes)
                .map(|values| values.iter().filter_map(Attached::from_json).collect())
                .unwrap_or_else(|e| {
                    tracing::warn!(path = %path.display(), "unreadable CNI record: {e}");
                    Vec::new()
                }),
            Err(_) => Vec::new(),
        }
    }

    /// Brings `lo` up with the `loopback` plugin, when there is one.
    fn loopback(&self, container_id: &str, netns: &Path) -> Result<(), CniError> {
        let network = Network {
            name: "loopback".into(),
            plugins: vec![json!({"cniVersion": "0.4.0", "name": "loopback", "type": "loopback"})],
        };
        if self.plugins.check(&network).is_err() {
            tracing::debug!("no loopback CNI plugin: lo stays down in containers");
            return Ok(());
        }
        plugin::add(
            &self.plugins,
            &network,
            plugin::Attachment {
                container_id,
                netns,
                ifname: "lo",
            },
        )
        .map(drop)
    }

    /// Attaches the container to each network, recording each as it goes.
    fn attach(
        &self,
        container_id: &str,
        dir: &Path,
        networks: &[Target<'_>],
        port_mappings: &[PortMapping],
    ) -> Result<Vec<Attached>, IsolatorError> {
        let netns = dir.join("ns");
        netns::create(&netns).map_err(|source| IsolatorError::Io {
            isolator: Self::NAME,
            path: netns.clone(),
            source,
        })?;
        self.loopback(container_id, &netns).map_err(Self::failed)?;
        let mut attached = Vec::new();
        for (i, target) in networks.iter().enumerate() {
            let ifname = format!("eth{i}");
            let name = match target {
                Target::Cni(network) => &network.name,
                Target::Plugin(network) => network.name(),
            };
            let mappings: Vec<&PortMapping> =
                port_mappings.iter().filter(|m| m.network == name).collect();
            let next = match target {
                Target::Cni(network) => {
                    let to = plugin::Attachment {
                        container_id,
                        netns: &netns,
                        ifname: &ifname,
                    };
                    let mappings: Vec<(u32, u32, &str)> = mappings
                        .iter()
                        .map(|m| (m.host_port, m.container_port, m.protocol.as_str()))
                        .collect();
                    // Recorded as used, so DEL removes the same forwards.
                    let network = network.with_port_mappings(&mappings);
                    let result = plugin::add(&self.plugins, &network, to).map_err(Self::failed)?;
                    Attached {
                        network,
                        by_plugin: false,
                        ifname,
                        result,
                    }
                }
                Target::Plugin(network) => {
                    let mappings: Vec<PortMapping> = mappings.into_iter().cloned().collect();
                    let to = PluginAttachment {
                        container_id,
                        netns: &netns,
                        ifname: &ifname,
                        port_mappings: &mappings,
                    };
                    // Recorded before the attach, so that cleanup detaches
                    // whatever part of it was done.
                    let mut next = Attached {
                        network: Network {
                            name: network.name().to_string(),
                            plugins: Vec::new(),
                        },
                        by_plugin: true,
                        ifname: ifname.clone(),
                        result: Value::Null,
                    };
                    attached.push(next.clone());
                    self.record(dir, &attached)?;
                    attached.pop();
                    next.result = cni_result(&network.attach(&to).map_err(Self::failed)?);
                    next
                }
            };
            attached.push(next);
            self.record(dir, &attached)?;
        }
        Ok(attached)
    }

    /// Detaches what the record says, releases the namespace and removes
    /// the container's directory; the first failure is reported after
    /// everything else was tried.
    fn detach(&self, container_id: &str, dir: &Path) -> Result<(), IsolatorError> {
        let netns = dir.join("ns");
        let mut first_error = None;
        for attached in Self::recorded(dir).iter().rev() {
            let result = if attached.by_plugin {
                self.detach_plugin(container_id, &netns, attached)
            } else {
                let to = plugin::Attachment {
                    container_id,
                    netns: &netns,
                    ifname: &attached.ifname,
                };
                plugin::del(&self.plugins, &attached.network, to, Some(&attached.result))
                    .map_err(|e| e.to_string())
            };
            if let Err(e) = result {
                tracing::warn!(container_id, "{e}");
                first_error.get_or_insert(Self::failed(e));
            }
        }
        if let Err(source) = netns::remove(&netns) {
            first_error.get_or_insert(IsolatorError::Io {
                isolator: Self::NAME,
                path: netns,
                source,
            });
        }
        if let Err(source) = std::fs::remove_dir_all(dir)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            first_error.get_or_insert(IsolatorError::Io {
                isolator: Self::NAME,
                path: dir.to_path_buf(),
                source,
            });
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Detaches one interface a network plugin attached.
    fn detach_plugin(
        &self,
        container_id: &str,
        netns: &Path,
        attached: &Attached,
    ) -> Result<(), String> {
        let name = &attached.network.name;
        let network = self.plugin_networks.get(name).ok_or_else(|| {
            format!("network plugin '{name}' is no longer loaded: {} of {container_id} is left to the namespace's end", attached.ifname)
        })?;
        network
            .detach(&PluginAttachment {
                container_id,
                netns,
                ifname: &attached.ifname,
                port_mappings: &[],
            })
            .map_err(|e| e.to_string())
    }

    /// The container's `/etc/hosts`, `/etc/hostname` and
    /// `/etc/resolv.conf`, written into `dir`: what to bind where.
    fn etc_files(
        dir: &Path,
        hostname: &str,
        attached: &[Attached],
    ) -> Result<Vec<(PathBuf, PathBuf)>, IsolatorError> {
        let mut hosts =
            String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
        for address in attached.iter().flat_map(|a| plugin::addresses(&a.result)) {
            hosts.push_str(&format!("{address} {hostname}\n"));
        }
        let resolv = attached
            .iter()
            .find_map(|a| dns(&a.result))
            .unwrap_or_else(|| std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        let mut binds = Vec::new();
        for (name, content) in [
            ("hosts", hosts),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", resolv),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(|source| IsolatorError::Io {
                isolator: Self::NAME,
                path: path.clone(),
                source,
            })?;
            binds.push((path, Path::new("/etc").join(name)));
        }
        Ok(binds)
    }

    fn remember(&self, container_id: &str, networks: Vec<NetworkStatus>) {
        if let Ok(mut attached) = self.attached.lock() {
            attached.insert(container_id.to_string(), networks);
        }
    }
}

impl std::fmt::Debug for NetworkCni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkCni")
            .field("networks", &self.networks.keys().collect::<Vec<_>>())
            .field(
                "plugin_networks",
                &self.plugin_networks.keys().collect::<Vec<_>>(),
            )
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Isolator for NetworkCni {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(IsolatorError::Io {
                    isolator: Self::NAME,
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let mut first_error = None;
        for entry in entries.flatten() {
            let container_id = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if live.contains(&container_id) {
                let networks = Self::recorded(&dir).iter().map(Attached::status).collect();
                self.remember(&container_id, networks);
            } else if let Err(e) = self.detach(&container_id, &dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        if spec.networks.is_empty() {
            return Ok(LaunchInfo::default());
        }
        let networks = spec
            .networks
            .iter()
            .map(|name| match self.networks.get(name) {
                Some(network) => Ok(Target::Cni(network)),
                None => self
                    .plugin_networks
                    .get(name)
                    .map(Target::Plugin)
                    .ok_or_else(|| Self::failed(CniError::UnknownNetwork(name.clone()))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dir = self.dir(&spec.container_id)?;
        std::fs::create_dir_all(&dir).map_err(|source| IsolatorError::Io {
            isolator: Self::NAME,
            path: dir.clone(),
            source,
        })?;
        match self.attach(&spec.container_id, &dir, &networks, &spec.port_mappings) {
            Ok(attached) => {
                tracing::info!(
                    container_id = %spec.container_id,
                    networks = ?attached.iter().map(|a| (a.network.name.as_str(), plugin::addresses(&a.result))).collect::<Vec<_>>(),
                    "attached to networks"
                );
                let hostname = spec.hostname.as_deref().unwrap_or(&spec.container_id);
                let file_binds = match Self::etc_files(&dir, hostname, &attached) {
                    Ok(binds) => binds,
                    Err(e) => {
                        if let Err(undo) = self.detach(&spec.container_id, &dir) {
                            tracing::warn!(container_id = %spec.container_id, "undoing an attach: {undo}");
                        }
                        return Err(e);
                    }
                };
                self.remember(
                    &spec.container_id,
                    attached.iter().map(Attached::status).collect(),
                );
                Ok(LaunchInfo {
                    network_namespace: Some(dir.join("ns")),
                    hostname: Some(hostname.to_string()),
                    clone_namespaces: vec![Namespace::Mount],
                    file_binds,
                    ..Default::default()
                })
            }
            Err(e) => {
                if let Err(undo) = self.detach(&spec.container_id, &dir) {
                    tracing::warn!(container_id = %spec.container_id, "undoing a failed attach: {undo}");
                }
                Err(e)
            }
        }
    }

    fn status(&self, container_id: &str) -> Result<ContainerStatus, IsolatorError> {
        let networks = self
            .attached
            .lock()
            .map(|attached| attached.get(container_id).cloned().unwrap_or_default())
            .unwrap_or_default();
        Ok(ContainerStatus { networks })
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        if let Ok(mut attached) = self.attached.lock() {
            attached.remove(container_id);
        }
        let dir = self.dir(container_id)?;
        if !dir.exists() {
            return Ok(());
        }
        self.detach(container_id, &dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "needs root in CI"
        );
        eprintln!("SKIPPED: network namespaces need root");
        false
    }

    /// A plugin that logs `<command> <ifname> <network>` and answers an
    /// address, or fails for the network named `broken`.
    fn fake_plugin(dir: &Path, log: &Path) {
        let script = format!(
            r#"#!/bin/sh
config=$(cat)
name=$(printf '%s' "$config" | sed 's/.*"name":"\([^"]*\)".*/\1/')
echo "$CNI_COMMAND $CNI_IFNAME $name" >> {log}
if [ "$name" = broken ] && [ "$CNI_COMMAND" = ADD ]; then
  echo '{{"code": 7, "msg": "no route"}}'; exit 1
fi
echo '{{"cniVersion": "0.4.0", "ips": [{{"version": "4", "address": "10.0.0.7/24"}}]}}'
"#,
            log = log.display()
        );
        let path = dir.join("fake");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    struct Fixture {
        dir: tempfile::TempDir,
        cni: NetworkCni,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let (configs, plugins) = (dir.path().join("conf"), dir.path().join("bin"));
            std::fs::create_dir_all(&configs).unwrap();
            std::fs::create_dir_all(&plugins).unwrap();
            for name in ["a", "b", "broken"] {
                std::fs::write(
                    configs.join(format!("{name}.conf")),
                    format!(r#"{{"cniVersion": "0.4.0", "name": "{name}", "type": "fake"}}"#),
                )
                .unwrap();
            }
            fake_plugin(&plugins, &dir.path().join("log"));
            let cni = NetworkCni::new(&configs, PluginDirs(vec![plugins]), dir.path().join("run"))
                .unwrap();
            Fixture { dir, cni }
        }

        fn log(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }

        fn container_dir(&self, id: &str) -> PathBuf {
            self.dir.path().join("run").join(id)
        }
    }

    fn spec(id: &str, networks: &[&str]) -> ContainerSpec {
        ContainerSpec {
            container_id: id.into(),
            networks: networks.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_is_attached_to_its_networks_and_detached_in_reverse() {
        if !root() {
            return;
        }
        let f = Fixture::new();
        let launch = f.cni.prepare(&spec("c1", &["a", "b"])).unwrap();
        let ns = f.container_dir("c1").join("ns");
        assert_eq!(launch.network_namespace.as_deref(), Some(ns.as_path()));
        // Named by its ID, with its own /etc files in a mount namespace.
        assert_eq!(launch.hostname.as_deref(), Some("c1"));
        assert_eq!(launch.clone_namespaces, [Namespace::Mount]);
        let targets: Vec<&Path> = launch.file_binds.iter().map(|(_, t)| t.as_path()).collect();
        assert_eq!(
            targets,
            [
                Path::new("/etc/hosts"),
                Path::new("/etc/hostname"),
                Path::new("/etc/resolv.conf")
            ]
        );
        let hosts = std::fs::read_to_string(&launch.file_binds[0].0).unwrap();
        assert!(hosts.starts_with("127.0.0.1 localhost\n"), "{hosts}");
        assert!(hosts.ends_with("10.0.0.7 c1\n10.0.0.7 c1\n"), "{hosts}");
        assert_eq!(f.log(), ["ADD eth0 a", "ADD eth1 b"]);
        let status = f.cni.status("c1").unwrap();
        assert_eq!(
            status.networks,
            [
                NetworkStatus {
                    name: "a".into(),
                    ip_addresses: vec!["10.0.0.7".into()]
                },
                NetworkStatus {
                    name: "b".into(),
                    ip_addresses: vec!["10.0.0.7".into()]
                }
            ]
        );
        f.cni.cleanup("c1").unwrap();
        assert_eq!(f.log()[2..], ["DEL eth1 b", "DEL eth0 a"]);
        assert!(!f.container_dir("c1").exists());
        assert!(f.cni.status("c1").unwrap().networks.is_empty());
        // A container without networks stays on the host's.
        assert_eq!(
            f.cni.prepare(&spec("c2", &[])).unwrap(),
            LaunchInfo::default()
        );
    }

    /// A network plugin that logs its calls into the fixture's log, as
    /// the fake CNI plugin does, and fails to attach when told to.
    struct Logged {
        name: &'static str,
        log: PathBuf,
        fail: bool,
    }

    impl network_plugin::Network for Logged {
        fn name(&self) -> &str {
            self.name
        }
        fn attach(
            &self,
            to: &PluginAttachment<'_>,
        ) -> Result<network_plugin::Attached, network_plugin::NetworkError> {
            let line = format!("attach {} {}\n", to.ifname, to.port_mappings.len());
            let mut log = std::fs::read_to_string(&self.log).unwrap_or_default();
            log.push_str(&line);
            std::fs::write(&self.log, log).unwrap();
            if self.fail {
                return Err(network_plugin::NetworkError::Failed {
                    network: "com.example.net".into(),
                    message: "no address left".into(),
                });
            }
            Ok(network_plugin::Attached {
                ip_addresses: vec!["10.9.0.2/16".into()],
                dns: Some(network_plugin::Dns {
                    nameservers: vec!["10.9.0.1".into()],
                    ..Default::default()
                }),
            })
        }
        fn detach(&self, to: &PluginAttachment<'_>) -> Result<(), network_plugin::NetworkError> {
            let mut log = std::fs::read_to_string(&self.log).unwrap_or_default();
            log.push_str(&format!("detach {}\n", to.ifname));
            std::fs::write(&self.log, log).unwrap();
            Ok(())
        }
    }

    fn with_plugin(f: Fixture, fail: bool) -> Fixture {
        let network: PluginNetwork = Arc::new(Logged {
            name: "com.example.net",
            log: f.dir.path().join("log"),
            fail,
        });
        let cni = f.cni.with_networks(&[network]).unwrap();
        Fixture { dir: f.dir, cni }
    }

    #[test]
    fn a_network_plugin_attaches_beside_cni_networks() {
        if !root() {
            return;
        }
        let f = with_plugin(Fixture::new(), false);
        let mut spec = spec("c1", &["com.example.net", "a"]);
        spec.port_mappings = vec![PortMapping {
            network: "com.example.net".into(),
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        }];
        let launch = f.cni.prepare(&spec).unwrap();
        assert_eq!(f.log(), ["attach eth0 1", "ADD eth1 a"]);
        assert_eq!(
            f.cni.status("c1").unwrap().networks[0],
            NetworkStatus {
                name: "com.example.net".into(),
                ip_addresses: vec!["10.9.0.2".into()]
            }
        );
        // The plugin's resolver is the container's.
        let resolv = std::fs::read_to_string(&launch.file_binds[2].0).unwrap();
        assert_eq!(resolv, "nameserver 10.9.0.1\n");
        f.cni.cleanup("c1").unwrap();
        assert_eq!(f.log()[2..], ["DEL eth1 a", "detach eth0"]);
        assert!(!f.container_dir("c1").exists());
    }

    #[test]
    fn a_failed_plugin_attach_is_detached_with_what_came_before() {
        if !root() {
            return;
        }
        let f = with_plugin(Fixture::new(), true);
        let err = f
            .cni
            .prepare(&spec("c1", &["a", "com.example.net"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("network com.example.net: no address left"),
            "{err}"
        );
        assert_eq!(
            f.log(),
            ["ADD eth0 a", "attach eth1 0", "detach eth1", "DEL eth0 a"]
        );
        assert!(!f.container_dir("c1").exists());
    }

    #[test]
    fn a_plugin_cannot_take_a_cni_networks_name() {
        let f = Fixture::new();
        let network: PluginNetwork = Arc::new(Logged {
            name: "a",
            log: f.dir.path().join("log"),
            fail: false,
        });
        let err = f.cni.with_networks(&[network]).unwrap_err().to_string();
        assert_eq!(
            err,
            "network 'a' is both a CNI network and a network plugin"
        );
    }

    #[test]
    fn a_failed_attach_undoes_the_networks_before_it() {
        if !root() {
            return;
        }
        let f = Fixture::new();
        let error = f
            .cni
            .prepare(&spec("c1", &["a", "broken"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "network/cni: CNI plugin 'fake' ADD for network 'broken': no route"
        );
        assert_eq!(f.log(), ["ADD eth0 a", "ADD eth1 broken", "DEL eth0 a"]);
        assert!(!f.container_dir("c1").exists());
        let error = f
            .cni
            .prepare(&spec("c2", &["nope"]))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "network/cni: unknown CNI network 'nope'");
    }

    #[test]
    fn recovery_keeps_live_containers_and_detaches_the_others() {
        if !root() {
            return;
        }
        let f = Fixture::new();
        f.cni.prepare(&spec("live", &["a"])).unwrap();
        f.cni.prepare(&spec("gone", &["b"])).unwrap();
        // A restarted agent: a new isolator over the same directories.
        let restarted = Fixture {
            cni: NetworkCni::new(
                &f.dir.path().join("conf"),
                PluginDirs(vec![f.dir.path().join("bin")]),
                f.dir.path().join("run"),
            )
            .unwrap(),
            dir: f.dir,
        };
        restarted.cni.recover(&["live".to_string()]).unwrap();
        assert_eq!(restarted.log()[2..], ["DEL eth0 b"]);
        assert!(!restarted.container_dir("gone").exists());
        assert_eq!(
            restarted.cni.status("live").unwrap().networks[0].ip_addresses,
            ["10.0.0.7"]
        );
        restarted.cni.cleanup("live").unwrap();
        assert!(!restarted.container_dir("live").exists());
    }

    #[test]
    fn a_results_dns_becomes_resolv_conf() {
        let result = json!({"dns": {"nameservers": ["10.0.0.1", "10.0.0.2"],
                                    "domain": "mesos", "search": ["a.mesos", "mesos"],
                                    "options": ["ndots:2"]}});
        assert_eq!(
            dns(&result).unwrap(),
            "nameserver 10.0.0.1\nnameserver 10.0.0.2\ndomain mesos\nsearch a.mesos mesos\noptions ndots:2\n"
        );
        assert_eq!(dns(&json!({"dns": {"search": ["x"]}})), None);
        assert_eq!(dns(&json!({})), None);
    }

    #[test]
    fn container_ids_never_become_paths_elsewhere() {
        let cni = NetworkCni::empty(PathBuf::from("/nonexistent"));
        for id in ["", "..", "../x", "a/b", ".hidden"] {
            assert!(cni.dir(id).is_err(), "{id}");
        }
        assert!(cni.dir("0b9f-4c1e_x.1").is_ok());
    }
}
