//! Mesos's hierarchical weighted DRF allocator with quota.
//!
//! Every cycle has two stages, as in Mesos: first roles whose quota
//! guarantee is not met get offers from their own subtree's frameworks,
//! then every role competes by weighted dominant share (see `roles`). In
//! both, unreserved scalars are chopped so no role passes its quota limit
//! and enough stays free for the guarantees still unmet.
//!
//! Bookkeeping is incremental: each agent keeps its available resources,
//! each (framework, role) its allocation inside the role tree, so a cycle
//! is one walk over the agents with free resources and, per agent, a walk
//! down the already sorted tree to the first framework that wants it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesos_plugin_api::allocator::{AgentSpec, Allocator, FrameworkSpec, Grant, QuotaConfig};
use mesos_resources::{Resources, reserved_role};

use super::carve::{Carved, MinAllocatable, carve, unlimited};
use super::index_hash::{IndexMap, IndexSet};
use super::qty::{KINDS, Qty, kind, to_millis};
use super::roles::{FwIdx, Quota, ROOT, RoleId, RoleTree};

/// Startup configuration (master flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--weights`.
    pub weights: Vec<(String, f64)>,
    /// `--min_allocatable_resources`.
    pub min_allocatable: MinAllocatable,
}

type AgentIdx = usize;

/// Resources of one agent granted to one framework for one role and not
/// yet recovered.
#[derive(Debug)]
struct Held {
    fw: FwIdx,
    role: RoleId,
    res: Resources,
}

#[derive(Debug)]
struct AgentSlot {
    id: String,
    /// Total minus everything held.
    available: Resources,
    held: Vec<Held>,
    total: Qty,
    active: bool,
}

#[derive(Debug)]
struct FrameworkSlot {
    id: String,
    roles: Vec<RoleId>,
    active: bool,
    suppressed: IndexSet<RoleId>,
    /// Refusals, per agent.
    filters: IndexMap<AgentIdx, Refusal>,
    /// Agents where the framework holds something.
    agents: IndexSet<AgentIdx>,
}

/// A declined offer's refuse filter (Mesos's `Filters.refuse_seconds`): until
/// it expires, the agent is not offered again unless it has more to offer
/// than was refused (a task ended there, say).
#[derive(Debug, Clone, Copy)]
struct Refusal {
    until: Instant,
    refused: Qty,
}

impl Refusal {
    fn covers(&self, offer: &Qty, now: Instant) -> bool {
        self.until > now && offer.0.iter().zip(self.refused.0).all(|(o, r)| *o <= r)
    }
}

impl FrameworkSlot {
    fn live(&self, role: RoleId) -> bool {
        self.active && !self.suppressed.contains(&role)
    }
}

#[derive(Debug, Default)]
pub struct HierarchicalDrf {
    /// Indexed by `AgentIdx`; indices are never reused, so stale filters
    /// cannot match a new agent.
    agents: Vec<Option<AgentSlot>>,
    agent_index: HashMap<String, AgentIdx>,
    frameworks: Vec<Option<FrameworkSlot>>,
    framework_index: HashMap<String, FwIdx>,
    roles: RoleTree,
    /// Total of the active agents: the denominator of every share.
    cluster: Qty,
    min_allocatable: MinAllocatable,
    /// Earliest filter expiry, so expired filters are swept only when some
    /// may have expired.
    next_expiry: Option<Instant>,
    /// Scratch: (framework, role) pairs already served by the current agent.
    served: Vec<(FwIdx, RoleId)>,
}

/// One allocation cycle: its time, its grants so far, and quota state.
struct Cycle {
    now: Instant,
    grants: Vec<Grant>,
    quota_roles: Vec<RoleId>,
    /// Unreserved resources not allocated, over active agents.
    unreserved_free: Qty,
}

impl HierarchicalDrf {
    pub fn new(options: Options) -> Self {
        let mut drf = HierarchicalDrf {
            min_allocatable: options.min_allocatable,
            ..Default::default()
        };
        drf.set_weights(&options.weights);
        drf
    }

    fn framework(&self, id: &str) -> Option<FwIdx> {
        self.framework_index.get(id).copied()
    }

    /// Whether a resource reserved to `reserved` may go to `role`: the
    /// reservation is the role's own or an ancestor's.
    fn may_use(&self, role: RoleId, reserved: &str) -> bool {
        self.roles
            .id(reserved)
            .is_some_and(|ancestor| self.roles.is_within(role, ancestor))
    }

    fn shortfall(&self, role: RoleId) -> Qty {
        let node = self.roles.get(role);
        let mut missing = node.quota.guarantee;
        missing.sub(&node.consumed);
        missing
    }

