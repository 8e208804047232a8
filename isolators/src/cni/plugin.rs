//! CNI networks and their plugins: the configurations in
//! `--network_cni_config_dir` (a single plugin's `.conf` or a `.conflist`
//! chain) and the plugin calls of the CNI specification: the plugin
//! binary, found in `--network_cni_plugins_dir`, run with `CNI_*`
//! variables and the network's configuration on stdin, answering a result
//! or an error as JSON on stdout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// How long one plugin call may take before it is killed.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("cannot read --network_cni_config_dir {path}: {source}")]
    ConfigDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI configuration {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("CNI networks '{name}' in both {first} and {second}")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("CNI plugin '{plugin}' of network '{network}' is in none of {dirs}")]
    MissingPlugin {
        network: String,
        plugin: String,
        dirs: String,
    },
    #[error("unknown CNI network '{0}'")]
    UnknownNetwork(String),
    #[error("network '{0}' is both a CNI network and a network plugin")]
    Shadowed(String),
    #[error("CNI plugin '{plugin}' {command} for network '{network}': {message}")]
    Call {
        plugin: String,
        command: &'static str,
        network: String,
        message: String,
    },
}

/// One network: its name and the plugins to call, in order, each with
/// its own configuration (`name` and `cniVersion` included, as the
/// specification has runtimes pass them).
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub plugins: Vec<Value>,
}

/// The plugin binary a configuration names.
fn plugin_type(config: &Value) -> Option<&str> {
    config.get("type").and_then(Value::as_str)
}

impl Network {
    /// Parses a `.conf` (one plugin) or a `.conflist` (`plugins`).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Network, CniError> {
        let invalid = |message: String| CniError::Config {
            path: path.to_path_buf(),
            message,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("no \"name\"".into()))?
            .to_string();
        let version = value.get("cniVersion").cloned();
        let plugins: Vec<Value> = match value.get("plugins") {
            Some(Value::Array(plugins)) if !plugins.is_empty() => plugins.clone(),
            Some(_) => return Err(invalid("\"plugins\" must be a non-empty list".into())),
            None => vec![value.clone()],
        };
        let plugins = plugins
            .into_iter()
            .map(|plugin| {
                let Value::Object(mut plugin) = plugin else {
                    return Err(invalid("a plugin's configuration is not an object".into()));
                };
                if plugin.get("type").and_then(Value::as_str).is_none() {
                    return Err(invalid("a plugin has no \"type\"".into()));
                }
                plugin.insert("name".into(), Value::String(name.clone()));
                if let Some(version) = &version {
                    plugin.insert("cniVersion".into(), version.clone());
                }
                Ok(Value::Object(plugin))
            })
            .collect::<Result<_, _>>()?;
        Ok(Network { name, plugins })
    }
}

impl Network {
    /// This network for a container whose `mappings` it forwards: the
    /// plugins that declare the `portMappings` capability (`portmap`) get
    /// them as `runtimeConfig`, as CNI runtimes pass them.
    pub fn with_port_mappings(&self, mappings: &[(u32, u32, &str)]) -> Network {
        if mappings.is_empty() {
            return self.clone();
        }
        let entries: Vec<Value> = mappings
            .iter()
            .map(|(host, container, protocol)| {
                serde_json::json!({"hostPort": host, "containerPort": container, "protocol": protocol})
            })
            .collect();
        let plugins = self
            .plugins
            .iter()
            .map(|plugin| {
                let wants = plugin
                    .pointer("/capabilities/portMappings")
                    .and_then(Value::as_bool)
                    == Some(true);
                let mut plugin = plugin.clone();
                if let (true, Value::Object(map)) = (wants, &mut plugin) {
                    map.insert(
                        "runtimeConfig".into(),
                        serde_json::json!({ "portMappings": entries }),
                    );
                }
                plugin
            })
            .collect();
        Network {
            name: self.name.clone(),
            plugins,
        }
    }
}

