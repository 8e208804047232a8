//! Role weights and quota, as operators set them (UPDATE_WEIGHTS,
//! UPDATE_QUOTA) and read them (GET_WEIGHTS, GET_QUOTA, `/master/roles`).
//! The allocator enforces them; the registry keeps them across restarts.

use std::collections::BTreeMap;

use mesos_plugin_api::allocator::QuotaConfig;
use mesos_proto::v1::{self, master::call, quota};

use super::Master;
use super::frameworks::validate_role;
use crate::error::ApiError;
use crate::registry::Change;

impl Master {
    /// The weight of `role` (1 unless set).
    pub(super) fn weight_of(&self, role: &str) -> f64 {
        self.weights.get(role).copied().unwrap_or(1.0)
    }

    pub(super) fn weight_infos(&self) -> Vec<v1::WeightInfo> {
        self.weights
            .iter()
            .map(|(role, weight)| v1::WeightInfo {
                weight: *weight,
                role: Some(role.clone()),
            })
            .collect()
    }

    pub(super) fn quota_status(&self) -> quota::QuotaStatus {
        quota::QuotaStatus {
            infos: Vec::new(),
            configs: self.quota.values().cloned().collect(),
        }
    }

    /// UPDATE_WEIGHTS: all or nothing; a bad entry is a 400 naming it.
    pub(super) fn update_weights(&mut self, update: call::UpdateWeights) -> Result<(), ApiError> {
        let mut changed = Vec::new();
        for info in update.weight_infos {
            let role = info
                .role
                .ok_or_else(|| ApiError::bad_request("A weight needs its 'role'"))?;
            validate_role(&role)
                .map_err(|e| ApiError::bad_request(format!("Invalid role '{role}': {e}")))?;
            if !(info.weight.is_finite() && info.weight > 0.0) {
                return Err(ApiError::bad_request(format!(
                    "Invalid weight {} for role '{role}': it must be a positive number",
                    info.weight
                )));
            }
            changed.push((role, info.weight));
        }
        self.weights.extend(changed);
        self.apply_weights();
        Ok(())
    }

    pub(super) fn apply_weights(&mut self) {
        let all: Vec<(String, f64)> = self.weights.iter().map(|(r, w)| (r.clone(), *w)).collect();
        self.allocator.set_weights(&all);
        self.allocate_soon = true;
    }

    /// UPDATE_QUOTA: every config checked first; an empty one removes the
    /// role's quota.
    pub(super) fn update_quota(&mut self, update: call::UpdateQuota) -> Result<(), ApiError> {
        for config in &update.quota_configs {
            check_quota(config)?;
        }
        for config in update.quota_configs {
            if config.guarantees.is_empty() && config.limits.is_empty() {
                self.quota.remove(&config.role);
            } else {
                self.quota.insert(config.role.clone(), config.clone());
            }
            self.allocator.update_quota(allocator_quota(&config));
        }
        self.allocate_soon = true;
        Ok(())
    }

    /// The registry change that stores the weights or quota as they now
    /// stand.
    pub(super) fn weights_change(&self) -> Change {
        Change::Weights(self.weight_infos())
    }

    pub(super) fn quota_change(&self) -> Change {
        Change::Quota(self.quota.values().cloned().collect())
    }

    /// Weights and quota a previous master left in the registry.
    pub(super) fn restore_weights_and_quota(
        &mut self,
        weights: Vec<v1::WeightInfo>,
        quota: Vec<quota::QuotaConfig>,
    ) {
        if !weights.is_empty() {
            self.weights = weights
                .into_iter()
                .filter_map(|w| Some((w.role?, w.weight)))
                .collect::<BTreeMap<_, _>>();
            self.apply_weights();
        }
        for config in quota {
            self.allocator.update_quota(allocator_quota(&config));
            self.quota.insert(config.role.clone(), config);
        }
    }
}

fn check_quota(config: &quota::QuotaConfig) -> Result<(), ApiError> {
    let role = &config.role;
    validate_role(role)
        .map_err(|e| ApiError::bad_request(format!("Invalid role '{role}': {e}")))?;
    if role == "*" {
        return Err(ApiError::bad_request("The '*' role cannot have quota"));
    }
    for (kind, values) in [("guarantee", &config.guarantees), ("limit", &config.limits)] {
        if let Some((name, value)) = values
            .iter()
            .find(|(_, v)| !(v.value.is_finite() && v.value >= 0.0))
        {
            return Err(ApiError::bad_request(format!(
                "Invalid quota {kind} for role '{role}': {name} is {}",
                value.value
            )));
        }
    }
    if let Some((name, guarantee)) = config.guarantees.iter().find(|(name, g)| {
        config
            .limits
            .get(*name)
            .is_some_and(|limit| g.value > limit.value)
    }) {
        return Err(ApiError::bad_request(format!(
            "Invalid quota for role '{role}': the {name} guarantee {} is above its limit",
            guarantee.value
        )));
    }
    Ok(())
}

fn allocator_quota(config: &quota::QuotaConfig) -> QuotaConfig {
    let pairs = |values: &std::collections::HashMap<String, v1::value::Scalar>| {
        let mut out: Vec<(String, f64)> =
            values.iter().map(|(k, v)| (k.clone(), v.value)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    QuotaConfig {
        role: config.role.clone(),
        guarantees: pairs(&config.guarantees),
        limits: pairs(&config.limits),
    }
}