    /// Upper bounds on the unreserved scalars `role` may get now: its and
    /// its ancestors' limits, and what must stay free for other roles'
    /// unmet guarantees. `None` when no role has a quota.
    fn caps(&self, cycle: &Cycle, role: RoleId) -> Option<Qty> {
        if cycle.quota_roles.is_empty() {
            return None;
        }
        let mut caps = unlimited();
        for id in self.roles.chain(role) {
            let node = self.roles.get(id);
            for (k, limit) in node.quota.limit.iter().enumerate() {
                if let Some(limit) = limit {
                    caps.0[k] = caps.0[k].min((limit - node.consumed.0[k]).max(0));
                }
            }
        }
        let mut held_back = Qty::default();
        for q in &cycle.quota_roles {
            // Giving to `role` also counts towards its ancestors' quota.
            if !self.roles.is_within(role, *q) {
                held_back.add(&self.shortfall(*q));
            }
        }
        for k in 0..KINDS.len() {
            let surplus = (cycle.unreserved_free.0[k] - held_back.0[k]).max(0);
            caps.0[k] = caps.0[k].min(surplus);
        }
        Some(caps)
    }

    /// Consumed quota (allocation plus unallocated reservations) of every
    /// role, and the free unreserved pool.
    fn start_cycle(&mut self, now: Instant) -> Cycle {
        let quota_roles: Vec<RoleId> = self.roles.quota_roles().collect();
        let mut cycle = Cycle {
            now,
            grants: Vec::with_capacity(self.agent_index.len()),
            quota_roles,
            unreserved_free: Qty::default(),
        };
        if cycle.quota_roles.is_empty() {
            return cycle;
        }
        self.roles.reset_consumed();
        for agent in self.agents.iter().flatten().filter(|a| a.active) {
            for r in agent.available.iter() {
                match reserved_role(r) {
                    None => cycle.unreserved_free.add_entry(r),
                    Some(name) => {
                        if let Some(id) = self.roles.id(name) {
                            let mut q = Qty::default();
                            q.add_entry(r);
                            self.roles.add_consumed(id, &q);
                        }
                    }
                }
            }
        }
        cycle
    }

    /// Hands out what `agent` has to frameworks under `start`, best placed
    /// first, until nothing allocatable is left or nobody wants it. With
    /// `progress_for`, only offers that bring that role closer to its
    /// guarantee are made.
    fn serve_agent(
        &mut self,
        a: AgentIdx,
        start: RoleId,
        progress_for: Option<RoleId>,
        cycle: &mut Cycle,
    ) {
        // Reused across agents: most agents go to one framework, and a
        // fresh vector per agent would be an allocation per agent.
        let mut served = std::mem::take(&mut self.served);
        served.clear();
        self.serve_agent_with(a, start, progress_for, cycle, &mut served);
        self.served = served;
    }

    fn serve_agent_with(
        &mut self,
        a: AgentIdx,
        start: RoleId,
        progress_for: Option<RoleId>,
        cycle: &mut Cycle,
        served: &mut Vec<(FwIdx, RoleId)>,
    ) {
        let now = cycle.now;
        loop {
            let Some(agent) = self.agents[a].as_ref() else {
                return;
            };
            // Allocatability only shrinks when resources are taken away,
            // so an agent whose whole pool is too small is skipped at once.
            if !agent.active || !self.min_allocatable.allows(&agent.available) {
                return;
            }
            let needed = progress_for.map(|q| self.shortfall(q));
            if needed.is_some_and(|n| n.is_zero()) {
                return;
            }
            let free = Qty::of(&agent.available);
            let mut found = None;
            self.roles.walk(start, &mut |fw, role| {
                if served.contains(&(fw, role)) {
                    return false;
                }
                let Some(framework) = self.frameworks[fw].as_ref() else {
                    return false;
                };
                let refusal = framework.filters.get(&a);
                // Nothing carved from the agent can be more than all of it.
                if refusal.is_some_and(|r| r.covers(&free, now)) {
                    return false;
                }
                let caps = self.caps(cycle, role);
                let carved = carve(
                    &agent.available,
                    |reserved| self.may_use(role, reserved),
                    caps.as_ref(),
                );
                let offer = match &carved {
                    Carved::All => &agent.available,
                    Carved::Part { offer, .. } => offer,
                };
                if !self.min_allocatable.allows(offer) {
                    return false;
                }
                if refusal.is_some_and(|r| r.covers(&Qty::of(offer), now)) {
                    return false;
                }
                if let Some(needed) = needed {
                    let gained = unreserved(offer);
                    if !(0..KINDS.len()).any(|k| needed.0[k] > 0 && gained.0[k] > 0) {
                        return false;
                    }
                }
                found = Some((fw, role, carved));
                true
            });
            let Some((fw, role, carved)) = found else {
                return;
            };
            served.push((fw, role));
            self.grant(a, fw, role, carved, cycle);
        }
    }

