//! Dominant Resource Fairness across roles, then across the frameworks of a
//! role (Mesos's hierarchical DRF, with every role weighted 1 for now).
//!
//! Shares are kept up to date on every grant and recovery, so a cycle costs
//! a sort of the frameworks plus one pass over the agents that have
//! something free, not a recomputation of the whole cluster.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mesos_plugin_api::allocator::{AgentSpec, Allocator, FrameworkSpec, Grant};
use mesos_resources::Resources;

/// Smallest offer worth making (Mesos's `--min_allocatable_resources`
/// default: `cpus:0.01|mem:32`).
const MIN_CPUS: f64 = 0.01;
const MIN_MEM: f64 = 32.0;

#[derive(Debug)]
struct AgentSlot {
    total: Resources,
    /// Everything granted and not yet recovered, per framework.
    allocated: HashMap<String, Resources>,
    active: bool,
}

impl AgentSlot {
    fn available(&self) -> Resources {
        let mut used = Resources::default();
        for r in self.allocated.values() {
            used.add(r);
        }
        // Allocations are always carved out of `total`, so this only fails
        // if the bookkeeping is broken; offer nothing rather than too much.
        self.total.checked_sub(&used).unwrap_or_default()
    }
}

#[derive(Debug)]
struct FrameworkSlot {
    role: String,
    active: bool,
    suppressed: bool,
    /// Agent -> instant until which that agent is not offered.
    filters: HashMap<String, Instant>,
    /// Sum of everything allocated to this framework, for its share.
    allocated: Resources,
}

#[derive(Debug, Default)]
pub struct HierarchicalDrf {
    agents: BTreeMap<String, AgentSlot>,
    frameworks: BTreeMap<String, FrameworkSlot>,
    /// Cluster total of active agents: the denominator of every share.
    cluster: Resources,
}

impl HierarchicalDrf {
    fn dominant_share(&self, allocated: &Resources) -> f64 {
        ["cpus", "mem", "disk", "gpus"]
            .iter()
            .filter_map(|name| {
                let total = self.cluster.scalar(name);
                (total > 0.0).then(|| allocated.scalar(name) / total)
            })
            .fold(0.0, f64::max)
    }

    fn role_shares(&self) -> HashMap<&str, f64> {
        let mut per_role: HashMap<&str, Resources> = HashMap::new();
        for fw in self.frameworks.values() {
            per_role
                .entry(fw.role.as_str())
                .or_default()
                .add(&fw.allocated);
        }
        per_role
            .into_iter()
            .map(|(role, res)| (role, self.dominant_share(&res)))
            .collect()
    }

    /// Frameworks in the order they should be served: lowest role share
    /// first, then lowest framework share, ties broken by id for
    /// determinism.
    fn framework_order(&self) -> Vec<String> {
        let role_shares = self.role_shares();
        let mut order: Vec<(f64, f64, &String)> = self
            .frameworks
            .iter()
            .filter(|(_, fw)| fw.active && !fw.suppressed)
            .map(|(id, fw)| {
                let role = role_shares.get(fw.role.as_str()).copied().unwrap_or(0.0);
                (role, self.dominant_share(&fw.allocated), id)
            })
            .collect();
        order.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then_with(|| a.2.cmp(b.2))
        });
        order.into_iter().map(|(_, _, id)| id.clone()).collect()
    }

    fn recompute_cluster(&mut self) {
        let mut cluster = Resources::default();
        for agent in self.agents.values().filter(|a| a.active) {
            cluster.add(&agent.total);
        }
        self.cluster = cluster;
    }

    fn track(&mut self, framework_id: &str, agent_id: &str, resources: &Resources) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent
                .allocated
                .entry(framework_id.to_string())
                .or_default()
                .add(resources);
        }
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.allocated.add(resources);
        }
    }
}

fn worth_offering(resources: &Resources) -> bool {
    resources.scalar("cpus") >= MIN_CPUS || resources.scalar("mem") >= MIN_MEM
}

