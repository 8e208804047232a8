//! A [`RootfsBackend`] reached through the plugin envelope.

use mesos_proto::plugin::v1 as proto;

use super::{Failure, Policy, Remote};
use crate::abi::method::rootfs as method;
use crate::envelope::Envelope;
use crate::rootfs::{Container, RootfsBackend, RootfsError, RootfsLayer};

#[derive(Debug)]
pub struct PluginRootfsBackend {
    remote: Remote<RootfsError>,
}

impl Failure for RootfsError {
    fn failure(backend: &'static str, message: String) -> Self {
        RootfsError::Failed {
            backend: backend.to_string(),
            message,
        }
    }
}

impl PluginRootfsBackend {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
        }
    }
}

fn layer(layer: &RootfsLayer) -> proto::RootfsLayer {
    proto::RootfsLayer {
        digest: layer.digest.clone(),
        path: layer.path.display().to_string(),
        deleted: layer.whiteouts.deleted.iter().cloned().collect(),
        opaque: layer.whiteouts.opaque.iter().cloned().collect(),
    }
}

impl RootfsBackend for PluginRootfsBackend {
    fn name(&self) -> &str {
        self.remote.name
    }

    fn provision(
        &self,
        container: &Container<'_>,
        layers: &[RootfsLayer],
    ) -> Result<(), RootfsError> {
        let request = proto::ProvisionRequest {
            container_id: container.id.to_string(),
            container_dir: container.dir.display().to_string(),
            layers: layers.iter().map(layer).collect(),
            rootfs: container.rootfs.display().to_string(),
        };
        // There is no default rootfs: a backend that does not build one
        // (or failed under fail_open) leaves the container without a root.
        self.remote
            .call::<proto::ProvisionResponse>(method::PROVISION, &request)?
            .ok_or_else(|| {
                self.remote
                    .failed(format!("{} built no rootfs", method::PROVISION))
            })?;
        if !container.rootfs.is_dir() {
            return Err(self.remote.failed(format!(
                "{} answered, but {} is not a directory",
                method::PROVISION,
                container.rootfs.display()
            )));
        }
        Ok(())
    }

    fn destroy(&self, container: &Container<'_>) -> Result<(), RootfsError> {
        let request = proto::DestroyRequest {
            container_id: container.id.to_string(),
            container_dir: container.dir.display().to_string(),
            rootfs: container.rootfs.display().to_string(),
        };
        self.remote
            .call::<proto::DestroyResponse>(method::DESTROY, &request)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::{PluginError, Response};
    use prost::Message;

    /// Makes the rootfs it is asked for when `build`, and answers `answer`.
    struct Builder {
        build: bool,
        answer: Result<(), PluginError>,
    }

    impl Envelope for Builder {
        fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
            if method != method::PROVISION {
                return Err(PluginError::unimplemented(method));
            }
            let request = proto::ProvisionRequest::decode(request).unwrap();
            if self.build {
                std::fs::create_dir(&request.rootfs).unwrap();
            }
            self.answer
                .clone()
                .map(|()| Response::from(proto::ProvisionResponse {}.encode_to_vec()))
        }
    }

    fn provision(build: bool, answer: Result<(), PluginError>) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        let container = Container {
            id: "c",
            dir: dir.path(),
            rootfs: &rootfs,
        };
        let backend =
            PluginRootfsBackend::new("b", Box::new(Builder { build, answer }), Policy::default());
        let result = backend
            .provision(&container, &[])
            .map_err(|e| e.to_string());
        // Destroy is optional.
        backend.destroy(&container).unwrap();
        result
    }

    #[test]
    fn a_provision_must_leave_a_rootfs_directory() {
        provision(true, Ok(())).unwrap();
        let e = provision(false, Ok(())).unwrap_err();
        assert!(
            e.contains("rootfs backend b: rootfs.provision answered, but ")
                && e.ends_with("/rootfs is not a directory"),
            "{e}"
        );
        let e = provision(false, Err(PluginError::unimplemented(method::PROVISION))).unwrap_err();
        assert_eq!(e, "rootfs backend b: rootfs.provision built no rootfs");
        let e = provision(true, Err(PluginError::internal("disk full"))).unwrap_err();
        assert!(
            e.contains("rootfs.provision failed: ") && e.contains("disk full"),
            "{e}"
        );
    }
}
