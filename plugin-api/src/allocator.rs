//! The allocator: Mesos's allocator events in, offers out.
//!
//! The contract is batched: the master feeds events as they happen (cheap,
//! bookkeeping only) and calls [`Allocator::allocate`] once per allocation
//! cycle, which returns every grant of that cycle at once. A plugin allocator
//! behind a foreign-call boundary is therefore called a handful of times per
//! cycle, never once per agent x framework pair.
//!
//! Resources handed to the allocator are *unallocated* (no
//! `allocation_info`): the master stamps the role onto offered resources.

use std::time::{Duration, Instant};

use mesos_resources::Resources;

/// An agent as the allocator sees it.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub id: String,
    pub hostname: String,
    pub total: Resources,
}

/// A framework as the allocator sees it.
#[derive(Debug, Clone)]
pub struct FrameworkSpec {
    pub id: String,
    /// Roles the framework subscribed with; a framework without MULTI_ROLE
    /// has exactly one.
    pub roles: Vec<String>,
    /// Roles for which the framework asked not to get offers.
    pub suppressed_roles: Vec<String>,
}

/// A role's quota (Mesos 1.9+ `QuotaConfig`): the allocator hands the role
/// its `guarantees` before fair sharing, holding back unreserved resources
/// for them, and never lets the role's consumption (allocation plus
/// unallocated reservations) exceed `limits`. Quantities are scalars by
/// resource name; a name missing from `limits` is unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaConfig {
    pub role: String,
    pub guarantees: Vec<(String, f64)>,
    pub limits: Vec<(String, f64)>,
}

/// Resources granted to a framework on one agent, for one role, in one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub framework_id: String,
    pub agent_id: String,
    pub role: String,
    pub resources: Resources,
}

/// Mesos's allocator interface, reduced to what the master drives.
///
/// Every method is bookkeeping except [`Allocator::allocate`]. Resources are
/// considered allocated from the moment they are granted until the master
/// gives them back with [`Allocator::recover_resources`] (declined, offer
/// rescinded, task finished).
pub trait Allocator: Send + 'static {
    /// Name under which the allocator is selected (`--allocator=NAME`).
    fn name(&self) -> &str;

    /// A framework subscribed. `used` lists what it already holds on each
    /// agent (a framework failing over keeps its tasks).
    fn add_framework(&mut self, framework: FrameworkSpec, used: &[(String, Resources)]);

    /// A framework is gone; everything it held must already have been
    /// recovered by the master or is forgotten here.
    fn remove_framework(&mut self, framework_id: &str);

    /// A framework disconnected (or came back): inactive frameworks keep
    /// their allocation but get no new offers.
    fn set_framework_active(&mut self, framework_id: &str, active: bool);

    /// An agent registered. `used` lists what frameworks already run there.
    fn add_agent(&mut self, agent: AgentSpec, used: &[(String, Resources)]);

    fn remove_agent(&mut self, agent_id: &str);

    /// A disconnected agent's resources are not offered until it is back.
    fn set_agent_active(&mut self, agent_id: &str, active: bool);

    /// Resources return to the pool. With `refuse`, the framework is not
    /// offered resources of that agent again for that long (Mesos's
    /// `Filters.refuse_seconds`).
    fn recover_resources(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    );

    /// Operations (reserve, unreserve, create or destroy a volume) turned
    /// `consumed` into `converted` on an agent: resources the framework
    /// holds when `framework_id` is given (an ACCEPT), else free resources
    /// of the agent (an operator's call). Quantities do not change, only
    /// which role may use them, so shares stay as they are.
    fn convert_resources(
        &mut self,
        agent_id: &str,
        framework_id: Option<&str>,
        consumed: &Resources,
        converted: &Resources,
    );

    /// Stop offering to the framework for these roles (all its roles if empty).
    fn suppress(&mut self, framework_id: &str, roles: &[String]);

    /// Offer again for these roles (all if empty) and drop the framework's
    /// offer filters.
    fn revive(&mut self, framework_id: &str, roles: &[String]);

    /// Role weights (Mesos's `--weights` and UPDATE_WEIGHTS): a role's
    /// dominant share is divided by its weight. Roles not listed keep
    /// theirs; the default is 1.
    fn set_weights(&mut self, weights: &[(String, f64)]);

    /// Sets a role's quota; empty guarantees and limits remove it (Mesos's
    /// UPDATE_QUOTA, one config per role).
    fn update_quota(&mut self, quota: QuotaConfig);

    /// One allocation cycle: everything granted now.
    fn allocate(&mut self, now: Instant) -> Vec<Grant>;
}
