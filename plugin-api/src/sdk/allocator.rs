//! The allocator kind of the SDK: implement the master's
//! [`Allocator`] trait, as the built-in allocators do, plus
//! [`AllocatorPlugin`] for the name, and write
//! `export_allocator!(MyAllocator);`.
//!
//! The master reaches the plugin once per allocation cycle: an
//! `allocator.allocate` call carrying every event since the previous one.
//! [`AllocatorHost`] replays them on the allocator in order, runs
//! [`Allocator::allocate`] and answers with its grants. A request marked
//! `reset` (the master's books rebuild after a failed cycle) starts from
//! a fresh allocator, configured again: this is how an allocator that
//! panicked comes back.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use mesos_resources::Resources;

use super::{PluginError, guarded, kind, method::allocator as method, proto, run};
use crate::abi::API_VERSION;
use crate::allocator::{AgentSpec, Allocator, FrameworkSpec, QuotaConfig};
use crate::envelope::{Envelope, Response};
use proto::allocator_event::Event;

/// An allocator written against the plugin envelope.
pub trait AllocatorPlugin: Allocator + Default {
    /// Reverse-DNS name, the one `plugin.toml` and `--allocator` use.
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Called once after loading with the plugin's configuration bytes
    /// (the manifest's `config` file, empty without one).
    fn configure(&mut self, _config: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }
}

/// What `describe` answers for `P`.
pub fn allocator_info<P: AllocatorPlugin>() -> proto::PluginInfo {
    proto::PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        kinds: vec![kind::ALLOCATOR.to_string()],
        api_versions: vec![API_VERSION.to_string()],
    }
}

/// An allocator plugin and the clock its events are replayed on. The
/// master's milliseconds count from its own zero; here they count from
/// when the host was made, which keeps every interval (refusal filters,
/// offer ages) as the master measured it.
#[derive(Debug)]
pub struct AllocatorHost<P> {
    state: Mutex<P>,
    epoch: Instant,
    /// What `configure` got, for a fresh allocator after a reset.
    config: Mutex<Vec<u8>>,
}

impl<P: AllocatorPlugin> Default for AllocatorHost<P> {
    fn default() -> Self {
        Self {
            state: Mutex::new(P::default()),
            epoch: Instant::now(),
            config: Mutex::new(Vec::new()),
        }
    }
}

impl<P: AllocatorPlugin> AllocatorHost<P> {
    /// `P` called in the host's process, described and configured as a
    /// loader would: its built-in form, with the same payloads and panic
    /// guard as its dylib form.
    pub fn in_process(config: &[u8]) -> Result<(proto::PluginInfo, Self), PluginError> {
        let host = guarded(|| Ok(Self::default()))?;
        guarded(|| host.configure(config))?;
        Ok((allocator_info::<P>(), host))
    }

    pub fn configure(&self, config: &[u8]) -> Result<(), PluginError> {
        self.plugin()?.configure(config)?;
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config.to_vec();
        Ok(())
    }

    /// Decodes the request of `method`, runs it, encodes the response.
    pub fn dispatch(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, PluginError> {
        match method {
            method::ALLOCATE => run(method, request, |r| self.allocate(r)),
            other => Err(PluginError::unimplemented(other)),
        }
    }

    /// A plugin that panicked may have applied half an event: its books
    /// are not trusted again, and every later call fails until a reset.
    fn plugin(&self) -> Result<std::sync::MutexGuard<'_, P>, PluginError> {
        self.state.lock().map_err(|_: PoisonError<_>| {
            PluginError::internal("the allocator panicked earlier and its state is lost")
        })
    }

    fn allocate(
        &self,
        request: proto::AllocateRequest,
    ) -> Result<proto::AllocateResponse, PluginError> {
        if request.reset {
            // A panic poisoned the lock with half an event applied; the
            // fresh allocator replaces all of that.
            self.state.clear_poison();
            let mut fresh = P::default();
            fresh.configure(&self.config.lock().unwrap_or_else(PoisonError::into_inner))?;
            *self.state.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
        let mut plugin = self.plugin()?;
        for event in request.events {
            let at = self.at(event.at_ms);
            if let Some(event) = event.event {
                apply(&mut *plugin, event, at);
            }
        }
        let grants = plugin.allocate(self.at(request.now_ms));
        Ok(proto::AllocateResponse {
            grants: grants
                .into_iter()
                .map(|grant| proto::Grant {
                    framework_id: grant.framework_id,
                    agent_id: grant.agent_id,
                    role: grant.role,
                    resources: grant.resources.into_vec(),
                })
                .collect(),
        })
    }

    fn at(&self, millis: u64) -> Instant {
        self.epoch
            .checked_add(Duration::from_millis(millis))
            .unwrap_or(self.epoch)
    }
}

impl<P: AllocatorPlugin> Envelope for AllocatorHost<P> {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
        guarded(|| self.dispatch(method, request)).map(Response::from)
    }
}

