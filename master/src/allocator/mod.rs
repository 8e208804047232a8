//! Allocator selection. Built-in allocators are registered by name, the
//! same way plugin allocators will be, so `--allocator` is one lookup.

mod carve;
mod drf;
mod index_hash;
mod options;
mod qty;
mod roles;

pub use carve::MinAllocatable;
pub use drf::{HierarchicalDrf, Options};
use mesos_plugin_api::allocator::Allocator;
pub use options::{parse_roles, parse_weights};

#[derive(Debug, thiserror::Error)]
#[error("unknown allocator '{0}' (built in: HierarchicalDRF)")]
pub struct UnknownAllocator(String);

/// The allocator named `name`, with Mesos's default options.
pub fn by_name(name: &str) -> Result<Box<dyn Allocator>, UnknownAllocator> {
    by_name_with(name, Options::default())
}

pub fn by_name_with(name: &str, options: Options) -> Result<Box<dyn Allocator>, UnknownAllocator> {
    match name {
        "HierarchicalDRF" | "hierarchical_drf" => Ok(Box::new(HierarchicalDrf::new(options))),
        other => Err(UnknownAllocator(other.to_string())),
    }
}
