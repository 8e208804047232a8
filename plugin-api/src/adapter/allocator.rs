//! An [`Allocator`] reached through the plugin envelope. Bookkeeping
//! calls only append to a journal; [`Allocator::allocate`] sends the
//! journal and the cycle's time in one `allocator.allocate` call and
//! takes back every grant. A cluster of any size therefore costs one
//! foreign call per allocation cycle.
//!
//! Grants are checked before the master sees them: a grant for an agent
//! or framework the plugin was never told of, for a role the framework
//! did not subscribe with, or for more than the agent has free (its total
//! less what the frameworks hold there, earlier grants of the same cycle
//! included) is dropped, logged, and handed back to the plugin as
//! recovered, so that its books still balance.
//!
//! A cycle that fails leaves the plugin's books unknown (it applied part
//! of the journal, or it is a WASM instance rebuilt empty after a trap):
//! the next cycle sends `reset` and, instead of the journal, the events
//! that rebuild the whole cluster from the adapter's own [`Books`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mesos_proto::plugin::v1::{self as proto, allocator_event::Event};
use mesos_resources::Resources;

use super::books::{self, Books};
use super::{Policy, Remote};
use crate::abi::method::allocator as method;
use crate::allocator::{AgentSpec, Allocator, FrameworkSpec, Grant, QuotaConfig};
use crate::envelope::Envelope;

/// A loaded allocator plugin. Its state lives in the plugin, so one
/// master allocator is made of it, once ([`LoadedAllocator::start`]).
#[derive(Debug)]
pub struct LoadedAllocator {
    remote: Remote,
    started: AtomicBool,
}

impl LoadedAllocator {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
            started: AtomicBool::new(false),
        }
    }

    pub fn name(&self) -> &str {
        self.remote.name
    }

    /// The master's allocator; `None` if one was already made.
    pub fn start(self: &Arc<Self>) -> Option<PluginAllocator> {
        if self.started.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(PluginAllocator {
            plugin: self.clone(),
            journal: Vec::new(),
            epoch: Instant::now(),
            books: Books::default(),
            reset: false,
        })
    }
}

/// The master's side of an allocator plugin.
#[derive(Debug)]
pub struct PluginAllocator {
    plugin: Arc<LoadedAllocator>,
    /// Events since the last `allocate`, oldest first.
    journal: Vec<proto::AllocatorEvent>,
    /// Zero of the millisecond clock the plugin sees.
    epoch: Instant,
    /// The cluster as the master told it, and what the plugin granted:
    /// what grants are checked against, and what a reset rebuilds.
    books: Books,
    /// The last cycle failed: the next one rebuilds the plugin's books.
    reset: bool,
}

