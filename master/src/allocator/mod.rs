//! Allocator selection: `--allocator` names a built-in allocator or an
//! allocator plugin loaded from `--plugin_dir`, in one lookup.

mod carve;
mod drf;
mod index_hash;
mod options;
mod qty;
mod roles;

pub use carve::MinAllocatable;
pub use drf::{HierarchicalDrf, Options};
use std::sync::Arc;

use mesos_plugin_api::adapter::LoadedAllocator;
use mesos_plugin_api::allocator::Allocator;
pub use options::{parse_roles, parse_weights};

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown allocator '{name}' (built in: HierarchicalDRF; allocator plugins: {})",
    if plugins.is_empty() { "none".to_string() } else { plugins.join(", ") }
)]
pub struct UnknownAllocator {
    name: String,
    /// The allocator plugins that were loaded.
    plugins: Vec<String>,
}

/// The allocator named `name`, with Mesos's default options.
pub fn by_name(name: &str) -> Result<Box<dyn Allocator>, UnknownAllocator> {
    by_name_with(name, Options::default(), &[])
}

/// The built-in allocator `name` with `options`, else the allocator
/// plugin of that name among `plugins` (which ignores the options).
pub fn by_name_with(
    name: &str,
    options: Options,
    plugins: &[Arc<LoadedAllocator>],
) -> Result<Box<dyn Allocator>, UnknownAllocator> {
    match name {
        "HierarchicalDRF" | "hierarchical_drf" => Ok(Box::new(HierarchicalDrf::new(options))),
        other => plugins
            .iter()
            .find(|p| p.name() == other)
            .and_then(|p| p.start())
            .map(|a| Box::new(a) as Box<dyn Allocator>)
            .ok_or_else(|| UnknownAllocator {
                name: other.to_string(),
                plugins: plugins.iter().map(|p| p.name().to_string()).collect(),
            }),
    }
}
