//! A [`Network`] reached through the plugin envelope.

use mesos_proto::plugin::v1 as proto;

use super::{Failure, Policy, Remote};
use crate::abi::method::network as method;
use crate::envelope::Envelope;
use crate::network::{Attached, Attachment, Dns, Network, NetworkError};

#[derive(Debug)]
pub struct PluginNetwork {
    remote: Remote<NetworkError>,
}

impl Failure for NetworkError {
    fn failure(network: &'static str, message: String) -> Self {
        NetworkError::Failed {
            network: network.to_string(),
            message,
        }
    }
}

impl PluginNetwork {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
        }
    }
}

impl Network for PluginNetwork {
    fn name(&self) -> &str {
        self.remote.name
    }

    fn attach(&self, to: &Attachment<'_>) -> Result<Attached, NetworkError> {
        let request = proto::AttachRequest {
            container_id: to.container_id.to_string(),
            netns: to.netns.display().to_string(),
            ifname: to.ifname.to_string(),
            port_mappings: to
                .port_mappings
                .iter()
                .map(|m| proto::PortMapping {
                    host_port: m.host_port,
                    container_port: m.container_port,
                    protocol: m.protocol.clone(),
                })
                .collect(),
        };
        // A network that does not attach (or failed under fail_open)
        // leaves the container without the network it asked for.
        let response = self
            .remote
            .call::<proto::AttachResponse>(method::ATTACH, &request)?
            .ok_or_else(|| {
                self.remote
                    .failed(format!("{} attached nothing", method::ATTACH))
            })?;
        Ok(Attached {
            ip_addresses: response.ip_addresses,
            dns: response.dns.map(|dns| Dns {
                nameservers: dns.nameservers,
                domain: Some(dns.domain).filter(|d| !d.is_empty()),
                search: dns.search,
                options: dns.options,
            }),
        })
    }

    fn detach(&self, to: &Attachment<'_>) -> Result<(), NetworkError> {
        let request = proto::DetachRequest {
            container_id: to.container_id.to_string(),
            netns: to.netns.display().to_string(),
            ifname: to.ifname.to_string(),
        };
        self.remote
            .call::<proto::DetachResponse>(method::DETACH, &request)
            .map(drop)
    }
}
