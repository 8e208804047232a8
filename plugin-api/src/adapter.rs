//! The host side of the envelope, shared by every runtime: an
//! [`Isolator`], a [`crate::hook::Hook`] ([`PluginHook`]), a
//! [`crate::network::Network`] ([`PluginNetwork`]), a
//! [`crate::volume::VolumeDriver`] ([`PluginVolumeDriver`]), a
//! [`crate::rootfs::RootfsBackend`] ([`PluginRootfsBackend`]) and a
//! [`crate::image::ImageStore`] ([`PluginImageStore`]) that encode
//! the agent's calls, send them through an [`Envelope`] and apply the
//! plugin's failure policy, the master's [`PluginAllocator`], and the
//! [`Watchdog`] that bounds how long a call may take.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mesos_proto::plugin::v1 as proto;
use prost::Message;

use crate::abi::method;
use crate::envelope::{Envelope, ErrorCode, PluginError};
use crate::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, Limitation, LimitationKind, Namespace,
    Usage,
};

mod allocator;
mod books;
mod hook;
mod image;
mod network;
mod rootfs;
mod volume;
mod watchdog;
pub use allocator::{LoadedAllocator, PluginAllocator};
pub use hook::PluginHook;
pub use image::PluginImageStore;
pub use network::PluginNetwork;
pub use rootfs::PluginRootfsBackend;
pub use volume::PluginVolumeDriver;
pub use watchdog::Watchdog;

/// What a plugin's failure does to the operation that called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The operation fails (a launch: TASK_FAILED). The default for
    /// isolators: a container must not run without its isolation.
    FailClosed,
    /// The failure is logged and the host goes on as if the method were
    /// not implemented.
    FailOpen,
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub on_failure: FailurePolicy,
    /// Faults (panics, timeouts) after which the plugin is no longer
    /// called; 0 never quarantines.
    pub quarantine_after: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            on_failure: FailurePolicy::FailClosed,
            quarantine_after: 3,
        }
    }
}

/// A kind's error for a failed plugin call, from the plugin's name and
/// what failed.
trait Failure {
    fn failure(plugin: &'static str, message: String) -> Self;
}

/// The allocator adapter logs failures as they are.
impl Failure for String {
    fn failure(_plugin: &'static str, message: String) -> Self {
        message
    }
}

impl Failure for IsolatorError {
    fn failure(isolator: &'static str, message: String) -> Self {
        IsolatorError::Failed { isolator, message }
    }
}

/// A plugin instance behind its envelope, with its failure policy: what
/// every kind's adapter calls through, failing with the kind's error `E`.
struct Remote<E = String> {
    name: &'static str,
    envelope: Box<dyn Envelope>,
    policy: Policy,
    faults: AtomicU32,
    error: PhantomData<fn() -> E>,
}

/// What every adapter shows of itself: the plugin and its policy.
impl<E> std::fmt::Debug for Remote<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<E: Failure> Remote<E> {
    fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            // `Isolator::name` is `'static`; a plugin is loaded once and
            // lives as long as the agent, so its name may too.
            name: Box::leak(name.to_string().into_boxed_str()),
            envelope,
            policy,
            faults: AtomicU32::new(0),
            error: PhantomData,
        }
    }

    /// The kind's error for `message`, naming the plugin.
    fn failed(&self, message: String) -> E {
        E::failure(self.name, message)
    }

    fn quarantined(&self) -> Option<u32> {
        let faults = self.faults.load(Ordering::Relaxed);
        (self.policy.quarantine_after > 0 && faults >= self.policy.quarantine_after)
            .then_some(faults)
    }

    /// [`call`](Self::call) about `container_id`: the container a WASM
    /// plugin's host calls may act on meanwhile.
    fn call_about<Resp: Message + Default>(
        &self,
        container_id: &str,
        method: &str,
        request: &impl Message,
    ) -> Result<Option<Resp>, E> {
        crate::context::about(container_id, || self.call(method, request))
    }

    /// Calls `method`; `Ok(None)` means "apply Mesos's default": the
    /// plugin does not implement it, or it failed under `fail_open`. The
    /// error of a `fail_closed` failure says which method failed and why.
    fn call<Resp: Message + Default>(
        &self,
        method: &str,
        request: &impl Message,
    ) -> Result<Option<Resp>, E> {
        let result = match self.quarantined() {
            Some(faults) => Err(PluginError::new(
                ErrorCode::Unavailable,
                format!("quarantined after {faults} faults"),
            )),
            None => self
                .envelope
                .call(method, &request.encode_to_vec())
                .and_then(|bytes| {
                    Resp::decode(&*bytes).map_err(|e| {
                        PluginError::internal(format!("undecodable {method} response: {e}"))
                    })
                }),
        };
        let error = match result {
            Ok(response) => return Ok(Some(response)),
            Err(e) if e.code == ErrorCode::Unimplemented => return Ok(None),
            Err(e) => e,
        };
        if error.code.is_fault() {
            let faults = self.faults.fetch_add(1, Ordering::Relaxed) + 1;
            if faults == self.policy.quarantine_after {
                tracing::error!(
                    plugin = self.name,
                    "quarantined after {faults} faults: it is no longer called"
                );
            }
        }
        match self.policy.on_failure {
            FailurePolicy::FailClosed => Err(self.failed(format!("{method} failed: {error}"))),
            FailurePolicy::FailOpen => {
                tracing::warn!(plugin = self.name, "{method} failed (fail_open): {error}");
                Ok(None)
            }
        }
    }
}

