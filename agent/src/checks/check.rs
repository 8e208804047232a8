//! Generalized checks (`TaskInfo.check`): Mesos does not interpret their
//! results, it reports them. The executor sends a `check_status` whenever
//! the result changes, starting with the first one.

use mesos_proto::v1::{self, CheckStatusInfo, check_info, check_status_info};

use super::probe::Probe;
use super::{CheckError, Timing, port, seconds};

const WHAT: &str = "check";

/// A validated `CheckInfo`, Mesos's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPolicy {
    pub probe: Probe,
    pub timing: Timing,
}

impl CheckPolicy {
    pub fn from_proto(check: &v1::CheckInfo) -> Result<Self, CheckError> {
        let missing = |kind, field| CheckError::MissingField {
            what: WHAT,
            kind,
            field,
        };
        let probe = match check.r#type() {
            check_info::Type::Unknown => return Err(CheckError::NoType { what: WHAT }),
            check_info::Type::Command => Probe::Command(
                check
                    .command
                    .as_ref()
                    .ok_or(missing("COMMAND", "command"))?
                    .command
                    .clone(),
            ),
            check_info::Type::Http => {
                let http = check.http.as_ref().ok_or(missing("HTTP", "http"))?;
                Probe::Http {
                    port: port(WHAT, http.port)?,
                    path: http.path.clone().unwrap_or_else(|| "/".into()),
                }
            }
            check_info::Type::Tcp => Probe::Tcp {
                port: port(WHAT, check.tcp.as_ref().ok_or(missing("TCP", "tcp"))?.port)?,
            },
        };
        Ok(Self {
            probe,
            timing: Timing {
                delay: seconds(WHAT, "delay_seconds", check.delay_seconds())?,
                interval: seconds(WHAT, "interval_seconds", check.interval_seconds())?,
                timeout: seconds(WHAT, "timeout_seconds", check.timeout_seconds())?,
            },
        })
    }
}

/// A probe's raw outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Status(u16),
    Connected(bool),
    /// Timed out or could not run: the status carries no result, as in
    /// Mesos.
    Unknown,
}

/// What the TASK_RUNNING update carries before the first result.
pub fn initial_status(policy: &CheckPolicy) -> CheckStatusInfo {
    status_of(&policy.probe, Outcome::Unknown)
}

/// The last reported check status.
#[derive(Debug, Default)]
pub struct Check {
    last: Option<CheckStatusInfo>,
}

impl Check {
    /// The status to report for `outcome`, if it differs from the last.
    pub fn observe(&mut self, probe: &Probe, outcome: Outcome) -> Option<CheckStatusInfo> {
        let status = status_of(probe, outcome);
        if self.last.as_ref() == Some(&status) {
            return None;
        }
        self.last = Some(status);
        Some(status)
    }
}

/// The status reporting `outcome` in the field of the check's type
/// (left empty for [`Outcome::Unknown`]).
pub fn status_of(probe: &Probe, outcome: Outcome) -> CheckStatusInfo {
    let mut status = CheckStatusInfo::default();
    match probe {
        Probe::Command(_) | Probe::CommandIn(..) => {
            status.r#type = Some(check_info::Type::Command as i32);
            status.command = Some(check_status_info::Command {
                exit_code: match outcome {
                    Outcome::Exited(code) => Some(code),
                    _ => None,
                },
            });
        }
        Probe::Http { .. } => {
            status.r#type = Some(check_info::Type::Http as i32);
            status.http = Some(check_status_info::Http {
                status_code: match outcome {
                    Outcome::Status(code) => Some(u32::from(code)),
                    _ => None,
                },
            });
        }
        Probe::Tcp { .. } => {
            status.r#type = Some(check_info::Type::Tcp as i32);
            status.tcp = Some(check_status_info::Tcp {
                succeeded: match outcome {
                    Outcome::Connected(ok) => Some(ok),
                    _ => None,
                },
            });
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_and_validation() {
        let policy = CheckPolicy::from_proto(&v1::CheckInfo {
            r#type: Some(check_info::Type::Http as i32),
            http: Some(check_info::Http {
                port: 8080,
                path: None,
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            policy.probe,
            Probe::Http {
                port: 8080,
                path: "/".into()
            }
        );
        assert_eq!(policy.timing.delay, Duration::from_secs(15));
        let refused = CheckPolicy::from_proto(&v1::CheckInfo {
            r#type: Some(check_info::Type::Command as i32),
            ..Default::default()
        })
        .unwrap_err();
        assert!(refused.to_string().contains("'command'"), "{refused}");
    }

    #[test]
    fn a_status_is_reported_when_the_result_changes() {
        let probe = Probe::Tcp { port: 1 };
        let mut check = Check::default();
        let first = check.observe(&probe, Outcome::Connected(false)).unwrap();
        assert_eq!(first.tcp.unwrap().succeeded, Some(false));
        assert_eq!(check.observe(&probe, Outcome::Connected(false)), None);
        assert!(check.observe(&probe, Outcome::Connected(true)).is_some());
        let unknown = check.observe(&probe, Outcome::Unknown).unwrap();
        assert_eq!(unknown.tcp.unwrap().succeeded, None);
    }
}