/// The networks of `--network_cni_config_dir`, by name. Files that are not
/// `.conf`, `.conflist` or `.json` are skipped, as CNI runtimes do.
pub fn load_networks(dir: &Path) -> Result<BTreeMap<String, (Network, PathBuf)>, CniError> {
    let dir_error = |source| CniError::ConfigDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(dir_error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(dir_error)?;
    paths.sort();
    let mut networks = BTreeMap::new();
    for path in paths {
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "conf" | "conflist" | "json"));
        if !wanted || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| CniError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let network = Network::parse(&path, &bytes)?;
        if let Some((_, first)) = networks.get(&network.name) {
            return Err(CniError::Duplicate {
                name: network.name,
                first: PathBuf::clone(first),
                second: path,
            });
        }
        networks.insert(network.name.clone(), (network, path));
    }
    Ok(networks)
}

/// Where the plugin binaries are: `--network_cni_plugins_dir`, a
/// colon-separated search path.
#[derive(Debug, Clone)]
pub struct PluginDirs(pub Vec<PathBuf>);

impl PluginDirs {
    pub fn parse(flag: &str) -> Self {
        PluginDirs(
            flag.split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect(),
        )
    }

    fn find(&self, plugin: &str) -> Option<PathBuf> {
        // A type is a file name, never a path.
        if plugin.contains('/') {
            return None;
        }
        self.0
            .iter()
            .map(|dir| dir.join(plugin))
            .find(|path| path.is_file())
    }

    fn search_path(&self) -> String {
        self.0
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Checks that every plugin of `network` is there.
    pub fn check(&self, network: &Network) -> Result<(), CniError> {
        for plugin in network.plugins.iter().filter_map(plugin_type) {
            if self.find(plugin).is_none() {
                return Err(CniError::MissingPlugin {
                    network: network.name.clone(),
                    plugin: plugin.to_string(),
                    dirs: self.search_path(),
                });
            }
        }
        Ok(())
    }
}

/// The container an ADD or DEL is for.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
}

/// Runs the network's plugins with ADD, each given the previous one's
/// result; answers the last result.
pub fn add(dirs: &PluginDirs, network: &Network, to: Attachment<'_>) -> Result<Value, CniError> {
    let mut previous: Option<Value> = None;
    for config in &network.plugins {
        let mut config = config.clone();
        if let (Some(result), Value::Object(map)) = (&previous, &mut config) {
            map.insert("prevResult".into(), result.clone());
        }
        previous = Some(call(dirs, network, &config, "ADD", to)?);
    }
    previous.ok_or_else(|| CniError::UnknownNetwork(network.name.clone()))
}

/// Runs the network's plugins with DEL, in reverse order, each given the
/// ADD's result.
pub fn del(
    dirs: &PluginDirs,
    network: &Network,
    to: Attachment<'_>,
    result: Option<&Value>,
) -> Result<(), CniError> {
    for config in network.plugins.iter().rev() {
        let mut config = config.clone();
        if let (Some(result), Value::Object(map)) = (result, &mut config) {
            map.insert("prevResult".into(), result.clone());
        }
        call(dirs, network, &config, "DEL", to)?;
    }
    Ok(())
}

