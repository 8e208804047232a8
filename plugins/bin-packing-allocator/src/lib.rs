//! A bin-packing allocator: fill one agent before the next.
//!
//! Each cycle every framework that wants offers is offered the first
//! agent, in the order agents joined, that still has something it may
//! use, and nothing else. Tasks therefore pile onto the first agent until
//! it is full, then onto the second, which leaves whole agents idle (to
//! drain or to power down) where DRF spreads the load. Fairness between
//! roles is not its concern: weights and quotas are accepted and ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use mesos_plugin_api::sdk::resources::{Resources, reserved_role};
use mesos_plugin_api::sdk::{
    AgentSpec, Allocator, AllocatorPlugin, FrameworkSpec, Grant, QuotaConfig,
};

/// Mesos's default `--min_allocatable_resources`: an offer is worth making
/// with at least this many cpus, or this much memory.
const MIN_CPUS: f64 = 0.01;
const MIN_MEM: f64 = 32.0;

#[derive(Debug, Default)]
pub struct BinPacking {
    /// In the order they joined, the order they fill in; a removed
    /// agent's slot stays empty so that `index` stays valid.
    agents: Vec<Option<Agent>>,
    index: HashMap<String, usize>,
    frameworks: BTreeMap<String, Framework>,
}

#[derive(Debug)]
struct Agent {
    id: String,
    active: bool,
    /// Neither offered nor used.
    free: Resources,
    /// What each framework holds here (offered or used).
    held: HashMap<String, Resources>,
}

impl Agent {
    /// `resources` leave the free pool for `framework_id`.
    fn hold(&mut self, framework_id: &str, resources: &Resources) {
        subtract(&mut self.free, resources);
        self.held
            .entry(framework_id.to_string())
            .or_default()
            .add(resources);
    }
}

#[derive(Debug)]
struct Framework {
    roles: Vec<String>,
    suppressed: BTreeSet<String>,
    active: bool,
    /// Agents the framework refused, until when.
    refused: HashMap<String, Instant>,
}

impl Framework {
    /// The role it is offered resources for: its first unsuppressed one.
    fn role(&self) -> Option<&str> {
        self.roles
            .iter()
            .find(|r| !self.suppressed.contains(*r))
            .map(String::as_str)
    }

    fn set_suppressed(&mut self, roles: &[String], suppressed: bool) {
        let roles = if roles.is_empty() { &self.roles } else { roles };
        for role in roles {
            match suppressed {
                true => self.suppressed.insert(role.clone()),
                false => self.suppressed.remove(role),
            };
        }
    }
}

impl AllocatorPlugin for BinPacking {
    const NAME: &'static str = "com.example.bin_packing";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
}

/// `from` less `what`, or `from` unchanged if it does not hold `what`.
fn subtract(from: &mut Resources, what: &Resources) {
    if let Some(left) = from.checked_sub(what) {
        *from = left;
    }
}

/// What of `free` a framework of `role` may use: unreserved resources and
/// those reserved for the role.
fn usable(free: &Resources, role: &str) -> Resources {
    free.iter()
        .filter(|r| reserved_role(r).is_none_or(|reserved| reserved == role))
        .cloned()
        .collect()
}

fn worth_offering(resources: &Resources) -> bool {
    resources.scalar("cpus") >= MIN_CPUS || resources.scalar("mem") >= MIN_MEM
}

impl BinPacking {
    fn agent(&mut self, id: &str) -> Option<&mut Agent> {
        let slot = *self.index.get(id)?;
        self.agents.get_mut(slot)?.as_mut()
    }

    fn hold(&mut self, agent_id: &str, framework_id: &str, resources: &Resources) {
        if let Some(agent) = self.agent(agent_id) {
            agent.hold(framework_id, &resources.unallocated());
        }
    }
}

