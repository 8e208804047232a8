//! The master's view of the cluster that an allocator plugin's adapter
//! keeps: enough to check the plugin's grants, and to rebuild the plugin's
//! books from nothing when a cycle failed (a WASM instance rebuilt after a
//! trap starts empty; any plugin that failed halfway through a journal
//! has applied an unknown part of it). The rebuild is a journal of its
//! own ([`Books::snapshot`]): the weights and quotas, every framework,
//! then every agent with what each framework holds there, as a master
//! that just failed over would tell a fresh allocator. Offer filters
//! (`refuse_seconds`) are not kept: like a failed-over Mesos master, a
//! rebuilt allocator may offer a refused agent again at once.

use std::collections::{BTreeMap, BTreeSet};

use mesos_proto::plugin::v1::{self as proto, allocator_event::Event};
use mesos_resources::Resources;

use crate::allocator::{AgentSpec, FrameworkSpec, QuotaConfig};

#[derive(Debug)]
pub(super) struct FrameworkBook {
    /// `*` for a framework that named none.
    pub roles: Vec<String>,
    pub suppressed: BTreeSet<String>,
    pub active: bool,
}

#[derive(Debug)]
pub(super) struct AgentBook {
    pub hostname: String,
    pub total: Resources,
    pub active: bool,
}

#[derive(Debug, Default)]
pub(super) struct Books {
    pub frameworks: BTreeMap<String, FrameworkBook>,
    pub agents: BTreeMap<String, AgentBook>,
    /// What each framework holds on each agent, by agent: an agent's
    /// removal and the rebuild's per-agent holdings cost no scan.
    held: BTreeMap<String, BTreeMap<String, Resources>>,
    weights: Vec<(String, f64)>,
    quotas: BTreeMap<String, QuotaConfig>,
}

impl Books {
    pub fn add_framework(&mut self, framework: &FrameworkSpec, used: &[(String, Resources)]) {
        let roles = match framework.roles.is_empty() {
            true => vec!["*".to_string()],
            false => framework.roles.clone(),
        };
        self.remove_framework(&framework.id);
        self.frameworks.insert(
            framework.id.clone(),
            FrameworkBook {
                roles,
                suppressed: framework.suppressed_roles.iter().cloned().collect(),
                active: true,
            },
        );
        // As the allocators count them: a holding on an agent not added
        // yet comes again with that agent's own `used`.
        for (agent, resources) in used {
            if self.agents.contains_key(agent) {
                self.hold(&framework.id, agent, resources);
            }
        }
    }

    pub fn remove_framework(&mut self, framework_id: &str) {
        // Only a framework the books knew holds anything: a new one costs
        // no scan of the agents.
        if self.frameworks.remove(framework_id).is_some() {
            for on_agent in self.held.values_mut() {
                on_agent.remove(framework_id);
            }
            self.held.retain(|_, on_agent| !on_agent.is_empty());
        }
    }

    pub fn add_agent(&mut self, agent: &AgentSpec, used: &[(String, Resources)]) {
        self.remove_agent(&agent.id);
        self.agents.insert(
            agent.id.clone(),
            AgentBook {
                hostname: agent.hostname.clone(),
                total: agent.total.clone(),
                active: true,
            },
        );
        // A framework not added (yet) still holds them: the rebuild tells
        // them as the master did, and they stay out of offers.
        for (framework, resources) in used {
            self.hold(framework, &agent.id, resources);
        }
    }

    pub fn remove_agent(&mut self, agent_id: &str) {
        self.agents.remove(agent_id);
        self.held.remove(agent_id);
    }

