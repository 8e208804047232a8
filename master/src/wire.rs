//! Conversions between what frameworks and agents send and the master's
//! normalised bookkeeping form, and back.
//!
//! Internally resources carry no `allocation_info` and unreserved resources
//! carry no `role`, so the same resources compare equal whichever way a
//! client spelled them. On the way out they are dressed as Mesos dresses
//! them for the framework at hand.

use mesos_proto::v1;
use mesos_resources::Resources;

/// Normalises resources received from a framework or an agent (`Resources`
/// itself folds the `*` role into "no role").
pub fn incoming(resources: &[v1::Resource]) -> Resources {
    Resources::from(resources.to_vec()).unallocated()
}

/// Dresses resources for a framework: MULTI_ROLE frameworks see
/// `allocation_info`, older ones the pre-refinement `role` field.
pub fn outgoing(resources: &Resources, role: &str, multi_role: bool) -> Vec<v1::Resource> {
    resources
        .iter()
        .cloned()
        .map(|mut r| {
            if multi_role {
                r.allocation_info = Some(v1::resource::AllocationInfo {
                    role: Some(role.to_string()),
                });
            } else {
                r.allocation_info = None;
                if r.role.is_none() {
                    r.role = Some("*".to_string());
                }
            }
            r
        })
        .collect()
}

/// Seconds since the epoch, as Mesos timestamps are.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `MasterInfo.ip`: the IPv4 address in network byte order read as a host
/// integer, as libprocess stores it (127.0.1.1 becomes 16842879).
pub fn packed_ipv4(ip: std::net::Ipv4Addr) -> u32 {
    u32::from_le_bytes(ip.octets())
}

pub fn framework_id(value: &str) -> v1::FrameworkId {
    v1::FrameworkId {
        value: value.to_string(),
    }
}

pub fn agent_id(value: &str) -> v1::AgentId {
    v1::AgentId {
        value: value.to_string(),
    }
}

pub fn task_state_name(state: v1::TaskState) -> &'static str {
    state.as_str_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_ip_like_libprocess() {
        assert_eq!(packed_ipv4("127.0.1.1".parse().unwrap()), 16842879);
    }

    #[test]
    fn star_role_and_allocation_info_are_normalised_away() {
        let spelled_out = v1::Resource {
            name: "cpus".into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value: 1.0 }),
            role: Some("*".into()),
            allocation_info: Some(v1::resource::AllocationInfo {
                role: Some("*".into()),
            }),
            ..Default::default()
        };
        let plain = v1::Resource {
            role: None,
            allocation_info: None,
            ..spelled_out.clone()
        };
        assert_eq!(
            incoming(&[spelled_out]).into_vec(),
            incoming(&[plain]).into_vec()
        );
    }

    #[test]
    fn old_frameworks_see_role_star_and_no_allocation_info() {
        let res = incoming(&[v1::Resource {
            name: "mem".into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value: 32.0 }),
            ..Default::default()
        }]);
        let old = outgoing(&res, "*", false);
        assert_eq!(old[0].role.as_deref(), Some("*"));
        assert!(old[0].allocation_info.is_none());
        let multi = outgoing(&res, "web", true);
        assert_eq!(
            multi[0]
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref()),
            Some("web")
        );
    }
}