fn holdings(used: Vec<proto::Holding>) -> Vec<(String, Resources)> {
    used.into_iter()
        .map(|h| (h.id, Resources::from(h.resources)))
        .collect()
}

fn pairs(quantities: Vec<proto::Quantity>) -> Vec<(String, f64)> {
    quantities.into_iter().map(|q| (q.name, q.value)).collect()
}

/// One event as the call the master made.
fn apply<A: Allocator + ?Sized>(allocator: &mut A, event: Event, at: Instant) {
    match event {
        Event::AddFramework(e) => allocator.add_framework(
            FrameworkSpec {
                id: e.framework_id,
                roles: e.roles,
                suppressed_roles: e.suppressed_roles,
            },
            &holdings(e.used),
        ),
        Event::RemoveFramework(e) => allocator.remove_framework(&e.framework_id),
        Event::SetFrameworkActive(e) => allocator.set_framework_active(&e.framework_id, e.active),
        Event::AddAgent(e) => allocator.add_agent(
            AgentSpec {
                id: e.agent_id,
                hostname: e.hostname,
                total: Resources::from(e.total),
            },
            &holdings(e.used),
        ),
        Event::RemoveAgent(e) => allocator.remove_agent(&e.agent_id),
        Event::SetAgentActive(e) => allocator.set_agent_active(&e.agent_id, e.active),
        Event::RecoverResources(e) => allocator.recover_resources(
            &e.framework_id,
            &e.agent_id,
            &Resources::from(e.resources),
            e.refuse_ms.map(Duration::from_millis),
            at,
        ),
        Event::ConvertResources(e) => allocator.convert_resources(
            &e.agent_id,
            e.framework_id.as_deref(),
            &Resources::from(e.consumed),
            &Resources::from(e.converted),
        ),
        Event::Suppress(e) => allocator.suppress(&e.framework_id, &e.roles),
        Event::Revive(e) => allocator.revive(&e.framework_id, &e.roles),
        Event::SetWeights(e) => allocator.set_weights(
            &e.weights
                .into_iter()
                .map(|w| (w.role, w.weight))
                .collect::<Vec<_>>(),
        ),
        Event::UpdateQuota(e) => allocator.update_quota(QuotaConfig {
            role: e.role,
            guarantees: pairs(e.guarantees),
            limits: pairs(e.limits),
        }),
    }
}