impl Allocator for BinPacking {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn add_framework(&mut self, framework: FrameworkSpec, used: &[(String, Resources)]) {
        self.remove_framework(&framework.id);
        let roles = match framework.roles.is_empty() {
            true => vec!["*".to_string()],
            false => framework.roles,
        };
        self.frameworks.insert(
            framework.id.clone(),
            Framework {
                suppressed: framework.suppressed_roles.into_iter().collect(),
                roles,
                active: true,
                refused: HashMap::new(),
            },
        );
        for (agent_id, resources) in used {
            self.hold(agent_id, &framework.id, resources);
        }
    }

    fn remove_framework(&mut self, framework_id: &str) {
        if self.frameworks.remove(framework_id).is_none() {
            return;
        }
        for agent in self.agents.iter_mut().flatten() {
            if let Some(held) = agent.held.remove(framework_id) {
                agent.free.add(&held);
            }
        }
    }

    fn set_framework_active(&mut self, framework_id: &str, active: bool) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.active = active;
        }
    }

    fn add_agent(&mut self, agent: AgentSpec, used: &[(String, Resources)]) {
        self.remove_agent(&agent.id);
        self.index.insert(agent.id.clone(), self.agents.len());
        self.agents.push(Some(Agent {
            id: agent.id.clone(),
            active: true,
            free: agent.total.unallocated(),
            held: HashMap::new(),
        }));
        for (framework_id, resources) in used {
            self.hold(&agent.id, framework_id, resources);
        }
    }

    fn remove_agent(&mut self, agent_id: &str) {
        if let Some(slot) = self.index.remove(agent_id) {
            self.agents[slot] = None;
        }
    }

    fn set_agent_active(&mut self, agent_id: &str, active: bool) {
        if let Some(agent) = self.agent(agent_id) {
            agent.active = active;
        }
    }

    fn recover_resources(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    ) {
        let Some(agent) = self.agent(agent_id) else {
            return;
        };
        let resources = resources.unallocated();
        if let Some(held) = agent.held.get_mut(framework_id) {
            subtract(held, &resources);
        }
        agent.free.add(&resources);
        if let (Some(refuse), Some(framework)) = (refuse, self.frameworks.get_mut(framework_id))
            && let Some(until) = now.checked_add(refuse)
        {
            framework.refused.insert(agent_id.to_string(), until);
        }
    }

    fn convert_resources(
        &mut self,
        agent_id: &str,
        framework_id: Option<&str>,
        consumed: &Resources,
        converted: &Resources,
    ) {
        let Some(agent) = self.agent(agent_id) else {
            return;
        };
        let pool = match framework_id {
            Some(id) => agent.held.entry(id.to_string()).or_default(),
            None => &mut agent.free,
        };
        if let Some(mut left) = pool.checked_sub(&consumed.unallocated()) {
            left.add(&converted.unallocated());
            *pool = left;
        }
    }

    fn suppress(&mut self, framework_id: &str, roles: &[String]) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.set_suppressed(roles, true);
        }
    }

    fn revive(&mut self, framework_id: &str, roles: &[String]) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.set_suppressed(roles, false);
            framework.refused.clear();
        }
    }

    fn set_weights(&mut self, _weights: &[(String, f64)]) {}

    fn update_quota(&mut self, _quota: QuotaConfig) {}

    fn allocate(&mut self, now: Instant) -> Vec<Grant> {
        let mut grants = Vec::new();
        for (framework_id, framework) in &mut self.frameworks {
            framework.refused.retain(|_, until| *until > now);
            let Some(role) = framework.role().filter(|_| framework.active) else {
                continue;
            };
            let first_fit = self.agents.iter_mut().flatten().find_map(|agent| {
                if !agent.active || framework.refused.contains_key(&agent.id) {
                    return None;
                }
                let offer = usable(&agent.free, role);
                worth_offering(&offer).then_some((agent, offer))
            });
            let Some((agent, offer)) = first_fit else {
                continue;
            };
            agent.hold(framework_id, &offer);
            grants.push(Grant {
                framework_id: framework_id.clone(),
                agent_id: agent.id.clone(),
                role: role.to_string(),
                resources: offer,
            });
        }
        grants
    }
}

mesos_plugin_api::export_allocator!(BinPacking);