/// The resources of `available` a framework in `role` may use: unreserved
/// ones and those reserved to its role.
fn usable_by(available: &Resources, role: &str) -> Resources {
    let usable: Vec<_> = available
        .iter()
        .filter(|r| mesos_resources::reserved_role(r).is_none_or(|reserved| reserved == role))
        .cloned()
        .collect();
    Resources::from(usable)
}

impl Allocator for HierarchicalDrf {
    fn name(&self) -> &str {
        "HierarchicalDRF"
    }

    fn add_framework(&mut self, framework: FrameworkSpec, used: &[(String, Resources)]) {
        let role = framework
            .roles
            .first()
            .cloned()
            .unwrap_or_else(|| "*".to_string());
        let suppressed = !framework.suppressed_roles.is_empty()
            && framework
                .roles
                .iter()
                .all(|r| framework.suppressed_roles.contains(r));
        self.frameworks.insert(
            framework.id.clone(),
            FrameworkSlot {
                role,
                active: true,
                suppressed,
                filters: HashMap::new(),
                allocated: Resources::default(),
            },
        );
        for (agent_id, resources) in used {
            self.track(&framework.id, agent_id, resources);
        }
    }

    fn remove_framework(&mut self, framework_id: &str) {
        self.frameworks.remove(framework_id);
        for agent in self.agents.values_mut() {
            agent.allocated.remove(framework_id);
        }
    }

