//! Resources and attributes: Mesos's text and JSON formats, exact
//! arithmetic, and the renderings the state endpoints use.

mod arithmetic;
// What the host has (procfs, statvfs): agents, never plugin guests.
#[cfg(unix)]
mod detect;
mod display;
mod normalise;
pub mod operations;
mod parse;
mod ranges;
mod render;
mod scalar;
mod value;

pub use arithmetic::Resources;
#[cfg(unix)]
pub use detect::{default_disk_mb, default_mem_mb, meminfo_total_mb, with_detected_defaults};
pub use display::reserved_role;
/// Mesos's checks on one resource, as `--resources` gets them.
pub use normalise::validate as validate_resource;
pub use parse::{parse_attributes, parse_resources};
pub use render::{StateJson, StateTotals, attributes_state_json, state_json};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("invalid resource '{token}': {reason}")]
    Resource { token: String, reason: String },
    #[error("invalid attribute '{token}': {reason}")]
    Attribute { token: String, reason: String },
    #[error("invalid resources JSON: {0}")]
    Json(String),
}