    pub fn set_framework_active(&mut self, framework_id: &str, active: bool) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.active = active;
        }
    }

    pub fn set_agent_active(&mut self, agent_id: &str, active: bool) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.active = active;
        }
    }

    /// `roles` empty means all of the framework's.
    pub fn suppress(&mut self, framework_id: &str, roles: &[String], suppressed: bool) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let roles = match roles.is_empty() {
            true => framework.roles.clone(),
            false => roles.to_vec(),
        };
        for role in roles {
            if suppressed {
                framework.suppressed.insert(role);
            } else {
                framework.suppressed.remove(&role);
            }
        }
    }

    pub fn hold(&mut self, framework_id: &str, agent_id: &str, resources: &Resources) {
        self.held
            .entry(agent_id.to_string())
            .or_default()
            .entry(framework_id.to_string())
            .or_default()
            .add(resources);
    }

    /// What the frameworks hold on `agent_id`, together.
    pub fn held_on(&self, agent_id: &str) -> Resources {
        let mut held = Resources::default();
        for resources in self.held.get(agent_id).into_iter().flat_map(|f| f.values()) {
            held.add(resources);
        }
        held
    }

    /// Resources given back; what the books do not hold is ignored.
    pub fn release(&mut self, framework_id: &str, agent_id: &str, resources: &Resources) {
        let Some(on_agent) = self.held.get_mut(agent_id) else {
            return;
        };
        let Some(held) = on_agent.get_mut(framework_id) else {
            return;
        };
        match held.checked_sub(resources) {
            Some(left) if left.is_empty() => {
                on_agent.remove(framework_id);
                if on_agent.is_empty() {
                    self.held.remove(agent_id);
                }
            }
            Some(left) => *held = left,
            None => {
                tracing::debug!(
                    framework = framework_id,
                    agent = agent_id,
                    "recovered resources the books do not hold"
                );
            }
        }
    }

    /// `consumed` became `converted`: a framework's holding, or the
    /// agent's total for free resources.
    pub fn convert(
        &mut self,
        agent_id: &str,
        framework_id: Option<&str>,
        consumed: &Resources,
        converted: &Resources,
    ) {
        let swap = |resources: &mut Resources| {
            if let Some(mut left) = resources.checked_sub(consumed) {
                left.add(converted);
                *resources = left;
            }
        };
        match framework_id {
            Some(framework) => {
                if let Some(held) = self
                    .held
                    .get_mut(agent_id)
                    .and_then(|on_agent| on_agent.get_mut(framework))
                {
                    swap(held);
                }
            }
            None => {
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    swap(&mut agent.total);
                }
            }
        }
    }

    pub fn set_weights(&mut self, weights: &[(String, f64)]) {
        for (role, weight) in weights {
            self.weights.retain(|(r, _)| r != role);
            self.weights.push((role.clone(), *weight));
        }
    }

    pub fn update_quota(&mut self, quota: &QuotaConfig) {
        if quota.guarantees.is_empty() && quota.limits.is_empty() {
            self.quotas.remove(&quota.role);
        } else {
            self.quotas.insert(quota.role.clone(), quota.clone());
        }
    }

    /// The events that rebuild these books in an empty allocator, all at
    /// `at_ms`.
    pub fn snapshot(&self, at_ms: u64) -> Vec<proto::AllocatorEvent> {
        let mut events = Vec::new();
        if !self.weights.is_empty() {
            events.push(weights_event(&self.weights));
        }
        events.extend(self.quotas.values().map(quota_event));
        // Frameworks first: an agent's holdings name them.
        for (id, framework) in &self.frameworks {
            events.push(Event::AddFramework(proto::allocator_event::AddFramework {
                framework_id: id.clone(),
                roles: framework.roles.clone(),
                suppressed_roles: framework.suppressed.iter().cloned().collect(),
                used: Vec::new(),
            }));
            if !framework.active {
                events.push(Event::SetFrameworkActive(
                    proto::allocator_event::SetFrameworkActive {
                        framework_id: id.clone(),
                        active: false,
                    },
                ));
            }
        }
        for (id, agent) in &self.agents {
            let used = self
                .held
                .get(id)
                .into_iter()
                .flatten()
                .map(|(framework, resources)| proto::Holding {
                    id: framework.clone(),
                    resources: resources.as_slice().to_vec(),
                })
                .collect();
            events.push(Event::AddAgent(proto::allocator_event::AddAgent {
                agent_id: id.clone(),
                hostname: agent.hostname.clone(),
                total: agent.total.as_slice().to_vec(),
                used,
            }));
            if !agent.active {
                events.push(Event::SetAgentActive(
                    proto::allocator_event::SetAgentActive {
                        agent_id: id.clone(),
                        active: false,
                    },
                ));
            }
        }
        events
            .into_iter()
            .map(|event| proto::AllocatorEvent {
                at_ms,
                event: Some(event),
            })
            .collect()
    }
}

/// `SetWeights`, as the master's call and as the rebuild send it.
pub(super) fn weights_event(weights: &[(String, f64)]) -> Event {
    Event::SetWeights(proto::allocator_event::SetWeights {
        weights: weights
            .iter()
            .map(|(role, weight)| proto::RoleWeight {
                role: role.clone(),
                weight: *weight,
            })
            .collect(),
    })
}

/// `UpdateQuota`, as the master's call and as the rebuild send it.
pub(super) fn quota_event(quota: &QuotaConfig) -> Event {
    let quantities = |pairs: &[(String, f64)]| {
        pairs
            .iter()
            .map(|(name, value)| proto::Quantity {
                name: name.clone(),
                value: *value,
            })
            .collect()
    };
    Event::UpdateQuota(proto::allocator_event::UpdateQuota {
        role: quota.role.clone(),
        guarantees: quantities(&quota.guarantees),
        limits: quantities(&quota.limits),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mesos_proto::v1;

    fn cpus(value: f64) -> Resources {
        Resources::from(vec![v1::Resource {
            name: "cpus".into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value }),
            ..Default::default()
        }])
    }

    /// What the rebuild says the agents hold, by framework, in cpus.
    fn held_in_snapshot(books: &Books) -> Vec<(String, f64)> {
        books
            .snapshot(0)
            .into_iter()
            .filter_map(|e| match e.event {
                Some(Event::AddAgent(agent)) => Some(agent.used),
                _ => None,
            })
            .flatten()
            .map(|h| (h.id, Resources::from(h.resources).scalar("cpus")))
            .collect()
    }

    #[test]
    fn a_holding_told_by_both_framework_and_agent_counts_once() {
        let mut books = Books::default();
        let framework = FrameworkSpec {
            id: "f1".into(),
            roles: Vec::new(),
            suppressed_roles: Vec::new(),
        };
        // The master's order after a failover: frameworks first, with
        // what they hold on agents not added yet, then the agents.
        books.add_framework(&framework, &[("a1".into(), cpus(1.0))]);
        let agent = AgentSpec {
            id: "a1".into(),
            hostname: "a1".into(),
            total: cpus(4.0),
        };
        books.add_agent(
            &agent,
            &[("f1".into(), cpus(1.0)), ("f9".into(), cpus(2.0))],
        );
        assert_eq!(
            held_in_snapshot(&books),
            [("f1".to_string(), 1.0), ("f9".to_string(), 2.0)]
        );
        books.remove_agent("a1");
        books.add_agent(&agent, &[("f1".into(), cpus(1.0))]);
        assert_eq!(held_in_snapshot(&books), [("f1".to_string(), 1.0)]);

        books.release("f1", "a1", &cpus(0.5));
        assert_eq!(held_in_snapshot(&books), [("f1".to_string(), 0.5)]);
        books.release("f1", "a1", &cpus(0.5));
        assert!(held_in_snapshot(&books).is_empty());
        books.hold("f1", "a1", &cpus(2.0));
        books.remove_framework("f1");
        assert!(held_in_snapshot(&books).is_empty());
    }
}
