//! The image store: where the images a store plugin serves come from. A
//! task names such an image as a Docker image whose registry is the
//! plugin's name (`com.example.image-dirs/tools:1`), and the agent lists
//! the plugin in `--image_providers`. The plugin answers where the image
//! is, as a `docker save` archive or an OCI image layout, and the agent's
//! own store takes it from there as it takes images of its local
//! registry: digests checked, layers extracted safely into its cache,
//! unused ones pruned. So a plugin never writes what a container's root
//! is built from, and every backend works with its images.

use std::path::{Path, PathBuf};

/// An image as a task names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageName {
    /// As written, registry included.
    pub name: String,
    /// The registry part: the store's name.
    pub registry: String,
    pub repository: String,
    /// `None` when only a digest pins the image.
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error("image store {store}: {message}")]
    Failed { store: String, message: String },
}

pub trait ImageStore: Send + Sync {
    /// The name `--image_providers` and the images' registry part use.
    fn name(&self) -> &str;

    /// Where `image` is: a `docker save` archive or an OCI image layout,
    /// in `scratch` (an empty private directory the agent deletes once it
    /// has read the image) or anywhere else the agent can read. Called for
    /// every container started from the image.
    fn fetch(&self, image: &ImageName, scratch: &Path) -> Result<PathBuf, ImageStoreError>;
}