/// Exports an [`AllocatorPlugin`] as a dylib plugin:
/// `export_allocator!(MyAllocator);` in a `cdylib` crate.
#[macro_export]
macro_rules! export_allocator {
    ($plugin:ty) => {
        /// The exported instance: the allocator and its clock.
        #[doc(hidden)]
        pub struct MesosPluginAllocatorExport($crate::sdk::AllocatorHost<$plugin>);

        impl $crate::sdk::Exported for MesosPluginAllocatorExport {
            fn instance() -> &'static Self {
                static INSTANCE: ::std::sync::OnceLock<MesosPluginAllocatorExport> =
                    ::std::sync::OnceLock::new();
                INSTANCE
                    .get_or_init(|| MesosPluginAllocatorExport(::core::default::Default::default()))
            }

            fn exported_info() -> $crate::sdk::proto::PluginInfo {
                $crate::sdk::allocator_info::<$plugin>()
            }

            fn exported_configure(&self, config: &[u8]) -> Result<(), $crate::sdk::PluginError> {
                self.0.configure(config)
            }

            fn exported_dispatch(
                &self,
                method: &str,
                request: &[u8],
            ) -> Result<::std::vec::Vec<u8>, $crate::sdk::PluginError> {
                self.0.dispatch(method, request)
            }
        }

        $crate::export_entry!(MesosPluginAllocatorExport);
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use super::*;
    use crate::allocator::Grant;
    use prost::Message;

    /// Offers each whole agent once, to the first framework; panics when
    /// an agent named `boom` is added.
    #[derive(Default)]
    struct Tally {
        frameworks: Vec<String>,
        agents: BTreeMap<String, (Resources, bool)>,
    }

    impl Allocator for Tally {
        fn name(&self) -> &str {
            "tally"
        }
        fn add_framework(&mut self, framework: FrameworkSpec, _: &[(String, Resources)]) {
            self.frameworks.push(framework.id);
        }
        fn remove_framework(&mut self, _: &str) {}
        fn set_framework_active(&mut self, _: &str, _: bool) {}
        fn add_agent(&mut self, agent: AgentSpec, used: &[(String, Resources)]) {
            assert_ne!(agent.id, "boom", "an agent called boom");
            self.agents
                .insert(agent.id, (agent.total, !used.is_empty()));
        }
        fn remove_agent(&mut self, _: &str) {}
        fn set_agent_active(&mut self, _: &str, _: bool) {}
        fn recover_resources(
            &mut self,
            _: &str,
            _: &str,
            _: &Resources,
            _: Option<Duration>,
            _: Instant,
        ) {
        }
        fn convert_resources(&mut self, _: &str, _: Option<&str>, _: &Resources, _: &Resources) {}
        fn suppress(&mut self, _: &str, _: &[String]) {}
        fn revive(&mut self, _: &str, _: &[String]) {}
        fn set_weights(&mut self, _: &[(String, f64)]) {}
        fn update_quota(&mut self, _: QuotaConfig) {}
        fn allocate(&mut self, _: Instant) -> Vec<Grant> {
            let Some(framework) = self.frameworks.first() else {
                return Vec::new();
            };
            let mut grants = Vec::new();
            for (id, (total, held)) in &mut self.agents {
                if !*held {
                    *held = true;
                    grants.push(Grant {
                        framework_id: framework.clone(),
                        agent_id: id.clone(),
                        role: "*".into(),
                        resources: total.clone(),
                    });
                }
            }
            grants
        }
    }

    impl AllocatorPlugin for Tally {
        const NAME: &'static str = "com.example.tally";
        const VERSION: &'static str = "1";
    }

    fn event(event: Event) -> proto::AllocatorEvent {
        proto::AllocatorEvent {
            at_ms: 0,
            event: Some(event),
        }
    }

    fn framework(id: &str) -> proto::AllocatorEvent {
        event(Event::AddFramework(proto::allocator_event::AddFramework {
            framework_id: id.into(),
            ..Default::default()
        }))
    }

    fn agent(id: &str, used_by: Option<&str>) -> proto::AllocatorEvent {
        event(Event::AddAgent(proto::allocator_event::AddAgent {
            agent_id: id.into(),
            used: used_by
                .map(|f| proto::Holding {
                    id: f.into(),
                    resources: Vec::new(),
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }))
    }

    fn allocate(
        host: &AllocatorHost<Tally>,
        events: Vec<proto::AllocatorEvent>,
        reset: bool,
    ) -> Result<Vec<String>, String> {
        let request = proto::AllocateRequest {
            events,
            now_ms: 0,
            reset,
        };
        host.call(method::ALLOCATE, &request.encode_to_vec())
            .map(|bytes| {
                proto::AllocateResponse::decode(&*bytes)
                    .unwrap()
                    .grants
                    .into_iter()
                    .map(|g| g.agent_id)
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_reset_brings_back_an_allocator_that_panicked() {
        let (_, host) = AllocatorHost::<Tally>::in_process(b"").unwrap();
        assert_eq!(
            allocate(&host, vec![framework("f1"), agent("a1", None)], false).unwrap(),
            ["a1"]
        );
        let e = allocate(&host, vec![agent("boom", None)], false).unwrap_err();
        assert!(e.contains("an agent called boom"), "{e}");
        let e = allocate(&host, vec![agent("a2", None)], false).unwrap_err();
        assert!(
            e.contains("the allocator panicked earlier and its state is lost"),
            "{e}"
        );
        // The master's rebuild: a1 is held by f1, a2 is new.
        let rebuild = vec![framework("f1"), agent("a1", Some("f1")), agent("a2", None)];
        assert_eq!(allocate(&host, rebuild, true).unwrap(), ["a2"]);
        assert_eq!(
            allocate(&host, Vec::new(), false).unwrap(),
            Vec::<String>::new()
        );
    }
}
