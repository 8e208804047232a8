//! An [`ImageStore`] reached through the plugin envelope.

use std::path::{Path, PathBuf};

use mesos_proto::plugin::v1 as proto;

use super::{Failure, Policy, Remote};
use crate::abi::method::image as method;
use crate::envelope::Envelope;
use crate::image::{ImageName, ImageStore, ImageStoreError};

#[derive(Debug)]
pub struct PluginImageStore {
    remote: Remote<ImageStoreError>,
}

impl Failure for ImageStoreError {
    fn failure(store: &'static str, message: String) -> Self {
        ImageStoreError::Failed {
            store: store.to_string(),
            message,
        }
    }
}

impl PluginImageStore {
    pub fn new(name: &str, envelope: Box<dyn Envelope>, policy: Policy) -> Self {
        Self {
            remote: Remote::new(name, envelope, policy),
        }
    }
}

impl ImageStore for PluginImageStore {
    fn name(&self) -> &str {
        self.remote.name
    }

    fn fetch(&self, image: &ImageName, scratch: &Path) -> Result<PathBuf, ImageStoreError> {
        let request = proto::FetchRequest {
            image: Some(proto::ImageName {
                name: image.name.clone(),
                registry: image.registry.clone(),
                repository: image.repository.clone(),
                tag: image.tag.clone().unwrap_or_default(),
                digest: image.digest.clone().unwrap_or_default(),
            }),
            scratch_dir: scratch.display().to_string(),
        };
        // There is no default image: a store that does not answer (or
        // failed under fail_open) leaves the container without one.
        let response = self
            .remote
            .call::<proto::FetchResponse>(method::FETCH, &request)?
            .ok_or_else(|| {
                self.remote.failed(format!(
                    "{} said nothing of '{}'",
                    method::FETCH,
                    image.name
                ))
            })?;
        let path = PathBuf::from(response.path);
        if !path.is_absolute() {
            return Err(self.remote.failed(format!(
                "{} answered '{}' for '{}', not an absolute path",
                method::FETCH,
                path.display(),
                image.name
            )));
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::{PluginError, Response};
    use prost::Message;

    /// Answers every fetch with `answer`.
    struct Answers(Result<proto::FetchResponse, PluginError>);

    impl Envelope for Answers {
        fn call(&self, method: &str, _: &[u8]) -> Result<Response, PluginError> {
            match method {
                method::FETCH => self.0.clone().map(|r| Response::from(r.encode_to_vec())),
                other => Err(PluginError::unimplemented(other)),
            }
        }
    }

    fn fetch(answer: Result<&str, PluginError>) -> Result<PathBuf, String> {
        let answer = answer.map(|path| proto::FetchResponse { path: path.into() });
        let store = PluginImageStore::new("s", Box::new(Answers(answer)), Policy::default());
        let image = ImageName {
            name: "s/tools:1".into(),
            ..Default::default()
        };
        store
            .fetch(&image, Path::new("/scratch"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_fetch_must_answer_an_absolute_path() {
        assert_eq!(
            fetch(Ok("/images/tools")).unwrap(),
            Path::new("/images/tools")
        );
        assert_eq!(
            fetch(Ok("tools.tar")).unwrap_err(),
            "image store s: image.fetch answered 'tools.tar' for 's/tools:1', not an absolute path"
        );
        assert_eq!(
            fetch(Err(PluginError::unimplemented(method::FETCH))).unwrap_err(),
            "image store s: image.fetch said nothing of 's/tools:1'"
        );
    }
}
