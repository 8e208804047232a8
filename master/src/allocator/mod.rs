//! Allocator selection. Built-in allocators are registered by name, the
//! same way plugin allocators will be, so `--allocator` is one lookup.

mod drf;

pub use drf::HierarchicalDrf;
use mesos_plugin_api::allocator::Allocator;

#[derive(Debug, thiserror::Error)]
#[error("unknown allocator '{0}' (built in: HierarchicalDRF)")]
pub struct UnknownAllocator(String);

pub fn by_name(name: &str) -> Result<Box<dyn Allocator>, UnknownAllocator> {
    match name {
        "HierarchicalDRF" | "hierarchical_drf" => Ok(Box::new(HierarchicalDrf::default())),
        other => Err(UnknownAllocator(other.to_string())),
    }
}
