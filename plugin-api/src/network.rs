//! The network: what puts a container on a network, with CNI's semantics.
//! A task's `ContainerInfo.network_infos` names networks; the agent's
//! `network/cni` isolator creates the container's network namespace, asks
//! each named network to attach an interface in it (a CNI configuration's
//! plugin chain, or a network plugin of this kind), reports the addresses
//! in status updates, and detaches in reverse order before the namespace
//! goes, after an agent restart too.

use std::path::Path;

use crate::isolator::PortMapping;

/// One interface of one container on a network.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    pub container_id: &'a str,
    /// The namespace's nsfs file.
    pub netns: &'a Path,
    /// `eth0` for the container's first network, `eth1` for its second...
    pub ifname: &'a str,
    /// The host ports forwarded to the container on this network.
    pub port_mappings: &'a [PortMapping],
}

/// What an attach gave the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    /// Its addresses, with prefix length (`10.1.0.5/24`).
    pub ip_addresses: Vec<String>,
    /// Its resolver, if the network has one.
    pub dns: Option<Dns>,
}

/// A resolver, as a CNI result's `dns`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {network}: {message}")]
    Failed { network: String, message: String },
}

pub trait Network: Send + Sync {
    /// The name `NetworkInfo.name` selects it by.
    fn name(&self) -> &str;

    /// Puts interface `ifname` of the container on the network.
    fn attach(&self, attachment: &Attachment<'_>) -> Result<Attached, NetworkError>;

    /// Undoes [`Network::attach`]; the namespace still exists.
    fn detach(&self, _attachment: &Attachment<'_>) -> Result<(), NetworkError> {
        Ok(())
    }
}