/// Milliseconds from `epoch` to `at`, saturating.
fn millis(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

fn holdings(used: &[(String, Resources)]) -> Vec<proto::Holding> {
    used.iter()
        .map(|(id, resources)| proto::Holding {
            id: id.clone(),
            resources: resources.as_slice().to_vec(),
        })
        .collect()
}

impl PluginAllocator {
    fn record(&mut self, event: Event) {
        self.record_at(event, Instant::now());
    }

    fn record_at(&mut self, event: Event, at: Instant) {
        self.journal.push(proto::AllocatorEvent {
            at_ms: millis(self.epoch, at),
            event: Some(event),
        });
    }

    fn roles(framework_id: &str, roles: &[String]) -> proto::allocator_event::Roles {
        proto::allocator_event::Roles {
            framework_id: framework_id.to_string(),
            roles: roles.to_vec(),
        }
    }
}

impl Allocator for PluginAllocator {
    fn name(&self) -> &str {
        self.plugin.name()
    }

    fn add_framework(&mut self, framework: FrameworkSpec, used: &[(String, Resources)]) {
        self.books.add_framework(&framework, used);
        self.record(Event::AddFramework(proto::allocator_event::AddFramework {
            framework_id: framework.id,
            roles: framework.roles,
            suppressed_roles: framework.suppressed_roles,
            used: holdings(used),
        }));
    }

    fn remove_framework(&mut self, framework_id: &str) {
        self.books.remove_framework(framework_id);
        self.record(Event::RemoveFramework(
            proto::allocator_event::RemoveFramework {
                framework_id: framework_id.to_string(),
            },
        ));
    }

    fn set_framework_active(&mut self, framework_id: &str, active: bool) {
        self.books.set_framework_active(framework_id, active);
        self.record(Event::SetFrameworkActive(
            proto::allocator_event::SetFrameworkActive {
                framework_id: framework_id.to_string(),
                active,
            },
        ));
    }

    fn add_agent(&mut self, agent: AgentSpec, used: &[(String, Resources)]) {
        self.books.add_agent(&agent, used);
        self.record(Event::AddAgent(proto::allocator_event::AddAgent {
            agent_id: agent.id,
            hostname: agent.hostname,
            total: agent.total.into_vec(),
            used: holdings(used),
        }));
    }

    fn remove_agent(&mut self, agent_id: &str) {
        self.books.remove_agent(agent_id);
        self.record(Event::RemoveAgent(proto::allocator_event::RemoveAgent {
            agent_id: agent_id.to_string(),
        }));
    }

    fn set_agent_active(&mut self, agent_id: &str, active: bool) {
        self.books.set_agent_active(agent_id, active);
        self.record(Event::SetAgentActive(
            proto::allocator_event::SetAgentActive {
                agent_id: agent_id.to_string(),
                active,
            },
        ));
    }

    fn recover_resources(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    ) {
        self.books.release(framework_id, agent_id, resources);
        self.journal_recovery(framework_id, agent_id, resources, refuse, now);
    }

    fn convert_resources(
        &mut self,
        agent_id: &str,
        framework_id: Option<&str>,
        consumed: &Resources,
        converted: &Resources,
    ) {
        self.books
            .convert(agent_id, framework_id, consumed, converted);
        self.record(Event::ConvertResources(
            proto::allocator_event::ConvertResources {
                agent_id: agent_id.to_string(),
                framework_id: framework_id.map(str::to_string),
                consumed: consumed.as_slice().to_vec(),
                converted: converted.as_slice().to_vec(),
            },
        ));
    }

    fn suppress(&mut self, framework_id: &str, roles: &[String]) {
        self.books.suppress(framework_id, roles, true);
        self.record(Event::Suppress(Self::roles(framework_id, roles)));
    }

    fn revive(&mut self, framework_id: &str, roles: &[String]) {
        self.books.suppress(framework_id, roles, false);
        self.record(Event::Revive(Self::roles(framework_id, roles)));
    }

    fn set_weights(&mut self, weights: &[(String, f64)]) {
        self.books.set_weights(weights);
        self.record(books::weights_event(weights));
    }

    fn update_quota(&mut self, quota: QuotaConfig) {
        self.books.update_quota(&quota);
        self.record(books::quota_event(&quota));
    }

    /// One call with the journal. The journal is spent whatever the
    /// answer: a plugin that failed halfway through it cannot be told
    /// which events it applied, so the next cycle rebuilds its books
    /// instead. A failure makes no offers this cycle and is logged with
    /// the plugin's name.
    fn allocate(&mut self, now: Instant) -> Vec<Grant> {
        let now_ms = millis(self.epoch, now);
        let journal = std::mem::take(&mut self.journal);
        let request = match self.reset {
            false => proto::AllocateRequest {
                events: journal,
                now_ms,
                reset: false,
            },
            true => {
                tracing::info!(
                    allocator = self.plugin.name(),
                    frameworks = self.books.frameworks.len(),
                    agents = self.books.agents.len(),
                    "rebuilding the allocator's books"
                );
                proto::AllocateRequest {
                    events: self.books.snapshot(now_ms),
                    now_ms,
                    reset: true,
                }
            }
        };
        let answer = self
            .plugin
            .remote
            .call::<proto::AllocateResponse>(method::ALLOCATE, &request);
        self.reset = !matches!(answer, Ok(Some(_)));
        let response = match answer {
            Ok(Some(response)) => response,
            Ok(None) => return Vec::new(),
            Err(message) => {
                tracing::error!(
                    allocator = self.plugin.name(),
                    "{message}; no offers this cycle, and its books are rebuilt in the next"
                );
                return Vec::new();
            }
        };
        let mut grants = Vec::with_capacity(response.grants.len());
        for grant in response.grants {
            let grant = Grant {
                framework_id: grant.framework_id,
                agent_id: grant.agent_id,
                role: grant.role,
                resources: Resources::from(grant.resources),
            };
            match self.check(&grant) {
                Ok(()) => {
                    self.books
                        .hold(&grant.framework_id, &grant.agent_id, &grant.resources);
                    grants.push(grant);
                }
                Err(why) => {
                    tracing::error!(
                        allocator = self.plugin.name(),
                        framework = %grant.framework_id,
                        agent = %grant.agent_id,
                        "grant dropped: {why}"
                    );
                    // The plugin counts it as given: it hears it back. The
                    // books never held it.
                    let Grant {
                        framework_id,
                        agent_id,
                        resources,
                        ..
                    } = grant;
                    self.journal_recovery(&framework_id, &agent_id, &resources, None, now);
                }
            }
        }
        grants
    }
}

impl PluginAllocator {
    /// Tells the plugin, with the next cycle, that `resources` are back.
    fn journal_recovery(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    ) {
        let refuse_ms = refuse.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.record_at(
            Event::RecoverResources(proto::allocator_event::RecoverResources {
                framework_id: framework_id.to_string(),
                agent_id: agent_id.to_string(),
                resources: resources.as_slice().to_vec(),
                refuse_ms,
            }),
            now,
        );
    }

    /// Whether `grant` can be offered: its agent has it free, given what
    /// the frameworks hold there (this cycle's grants included).
    fn check(&self, grant: &Grant) -> Result<(), String> {
        let total = &self
            .books
            .agents
            .get(&grant.agent_id)
            .ok_or("unknown agent")?
            .total;
        let roles = &self
            .books
            .frameworks
            .get(&grant.framework_id)
            .ok_or("unknown framework")?
            .roles;
        if !roles.contains(&grant.role) {
            return Err(format!("the framework has no role '{}'", grant.role));
        }
        if grant.resources.is_empty() {
            return Err("no resources".to_string());
        }
        // Held resources carry the role they are allocated to; the total
        // does not.
        let held = self.books.held_on(&grant.agent_id).unallocated();
        let mut wanted = held.clone();
        wanted.add(&grant.resources.unallocated());
        if !total.unallocated().contains(&wanted) {
            return Err(format!(
                "more than the agent has free: {} wanted, {held} held of {total}",
                grant.resources
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Mutex;

    use mesos_proto::v1;
    use prost::Message;

    use super::*;
    use crate::envelope::{PluginError, Response};

    /// Answers every allocate with `grants` and keeps the requests.
    struct Granting {
        grants: Vec<proto::Grant>,
        requests: Arc<Mutex<Vec<proto::AllocateRequest>>>,
    }

    impl Envelope for Granting {
        fn call(&self, _: &str, request: &[u8]) -> Result<Response, PluginError> {
            let request = proto::AllocateRequest::decode(request).unwrap();
            self.requests.lock().unwrap().push(request);
            let response = proto::AllocateResponse {
                grants: self.grants.clone(),
            };
            Ok(Response::from(response.encode_to_vec()))
        }
    }

    fn cpus(value: f64) -> Vec<v1::Resource> {
        vec![v1::Resource {
            name: "cpus".into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value }),
            ..Default::default()
        }]
    }

    fn grant(framework: &str, agent: &str, role: &str, amount: f64) -> proto::Grant {
        proto::Grant {
            framework_id: framework.into(),
            agent_id: agent.into(),
            role: role.into(),
            resources: cpus(amount),
        }
    }

    #[test]
    fn one_call_per_cycle_and_only_sound_grants_reach_the_master() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let envelope = Granting {
            grants: vec![
                grant("f1", "a1", "*", 1.0),
                grant("f1", "a1", "*", 0.5),
                // Past the agent's 2 cpus with the two above.
                grant("f1", "a1", "*", 1.0),
                grant("f1", "a9", "*", 1.0),
                grant("f9", "a1", "*", 1.0),
                grant("f1", "a1", "web", 0.1),
            ],
            requests: requests.clone(),
        };
        let plugin = Arc::new(LoadedAllocator::new(
            "com.example.granting",
            Box::new(envelope),
            Policy::default(),
        ));
        let mut allocator = plugin.start().unwrap();
        assert!(plugin.start().is_none(), "one allocator per plugin");
        let t0 = Instant::now();
        allocator.add_agent(
            AgentSpec {
                id: "a1".into(),
                hostname: "a1".into(),
                total: Resources::from(cpus(2.0)),
            },
            &[],
        );
        allocator.add_framework(
            FrameworkSpec {
                id: "f1".into(),
                roles: vec!["*".into()],
                suppressed_roles: Vec::new(),
            },
            &[],
        );
        let offered: Vec<f64> = allocator
            .allocate(t0)
            .iter()
            .map(|g| g.resources.scalar("cpus"))
            .collect();
        assert_eq!(offered, [1.0, 0.5]);
        {
            let seen = requests.lock().unwrap();
            assert_eq!(seen.len(), 1);
            assert_eq!(seen[0].events.len(), 2, "both events in the one call");
        }
        // The four dropped grants go back to the plugin with the next cycle.
        // The same grants again: f1 holds 1.5 of the agent's 2 cpus now, so
        // only 0.5 more fits.
        let offered: Vec<f64> = allocator
            .allocate(t0 + Duration::from_secs(1))
            .iter()
            .map(|g| g.resources.scalar("cpus"))
            .collect();
        assert_eq!(offered, [0.5], "what earlier cycles granted is not free");
        let seen = requests.lock().unwrap();
        let recovered = seen[1]
            .events
            .iter()
            .filter(|e| matches!(e.event, Some(Event::RecoverResources(_))))
            .count();
        assert_eq!(recovered, 4);
        assert!((1000..2000).contains(&seen[1].now_ms), "{}", seen[1].now_ms);
    }

    /// Fails the cycles whose number (from 0) is in `failing`; keeps the
    /// requests; grants nothing.
    struct Failing {
        failing: Vec<usize>,
        requests: Arc<Mutex<Vec<proto::AllocateRequest>>>,
    }

    impl Envelope for Failing {
        fn call(&self, _: &str, request: &[u8]) -> Result<Response, PluginError> {
            let request = proto::AllocateRequest::decode(request).unwrap();
            let mut requests = self.requests.lock().unwrap();
            requests.push(request);
            if self.failing.contains(&(requests.len() - 1)) {
                return Err(PluginError::internal("wasm trap: unreachable"));
            }
            let grants = match requests.len() {
                1 => vec![grant("f1", "a1", "web", 1.0)],
                _ => Vec::new(),
            };
            Ok(Response::from(
                proto::AllocateResponse { grants }.encode_to_vec(),
            ))
        }
    }

    #[test]
    fn a_failed_cycle_is_followed_by_a_rebuild_of_the_plugins_books() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let envelope = Failing {
            failing: vec![1, 2],
            requests: requests.clone(),
        };
        let policy = Policy {
            quarantine_after: 0,
            ..Policy::default()
        };
        let plugin = Arc::new(LoadedAllocator::new("p", Box::new(envelope), policy));
        let mut allocator = plugin.start().unwrap();
        let t0 = Instant::now();
        allocator.add_framework(
            FrameworkSpec {
                id: "f1".into(),
                roles: vec!["web".into(), "batch".into()],
                suppressed_roles: Vec::new(),
            },
            &[],
        );
        allocator.add_agent(
            AgentSpec {
                id: "a1".into(),
                hostname: "h1".into(),
                total: Resources::from(cpus(4.0)),
            },
            &[],
        );
        assert_eq!(allocator.allocate(t0).len(), 1, "f1 holds 1 cpu of a1");
        allocator.suppress("f1", &["batch".to_string()]);
        allocator.set_weights(&[("web".into(), 2.0)]);
        allocator.remove_framework("gone");
        assert!(allocator.allocate(t0).is_empty(), "cycle 1 fails");
        assert!(allocator.allocate(t0).is_empty(), "so does its rebuild");
        allocator.set_agent_active("a1", false);
        allocator.allocate(t0);

        let seen = requests.lock().unwrap();
        assert!(!seen[0].reset && !seen[1].reset);
        for rebuild in &seen[2..4] {
            assert!(rebuild.reset);
            let events: Vec<&Event> = rebuild
                .events
                .iter()
                .filter_map(|e| e.event.as_ref())
                .collect();
            let Event::SetWeights(weights) = events[0] else {
                panic!("{events:?}");
            };
            assert_eq!(weights.weights[0].weight, 2.0);
            let Event::AddFramework(framework) = events[1] else {
                panic!("{events:?}");
            };
            assert_eq!(framework.roles, ["web", "batch"]);
            assert_eq!(framework.suppressed_roles, ["batch"]);
            let Event::AddAgent(agent) = events[2] else {
                panic!("{events:?}");
            };
            assert_eq!(
                (agent.agent_id.as_str(), agent.hostname.as_str()),
                ("a1", "h1")
            );
            assert_eq!(agent.used.len(), 1, "what f1 was granted");
            assert_eq!(agent.used[0].id, "f1");
            assert_eq!(
                Resources::from(agent.used[0].resources.clone()).scalar("cpus"),
                1.0
            );
        }
        // The second rebuild also carries what happened since.
        assert_eq!(seen[2].events.len(), 3);
        assert!(matches!(
            seen[3].events.last().and_then(|e| e.event.as_ref()),
            Some(Event::SetAgentActive(a)) if !a.active
        ));
    }
}
