//! An example network plugin, written as a third party would, with only
//! the public SDK: point-to-point links to the host, as CNI's `ptp`
//! plugin makes them. `attach` creates a veth pair whose one end is the
//! container's `ifname`, with the next free address of the configured
//! /24 and a default route through the network's `.1`, and whose other end
//! stays in the host's namespace with that `.1` and a route to the
//! container's address. `detach` deletes the pair (and so the route). It
//! runs `ip` (iproute2) through `nsenter`, as a CNI plugin would use
//! netlink.
//!
//! The configuration (the manifest's `config` file) is the network's
//! first three octets (`10.199.0`, the default) and, optionally, a second
//! line with a nameserver. Addresses are handed out in memory: after an
//! agent restart, numbering starts over.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use mesos_plugin_api::sdk::{NetworkPlugin, PluginError, proto};

pub const DEFAULT_PREFIX: &str = "10.199.0";

#[derive(Debug, Default)]
pub struct VethNetwork {
    /// (prefix, nameserver)
    config: Mutex<Option<(String, Option<String>)>>,
    /// The host number of each attached (container, interface).
    leases: Mutex<BTreeMap<(String, String), u32>>,
}

/// Runs `ip args` in the namespace `netns`, or in the host's.
fn ip(netns: Option<&str>, args: &[&str]) -> Result<(), PluginError> {
    let mut command = match netns {
        Some(netns) => {
            let mut command = Command::new("nsenter");
            command.arg(format!("--net={netns}")).arg("ip");
            command
        }
        None => Command::new("ip"),
    };
    let output = command
        .args(args)
        .output()
        .map_err(|e| PluginError::internal(format!("cannot run ip: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(PluginError::internal(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// The host's end of a container's interface: a name the kernel takes
/// (at most 15 bytes), the same for the same container and interface.
fn host_end(container_id: &str, ifname: &str) -> String {
    let hash = container_id
        .bytes()
        .chain(ifname.bytes())
        .fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    format!("mv{hash:08x}")
}

/// An interface name the kernel takes: at most 15 bytes, no `/` or space.
fn check_ifname(ifname: &str) -> Result<(), PluginError> {
    if ifname.is_empty()
        || ifname.len() > 10
        || !ifname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(PluginError::invalid(format!(
            "interface name '{ifname}' is not one this plugin can pair"
        )));
    }
    Ok(())
}

impl NetworkPlugin for VethNetwork {
    const NAME: &'static str = "com.example.veth_network";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(&self, config: &[u8]) -> Result<(), PluginError> {
        let text = std::str::from_utf8(config)
            .map_err(|_| PluginError::invalid("the configuration is not UTF-8"))?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let prefix = lines.next().unwrap_or(DEFAULT_PREFIX).to_string();
        let octets: Vec<&str> = prefix.split('.').collect();
        if octets.len() != 3 || octets.iter().any(|o| o.parse::<u8>().is_err()) {
            return Err(PluginError::invalid(format!(
                "'{prefix}' is not the first three octets of an IPv4 /24"
            )));
        }
        let nameserver = lines.next().map(str::to_string);
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = Some((prefix, nameserver));
        Ok(())
    }

    fn attach(&self, request: proto::AttachRequest) -> Result<proto::AttachResponse, PluginError> {
        check_ifname(&request.ifname)?;
        let (prefix, nameserver) = self
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| (DEFAULT_PREFIX.to_string(), None));
        let key = (request.container_id.clone(), request.ifname.clone());
        let number = {
            let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
            if leases.contains_key(&key) {
                return Err(PluginError::invalid(format!(
                    "{} of container {} is attached already",
                    key.1, key.0
                )));
            }
            let taken: Vec<u32> = leases.values().copied().collect();
            let number = (2..=254).find(|n| !taken.contains(n)).ok_or_else(|| {
                PluginError::internal(format!("no address left in {prefix}.0/24"))
            })?;
            leases.insert(key.clone(), number);
            number
        };
        let (address, gateway) = (format!("{prefix}.{number}"), format!("{prefix}.1"));
        let (netns, ifname) = (request.netns.as_str(), request.ifname.as_str());
        let host = host_end(&request.container_id, ifname);
        // Created inside the container's namespace, with the host's end
        // sent to this process's (the agent's) namespace.
        let pid = std::process::id().to_string();
        let release = || {
            self.leases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        };
        if let Err(e) = ip(
            Some(netns),
            &[
                "link", "add", ifname, "type", "veth", "peer", "name", &host, "netns", &pid,
            ],
        ) {
            release();
            return Err(e);
        }
        let result = ip(
            Some(netns),
            &["addr", "add", &format!("{address}/24"), "dev", ifname],
        )
        .and_then(|()| ip(Some(netns), &["link", "set", ifname, "up"]))
        .and_then(|()| {
            // A container on several networks has one default route: the
            // first network's. Later ones are reached on their own /24.
            match ip(
                Some(netns),
                &["route", "add", "default", "via", &gateway, "dev", ifname],
            ) {
                Err(e) if e.message.contains("File exists") => Ok(()),
                other => other,
            }
        })
        .and_then(|()| {
            ip(
                None,
                &["addr", "add", &format!("{gateway}/32"), "dev", &host],
            )
        })
        .and_then(|()| ip(None, &["link", "set", &host, "up"]))
        .and_then(|()| {
            ip(
                None,
                &["route", "add", &format!("{address}/32"), "dev", &host],
            )
        });
        if let Err(e) = result {
            // Nothing half-made stays: the pair goes, and the host's route
            // and address with it.
            let _ = ip(Some(netns), &["link", "del", ifname]);
            release();
            return Err(e);
        }
        Ok(proto::AttachResponse {
            ip_addresses: vec![format!("{address}/24")],
            dns: nameserver.map(|n| proto::Dns {
                nameservers: vec![n],
                ..Default::default()
            }),
        })
    }

    fn detach(&self, request: proto::DetachRequest) -> Result<proto::DetachResponse, PluginError> {
        check_ifname(&request.ifname)?;
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(request.container_id.clone(), request.ifname.clone()));
        // Deleting one end deletes the pair and the host's route. An
        // attach that failed early may have left nothing to delete.
        match ip(Some(&request.netns), &["link", "del", &request.ifname]) {
            Err(e) if e.message.contains("Cannot find device") => {}
            other => other?,
        }
        Ok(proto::DetachResponse {})
    }
}

mesos_plugin_api::export_network!(VethNetwork);
