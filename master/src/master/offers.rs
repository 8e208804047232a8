//! Turning the allocator's grants into offers, and offers back into
//! allocatable resources.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mesos_proto::v1::scheduler::{Event, event};
use mesos_proto::v1::{self};

use super::{Master, Offer};
use crate::wire;

impl Master {
    /// One allocation cycle: every grant becomes an offer, and each framework
    /// gets all of its offers of the cycle in one OFFERS event.
    pub(super) fn allocate(&mut self) {
        self.allocate_soon = false;
        let now = Instant::now();
        let grants = self.allocator.allocate(now);
        if grants.is_empty() {
            return;
        }
        let mut per_framework: BTreeMap<String, Vec<v1::Offer>> = BTreeMap::new();
        for grant in grants {
            let connected = self
                .frameworks
                .get(&grant.framework_id)
                .is_some_and(|f| f.conn.is_some());
            let Some(agent) = self.agents.get_mut(&grant.agent_id).filter(|_| connected) else {
                // The allocator raced a disconnect: give it straight back.
                self.allocator.recover_resources(
                    &grant.framework_id,
                    &grant.agent_id,
                    &grant.resources,
                    None,
                    now,
                );
                continue;
            };
            let Some(framework) = self.frameworks.get_mut(&grant.framework_id) else {
                continue;
            };
            let id = format!("{}-O{}", self.id, self.next_offer);
            self.next_offer += 1;
            let executor_ids = agent
                .executors
                .keys()
                .filter(|(fid, _)| *fid == framework.id)
                .map(|(_, eid)| v1::ExecutorId { value: eid.clone() })
                .collect();
            let hostname = agent.info.hostname.clone();
            let (ip, port) = agent_address(&agent.pid, agent.info.port());
            let proto = v1::Offer {
                id: v1::OfferId { value: id.clone() },
                framework_id: wire::framework_id(&framework.id),
                agent_id: wire::agent_id(&agent.id),
                hostname: hostname.clone(),
                url: Some(v1::Url {
                    scheme: "http".to_string(),
                    address: v1::Address {
                        hostname: Some(hostname),
                        ip: Some(ip),
                        port,
                    },
                    path: Some("/slave(1)".to_string()),
                    ..Default::default()
                }),
                resources: wire::outgoing(&grant.resources, &grant.role, framework.multi_role),
                attributes: agent.info.attributes.clone(),
                executor_ids,
                allocation_info: framework.multi_role.then(|| v1::resource::AllocationInfo {
                    role: Some(grant.role.clone()),
                }),
                ..Default::default()
            };
            agent.offers.insert(id.clone());
            framework.offers.insert(id.clone());
            self.offers.insert(
                id.clone(),
                Offer {
                    id,
                    framework_id: grant.framework_id.clone(),
                    agent_id: grant.agent_id.clone(),
                    resources: grant.resources,
                    created: now,
                },
            );
            per_framework
                .entry(grant.framework_id)
                .or_default()
                .push(proto);
        }
        for (framework_id, offers) in per_framework {
            self.counters.offers_sent += offers.len() as u64;
            let event = Event {
                r#type: Some(event::Type::Offers as i32),
                offers: Some(event::Offers { offers }),
                ..Default::default()
            };
            self.send_event(&framework_id, &event);
        }
    }

    /// Removes an offer from the books without giving its resources back
    /// (the caller decides what happens to them).
    pub(super) fn take_offer(&mut self, offer_id: &str) -> Option<Offer> {
        let offer = self.offers.remove(offer_id)?;
        if let Some(f) = self.frameworks.get_mut(&offer.framework_id) {
            f.offers.remove(offer_id);
        }
        if let Some(a) = self.agents.get_mut(&offer.agent_id) {
            a.offers.remove(offer_id);
        }
        Some(offer)
    }

    /// Withdraws an offer and returns its resources to the allocator, with an
    /// optional refusal filter; `rescind` tells the framework.
    pub(super) fn remove_offer(&mut self, offer_id: &str, refuse: Option<Duration>, rescind: bool) {
        let Some(offer) = self.take_offer(offer_id) else {
            return;
        };
        self.allocator.recover_resources(
            &offer.framework_id,
            &offer.agent_id,
            &offer.resources,
            refuse,
            Instant::now(),
        );
        if rescind {
            let event = Event {
                r#type: Some(event::Type::Rescind as i32),
                rescind: Some(event::Rescind {
                    offer_id: v1::OfferId { value: offer.id },
                }),
                ..Default::default()
            };
            self.send_event(&offer.framework_id, &event);
        }
    }

    /// `--offer_timeout`: offers outstanding for too long are rescinded.
    pub(super) fn expire_offers(&mut self, now: Instant) {
        let Some(timeout) = self.config.offer_timeout else {
            return;
        };
        let expired: Vec<String> = self
            .offers
            .values()
            .filter(|o| now.duration_since(o.created) >= timeout)
            .map(|o| o.id.clone())
            .collect();
        for id in expired {
            tracing::debug!(offer = %id, "offer timed out");
            self.remove_offer(&id, None, true);
        }
    }
}

/// The agent's address from its pid (`slave(1)@ip:port`).
fn agent_address(pid: &str, default_port: i32) -> (String, i32) {
    let address = pid.rsplit_once('@').map(|(_, a)| a).unwrap_or(pid);
    match address.rsplit_once(':') {
        Some((ip, port)) => (ip.to_string(), port.parse().unwrap_or(default_port)),
        None => (address.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn agent_address_from_pid() {
        assert_eq!(
            super::agent_address("slave(1)@127.0.0.1:5051", 1),
            ("127.0.0.1".to_string(), 5051)
        );
        assert_eq!(
            super::agent_address("garbage", 5051),
            ("garbage".to_string(), 5051)
        );
    }
}
