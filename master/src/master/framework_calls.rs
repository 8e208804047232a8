//! The scheduler calls that change a framework rather than its tasks:
//! SHUTDOWN of an executor, UPDATE_FRAMEWORK, RECONCILE_OPERATIONS.

use mesos_plugin_api::allocator::FrameworkSpec;
use mesos_proto::internal::v1 as internal;
use mesos_proto::internal::v1::master_to_agent;
use mesos_proto::v1::{self, scheduler::call, scheduler::event};
use mesos_resources::Resources;

use super::Master;
use super::frameworks::{framework_roles, has_capability, validate_role};
use crate::error::ApiError;
use crate::wire;

impl Master {
    /// SHUTDOWN: the agent shuts the executor down (its tasks end as the
    /// executor reports them). Unknown executors are ignored, as Mesos does.
    pub(super) fn shutdown_executor(&mut self, framework_id: &str, shutdown: call::Shutdown) {
        let agent_id = shutdown.agent_id.value;
        let executor_id = shutdown.executor_id;
        let known = self.agents.get(&agent_id).is_some_and(|agent| {
            agent
                .executors
                .contains_key(&(framework_id.to_string(), executor_id.value.clone()))
                || agent
                    .tasks
                    .contains(&(framework_id.to_string(), executor_id.value.clone()))
        });
        if !known {
            tracing::info!(
                framework = framework_id, agent = %agent_id, executor = %executor_id.value,
                "SHUTDOWN of an unknown executor ignored"
            );
            return;
        }
        let message = master_to_agent::Message::ShutdownExecutor(internal::ShutdownExecutor {
            framework_id: wire::framework_id(framework_id),
            executor_id,
        });
        if !self.send_to_agent(&agent_id, message) {
            tracing::warn!(agent = %agent_id, "could not reach the agent to shut an executor down");
        }
    }

    /// RECONCILE_OPERATIONS: no operation here carries an ID the master
    /// tracks, so every operation asked about is OPERATION_UNKNOWN.
    pub(super) fn reconcile_operations(
        &mut self,
        framework_id: &str,
        operations: Vec<call::reconcile_operations::Operation>,
    ) {
        for operation in operations {
            let status = v1::OperationStatus {
                operation_id: Some(operation.operation_id),
                state: v1::OperationState::OperationUnknown as i32,
                agent_id: operation.agent_id,
                resource_provider_id: operation.resource_provider_id,
                ..Default::default()
            };
            let event = v1::scheduler::Event {
                r#type: Some(event::Type::UpdateOperationStatus as i32),
                update_operation_status: Some(event::UpdateOperationStatus { status }),
                ..Default::default()
            };
            self.send_event(framework_id, &event);
        }
    }

    /// UPDATE_FRAMEWORK: a new FrameworkInfo for a subscribed framework.
    /// `user`, `checkpoint` and `principal` cannot change (Mesos's rule);
    /// new roles move its allocations, and its offers are rescinded.
    pub(super) fn update_framework(
        &mut self,
        framework_id: &str,
        update: call::UpdateFramework,
    ) -> Result<(), ApiError> {
        let mut info = update.framework_info;
        if info.id.as_ref().is_some_and(|id| id.value != framework_id) {
            return Err(ApiError::bad_request(
                "'framework_info.id' does not match the framework making the call",
            ));
        }
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| ApiError::bad_request("Framework cannot be found"))?;
        let old = &framework.info;
        for (field, changed) in [
            ("user", info.user != old.user),
            (
                "checkpoint",
                info.checkpoint.unwrap_or(false) != old.checkpoint.unwrap_or(false),
            ),
            ("principal", info.principal != old.principal),
        ] {
            if changed {
                return Err(ApiError::bad_request(format!(
                    "Updating 'FrameworkInfo.{field}' is unsupported"
                )));
            }
        }
        let multi_role = has_capability(&info, v1::framework_info::capability::Type::MultiRole);
        let roles = framework_roles(&info, multi_role);
        if let Some(problem) = roles.iter().find_map(|r| validate_role(r).err()) {
            return Err(ApiError::bad_request(problem));
        }
        if let Some(problem) = self.unlisted_role(&roles) {
            return Err(ApiError::bad_request(problem));
        }
        let old_roles = framework_roles(old, framework.multi_role);
        info.id = Some(wire::framework_id(framework_id));

        let offers: Vec<String> = framework.offers.iter().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, None, true);
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Ok(());
        };
        framework.multi_role = multi_role;
        framework.partition_aware =
            has_capability(&info, v1::framework_info::capability::Type::PartitionAware);
        framework.role = roles.first().cloned().unwrap_or_else(|| "*".into());
        framework.info = info;
        if roles != old_roles || !update.suppressed_roles.is_empty() {
            // The allocator learns the framework anew, with what it uses.
            let mut used: Vec<(String, Resources)> = Vec::new();
            for task in framework.tasks.values() {
                let agent = &task.proto.agent_id.value;
                match used.iter_mut().find(|(a, _)| a == agent) {
                    Some((_, total)) => total.add(&task.resources),
                    None => used.push((agent.clone(), task.resources.clone())),
                }
            }
            let active = framework.conn.is_some();
            self.allocator.remove_framework(framework_id);
            self.allocator.add_framework(
                FrameworkSpec {
                    id: framework_id.to_string(),
                    roles,
                    suppressed_roles: update.suppressed_roles,
                },
                &used,
            );
            self.allocator.set_framework_active(framework_id, active);
        }
        tracing::info!(framework = framework_id, "framework updated");
        self.publish_framework(framework_id, false);
        self.allocate_soon = true;
        Ok(())
    }
}
