//! The isolators of `--isolation`, applied to each executor's container:
//! prepared before the fork (the executor starts inside its cgroups),
//! asked for limitations when a task fails, and cleaned up in reverse
//! order once the executor is gone. Every call here blocks on the
//! filesystem: make it off the agent loop, except [`Isolation::limitation`],
//! which reads one small file per isolator.

use std::sync::Arc;

use mesos_plugin_api::isolator::{
    ContainerSpec, ContainerStatus, Isolator, LaunchInfo, Limitation, Usage,
};

#[derive(Clone, Default)]
pub struct Isolation {
    isolators: Arc<Vec<Arc<dyn Isolator>>>,
}

impl std::fmt::Debug for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.isolators.iter().map(|i| i.name()))
            .finish()
    }
}

impl Isolation {
    pub fn new(isolators: Vec<Arc<dyn Isolator>>) -> Self {
        Self {
            isolators: Arc::new(isolators),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.isolators.is_empty()
    }

    /// Prepares every isolator in order. If one fails, those already
    /// prepared are cleaned up and the error names the failing one.
    pub fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, String> {
        let mut merged = LaunchInfo::default();
        for (done, isolator) in self.isolators.iter().enumerate() {
            match isolator.prepare(spec) {
                Ok(info) => merged.merge(info),
                Err(e) => {
                    for prepared in self.isolators[..done].iter().rev() {
                        if let Err(e) = prepared.cleanup(&spec.container_id) {
                            tracing::warn!(container = %spec.container_id, "{e}");
                        }
                    }
                    return Err(format!("Failed to prepare isolation: {e}"));
                }
            }
        }
        Ok(merged)
    }

    /// Removes what the isolators made for the container, in reverse
    /// order; failures are logged (the container is gone either way).
    pub fn cleanup(&self, container_id: &str) {
        for isolator in self.isolators.iter().rev() {
            if let Err(e) = isolator.cleanup(container_id) {
                tracing::warn!(container = container_id, "cleanup failed: {e}");
            }
        }
    }

    /// [`Isolation::cleanup`] on the blocking pool.
    pub fn cleanup_later(&self, container_id: String) {
        if self.is_empty() {
            return;
        }
        let isolation = self.clone();
        tokio::task::spawn_blocking(move || isolation.cleanup(&container_id));
    }

    /// The resources of a running container changed.
    pub fn update(&self, spec: &ContainerSpec) {
        for isolator in self.isolators.iter() {
            if let Err(e) = isolator.update(spec) {
                tracing::warn!(container = %spec.container_id, "update failed: {e}");
            }
        }
    }

    /// The first limit the container hit, if any.
    pub fn limitation(&self, container_id: &str) -> Option<Limitation> {
        self.isolators
            .iter()
            .find_map(|i| match i.limitation(container_id) {
                Ok(limitation) => limitation,
                Err(e) => {
                    tracing::debug!(container = container_id, "no limitation known: {e}");
                    None
                }
            })
    }

    /// What the isolators measure of the container.
    pub fn usage(&self, container_id: &str) -> Usage {
        let mut usage = Usage::default();
        for isolator in self.isolators.iter() {
            match isolator.usage(container_id) {
                Ok(u) => usage.merge(u),
                Err(e) => tracing::debug!(container = container_id, "no usage: {e}"),
            }
        }
        usage
    }

    /// What the container's status updates report; isolators answer from
    /// memory, so this is made on the agent loop.
    pub fn status(&self, container_id: &str) -> ContainerStatus {
        let mut status = ContainerStatus::default();
        for isolator in self.isolators.iter() {
            match isolator.status(container_id) {
                Ok(s) => status.networks.extend(s.networks),
                Err(e) => tracing::debug!(container = container_id, "no status: {e}"),
            }
        }
        status
    }

    /// After a restart: every isolator forgets the containers not `live`.
    pub fn recover(&self, live: &[String]) {
        for isolator in self.isolators.iter() {
            if let Err(e) = isolator.recover(live) {
                tracing::warn!("{} could not recover: {e}", isolator.name());
            }
        }
    }
}
