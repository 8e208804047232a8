//! Host calls: what a WASM plugin may ask of the daemon besides answering
//! its calls, each narrow and checked here before the daemon acts.
//!
//! - `log(level, message)`: a line in the daemon's log, named after the
//!   plugin. Always granted; a line is cut at 1 KiB.
//! - `set_cgroup_knob(container_id, knob, value)`: writes a cgroup control
//!   file of a container. Granted per knob by the manifest's
//!   `permissions.cgroup_knobs`, and only for the container of the call in
//!   progress ([`crate::context`]); the daemon ([`HostCalls`]) finds the
//!   container's cgroup and writes there.
//!
//! A core module imports them from module `mesos_host`; a component from
//! the `mesos:plugin/host@1.0.0` interface of `wit/plugin.wit`.

use std::sync::{Arc, OnceLock};

use super::manifest::{Manifest, Permissions, check_knob};

/// What the daemon does for its plugins' host calls, once they are
/// checked.
pub trait HostCalls: Send + Sync {
    /// Writes `value` into the control file `knob` (`cpu.shares`) of
    /// `container_id`'s cgroup.
    fn set_cgroup_knob(&self, container_id: &str, knob: &str, value: &str) -> Result<(), String>;
}

/// Where a plugin finds the daemon's [`HostCalls`], given after loading
/// (a daemon builds its cgroup layer after its plugins).
#[derive(Default)]
pub struct HostSlot(OnceLock<Arc<dyn HostCalls>>);

impl std::fmt::Debug for HostSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "HostSlot(provided)"
        } else {
            "HostSlot(empty)"
        })
    }
}

impl HostSlot {
    /// The first call wins; a plugin's host does not change.
    pub fn provide(&self, calls: Arc<dyn HostCalls>) {
        let _ = self.0.set(calls);
    }
}

/// Log levels, as the guest numbers them.
pub const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];

/// Longest log line kept, in bytes.
const MAX_LINE: usize = 1024;

/// Longest knob value accepted, in bytes.
const MAX_VALUE: usize = 256;

/// One plugin's view of the host: its name, permissions and the daemon.
#[derive(Debug, Clone)]
pub struct HostContext {
    pub plugin: Arc<str>,
    pub permissions: Arc<Permissions>,
    pub slot: Arc<HostSlot>,
}

impl HostContext {
    /// The view of the host the plugin of `manifest` gets.
    pub fn new(manifest: &Manifest, slot: Arc<HostSlot>) -> Self {
        Self {
            plugin: Arc::from(manifest.name.as_str()),
            permissions: Arc::new(manifest.permissions.clone()),
            slot,
        }
    }

    /// `log`: `level` indexes [`LEVELS`]; others log as `info`.
    pub fn log(&self, level: u32, message: &str) {
        let mut end = message.len().min(MAX_LINE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let line = &message[..end];
        let plugin = &*self.plugin;
        match level {
            0 => tracing::error!(plugin, "{line}"),
            1 => tracing::warn!(plugin, "{line}"),
            3 => tracing::debug!(plugin, "{line}"),
            _ => tracing::info!(plugin, "{line}"),
        }
    }

    /// `set_cgroup_knob`, checked, then done by the daemon. The error says
    /// why to the guest and goes to the log.
    pub fn set_cgroup_knob(
        &self,
        container_id: &str,
        knob: &str,
        value: &str,
    ) -> Result<(), String> {
        let result = check(
            &self.permissions,
            crate::context::current().as_deref(),
            container_id,
            knob,
            value,
        )
        .and_then(|()| {
            self.slot
                .0
                .get()
                .ok_or_else(|| "this daemon provides no host calls".to_string())
        })
        .and_then(|calls| calls.set_cgroup_knob(container_id, knob, value));
        let plugin = &*self.plugin;
        match &result {
            Ok(()) => tracing::info!(
                plugin,
                container = container_id,
                knob,
                value,
                "set a cgroup knob"
            ),
            Err(error) => tracing::warn!(
                plugin,
                container = container_id,
                knob,
                "set_cgroup_knob refused: {error}"
            ),
        }
        result
    }
}

/// Whether a plugin with `permissions`, in a call about `current`, may set
/// `knob` of `container_id` to `value`.
pub fn check(
    permissions: &Permissions,
    current: Option<&str>,
    container_id: &str,
    knob: &str,
    value: &str,
) -> Result<(), String> {
    check_knob(knob)?;
    if !permissions.cgroup_knobs.iter().any(|k| k == knob) {
        return Err(format!(
            "knob '{knob}' is not granted (permissions.cgroup_knobs in plugin.toml: [{}])",
            permissions.cgroup_knobs.join(", ")
        ));
    }
    match current {
        Some(current) if current == container_id => {}
        Some(current) => {
            return Err(format!(
                "container '{container_id}' is not the one this call is about ('{current}')"
            ));
        }
        None => return Err("this call is about no container".into()),
    }
    if value.is_empty() || value.len() > MAX_VALUE || value.chars().any(char::is_control) {
        return Err(format!(
            "the value for '{knob}' must be 1 to {MAX_VALUE} bytes without control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_knobs_of_the_calls_container_with_a_plain_value() {
        let granted = Permissions {
            cgroup_knobs: vec!["cpu.shares".into()],
            ..Permissions::default()
        };
        let c1 = Some("c1");
        assert_eq!(check(&granted, c1, "c1", "cpu.shares", "512"), Ok(()));
        for (current, container, knob, value, expected) in [
            (
                c1,
                "c1",
                "memory.limit_in_bytes",
                "1",
                "knob 'memory.limit_in_bytes' is not granted (permissions.cgroup_knobs in plugin.toml: [cpu.shares])",
            ),
            (
                c1,
                "c1",
                "../cpu.shares",
                "1",
                "'../cpu.shares' is not a cgroup control file name like cpu.shares",
            ),
            (
                c1,
                "c2",
                "cpu.shares",
                "1",
                "container 'c2' is not the one this call is about ('c1')",
            ),
            (
                None,
                "c1",
                "cpu.shares",
                "1",
                "this call is about no container",
            ),
            (
                c1,
                "c1",
                "cpu.shares",
                "1\n2",
                "the value for 'cpu.shares' must be 1 to 256 bytes without control characters",
            ),
            (
                c1,
                "c1",
                "cpu.shares",
                "",
                "the value for 'cpu.shares' must be 1 to 256 bytes without control characters",
            ),
        ] {
            assert_eq!(
                check(&granted, current, container, knob, value),
                Err(expected.to_string())
            );
        }
        assert!(check(&Permissions::default(), c1, "c1", "cpu.shares", "1").is_err());
    }
}
