//! Checkers as tasks: each probes on its schedule and sends what the
//! executor must report. Dropping the handle stops the checker.

use mesos_proto::v1::CheckStatusInfo;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Timing;
use super::check::{Check, CheckPolicy, Outcome};
use super::health::{Health, HealthPolicy, Verdict};
use super::probe::{Probe, healthy};

/// What a checker tells the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Health(Verdict),
    Check(CheckStatusInfo),
}

/// A running checker; stopped when dropped.
#[derive(Debug)]
pub struct Checker(JoinHandle<()>);

impl Drop for Checker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the health checks of a task that started at `started`; its
/// events carry `key` (which task they are about). After a verdict that
/// kills, the checker stops.
pub fn spawn_health_check<K: Clone + Send + 'static>(
    policy: HealthPolicy,
    started: Instant,
    key: K,
    events: mpsc::Sender<(K, Event)>,
) -> Checker {
    Checker(tokio::spawn(async move {
        let mut health = Health::new(&policy);
        let judge = |outcome| {
            let verdict = health.observe(healthy(outcome), started.elapsed());
            let stop = verdict.as_ref().is_some_and(|v| v.kill);
            (verdict.map(Event::Health), stop)
        };
        every(policy.timing, &policy.probe, judge, key, &events).await;
    }))
}

/// Starts a task's generalized check. The TASK_RUNNING update carries the
/// empty status [`initial_status`](super::check::initial_status) gives;
/// results are reported as they change from it.
pub fn spawn_check<K: Clone + Send + 'static>(
    policy: CheckPolicy,
    key: K,
    events: mpsc::Sender<(K, Event)>,
) -> Checker {
    Checker(tokio::spawn(async move {
        let mut check = Check::default();
        let _ = check.observe(&policy.probe, Outcome::Unknown);
        let probe = policy.probe.clone();
        let judge = |outcome: Result<Outcome, String>| {
            let status = check.observe(&probe, outcome.unwrap_or(Outcome::Unknown));
            (status.map(Event::Check), false)
        };
        every(policy.timing, &policy.probe, judge, key, &events).await;
    }))
}

/// Probes after the delay and then every interval, handing each outcome to
/// `judge` (what to send, and whether to stop), until the receiver is gone.
async fn every<K: Clone>(
    timing: Timing,
    probe: &Probe,
    mut judge: impl FnMut(Result<Outcome, String>) -> (Option<Event>, bool),
    key: K,
    events: &mpsc::Sender<(K, Event)>,
) {
    tokio::time::sleep(timing.delay).await;
    loop {
        let next = Instant::now() + timing.interval;
        let outcome = probe.run(timing.timeout).await;
        if let Err(reason) = &outcome {
            tracing::debug!("check gave no result: {reason}");
        }
        let (event, stop) = judge(outcome);
        if let Some(event) = event
            && events.send((key.clone(), event)).await.is_err()
        {
            return;
        }
        if stop {
            return;
        }
        tokio::time::sleep_until(next).await;
    }
}
