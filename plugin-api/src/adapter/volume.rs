//! A [`VolumeDriver`] reached through the plugin envelope.

use std::path::PathBuf;

use mesos_proto::plugin::v1 as proto;

use super::{Failure, Policy, Remote};
use crate::abi::method::volume as method;
use crate::envelope::Envelope;
use crate::volume::{VolumeDriver, VolumeError, VolumeSpec};

#[derive(Debug)]
pub struct PluginVolumeDriver {
    remote: Remote<VolumeError>,
}

impl Failure for VolumeError {
    fn failure(driver: &'static str, message: String) -> Self {
        VolumeError::Failed {
            driver: driver.to_string(),
            message,
        }
    }
}

impl PluginVolumeDriver {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
        }
    }
}

fn spec(volume: &VolumeSpec) -> proto::VolumeSpec {
    proto::VolumeSpec {
        name: volume.name.clone(),
        options: volume
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

impl VolumeDriver for PluginVolumeDriver {
    fn name(&self) -> &str {
        self.remote.name
    }

    fn mount(&self, container_id: &str, volume: &VolumeSpec) -> Result<PathBuf, VolumeError> {
        let request = proto::MountRequest {
            volume: Some(spec(volume)),
            container_id: container_id.to_string(),
        };
        // There is no default place for a volume: a driver that does not
        // mount (or failed under fail_open) cannot give the container one.
        let response = self
            .remote
            .call::<proto::MountResponse>(method::MOUNT, &request)?
            .ok_or_else(|| {
                self.remote
                    .failed(format!("{} gave no mount point", method::MOUNT))
            })?;
        let mount_point = PathBuf::from(response.mount_point);
        if !mount_point.is_absolute() {
            return Err(self.remote.failed(format!(
                "{} answered '{}', not an absolute path",
                method::MOUNT,
                mount_point.display()
            )));
        }
        Ok(mount_point)
    }

    fn unmount(&self, volume: &VolumeSpec) -> Result<(), VolumeError> {
        let request = proto::UnmountRequest {
            volume: Some(spec(volume)),
        };
        self.remote
            .call::<proto::UnmountResponse>(method::UNMOUNT, &request)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::{PluginError, Response};
    use prost::Message;

    /// Answers every mount with `answer`.
    struct Answers(Result<proto::MountResponse, PluginError>);

    impl Envelope for Answers {
        fn call(&self, method: &str, _: &[u8]) -> Result<Response, PluginError> {
            match method {
                method::MOUNT => self.0.clone().map(|r| Response::from(r.encode_to_vec())),
                other => Err(PluginError::unimplemented(other)),
            }
        }
    }

    fn driver(answer: Result<&str, PluginError>) -> PluginVolumeDriver {
        let answer = answer.map(|path| proto::MountResponse {
            mount_point: path.into(),
        });
        PluginVolumeDriver::new("d", Box::new(Answers(answer)), Policy::default())
    }

    #[test]
    fn a_mount_must_answer_an_absolute_path() {
        let volume = VolumeSpec::default();
        assert_eq!(
            driver(Ok("/v/a")).mount("c", &volume).unwrap(),
            PathBuf::from("/v/a")
        );
        let e = driver(Ok("v/a"))
            .mount("c", &volume)
            .unwrap_err()
            .to_string();
        assert!(e.contains("answered 'v/a', not an absolute path"), "{e}");
        let e = driver(Err(PluginError::unimplemented(method::MOUNT)))
            .mount("c", &volume)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("volume driver d: volume.mount gave no mount point"),
            "{e}"
        );
        // Unmount is optional.
        driver(Ok("/v/a")).unmount(&volume).unwrap();
    }
}