    fn grant(&mut self, a: AgentIdx, fw: FwIdx, role: RoleId, carved: Carved, cycle: &mut Cycle) {
        let (Some(agent), Some(framework)) =
            (self.agents[a].as_mut(), self.frameworks[fw].as_mut())
        else {
            return;
        };
        let offer = match carved {
            Carved::All => std::mem::take(&mut agent.available),
            Carved::Part { offer, rest } => {
                agent.available = rest;
                offer
            }
        };
        match agent.held.iter_mut().find(|h| h.fw == fw && h.role == role) {
            Some(h) => h.res.add(&offer),
            None => agent.held.push(Held {
                fw,
                role,
                res: offer.clone(),
            }),
        }
        framework.agents.insert(a);
        let agent_id = agent.id.clone();
        let framework_id = framework.id.clone();
        if !cycle.quota_roles.is_empty() {
            let gained = unreserved(&offer);
            cycle.unreserved_free.sub(&gained);
            self.roles.add_consumed(role, &gained);
        }
        self.roles.charge(role, fw, &Qty::of(&offer), true);
        cycle.grants.push(Grant {
            framework_id,
            agent_id,
            role: self.roles.get(role).name.clone(),
            resources: offer,
        });
    }

    fn expire_filters(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        for fw in self.frameworks.iter_mut().flatten() {
            fw.filters.retain(|_, r| r.until > now);
            if let Some(min) = fw.filters.values().map(|r| r.until).min() {
                next = Some(next.map_or(min, |n| n.min(min)));
            }
        }
        self.next_expiry = next;
    }

    /// The role `resources` belong to when the caller says so with
    /// `allocation_info`, and whether it did.
    fn allocation_role(&self, resources: &Resources) -> Option<RoleId> {
        resources
            .iter()
            .find_map(|r| r.allocation_info.as_ref()?.role.as_deref())
            .and_then(|name| self.roles.id(name))
    }

    /// Records `resources` of `agent` as held by `fw` in `role`, taking
    /// them out of the agent's available pool.
    fn hold(&mut self, a: AgentIdx, fw: FwIdx, role: RoleId, resources: &Resources) {
        let Some(agent) = self.agents[a].as_mut() else {
            return;
        };
        let Some(left) = agent.available.checked_sub(resources) else {
            tracing::warn!(
                agent = %agent.id,
                resources = %resources,
                "resources in use are not part of the agent's free resources; ignoring them"
            );
            return;
        };
        agent.available = left;
        agent.held.push(Held {
            fw,
            role,
            res: resources.clone(),
        });
        if let Some(framework) = self.frameworks[fw].as_mut() {
            framework.agents.insert(a);
            self.roles.charge(role, fw, &Qty::of(resources), true);
        }
    }
}

/// Unreserved scalar quantities of `resources`.
fn unreserved(resources: &Resources) -> Qty {
    let mut q = Qty::default();
    for r in resources.iter().filter(|r| reserved_role(r).is_none()) {
        q.add_entry(r);
    }
    q
}

/// Takes `resources` out of what `fw` holds on one agent, per role: whole
/// from one role when possible (preferring `hint`), else entry by entry.
/// The master does not say which role recovered resources were offered
/// for, so for a multi-role framework holding the same kind of resource in
/// several roles on one agent the attribution is a best guess; the totals
/// stay exact.
fn take_held(
    held: &mut Vec<Held>,
    fw: FwIdx,
    hint: Option<RoleId>,
    resources: &Resources,
) -> Vec<(RoleId, Resources)> {
    let mut candidates: Vec<usize> = (0..held.len()).filter(|i| held[*i].fw == fw).collect();
    candidates.sort_by_key(|i| Some(held[*i].role) != hint);
    // A declined offer usually returns exactly what was granted: hand the
    // held resources over without any arithmetic.
    if let Some(i) = candidates
        .iter()
        .copied()
        .find(|i| held[*i].res == *resources)
    {
        let h = held.swap_remove(i);
        return vec![(h.role, h.res)];
    }
    let mut taken = Vec::new();
    if let Some((i, left)) = candidates
        .iter()
        .find_map(|i| Some((*i, held[*i].res.checked_sub(resources)?)))
    {
        held[i].res = left;
        taken.push((held[i].role, resources.clone()));
    } else {
        for entry in resources.iter() {
            let one = Resources::from(vec![entry.clone()]);
            match candidates
                .iter()
                .find_map(|i| Some((*i, held[*i].res.checked_sub(&one)?)))
            {
                Some((i, left)) => {
                    held[i].res = left;
                    taken.push((held[i].role, one));
                }
                None => tracing::warn!(
                    resource = %one,
                    "recovered resources that were not allocated; ignoring them"
                ),
            }
        }
    }
    held.retain(|h| !h.res.is_empty());
    taken
}