    fn set_framework_active(&mut self, framework_id: &str, active: bool) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.active = active;
        }
    }

    fn add_agent(&mut self, agent: AgentSpec, used: &[(String, Resources)]) {
        self.agents.insert(
            agent.id.clone(),
            AgentSlot {
                total: agent.total,
                allocated: HashMap::new(),
                active: true,
            },
        );
        for (framework_id, resources) in used {
            self.track(framework_id, &agent.id, resources);
        }
        self.recompute_cluster();
    }

    fn remove_agent(&mut self, agent_id: &str) {
        if let Some(agent) = self.agents.remove(agent_id) {
            for (framework_id, resources) in agent.allocated {
                if let Some(fw) = self.frameworks.get_mut(&framework_id) {
                    fw.allocated = fw.allocated.checked_sub(&resources).unwrap_or_default();
                }
            }
            for fw in self.frameworks.values_mut() {
                fw.filters.remove(agent_id);
            }
            self.recompute_cluster();
        }
    }

    fn set_agent_active(&mut self, agent_id: &str, active: bool) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.active = active;
        }
        self.recompute_cluster();
    }

    fn recover_resources(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    ) {
        if let Some(agent) = self.agents.get_mut(agent_id)
            && let Some(held) = agent.allocated.get_mut(framework_id)
        {
            *held = held.checked_sub(resources).unwrap_or_else(|| {
                tracing::warn!(
                    framework = framework_id,
                    agent = agent_id,
                    "recovered more than was allocated; resetting the allocation"
                );
                Resources::default()
            });
            if held.is_empty() {
                agent.allocated.remove(framework_id);
            }
        }
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.allocated = fw.allocated.checked_sub(resources).unwrap_or_default();
            if let Some(refuse) = refuse.filter(|d| !d.is_zero()) {
                fw.filters.insert(agent_id.to_string(), now + refuse);
            }
        }
    }

    fn suppress(&mut self, framework_id: &str, _roles: &[String]) {
        // One role per framework for now, so any suppress covers it.
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.suppressed = true;
        }
    }

    fn revive(&mut self, framework_id: &str, _roles: &[String]) {
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            fw.suppressed = false;
            fw.filters.clear();
        }
    }

    fn allocate(&mut self, now: Instant) -> Vec<Grant> {
        for fw in self.frameworks.values_mut() {
            fw.filters.retain(|_, until| *until > now);
        }
        let mut grants = Vec::new();
        let agent_ids: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.active)
            .map(|(id, _)| id.clone())
            .collect();
        for agent_id in agent_ids {
            // The order changes as frameworks receive grants, which is what
            // spreads agents fairly within one cycle.
            for framework_id in self.framework_order() {
                let Some(agent) = self.agents.get(&agent_id) else {
                    break;
                };
                let available = agent.available();
                if !worth_offering(&available) {
                    break;
                }
                let Some(fw) = self.frameworks.get(&framework_id) else {
                    continue;
                };
                if fw.filters.contains_key(&agent_id) {
                    continue;
                }
                let role = fw.role.clone();
                let offer = usable_by(&available, &role);
                if !worth_offering(&offer) {
                    continue;
                }
                self.track(&framework_id, &agent_id, &offer);
                grants.push(Grant {
                    framework_id,
                    agent_id: agent_id.clone(),
                    role,
                    resources: offer,
                });
                break;
            }
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(text: &str) -> Resources {
        Resources::from(mesos_resources::parse_resources(text, "*").unwrap())
    }

    fn framework(id: &str) -> FrameworkSpec {
        FrameworkSpec {
            id: id.into(),
            roles: vec!["*".into()],
            suppressed_roles: vec![],
        }
    }

    fn agent(id: &str, text: &str) -> AgentSpec {
        AgentSpec {
            id: id.into(),
            hostname: "h".into(),
            total: res(text),
        }
    }

    #[test]
    fn offers_whole_agent_once_until_recovered() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:2;mem:1024"), &[]);
        drf.add_framework(framework("f1"), &[]);
        let grants = drf.allocate(now);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].resources.scalar("cpus"), 2.0);
        assert!(drf.allocate(now).is_empty(), "nothing left to offer");
        drf.recover_resources("f1", "a1", &grants[0].resources, None, now);
        assert_eq!(drf.allocate(now).len(), 1);
    }

    #[test]
    fn refuse_filter_holds_until_it_expires() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:2;mem:1024"), &[]);
        drf.add_framework(framework("f1"), &[]);
        let g = drf.allocate(now).remove(0);
        drf.recover_resources("f1", "a1", &g.resources, Some(Duration::from_secs(5)), now);
        assert!(drf.allocate(now + Duration::from_secs(1)).is_empty());
        assert_eq!(drf.allocate(now + Duration::from_secs(6)).len(), 1);
    }

    #[test]
    fn lower_dominant_share_is_served_first() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:4;mem:4096"), &[]);
        drf.add_agent(agent("a2", "cpus:4;mem:4096"), &[]);
        drf.add_framework(framework("f1"), &[("a1".into(), res("cpus:1;mem:128"))]);
        drf.add_framework(framework("f2"), &[]);
        let grants = drf.allocate(now);
        // f2 holds nothing, so it gets the first agent with free resources.
        assert_eq!(grants[0].framework_id, "f2");
        assert_eq!(grants.len(), 2);
        assert!(grants.iter().any(|g| g.framework_id == "f1"));
    }

    #[test]
    fn suppressed_and_inactive_frameworks_get_nothing() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:1;mem:256"), &[]);
        drf.add_framework(framework("f1"), &[]);
        drf.suppress("f1", &[]);
        assert!(drf.allocate(now).is_empty());
        drf.revive("f1", &[]);
        drf.set_framework_active("f1", false);
        assert!(drf.allocate(now).is_empty());
        drf.set_framework_active("f1", true);
        assert_eq!(drf.allocate(now).len(), 1);
    }

    #[test]
    fn accounting_stays_exact_over_many_launches() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:1;mem:1024"), &[]);
        drf.add_framework(framework("f1"), &[]);
        for _ in 0..1000 {
            let g = drf.allocate(now).remove(0);
            // Use a tenth of a cpu, give the rest back, then finish the task.
            let task = res("cpus:0.1;mem:32");
            let rest = g.resources.checked_sub(&task).unwrap();
            drf.recover_resources("f1", "a1", &rest, None, now);
            drf.recover_resources("f1", "a1", &task, None, now);
        }
        let g = drf.allocate(now).remove(0);
        assert_eq!(g.resources.scalar("cpus"), 1.0);
        assert_eq!(g.resources.scalar("mem"), 1024.0);
    }
}
