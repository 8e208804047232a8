//! Dynamic reservations and persistent volumes: RESERVE, UNRESERVE,
//! CREATE and DESTROY, from a framework's ACCEPT (on offered resources) or
//! from an operator (on the agent's free resources).
//!
//! Every operation is a [`Conversion`] of the agent's total: the master
//! applies it to its books and the allocator's, then sends the agent the
//! whole set of resources operations made, which the agent checkpoints and
//! reports as part of its total from then on.

use mesos_proto::internal::v1 as internal;
use mesos_proto::internal::v1::master_to_agent;
use mesos_proto::v1::offer::operation::Type as OpType;
use mesos_proto::v1::scheduler::{Event, event};
use mesos_proto::v1::{self, master::call};
use mesos_resources::operations::{self, Conversion};
use mesos_resources::{Resources, reserved_role};

use super::Master;
use crate::error::ApiError;
use crate::wire;

impl Master {
    /// Applies one RESERVE, UNRESERVE, CREATE or DESTROY of an ACCEPT to
    /// what is left of the offers; a refused operation changes nothing.
    /// Operations with an ID get their outcome as an operation status.
    pub(super) fn offer_operation(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        operation: &v1::offer::Operation,
        remaining: &mut Resources,
    ) {
        let outcome = self
            .framework_conversion(framework_id, agent_id, operation)
            .and_then(|conversion| {
                let mut left = remaining.checked_sub(&conversion.consumed).ok_or_else(|| {
                    format!(
                        "{} uses resources {} that the offers do not hold ({remaining})",
                        operation.r#type().as_str_name(),
                        conversion.consumed
                    )
                })?;
                left.add(&conversion.converted);
                *remaining = left;
                self.apply_conversion(agent_id, Some(framework_id), &conversion);
                Ok(())
            });
        if let Err(message) = &outcome {
            tracing::info!(
                framework = framework_id,
                agent = agent_id,
                operation = operation.r#type().as_str_name(),
                %message,
                "offer operation refused"
            );
        }
        if let Some(id) = &operation.id {
            let (state, message) = match outcome {
                Ok(()) => (v1::OperationState::OperationFinished, None),
                Err(message) => (v1::OperationState::OperationError, Some(message)),
            };
            let event = Event {
                r#type: Some(event::Type::UpdateOperationStatus as i32),
                update_operation_status: Some(event::UpdateOperationStatus {
                    status: v1::OperationStatus {
                        operation_id: Some(id.clone()),
                        state: state as i32,
                        message,
                        agent_id: Some(wire::agent_id(agent_id)),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            };
            self.send_event(framework_id, &event);
        }
    }

    /// The conversion a framework's operation asks for, checked against
    /// the framework's roles and principal and the agent's volumes.
    fn framework_conversion(
        &self,
        framework_id: &str,
        agent_id: &str,
        operation: &v1::offer::Operation,
    ) -> Result<Conversion, String> {
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or("the framework is gone")?;
        let roles = super::frameworks::framework_roles(&framework.info, framework.multi_role);
        let own_role = |resources: &Resources| {
            resources
                .iter()
                .filter_map(reserved_role)
                .find(|role| !roles.iter().any(|r| r == role))
                .map_or(Ok(()), |role| {
                    Err(format!(
                        "resources are reserved for role '{role}', which the framework is not subscribed to"
                    ))
                })
        };
        let conversion = match operation.r#type() {
            OpType::Reserve => {
                let resources =
                    wire::incoming(operation.reserve.as_ref().map_or(&[][..], |r| &r.resources));
                let principal = framework.info.principal.as_deref();
                if let Some(other) = resources
                    .iter()
                    .filter_map(|r| r.reservations.last())
                    .find(|r| principal.is_some() && r.principal.as_deref() != principal)
                {
                    return Err(format!(
                        "the reservation's principal '{}' is not the framework's '{}'",
                        other.principal.as_deref().unwrap_or_default(),
                        principal.unwrap_or_default()
                    ));
                }
                own_role(&resources)?;
                operations::reserve(&resources)
            }
            OpType::Unreserve => {
                let resources = wire::incoming(
                    operation
                        .unreserve
                        .as_ref()
                        .map_or(&[][..], |r| &r.resources),
                );
                own_role(&resources)?;
                operations::unreserve(&resources)
            }
            OpType::Create => {
                let volumes =
                    wire::incoming(operation.create.as_ref().map_or(&[][..], |c| &c.volumes));
                own_role(&volumes)?;
                self.check_new_volumes(agent_id, &volumes)?;
                operations::create(&volumes)
            }
            OpType::Destroy => {
                let volumes =
                    wire::incoming(operation.destroy.as_ref().map_or(&[][..], |d| &d.volumes));
                own_role(&volumes)?;
                self.check_unused_volumes(agent_id, &volumes)?;
                operations::destroy(&volumes)
            }
            other => {
                return Err(format!(
                    "operation {} is not supported",
                    other.as_str_name()
                ));
            }
        };
        conversion.map_err(|e| e.to_string())
    }

    /// A volume ID names one volume per role on an agent.
    fn check_new_volumes(&self, agent_id: &str, volumes: &Resources) -> Result<(), String> {
        let Some(agent) = self.agents.get(agent_id) else {
            return Err(format!("agent {agent_id} is gone"));
        };
        let mut seen = Vec::new();
        for volume in volumes.iter() {
            let Some(id) = operations::persistence_id(volume) else {
                continue;
            };
            let role = reserved_role(volume);
            let exists = agent
                .total
                .iter()
                .any(|r| operations::persistence_id(r) == Some(id) && reserved_role(r) == role);
            if exists || seen.contains(&(id, role)) {
                return Err(format!(
                    "persistent volume '{id}' already exists on agent {agent_id}"
                ));
            }
            seen.push((id, role));
        }
        Ok(())
    }

    /// A volume a live task uses stays until the task ends.
    fn check_unused_volumes(&self, agent_id: &str, volumes: &Resources) -> Result<(), String> {
        for volume in volumes.iter() {
            let one = Resources::from(vec![volume.clone()]);
            let in_use = self
                .frameworks
                .values()
                .flat_map(|f| f.tasks.values())
                .any(|t| {
                    !t.recovered && t.proto.agent_id.value == agent_id && t.resources.contains(&one)
                });
            if in_use {
                return Err(format!(
                    "persistent volume '{}' is in use by a task",
                    operations::persistence_id(volume).unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    /// Books a conversion: the agent's total, the allocator, and the
    /// agent's checkpoint.
    fn apply_conversion(
        &mut self,
        agent_id: &str,
        framework_id: Option<&str>,
        conversion: &Conversion,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        let Some(mut total) = agent.total.checked_sub(&conversion.consumed) else {
            tracing::error!(agent = agent_id, consumed = %conversion.consumed, "operation on resources the agent does not have; ignored");
            return;
        };
        total.add(&conversion.converted);
        agent.total = total;
        tracing::info!(
            agent = agent_id,
            consumed = %conversion.consumed,
            converted = %conversion.converted,
            "applied an operation to the agent's resources"
        );
        self.allocator.convert_resources(
            agent_id,
            framework_id,
            &conversion.consumed,
            &conversion.converted,
        );
        self.checkpoint_agent_resources(agent_id);
    }

    /// Sends the agent everything operations made of its resources.
    pub(super) fn checkpoint_agent_resources(&self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let resources = operations::checkpointed(&agent.total).into_vec();
        self.send_to_agent(
            agent_id,
            master_to_agent::Message::CheckpointResources(internal::CheckpointResources {
                resources,
            }),
        );
    }

    /// RESERVE_RESOURCES, UNRESERVE_RESOURCES, CREATE_VOLUMES and
    /// DESTROY_VOLUMES: applied to the agent's free resources, rescinding
    /// its outstanding offers when they hold what is needed.
    pub(super) fn operator_operation(
        &mut self,
        call: call::Type,
        body: OperatorOperation,
    ) -> Result<(), ApiError> {
        let agent_id = body.agent_id;
        let Some(agent) = self.agents.get(&agent_id) else {
            return Err(ApiError::bad_request(format!("Unknown agent {agent_id}")));
        };
        if agent.link.is_none() {
            return Err(ApiError::conflict(format!(
                "Agent {agent_id} is not connected"
            )));
        }
        let resources = wire::incoming(&body.resources);
        let conversion = match call {
            call::Type::ReserveResources => operations::reserve(&resources),
            call::Type::UnreserveResources => operations::unreserve(&resources),
            call::Type::CreateVolumes => {
                self.check_new_volumes(&agent_id, &resources)
                    .map_err(ApiError::conflict)?;
                operations::create(&resources)
            }
            call::Type::DestroyVolumes => {
                self.check_unused_volumes(&agent_id, &resources)
                    .map_err(ApiError::conflict)?;
                operations::destroy(&resources)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "'{}' is not an operation on resources",
                    other.as_str_name()
                )));
            }
        }
        .map_err(|e| ApiError::bad_request(format!("Invalid {}: {e}", call.as_str_name())))?;

        if !self.agent_free(&agent_id).contains(&conversion.consumed) {
            // Mesos takes back outstanding offers to make room.
            let offers: Vec<String> = self
                .agents
                .get(&agent_id)
                .map(|a| a.offers.iter().cloned().collect())
                .unwrap_or_default();
            for offer in offers {
                self.remove_offer(&offer, None, true);
            }
        }
        let free = self.agent_free(&agent_id);
        if !free.contains(&conversion.consumed) {
            return Err(ApiError::conflict(format!(
                "Agent {agent_id} does not have {} free (free: {free})",
                conversion.consumed
            )));
        }
        self.apply_conversion(&agent_id, None, &conversion);
        self.allocate_soon = true;
        Ok(())
    }

    /// What the agent has that no task uses and no offer holds.
    fn agent_free(&self, agent_id: &str) -> Resources {
        let Some(agent) = self.agents.get(agent_id) else {
            return Resources::default();
        };
        let mut busy = self.agent_offered(agent_id);
        for (framework_id, task_id) in &agent.tasks {
            if let Some(task) = self
                .frameworks
                .get(framework_id)
                .and_then(|f| f.tasks.get(task_id))
                .filter(|t| !t.recovered)
            {
                busy.add(&task.resources);
            }
        }
        // Custom executors' resources are booked with their first task.
        let mut free = agent.total.clone();
        for r in busy.iter() {
            if let Some(left) = free.checked_sub(&Resources::from(vec![r.clone()])) {
                free = left;
            }
        }
        free
    }
}

/// The body of an operator's operation on resources.
#[derive(Debug)]
pub(crate) struct OperatorOperation {
    pub agent_id: String,
    pub resources: Vec<v1::Resource>,
}

impl OperatorOperation {
    /// Pulls the agent and resources out of whichever field the call uses.
    pub(crate) fn from_call(call: &v1::master::Call) -> Result<Self, ApiError> {
        let missing =
            |field: &str| ApiError::bad_request(format!("Expecting '{field}' to be present"));
        let (agent_id, resources) = match call.r#type() {
            call::Type::ReserveResources => {
                let r = call
                    .reserve_resources
                    .as_ref()
                    .ok_or_else(|| missing("reserve_resources"))?;
                (&r.agent_id, &r.resources)
            }
            call::Type::UnreserveResources => {
                let r = call
                    .unreserve_resources
                    .as_ref()
                    .ok_or_else(|| missing("unreserve_resources"))?;
                (&r.agent_id, &r.resources)
            }
            call::Type::CreateVolumes => {
                let r = call
                    .create_volumes
                    .as_ref()
                    .ok_or_else(|| missing("create_volumes"))?;
                (&r.agent_id, &r.volumes)
            }
            call::Type::DestroyVolumes => {
                let r = call
                    .destroy_volumes
                    .as_ref()
                    .ok_or_else(|| missing("destroy_volumes"))?;
                (&r.agent_id, &r.volumes)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "'{}' is not an operation on resources",
                    other.as_str_name()
                )));
            }
        };
        if agent_id.value.is_empty() {
            return Err(ApiError::bad_request(
                "Expecting 'agent_id.value' to be non-empty",
            ));
        }
        Ok(Self {
            agent_id: agent_id.value.clone(),
            resources: resources.clone(),
        })
    }
}
