//! Mesos's health check rules. Failures inside the grace period (counted
//! from the task's start) are ignored until the first success; after it,
//! every failure is reported as unhealthy, and `consecutive_failures` of
//! them in a row kill the task. A success is reported only when it changes
//! something: the first one, or one after failures.

use std::time::Duration;

use mesos_proto::v1::{self, health_check};

use super::probe::Probe;
use super::{CheckError, Timing, port, seconds};

const WHAT: &str = "health check";

/// A validated `HealthCheck`, Mesos's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPolicy {
    pub probe: Probe,
    pub timing: Timing,
    pub consecutive_failures: u32,
    pub grace_period: Duration,
}

impl HealthPolicy {
    pub fn from_proto(check: &v1::HealthCheck) -> Result<Self, CheckError> {
        let probe = match check.r#type() {
            health_check::Type::Unknown => return Err(CheckError::NoType { what: WHAT }),
            health_check::Type::Command => {
                Probe::Command(check.command.clone().ok_or(CheckError::MissingField {
                    what: WHAT,
                    kind: "COMMAND",
                    field: "command",
                })?)
            }
            health_check::Type::Http => {
                let http = check.http.as_ref().ok_or(CheckError::MissingField {
                    what: WHAT,
                    kind: "HTTP",
                    field: "http",
                })?;
                let scheme = http.scheme.as_deref().unwrap_or("http");
                if scheme != "http" {
                    return Err(CheckError::UnsupportedScheme(scheme.to_string()));
                }
                Probe::Http {
                    port: port(WHAT, http.port)?,
                    path: http.path.clone().unwrap_or_else(|| "/".into()),
                }
            }
            health_check::Type::Tcp => {
                let tcp = check.tcp.as_ref().ok_or(CheckError::MissingField {
                    what: WHAT,
                    kind: "TCP",
                    field: "tcp",
                })?;
                Probe::Tcp {
                    port: port(WHAT, tcp.port)?,
                }
            }
        };
        Ok(Self {
            probe,
            timing: Timing {
                delay: seconds(WHAT, "delay_seconds", check.delay_seconds())?,
                interval: seconds(WHAT, "interval_seconds", check.interval_seconds())?,
                timeout: seconds(WHAT, "timeout_seconds", check.timeout_seconds())?,
            },
            consecutive_failures: check.consecutive_failures(),
            grace_period: seconds(WHAT, "grace_period_seconds", check.grace_period_seconds())?,
        })
    }
}

/// What the executor reports after a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    /// `consecutive_failures` reached: the task must be killed.
    pub kill: bool,
    pub message: String,
}

/// The health of one task over time.
#[derive(Debug)]
pub struct Health {
    consecutive_failures: u32,
    limit: u32,
    grace_period: Duration,
    /// A success was seen (it ends the grace period).
    succeeded: bool,
}

impl Health {
    pub fn new(policy: &HealthPolicy) -> Self {
        Self {
            consecutive_failures: 0,
            limit: policy.consecutive_failures,
            grace_period: policy.grace_period,
            succeeded: false,
        }
    }

    /// One probe's result, `since_start` after the task started; what to
    /// report, if anything.
    pub fn observe(
        &mut self,
        result: Result<(), String>,
        since_start: Duration,
    ) -> Option<Verdict> {
        match result {
            Ok(()) => {
                let changed = !self.succeeded || self.consecutive_failures > 0;
                self.succeeded = true;
                self.consecutive_failures = 0;
                changed.then(|| Verdict {
                    healthy: true,
                    kill: false,
                    message: "Health check passed".into(),
                })
            }
            Err(_) if !self.succeeded && since_start < self.grace_period => None,
            Err(reason) => {
                self.consecutive_failures += 1;
                let kill = self.consecutive_failures >= self.limit;
                Some(Verdict {
                    healthy: false,
                    kill,
                    message: format!(
                        "Health check failed {} time(s) in a row: {reason}",
                        self.consecutive_failures
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy::from_proto(&v1::HealthCheck {
            r#type: Some(health_check::Type::Tcp as i32),
            tcp: Some(health_check::TcpCheckInfo {
                port: 8080,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn mesos_defaults_fill_what_the_check_leaves_out() {
        let p = policy();
        assert_eq!(p.probe, Probe::Tcp { port: 8080 });
        assert_eq!(p.timing.delay, Duration::from_secs(15));
        assert_eq!(p.timing.interval, Duration::from_secs(10));
        assert_eq!(p.timing.timeout, Duration::from_secs(20));
        assert_eq!(p.consecutive_failures, 3);
        assert_eq!(p.grace_period, Duration::from_secs(10));
    }

    #[test]
    fn malformed_checks_are_refused_with_the_reason() {
        let refused = |check: v1::HealthCheck| HealthPolicy::from_proto(&check).unwrap_err();
        assert_eq!(
            refused(v1::HealthCheck::default()),
            CheckError::NoType { what: WHAT }
        );
        let http = v1::HealthCheck {
            r#type: Some(health_check::Type::Http as i32),
            ..Default::default()
        };
        assert!(refused(http).to_string().contains("'http'"));
        let big_port = v1::HealthCheck {
            r#type: Some(health_check::Type::Tcp as i32),
            tcp: Some(health_check::TcpCheckInfo {
                port: 70000,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(refused(big_port), CheckError::BadPort { .. }));
        let negative = v1::HealthCheck {
            interval_seconds: Some(-1.0),
            ..policy_proto()
        };
        assert!(matches!(refused(negative), CheckError::BadDuration { .. }));
        let https = v1::HealthCheck {
            r#type: Some(health_check::Type::Http as i32),
            http: Some(health_check::HttpCheckInfo {
                port: 80,
                scheme: Some("https".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(refused(https), CheckError::UnsupportedScheme(_)));
    }

    fn policy_proto() -> v1::HealthCheck {
        v1::HealthCheck {
            r#type: Some(health_check::Type::Tcp as i32),
            tcp: Some(health_check::TcpCheckInfo {
                port: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn failures_in_the_grace_period_are_ignored_until_the_first_success() {
        let mut health = Health::new(&policy());
        let early = Duration::from_secs(5);
        assert_eq!(health.observe(Err("refused".into()), early), None);
        let passed = health.observe(Ok(()), early).unwrap();
        assert!(passed.healthy && !passed.kill);
        // After a success the grace period no longer shields failures.
        let failed = health.observe(Err("refused".into()), early).unwrap();
        assert!(!failed.healthy && !failed.kill, "{failed:?}");
    }

    #[test]
    fn only_changes_are_reported_and_enough_failures_kill() {
        let mut health = Health::new(&policy());
        let late = Duration::from_secs(60);
        assert!(health.observe(Ok(()), late).is_some(), "first success");
        assert_eq!(health.observe(Ok(()), late), None, "still healthy");
        let first = health.observe(Err("timeout".into()), late).unwrap();
        assert!(!first.kill && first.message.contains("1 time(s)"));
        assert!(health.observe(Ok(()), late).unwrap().healthy, "recovered");
        for _ in 0..2 {
            assert!(!health.observe(Err("x".into()), late).unwrap().kill);
        }
        let third = health.observe(Err("x".into()), late).unwrap();
        assert!(third.kill && !third.healthy, "{third:?}");
    }

    #[test]
    fn failures_after_the_grace_period_count_without_a_success() {
        let mut health = Health::new(&policy());
        let late = Duration::from_secs(11);
        let verdicts: Vec<bool> = (0..3)
            .map(|_| health.observe(Err("down".into()), late).unwrap().kill)
            .collect();
        assert_eq!(verdicts, vec![false, false, true]);
    }
}
