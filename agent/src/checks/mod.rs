//! Health checks (`TaskInfo.health_check`) and generalized checks
//! (`TaskInfo.check`), run by the executor next to its task, as in Mesos.
//!
//! A checker is a task of its own: it waits the check's delay, then probes
//! every interval (a command, an HTTP GET or a TCP connect, each bounded by
//! the timeout) and sends what the executor must report on a channel. What
//! to report is decided by pure state machines ([`health::Health`],
//! [`check::Check`]) so the rules are tested without processes or sockets.

pub mod check;
pub mod health;
pub mod probe;
mod runner;

pub use runner::{Checker, Event, spawn_check, spawn_health_check};

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{what} has no type")]
    NoType { what: &'static str },
    #[error("{what} of type {kind} needs its '{field}' field")]
    MissingField {
        what: &'static str,
        kind: &'static str,
        field: &'static str,
    },
    #[error("{what}: {field} must be a finite, non-negative number of seconds")]
    BadDuration {
        what: &'static str,
        field: &'static str,
    },
    #[error("{what}: port {port} is not a TCP port")]
    BadPort { what: &'static str, port: u32 },
    #[error("health check: HTTP scheme '{0}' is not supported (only http)")]
    UnsupportedScheme(String),
}

/// A proto's `double` seconds as a duration.
fn seconds(what: &'static str, field: &'static str, value: f64) -> Result<Duration, CheckError> {
    Duration::try_from_secs_f64(value).map_err(|_| CheckError::BadDuration { what, field })
}

fn port(what: &'static str, port: u32) -> Result<u16, CheckError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(CheckError::BadPort { what, port })
}

/// When and how long to probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A task's validated health check and check.
#[derive(Debug, Clone, PartialEq)]
pub struct Policies {
    pub health: Option<health::HealthPolicy>,
    pub check: Option<check::CheckPolicy>,
}

impl Policies {
    pub fn of(task: &mesos_proto::v1::TaskInfo) -> Result<Self, CheckError> {
        Ok(Self {
            health: task
                .health_check
                .as_ref()
                .map(health::HealthPolicy::from_proto)
                .transpose()?,
            check: task
                .check
                .as_ref()
                .map(check::CheckPolicy::from_proto)
                .transpose()?,
        })
    }

    /// Command probes run in the task's view (its container image).
    pub fn inside(self, view: probe::TaskView) -> Self {
        let view = std::sync::Arc::new(view);
        Self {
            health: self.health.map(|mut policy| {
                policy.probe = policy.probe.inside(&view);
                policy
            }),
            check: self.check.map(|mut policy| {
                policy.probe = policy.probe.inside(&view);
                policy
            }),
        }
    }

    /// Starts the checkers of a task started at `started`; they stop when
    /// the returned handles are dropped.
    pub fn spawn<K: Clone + Send + 'static>(
        self,
        started: tokio::time::Instant,
        key: K,
        events: &tokio::sync::mpsc::Sender<(K, Event)>,
    ) -> Vec<Checker> {
        let mut checkers = Vec::new();
        if let Some(policy) = self.health {
            checkers.push(spawn_health_check(
                policy,
                started,
                key.clone(),
                events.clone(),
            ));
        }
        if let Some(policy) = self.check {
            checkers.push(spawn_check(policy, key, events.clone()));
        }
        checkers
    }
}

/// What a task's checks reported so far; every later update of the task
/// repeats it, as Mesos does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reported {
    pub healthy: Option<bool>,
    pub check_status: Option<mesos_proto::v1::CheckStatusInfo>,
    /// The task failed its health check too often and is being killed.
    pub killed_by_health_check: bool,
}

impl Reported {
    /// Takes a checker's event in; returns the TASK_RUNNING update that
    /// reports it and whether the task must now be killed.
    pub fn apply(
        &mut self,
        task_id: &mesos_proto::v1::TaskId,
        event: Event,
    ) -> (mesos_proto::v1::TaskStatus, bool) {
        use mesos_proto::v1::task_status::Reason;
        let (reason, message, kill) = match event {
            Event::Health(verdict) => {
                self.healthy = Some(verdict.healthy);
                (
                    Reason::TaskHealthCheckStatusUpdated,
                    Some(verdict.message),
                    verdict.kill,
                )
            }
            Event::Check(status) => {
                self.check_status = Some(status);
                (Reason::TaskCheckStatusUpdated, None, false)
            }
        };
        self.killed_by_health_check |= kill;
        let mut status = mesos_proto::v1::TaskStatus {
            task_id: task_id.clone(),
            state: mesos_proto::v1::TaskState::TaskRunning as i32,
            message,
            reason: Some(reason as i32),
            ..Default::default()
        };
        self.stamp(&mut status);
        (status, kill)
    }

    /// Adds what was reported to a later update of the task.
    pub fn stamp(&self, status: &mut mesos_proto::v1::TaskStatus) {
        status.healthy = self.healthy;
        status.check_status = self.check_status;
    }

    /// A terminal message, saying so when the health check caused it.
    pub fn explain(&self, message: String) -> String {
        if self.killed_by_health_check {
            format!("Killed after failing its health check: {message}")
        } else {
            message
        }
    }
}
