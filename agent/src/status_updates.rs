//! The status update manager: every update reaches the master at least
//! once, in order per task.
//!
//! Per task a FIFO queue; only its head is in flight. The head is resent
//! with exponential backoff (10 s doubling to 10 min) until the master
//! relays the framework's acknowledgement with the head's uuid; then the
//! next update goes. Pure bookkeeping: the caller sends what it is told to.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use mesos_proto::internal::v1::StatusUpdate;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

type TaskKey = (String, String);

#[derive(Debug)]
struct Stream {
    pending: VecDeque<StatusUpdate>,
    /// When the head was last sent and when to resend it.
    next_retry: Option<Instant>,
    backoff: Duration,
}

#[derive(Debug, Default)]
pub struct StatusUpdateManager {
    streams: BTreeMap<TaskKey, Stream>,
}

fn key(update: &StatusUpdate) -> TaskKey {
    (update.framework_id.value.clone(), update.status.task_id.value.clone())
}

/// Outcome of an acknowledgement.
#[derive(Debug, PartialEq)]
pub enum Acked {
    /// The head was acknowledged; `next` is the new head, to send now.
    Head {
        acked: Box<StatusUpdate>,
        next: Option<Box<StatusUpdate>>,
    },
    /// Unknown task or a uuid that is not the head's: ignored.
    Ignored,
}

impl StatusUpdateManager {
    /// Queues an update. Returns it back if it became the head and should be
    /// sent now.
    pub fn enqueue(&mut self, update: StatusUpdate, now: Instant) -> Option<StatusUpdate> {
        let stream = self.streams.entry(key(&update)).or_insert_with(|| Stream {
            pending: VecDeque::new(),
            next_retry: None,
            backoff: INITIAL_BACKOFF,
        });
        stream.pending.push_back(update);
        if stream.pending.len() == 1 {
            stream.next_retry = Some(now + INITIAL_BACKOFF);
            stream.backoff = INITIAL_BACKOFF;
            stream.pending.front().cloned()
        } else {
            None
        }
    }

    pub fn acknowledge(&mut self, framework_id: &str, task_id: &str, uuid: &[u8], now: Instant) -> Acked {
        let k = (framework_id.to_string(), task_id.to_string());
        let Some(stream) = self.streams.get_mut(&k) else {
            return Acked::Ignored;
        };
        let matches = stream
            .pending
            .front()
            .is_some_and(|head| head.status.uuid.as_deref() == Some(uuid));
        if !matches {
            return Acked::Ignored;
        }
        let Some(acked) = stream.pending.pop_front() else {
            return Acked::Ignored;
        };
        let next = stream.pending.front().cloned();
        if next.is_some() {
            stream.next_retry = Some(now + INITIAL_BACKOFF);
            stream.backoff = INITIAL_BACKOFF;
        } else {
            self.streams.remove(&k);
        }
        Acked::Head {
            acked: Box::new(acked),
            next: next.map(Box::new),
        }
    }

    /// Heads whose retry time has come; their backoff doubles.
    pub fn due(&mut self, now: Instant) -> Vec<StatusUpdate> {
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            if stream.next_retry.is_some_and(|t| t <= now)
                && let Some(head) = stream.pending.front()
            {
                stream.backoff = (stream.backoff * 2).min(MAX_BACKOFF);
                stream.next_retry = Some(now + stream.backoff);
                out.push(head.clone());
            }
        }
        out
    }

    /// Every head, to resend at once after (re)connecting to a master.
    pub fn heads(&mut self, now: Instant) -> Vec<StatusUpdate> {
        self.streams
            .values_mut()
            .filter_map(|s| {
                s.next_retry = Some(now + s.backoff);
                s.pending.front().cloned()
            })
            .collect()
    }

    /// Forgets a framework's updates (it was removed; nobody will ack).
    pub fn forget_framework(&mut self, framework_id: &str) {
        self.streams.retain(|(fid, _), _| fid != framework_id);
    }

    /// Updates not yet acknowledged, for the agent's state view.
    pub fn pending(&self) -> usize {
        self.streams.values().map(|s| s.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1;

    fn update(task: &str, state: v1::TaskState, uuid: u8) -> StatusUpdate {
        StatusUpdate {
            framework_id: v1::FrameworkId { value: "f".into() },
            status: v1::TaskStatus {
                task_id: v1::TaskId { value: task.into() },
                state: state as i32,
                uuid: Some(vec![uuid; 16]),
                ..Default::default()
            },
            executor_id: None,
        }
    }

    #[test]
    fn only_the_head_is_in_flight_and_order_is_kept() {
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        assert!(m.enqueue(update("t", v1::TaskState::TaskStarting, 1), now).is_some());
        assert!(m.enqueue(update("t", v1::TaskState::TaskRunning, 2), now).is_none());
        assert!(m.enqueue(update("t", v1::TaskState::TaskFinished, 3), now).is_none());
        // Another task has its own stream.
        assert!(m.enqueue(update("u", v1::TaskState::TaskRunning, 9), now).is_some());

        assert_eq!(m.acknowledge("f", "t", &[2; 16], now), Acked::Ignored, "not the head");
        let Acked::Head { next, .. } = m.acknowledge("f", "t", &[1; 16], now) else { panic!() };
        assert_eq!(next.unwrap().status.state(), v1::TaskState::TaskRunning);
        let Acked::Head { next, .. } = m.acknowledge("f", "t", &[2; 16], now) else { panic!() };
        assert_eq!(next.unwrap().status.state(), v1::TaskState::TaskFinished);
        let Acked::Head { next, .. } = m.acknowledge("f", "t", &[3; 16], now) else { panic!() };
        assert!(next.is_none());
        assert_eq!(m.acknowledge("f", "t", &[3; 16], now), Acked::Ignored, "duplicate ack");
        assert_eq!(m.pending(), 1);
    }

    #[test]
    fn unacknowledged_heads_are_retried_with_backoff() {
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        m.enqueue(update("t", v1::TaskState::TaskRunning, 1), now);
        assert!(m.due(now + Duration::from_secs(5)).is_empty());
        assert_eq!(m.due(now + Duration::from_secs(10)).len(), 1);
        // Backoff doubled to 20 s from the retry.
        assert!(m.due(now + Duration::from_secs(25)).is_empty());
        assert_eq!(m.due(now + Duration::from_secs(31)).len(), 1);
        for i in 0..20 {
            m.due(now + Duration::from_secs(40 + i * 700));
        }
        assert_eq!(m.heads(now).len(), 1);
        m.forget_framework("f");
        assert_eq!(m.pending(), 0);
    }
}