impl Allocator for HierarchicalDrf {
    fn name(&self) -> &str {
        "HierarchicalDRF"
    }

    fn add_framework(&mut self, framework: FrameworkSpec, used: &[(String, Resources)]) {
        if self.framework(&framework.id).is_some() {
            self.remove_framework(&framework.id);
        }
        let fw = self.frameworks.len();
        let mut roles: Vec<RoleId> = Vec::new();
        for name in &framework.roles {
            let id = self.roles.ensure(name);
            if !roles.contains(&id) {
                roles.push(id);
            }
        }
        if roles.is_empty() {
            roles.push(self.roles.ensure("*"));
        }
        let suppressed: IndexSet<RoleId> = framework
            .suppressed_roles
            .iter()
            .filter_map(|name| self.roles.id(name))
            .filter(|id| roles.contains(id))
            .collect();
        let slot = FrameworkSlot {
            id: framework.id.clone(),
            roles: roles.clone(),
            active: true,
            suppressed,
            filters: IndexMap::default(),
            agents: IndexSet::default(),
        };
        for role in &roles {
            self.roles
                .add_member(*role, fw, Qty::default(), slot.live(*role));
        }
        self.frameworks.push(Some(slot));
        self.framework_index.insert(framework.id, fw);
        for (agent_id, resources) in used {
            let Some(&a) = self.agent_index.get(agent_id) else {
                continue;
            };
            let role = self
                .allocation_role(resources)
                .filter(|r| roles.contains(r))
                .unwrap_or(roles[0]);
            let resources = resources.unallocated();
            self.hold(a, fw, role, &resources);
        }
    }

    fn remove_framework(&mut self, framework_id: &str) {
        let Some(fw) = self.framework_index.remove(framework_id) else {
            return;
        };
        let Some(slot) = self.frameworks[fw].take() else {
            return;
        };
        for role in &slot.roles {
            self.roles.remove_member(*role, fw);
        }
        for a in slot.agents {
            if let Some(agent) = self.agents[a].as_mut() {
                for h in agent.held.iter().filter(|h| h.fw == fw) {
                    agent.available.add(&h.res);
                }
                agent.held.retain(|h| h.fw != fw);
            }
        }
    }

    fn set_framework_active(&mut self, framework_id: &str, active: bool) {
        let Some(fw) = self.framework(framework_id) else {
            return;
        };
        let Some(slot) = self.frameworks[fw].as_mut() else {
            return;
        };
        slot.active = active;
        for role in slot.roles.clone() {
            let live = slot.live(role);
            self.roles.set_live(role, fw, live);
        }
    }

    fn add_agent(&mut self, agent: AgentSpec, used: &[(String, Resources)]) {
        if self.agent_index.contains_key(&agent.id) {
            self.remove_agent(&agent.id);
        }
        let a = self.agents.len();
        let agent_id = agent.id.clone();
        let total = Qty::of(&agent.total);
        self.agents.push(Some(AgentSlot {
            id: agent.id.clone(),
            available: agent.total,
            held: Vec::new(),
            total,
            active: true,
        }));
        self.agent_index.insert(agent.id, a);
        self.cluster.add(&total);
        for (framework_id, resources) in used {
            let Some(fw) = self.framework(framework_id) else {
                // The master adds frameworks before their agents; should one
                // be missing, what it uses must still not be offered.
                tracing::warn!(
                    framework = %framework_id,
                    agent = %agent_id,
                    "resources in use by an unknown framework; kept out of offers"
                );
                if let Some(agent) = self.agents[a].as_mut()
                    && let Some(left) = agent.available.checked_sub(&resources.unallocated())
                {
                    agent.available = left;
                }
                continue;
            };
            let Some(roles) = self.frameworks[fw].as_ref().map(|f| f.roles.clone()) else {
                continue;
            };
            let role = self
                .allocation_role(resources)
                .filter(|r| roles.contains(r))
                .unwrap_or(roles[0]);
            let resources = resources.unallocated();
            self.hold(a, fw, role, &resources);
        }
    }

