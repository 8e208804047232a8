//! Resources and attributes: Mesos's text and JSON formats, exact
//! arithmetic, and the renderings the state endpoints use.

mod arithmetic;
mod detect;
mod parse;
mod render;

pub use arithmetic::Resources;
pub use detect::{default_disk_mb, default_mem_mb, with_detected_defaults};
pub use parse::{parse_attributes, parse_resources};
pub use render::{attributes_state_json, state_json};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("invalid resource '{token}': {reason}")]
    Resource { token: String, reason: String },
    #[error("invalid attribute '{token}': {reason}")]
    Attribute { token: String, reason: String },
    #[error("invalid resources JSON: {0}")]
    Json(String),
}