fn call(
    dirs: &PluginDirs,
    network: &Network,
    config: &Value,
    command: &'static str,
    to: Attachment<'_>,
) -> Result<Value, CniError> {
    let plugin = plugin_type(config).unwrap_or_default().to_string();
    let failed = |message: String| CniError::Call {
        plugin: plugin.clone(),
        command,
        network: network.name.clone(),
        message,
    };
    let binary = dirs.find(&plugin).ok_or_else(|| {
        failed(format!(
            "no such plugin in {dirs}",
            dirs = dirs.search_path()
        ))
    })?;
    let mut child = Command::new(&binary)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", to.container_id)
        .env("CNI_NETNS", to.netns)
        .env("CNI_IFNAME", to.ifname)
        .env("CNI_PATH", dirs.search_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", binary.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that exits without reading is judged by its answer.
        let _ = stdin.write_all(config.to_string().as_bytes());
    }
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let read_all = |pipe: Option<std::process::ChildStdout>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read_all(stdout);
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = stderr {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let status =
        wait_until(&mut child, Instant::now() + CALL_TIMEOUT).map_err(|e| failed(e.to_string()))?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let answer: Option<Value> = serde_json::from_slice(&stdout).ok();
    if !status.success() {
        // The specification's error: {"code", "msg", "details"}.
        let message = answer
            .as_ref()
            .and_then(|a| a.get("msg").and_then(Value::as_str))
            .map(|msg| {
                match answer
                    .as_ref()
                    .and_then(|a| a.get("details").and_then(Value::as_str))
                {
                    Some(details) if !details.is_empty() => format!("{msg}: {details}"),
                    _ => msg.to_string(),
                }
            })
            .unwrap_or_else(|| format!("{status}; stderr: {}", stderr.trim()));
        return Err(failed(message));
    }
    match (command, answer) {
        ("ADD", Some(result)) => Ok(result),
        ("ADD", None) => Err(failed(format!(
            "answered no JSON result: {}",
            String::from_utf8_lossy(&stdout).trim()
        ))),
        _ => Ok(Value::Object(Map::new())),
    }
}

fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Result<std::process::ExitStatus, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not answer within {CALL_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The addresses in a result, without their prefix length: `ips` (CNI
/// 0.3 and later) or `ip4`/`ip6` (0.1, 0.2).
pub fn addresses(result: &Value) -> Vec<String> {
    let strip = |cidr: &str| cidr.split('/').next().unwrap_or(cidr).to_string();
    let mut out: Vec<String> = result
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.get("address").and_then(Value::as_str))
        .map(strip)
        .collect();
    for key in ["ip4", "ip6"] {
        if let Some(ip) = result
            .get(key)
            .and_then(|v| v.get("ip"))
            .and_then(Value::as_str)
        {
            out.push(strip(ip));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conf_and_a_conflist_are_both_networks() {
        let conf = Network::parse(
            Path::new("a.conf"),
            br#"{"cniVersion": "0.4.0", "name": "a", "type": "bridge", "bridge": "b0"}"#,
        )
        .unwrap();
        assert_eq!(conf.name, "a");
        assert_eq!(conf.plugins.len(), 1);
        assert_eq!(conf.plugins[0]["bridge"], "b0");
        let list = Network::parse(
            Path::new("b.conflist"),
            br#"{"cniVersion": "1.0.0", "name": "b",
                 "plugins": [{"type": "bridge"}, {"type": "portmap", "name": "ignored"}]}"#,
        )
        .unwrap();
        assert_eq!(list.plugins.len(), 2);
        for plugin in &list.plugins {
            assert_eq!(plugin["name"], "b");
            assert_eq!(plugin["cniVersion"], "1.0.0");
        }
    }

    #[test]
    fn bad_configurations_name_the_file_and_the_problem() {
        for (json, expected) in [
            ("not json", "expected ident"),
            (r#"{"type": "bridge"}"#, "no \"name\""),
            (r#"{"name": "x"}"#, "no \"type\""),
            (r#"{"name": "x", "plugins": []}"#, "non-empty list"),
            (r#"{"name": "x", "plugins": [1]}"#, "not an object"),
        ] {
            let error = Network::parse(Path::new("/etc/cni/x.conf"), json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("CNI configuration /etc/cni/x.conf: "),
                "{error}"
            );
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn the_config_dir_holds_one_network_per_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.conf"),
            r#"{"name": "a", "type": "bridge"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("README"), "not a network").unwrap();
        let networks = load_networks(dir.path()).unwrap();
        assert_eq!(networks.keys().collect::<Vec<_>>(), ["a"]);
        std::fs::write(
            dir.path().join("b.conf"),
            r#"{"name": "a", "type": "macvlan"}"#,
        )
        .unwrap();
        let error = load_networks(dir.path()).unwrap_err().to_string();
        assert!(error.contains("CNI networks 'a' in both"), "{error}");
    }

    #[test]
    fn plugins_are_looked_up_in_the_search_path_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bridge"), "").unwrap();
        let dirs = PluginDirs::parse(&format!("/nonexistent:{}", dir.path().display()));
        let network = |plugin: &str| Network {
            name: "n".into(),
            plugins: vec![json!({"type": plugin})],
        };
        dirs.check(&network("bridge")).unwrap();
        let error = dirs.check(&network("../bridge")).unwrap_err().to_string();
        assert!(
            error.contains("plugin '../bridge' of network 'n' is in none of /nonexistent:"),
            "{error}"
        );
    }

    #[test]
    fn port_mappings_go_to_the_plugins_that_take_them() {
        let network = Network {
            name: "n".into(),
            plugins: vec![
                json!({"type": "bridge"}),
                json!({"type": "portmap", "capabilities": {"portMappings": true}}),
            ],
        };
        let mapped = network.with_port_mappings(&[(31080, 8080, "tcp")]);
        assert_eq!(mapped.plugins[0], network.plugins[0]);
        assert_eq!(
            mapped.plugins[1]["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 31080, "containerPort": 8080, "protocol": "tcp"}]})
        );
        assert_eq!(network.with_port_mappings(&[]).plugins, network.plugins);
    }

    #[test]
    fn results_of_every_version_give_their_addresses() {
        let v1 = json!({"ips": [{"address": "10.1.0.5/24"}, {"address": "fd00::5/64"}]});
        assert_eq!(addresses(&v1), ["10.1.0.5", "fd00::5"]);
        let v02 = json!({"ip4": {"ip": "10.2.0.9/16"}});
        assert_eq!(addresses(&v02), ["10.2.0.9"]);
    }

    /// A plugin that is a shell script: what it answers and how it exits.
    fn script_plugin(dir: &Path, body: &str) -> PluginDirs {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        PluginDirs(vec![dir.to_path_buf()])
    }

    fn attachment() -> Attachment<'static> {
        Attachment {
            container_id: "c1",
            netns: Path::new("/var/run/ns"),
            ifname: "eth0",
        }
    }

    #[test]
    fn plugins_get_the_cni_environment_and_config_and_chain_results() {
        let dir = tempfile::tempdir().unwrap();
        // Echoes what it was given as its result.
        let dirs = script_plugin(
            dir.path(),
            r#"config=$(cat); printf '{"cmd":"%s","id":"%s","netns":"%s","if":"%s","config":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$config""#,
        );
        let network = Network {
            name: "n".into(),
            plugins: vec![
                json!({"type": "fake", "step": 1}),
                json!({"type": "fake", "step": 2}),
            ],
        };
        let result = add(&dirs, &network, attachment()).unwrap();
        assert_eq!(result["cmd"], "ADD");
        assert_eq!(result["id"], "c1");
        assert_eq!(result["netns"], "/var/run/ns");
        assert_eq!(result["if"], "eth0");
        assert_eq!(result["config"]["step"], 2);
        assert_eq!(result["config"]["prevResult"]["config"]["step"], 1);
        del(&dirs, &network, attachment(), Some(&result)).unwrap();
    }

    #[test]
    fn a_plugins_error_is_reported_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = script_plugin(
            dir.path(),
            r#"cat >/dev/null; echo '{"code": 11, "msg": "no addresses left", "details": "range full"}'; exit 1"#,
        );
        let network = Network {
            name: "n".into(),
            plugins: vec![json!({"type": "fake"})],
        };
        let error = add(&dirs, &network, attachment()).unwrap_err().to_string();
        assert_eq!(
            error,
            "CNI plugin 'fake' ADD for network 'n': no addresses left: range full"
        );
        let dirs = script_plugin(dir.path(), "echo oops >&2; exit 3");
        let error = add(&dirs, &network, attachment()).unwrap_err().to_string();
        assert!(error.contains("exit status: 3; stderr: oops"), "{error}");
        let dirs = script_plugin(dir.path(), "cat >/dev/null; echo not-json");
        let error = add(&dirs, &network, attachment()).unwrap_err().to_string();
        assert!(
            error.contains("answered no JSON result: not-json"),
            "{error}"
        );
    }
}