/// An isolator reached through the plugin envelope.
#[derive(Debug)]
pub struct PluginIsolator {
    remote: Remote<IsolatorError>,
}

impl PluginIsolator {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
        }
    }
}

impl Isolator for PluginIsolator {
    fn name(&self) -> &'static str {
        self.remote.name
    }

    fn recover(&self, live: &[String]) -> Result<(), IsolatorError> {
        let request = proto::RecoverRequest {
            live_container_ids: live.to_vec(),
        };
        self.remote
            .call::<proto::RecoverResponse>(method::RECOVER, &request)
            .map(drop)
    }

    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        let request = proto::PrepareRequest {
            container_id: spec.container_id.clone(),
            resources: spec.resources.iter().cloned().collect(),
            sandbox: spec.sandbox.display().to_string(),
        };
        let Some(response) = self.remote.call_about::<proto::PrepareResponse>(
            &spec.container_id,
            method::PREPARE,
            &request,
        )?
        else {
            return Ok(LaunchInfo::default());
        };
        if response.labels.iter().any(|label| label.key.is_empty()) {
            return Err(IsolatorError::Failed {
                isolator: self.remote.name,
                message: "prepare answered a label without a key".to_string(),
            });
        }
        let clone_namespaces = response
            .clone_namespaces
            .iter()
            .map(|&flag| {
                Namespace::from_clone_flag(flag).ok_or_else(|| IsolatorError::Failed {
                    isolator: self.remote.name,
                    message: format!(
                        "prepare asked for namespace flag {flag:#x}, which is not one of CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC"
                    ),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(LaunchInfo {
            cgroup_procs: Vec::new(),
            env: response
                .env
                .into_iter()
                .map(|var| (var.name, var.value))
                .collect(),
            clone_namespaces,
            labels: response
                .labels
                .into_iter()
                .map(|label| (label.key, label.value))
                .collect(),
            ..Default::default()
        })
    }

    fn update(&self, spec: &ContainerSpec) -> Result<(), IsolatorError> {
        let request = proto::UpdateRequest {
            container_id: spec.container_id.clone(),
            resources: spec.resources.iter().cloned().collect(),
        };
        self.remote
            .call_about::<proto::UpdateResponse>(&spec.container_id, method::UPDATE, &request)
            .map(drop)
    }

    fn limitation(&self, container_id: &str) -> Result<Option<Limitation>, IsolatorError> {
        use proto::limitation_response::Kind;
        let request = proto::ContainerRequest {
            container_id: container_id.to_string(),
        };
        let response = self.remote.call_about::<proto::LimitationResponse>(
            container_id,
            method::LIMITATION,
            &request,
        )?;
        Ok(response.and_then(|r| {
            let kind = match r.kind() {
                Kind::None => return None,
                Kind::Memory => LimitationKind::Memory,
                Kind::Disk => LimitationKind::Disk,
                Kind::Other => LimitationKind::Other,
            };
            Some(Limitation {
                kind,
                message: r.message,
            })
        }))
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolatorError> {
        let request = proto::ContainerRequest {
            container_id: container_id.to_string(),
        };
        let response = self.remote.call_about::<proto::UsageResponse>(
            container_id,
            method::USAGE,
            &request,
        )?;
        let Some(s) = response.and_then(|r| r.statistics) else {
            return Ok(Usage::default());
        };
        Ok(Usage {
            cpus_user_time_secs: s.cpus_user_time_secs,
            cpus_system_time_secs: s.cpus_system_time_secs,
            cpus_nr_periods: s.cpus_nr_periods.map(u64::from),
            cpus_nr_throttled: s.cpus_nr_throttled.map(u64::from),
            cpus_throttled_time_secs: s.cpus_throttled_time_secs,
            mem_total_bytes: s.mem_total_bytes,
            mem_rss_bytes: s.mem_rss_bytes,
            mem_cache_bytes: s.mem_cache_bytes,
            mem_limit_bytes: s.mem_limit_bytes,
            processes: s.processes,
            threads: s.threads,
            disk_used_bytes: s.disk_used_bytes,
            disk_limit_bytes: s.disk_limit_bytes,
            blkio: s.blkio_statistics,
        })
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolatorError> {
        let request = proto::ContainerRequest {
            container_id: container_id.to_string(),
        };
        self.remote
            .call_about::<proto::CleanupResponse>(container_id, method::CLEANUP, &request)
            .map(drop)
    }
}

/// `P`, a plugin of the SDK's kind `K`, in the host's process behind a
/// watchdog: the envelope of its built-in form, and its name.
fn in_process<P, K>(
    config: &[u8],
    call_timeout: Duration,
) -> Result<(String, Box<dyn Envelope>), PluginError>
where
    P: Default + Send + Sync + 'static,
    K: crate::sdk::Kind<P> + 'static,
{
    let (info, plugin) = crate::sdk::InProcess::<P, K>::new(config)?;
    let watchdog = Watchdog::new(&info.name, call_timeout, Arc::new(plugin))
        .map_err(|e| PluginError::internal(format!("cannot start its thread: {e}")))?;
    Ok((info.name, Box::new(watchdog)))
}

/// The built-in form of a plugin written with the SDK: `P` in the host's
/// process, behind the same payloads, panic guard, watchdog and failure
/// policy as its dylib form.
pub fn builtin<P: crate::sdk::IsolatorPlugin>(
    config: &[u8],
    call_timeout: Duration,
    policy: Policy,
) -> Result<PluginIsolator, PluginError> {
    let (name, envelope) = in_process::<P, crate::sdk::Isolators>(config, call_timeout)?;
    Ok(PluginIsolator::new(&name, envelope, policy))
}

/// [`builtin`] for a hook plugin type.
pub fn builtin_hook<P: crate::sdk::HookPlugin>(
    config: &[u8],
    call_timeout: Duration,
    policy: Policy,
) -> Result<PluginHook, PluginError> {
    let (name, envelope) = in_process::<P, crate::sdk::Hooks>(config, call_timeout)?;
    Ok(PluginHook::new(&name, envelope, policy))
}

/// [`builtin`] for a volume driver plugin type.
pub fn builtin_volume_driver<P: crate::sdk::VolumeDriverPlugin>(
    config: &[u8],
    call_timeout: Duration,
    policy: Policy,
) -> Result<PluginVolumeDriver, PluginError> {
    let (name, envelope) = in_process::<P, crate::sdk::VolumeDrivers>(config, call_timeout)?;
    Ok(PluginVolumeDriver::new(&name, envelope, policy))
}

/// [`builtin`] for a network plugin type.
pub fn builtin_network<P: crate::sdk::NetworkPlugin>(
    config: &[u8],
    call_timeout: Duration,
    policy: Policy,
) -> Result<PluginNetwork, PluginError> {
    let (name, envelope) = in_process::<P, crate::sdk::Networks>(config, call_timeout)?;
    Ok(PluginNetwork::new(&name, envelope, policy))
}

/// [`builtin`] for a rootfs backend plugin type.
pub fn builtin_rootfs_backend<P: crate::sdk::RootfsBackendPlugin>(
    config: &[u8],
    call_timeout: Duration,
    policy: Policy,
) -> Result<PluginRootfsBackend, PluginError> {
    let (name, envelope) = in_process::<P, crate::sdk::RootfsBackends>(config, call_timeout)?;
    Ok(PluginRootfsBackend::new(&name, envelope, policy))
}

/// [`builtin`] for an image store plugin type.
pub fn builtin_image_store<P: crate::sdk::ImageStorePlugin>(
    config: &[u8],
    call_timeout: Duration,
    policy: Policy,
) -> Result<PluginImageStore, PluginError> {
    let (name, envelope) = in_process::<P, crate::sdk::ImageStores>(config, call_timeout)?;
    Ok(PluginImageStore::new(&name, envelope, policy))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::Response;
    use std::sync::Mutex;

    /// Answers every call with the next of `answers`, then repeats the last.
    struct Scripted(Mutex<Vec<Result<Vec<u8>, PluginError>>>);

    impl Envelope for Scripted {
        fn call(&self, _: &str, _: &[u8]) -> Result<Response, PluginError> {
            let mut answers = self.0.lock().unwrap();
            let answer = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            };
            answer.map(Response::from)
        }
    }

    fn isolator(answers: Vec<Result<Vec<u8>, PluginError>>, policy: Policy) -> PluginIsolator {
        PluginIsolator::new(
            "com.example.scripted",
            Box::new(Scripted(Mutex::new(answers))),
            policy,
        )
    }

    #[test]
    fn labels_are_passed_on_and_a_label_needs_a_key() {
        let answer = |key: &str| {
            let response = proto::PrepareResponse {
                labels: vec![mesos_proto::v1::Label {
                    key: key.into(),
                    value: None,
                }],
                ..Default::default()
            };
            isolator(vec![Ok(response.encode_to_vec())], Policy::default())
        };
        let spec = ContainerSpec {
            container_id: "c".into(),
            ..Default::default()
        };
        let info = answer("team").prepare(&spec).unwrap();
        assert_eq!(info.labels, [("team".to_string(), None)]);
        let err = answer("").prepare(&spec).unwrap_err().to_string();
        assert!(err.contains("a label without a key"), "{err}");
    }

    #[test]
    fn only_faults_count_towards_quarantine() {
        let policy = Policy {
            on_failure: FailurePolicy::FailClosed,
            quarantine_after: 2,
        };
        let rejected = isolator(vec![Err(PluginError::invalid("no"))], policy);
        for _ in 0..3 {
            let err = rejected.cleanup("c").unwrap_err().to_string();
            assert!(err.contains("invalid: no"), "{err}");
        }
        // An undecodable answer is the plugin's fault.
        let garbage = isolator(vec![Ok(vec![0xff, 0xff])], policy);
        assert!(
            garbage
                .usage("c")
                .unwrap_err()
                .to_string()
                .contains("undecodable")
        );
        assert!(garbage.usage("c").is_err());
        let err = garbage.usage("c").unwrap_err().to_string();
        assert!(err.contains("quarantined after 2 faults"), "{err}");
    }

    #[test]
    fn limitations_are_translated() {
        let limitation = proto::LimitationResponse {
            kind: proto::limitation_response::Kind::Memory as i32,
            message: "too big".into(),
        };
        let found = isolator(vec![Ok(limitation.encode_to_vec())], Policy::default());
        assert_eq!(
            found.limitation("c").unwrap(),
            Some(Limitation {
                kind: LimitationKind::Memory,
                message: "too big".into()
            })
        );
        let none = isolator(
            vec![Ok(proto::LimitationResponse::default().encode_to_vec())],
            Policy::default(),
        );
        assert_eq!(none.limitation("c").unwrap(), None);
    }

    #[test]
    fn namespaces_are_translated_and_unknown_ones_refused() {
        let spec = ContainerSpec {
            container_id: "c".into(),
            resources: mesos_resources::Resources::default(),
            capabilities: Default::default(),
            sandbox: Default::default(),
            ..Default::default()
        };
        let asking = |flags: Vec<i32>| {
            let response = proto::PrepareResponse {
                clone_namespaces: flags,
                ..Default::default()
            };
            isolator(vec![Ok(response.encode_to_vec())], Policy::default())
        };
        let pid = Namespace::Pid.clone_flag();
        let ipc = Namespace::Ipc.clone_flag();
        assert_eq!(
            asking(vec![pid, ipc])
                .prepare(&spec)
                .unwrap()
                .clone_namespaces,
            vec![Namespace::Pid, Namespace::Ipc]
        );
        // CLONE_NEWNET: not something this launcher makes.
        let err = asking(vec![0x4000_0000])
            .prepare(&spec)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0x40000000"), "{err}");
    }
}
