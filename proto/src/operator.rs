//! What the master's and the agent's operator APIs answer alike.

use crate::v1;

/// GET_FLAGS: every flag's effective value.
pub fn flags(pairs: &[(String, String)]) -> Vec<v1::Flag> {
    pairs
        .iter()
        .map(|(name, value)| v1::Flag {
            name: name.clone(),
            value: Some(value.clone()),
        })
        .collect()
}

/// GET_METRICS: a `/metrics/snapshot` object as metrics.
pub fn metrics(snapshot: &serde_json::Value) -> Vec<v1::Metric> {
    snapshot
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| v1::Metric {
            name: name.clone(),
            value: value.as_f64(),
        })
        .collect()
}