    fn remove_agent(&mut self, agent_id: &str) {
        let Some(a) = self.agent_index.remove(agent_id) else {
            return;
        };
        let Some(agent) = self.agents[a].take() else {
            return;
        };
        if agent.active {
            self.cluster.sub(&agent.total);
        }
        for h in agent.held {
            if let Some(framework) = self.frameworks[h.fw].as_mut() {
                framework.agents.remove(&a);
                self.roles.charge(h.role, h.fw, &Qty::of(&h.res), false);
            }
        }
    }

    fn set_agent_active(&mut self, agent_id: &str, active: bool) {
        let Some(&a) = self.agent_index.get(agent_id) else {
            return;
        };
        let Some(agent) = self.agents[a].as_mut() else {
            return;
        };
        if agent.active != active {
            agent.active = active;
            if active {
                self.cluster.add(&agent.total);
            } else {
                self.cluster.sub(&agent.total);
            }
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
        let Some(fw) = self.framework(framework_id) else {
            return;
        };
        let hint = self.allocation_role(resources);
        let resources = if resources.iter().any(|r| r.allocation_info.is_some()) {
            Cow::Owned(resources.unallocated())
        } else {
            Cow::Borrowed(resources)
        };
        let Some(&a) = self.agent_index.get(agent_id) else {
            return;
        };
        if let Some(agent) = self.agents[a].as_mut() {
            let taken = take_held(&mut agent.held, fw, hint, &resources);
            let still_holds = agent.held.iter().any(|h| h.fw == fw);
            for (role, part) in taken {
                self.roles.charge(role, fw, &Qty::of(&part), false);
                if agent.available.is_empty() {
                    agent.available = part;
                } else {
                    agent.available.add(&part);
                }
            }
            if !still_holds && let Some(framework) = self.frameworks[fw].as_mut() {
                framework.agents.remove(&a);
            }
        }
        if let Some(refuse) = refuse.filter(|d| !d.is_zero())
            && let Some(framework) = self.frameworks[fw].as_mut()
        {
            let until = now + refuse;
            framework.filters.insert(
                a,
                Refusal {
                    until,
                    refused: Qty::of(&resources),
                },
            );
            self.next_expiry = Some(self.next_expiry.map_or(until, |t| t.min(until)));
        }
    }

    fn convert_resources(
        &mut self,
        agent_id: &str,
        framework_id: Option<&str>,
        consumed: &Resources,
        converted: &Resources,
    ) {
        let Some(&a) = self.agent_index.get(agent_id) else {
            return;
        };
        let fw = framework_id.and_then(|id| self.framework(id));
        let Some(agent) = self.agents[a].as_mut() else {
            return;
        };
        let (consumed, converted) = (consumed.unallocated(), converted.unallocated());
        match fw {
            Some(fw) => {
                // Held per role: the converted resources stay with the role
                // the consumed ones were held in.
                let hint = self
                    .roles
                    .id(converted.iter().find_map(reserved_role).unwrap_or_default());
                let taken = take_held(&mut agent.held, fw, hint, &consumed);
                let role = taken.first().map(|(role, _)| *role);
                let Some(role) = role else {
                    tracing::warn!(agent = agent_id, resources = %consumed, "converted resources were not held by the framework; ignoring the conversion");
                    return;
                };
                match agent.held.iter_mut().find(|h| h.fw == fw && h.role == role) {
                    Some(h) => h.res.add(&converted),
                    None => agent.held.push(Held {
                        fw,
                        role,
                        res: converted,
                    }),
                }
            }
            None => match agent.available.checked_sub(&consumed) {
                Some(mut left) => {
                    left.add(&converted);
                    agent.available = left;
                }
                None => {
                    tracing::warn!(agent = agent_id, resources = %consumed, "converted resources were not free on the agent; ignoring the conversion")
                }
            },
        }
    }

    fn suppress(&mut self, framework_id: &str, roles: &[String]) {
        let Some(fw) = self.framework(framework_id) else {
            return;
        };
        let Some(slot) = self.frameworks[fw].as_mut() else {
            return;
        };
        let targets: Vec<RoleId> = slot
            .roles
            .iter()
            .copied()
            .filter(|r| roles.is_empty() || roles.contains(&self.roles.get(*r).name))
            .collect();
        for role in targets {
            slot.suppressed.insert(role);
            self.roles.set_live(role, fw, false);
        }
    }

    fn revive(&mut self, framework_id: &str, roles: &[String]) {
        let Some(fw) = self.framework(framework_id) else {
            return;
        };
        let Some(slot) = self.frameworks[fw].as_mut() else {
            return;
        };
        slot.filters.clear();
        let targets: Vec<RoleId> = slot
            .roles
            .iter()
            .copied()
            .filter(|r| roles.is_empty() || roles.contains(&self.roles.get(*r).name))
            .collect();
        for role in targets {
            slot.suppressed.remove(&role);
            let live = slot.live(role);
            self.roles.set_live(role, fw, live);
        }
    }

    fn set_weights(&mut self, weights: &[(String, f64)]) {
        for (role, weight) in weights {
            if weight.is_finite() && *weight > 0.0 {
                self.roles.set_weight(role, *weight);
            } else {
                tracing::warn!(
                    role,
                    weight,
                    "ignoring a weight that is not a positive number"
                );
            }
        }
    }

    fn update_quota(&mut self, config: QuotaConfig) {
        let mut quota = Quota::default();
        let slots = |pairs: &[(String, f64)], what: &str| {
            pairs
                .iter()
                .filter_map(|(name, value)| match kind(name) {
                    Some(k) => Some((k, to_millis(*value).max(0))),
                    None => {
                        tracing::warn!(role = %config.role, resource = %name, "quota {what} on a resource the allocator does not track; ignored");
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        for (k, v) in slots(&config.limits, "limit") {
            quota.limit[k] = Some(v);
        }
        for (k, v) in slots(&config.guarantees, "guarantee") {
            // A guarantee above the limit could never be met.
            quota.guarantee.0[k] = quota.limit[k].map_or(v, |l| v.min(l));
        }
        let role = self.roles.ensure(&config.role);
        tracing::info!(role = %config.role, ?quota, "quota updated");
        self.roles.set_quota(role, quota);
    }

    fn allocate(&mut self, now: Instant) -> Vec<Grant> {
        self.expire_filters(now);
        self.roles.set_total(self.cluster);
        let mut cycle = self.start_cycle(now);
        let quota_roles = cycle.quota_roles.clone();
        for q in quota_roles {
            if self.shortfall(q).is_zero() {
                continue;
            }
            for a in 0..self.agents.len() {
                self.serve_agent(a, q, Some(q), &mut cycle);
            }
        }
        for a in 0..self.agents.len() {
            self.serve_agent(a, ROOT, None, &mut cycle);
        }
        cycle.grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(text: &str) -> Resources {
        Resources::from(mesos_resources::parse_resources(text, "*").unwrap())
    }

    fn framework(id: &str, roles: &[&str]) -> FrameworkSpec {
        FrameworkSpec {
            id: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
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

    fn cpus_of(grants: &[Grant], framework: &str) -> f64 {
        grants
            .iter()
            .filter(|g| g.framework_id == framework)
            .map(|g| g.resources.scalar("cpus"))
            .sum()
    }

    #[test]
    fn offers_whole_agent_once_until_recovered() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:2;mem:1024"), &[]);
        drf.add_framework(framework("f1", &["*"]), &[]);
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
        drf.add_framework(framework("f1", &["*"]), &[]);
        let g = drf.allocate(now).remove(0);
        drf.recover_resources("f1", "a1", &g.resources, Some(Duration::from_secs(5)), now);
        assert!(drf.allocate(now + Duration::from_secs(1)).is_empty());
        assert_eq!(drf.allocate(now + Duration::from_secs(6)).len(), 1);
    }

    #[test]
    fn refuse_filter_lifts_when_the_agent_has_more_to_offer() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:4;mem:4096"), &[]);
        drf.add_framework(framework("f1", &["*"]), &[]);
        let g = drf.allocate(now).remove(0);
        let task = res("cpus:1;mem:128");
        let rest = g.resources.checked_sub(&task).unwrap();
        let hour = Some(Duration::from_secs(3600));
        drf.recover_resources("f1", "a1", &rest, hour, now);
        assert!(
            drf.allocate(now).is_empty(),
            "the same resources stay refused"
        );
        // The task ends: the agent now has more than was refused.
        drf.recover_resources("f1", "a1", &task, None, now);
        let again = drf.allocate(now);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].resources, res("cpus:4;mem:4096"));
    }

    #[test]
    fn resources_in_use_at_registration_are_not_offered() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        // As after a master failover: the framework is known (inactive)
        // before its agent re-registers with the framework's tasks.
        drf.add_framework(framework("old", &["*"]), &[]);
        drf.set_framework_active("old", false);
        drf.add_framework(framework("new", &["*"]), &[]);
        drf.add_agent(
            agent("a1", "cpus:4;mem:4096"),
            &[
                ("old".into(), res("cpus:1;mem:512")),
                ("gone".into(), res("cpus:1;mem:512")),
            ],
        );
        let g = drf.allocate(now).remove(0);
        assert_eq!(g.framework_id, "new");
        assert_eq!(g.resources, res("cpus:2;mem:3072"));
        drf.recover_resources("old", "a1", &res("cpus:1;mem:512"), None, now);
        let g = drf.allocate(now).remove(0);
        assert_eq!(
            g.resources,
            res("cpus:1;mem:512"),
            "the task's share is back"
        );
    }

    #[test]
    fn lower_dominant_share_is_served_first() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:4;mem:4096"), &[]);
        drf.add_agent(agent("a2", "cpus:4;mem:4096"), &[]);
        drf.add_framework(
            framework("f1", &["*"]),
            &[("a1".into(), res("cpus:1;mem:128"))],
        );
        drf.add_framework(framework("f2", &["*"]), &[]);
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
        drf.add_framework(framework("f1", &["*"]), &[]);
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
        drf.add_framework(framework("f1", &["*"]), &[]);
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

    /// Frameworks that launch a `cpus:0.1;mem:16` task on every offer and
    /// return the rest, until no offer has room for one more: tasks per
    /// framework.
    fn launch_until_full(drf: &mut HierarchicalDrf, frameworks: &[&str]) -> Vec<usize> {
        let now = Instant::now();
        let task = res("cpus:0.1;mem:16");
        let mut launched = vec![0; frameworks.len()];
        loop {
            let grants = drf.allocate(now);
            let mut any = false;
            for g in grants {
                let i = frameworks
                    .iter()
                    .position(|f| *f == g.framework_id)
                    .unwrap();
                match g.resources.checked_sub(&task) {
                    Some(rest) => {
                        launched[i] += 1;
                        any = true;
                        drf.recover_resources(&g.framework_id, &g.agent_id, &rest, None, now);
                    }
                    None => drf.recover_resources(
                        &g.framework_id,
                        &g.agent_id,
                        &g.resources,
                        Some(Duration::from_secs(3600)),
                        now,
                    ),
                }
            }
            if !any {
                return launched;
            }
        }
    }

    #[test]
    fn weights_split_a_contended_resource() {
        let mut drf = HierarchicalDrf::new(Options {
            weights: vec![("b".into(), 3.0)],
            ..Default::default()
        });
        drf.add_agent(agent("a1", "cpus:4;mem:4096"), &[]);
        drf.add_framework(framework("fa", &["a"]), &[]);
        drf.add_framework(framework("fb", &["b"]), &[]);
        let launched = launch_until_full(&mut drf, &["fa", "fb"]);
        assert_eq!(launched[0] + launched[1], 40);
        assert!(
            (9..=11).contains(&launched[0]),
            "weight 1 against 3 gets a quarter: {launched:?}"
        );
    }

    #[test]
    fn weights_apply_at_each_level_of_the_role_tree() {
        // a/x and a/y split a's half; c gets the other half.
        let mut drf = HierarchicalDrf::new(Options {
            weights: vec![("a/y".into(), 3.0)],
            ..Default::default()
        });
        drf.add_agent(agent("a1", "cpus:8;mem:8192"), &[]);
        drf.add_framework(framework("fx", &["a/x"]), &[]);
        drf.add_framework(framework("fy", &["a/y"]), &[]);
        drf.add_framework(framework("fc", &["c"]), &[]);
        let launched = launch_until_full(&mut drf, &["fx", "fy", "fc"]);
        assert!((39..=41).contains(&launched[2]), "{launched:?}");
        assert!((9..=11).contains(&launched[0]), "{launched:?}");
        assert!((29..=31).contains(&launched[1]), "{launched:?}");
    }

    #[test]
    fn reservations_go_only_to_their_role_and_its_descendants() {
        let mut drf = HierarchicalDrf::default();
        let now = Instant::now();
        drf.add_agent(agent("a1", "cpus:2;cpus(ops):3;mem:1024"), &[]);
        drf.add_framework(framework("star", &["*"]), &[]);
        let grants = drf.allocate(now);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].resources, res("cpus:2;mem:1024"));
        assert!(drf.allocate(now).is_empty(), "ops's cpus wait for ops");
        drf.add_framework(framework("dev", &["ops/dev"]), &[]);
        let grants = drf.allocate(now);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].framework_id, "dev");
        assert_eq!(grants[0].role, "ops/dev");
        assert_eq!(grants[0].resources, res("cpus(ops):3"));
    }

    #[test]
    fn min_allocatable_resources_gate_offers() {
        let now = Instant::now();
        let mut drf = HierarchicalDrf::default();
        drf.add_agent(agent("a1", "cpus:0.005;mem:31;disk:100"), &[]);
        drf.add_framework(framework("f1", &["*"]), &[]);
        assert!(drf.allocate(now).is_empty(), "below cpus:0.01|mem:32");

        let mut drf = HierarchicalDrf::new(Options {
            min_allocatable: MinAllocatable::parse("cpus:1;disk:200").unwrap(),
            ..Default::default()
        });
        drf.add_agent(agent("a1", "cpus:2;mem:1024;disk:100"), &[]);
        drf.add_agent(agent("a2", "cpus:2;mem:1024;disk:300"), &[]);
        drf.add_framework(framework("f1", &["*"]), &[]);
        let grants = drf.allocate(now);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].agent_id, "a2");
    }

    fn quota(role: &str, guarantees: &[(&str, f64)], limits: &[(&str, f64)]) -> QuotaConfig {
        let pairs = |p: &[(&str, f64)]| p.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        QuotaConfig {
            role: role.into(),
            guarantees: pairs(guarantees),
            limits: pairs(limits),
        }
    }

    #[test]
    fn quota_guarantee_is_met_before_fair_share() {
        let now = Instant::now();
        let mut drf = HierarchicalDrf::default();
        for a in ["a1", "a2", "a3"] {
            drf.add_agent(agent(a, "cpus:2;mem:1024"), &[]);
        }
        // Without quota DRF would alternate: fa 4 cpus, fq 2.
        drf.add_framework(framework("fa", &["a"]), &[]);
        drf.add_framework(framework("fq", &["q"]), &[]);
        drf.update_quota(quota("q", &[("cpus", 4.0)], &[]));
        let grants = drf.allocate(now);
        assert_eq!(cpus_of(&grants, "fq"), 4.0);
        assert_eq!(cpus_of(&grants, "fa"), 2.0);
    }

    #[test]
    fn unmet_guarantees_hold_back_unreserved_resources() {
        let now = Instant::now();
        let mut drf = HierarchicalDrf::default();
        for a in ["a1", "a2", "a3"] {
            drf.add_agent(agent(a, "cpus:2;mem:1024"), &[]);
        }
        drf.add_framework(framework("fa", &["a"]), &[]);
        // The quota role has no framework yet: 4 cpus stay free for it.
        drf.update_quota(quota("q", &[("cpus", 4.0)], &[]));
        let grants = drf.allocate(now);
        assert_eq!(cpus_of(&grants, "fa"), 2.0);
        drf.add_framework(framework("fq", &["q"]), &[]);
        let grants = drf.allocate(now);
        assert_eq!(cpus_of(&grants, "fq"), 4.0);
    }

    #[test]
    fn quota_limit_is_never_exceeded() {
        let now = Instant::now();
        let mut drf = HierarchicalDrf::default();
        drf.add_agent(agent("a1", "cpus:2;mem:1024"), &[]);
        drf.add_agent(agent("a2", "cpus:2;mem:1024"), &[]);
        drf.add_framework(framework("fl", &["l"]), &[]);
        drf.update_quota(quota("l", &[], &[("cpus", 3.0)]));
        let grants = drf.allocate(now);
        assert_eq!(cpus_of(&grants, "fl"), 3.0);
        // Over many launch cycles the role stays at its limit.
        let launched = launch_until_full(&mut drf, &["fl"]);
        assert_eq!(launched[0], 0, "the role already holds its limit");
        for g in &grants {
            drf.recover_resources("fl", &g.agent_id, &g.resources, None, now);
        }
        let launched = launch_until_full(&mut drf, &["fl"]);
        assert_eq!(launched[0], 30, "3 cpus of tasks, not 4");
    }

    #[test]
    fn multi_role_framework_gets_one_grant_per_role() {
        let now = Instant::now();
        let mut drf = HierarchicalDrf::default();
        drf.add_agent(agent("a1", "cpus:2;mem:1024"), &[]);
        drf.add_agent(agent("a2", "cpus:2;cpus(b):1;mem:1024"), &[]);
        drf.add_framework(framework("f", &["a", "b"]), &[]);
        let grants = drf.allocate(now);
        let mut roles: Vec<&str> = grants.iter().map(|g| g.role.as_str()).collect();
        roles.sort();
        assert_eq!(roles, vec!["a", "b"]);
        for g in &grants {
            assert_eq!(g.framework_id, "f");
            if g.role == "a" {
                assert_eq!(g.resources.scalar("cpus"), 2.0, "no cpus(b) in role a");
            }
        }
        let b = grants.iter().find(|g| g.role == "b").unwrap();
        // Resources come back stamped with their role, as Mesos does.
        let mut stamped = b.resources.clone();
        stamped.allocate("b");
        drf.recover_resources("f", &b.agent_id, &stamped, None, now);
        let again = drf.allocate(now);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].agent_id, b.agent_id);
        assert_eq!(again[0].resources, b.resources);
    }
}
