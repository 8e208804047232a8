//! The status update manager: every update reaches the master at least
//! once, and in order per task.
//!
//! Each task has a FIFO queue of which only the head is in flight. The head
//! is resent with exponential backoff (10 s, doubling up to 10 min) until
//! the master relays the framework's acknowledgement carrying the head's
//! uuid; then the next update goes. A stream remembers every uuid it saw
//! until its terminal update is acknowledged, so a duplicate (an executor
//! resending after a reconnection) is never forwarded twice, and one that
//! was already acknowledged is acknowledged again.
//!
//! This module is pure bookkeeping: it says what to send and what to write
//! to the task's update log (see [`crate::checkpoint`]), and the caller
//! does it, so it is tested without any clock, network or disk.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mesos_proto::internal::v1::{StatusUpdate, StatusUpdateRecord, status_update_record};

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// (framework id, task id).
type TaskKey = (String, String);

#[derive(Debug)]
struct Stream {
    pending: VecDeque<StatusUpdate>,
    /// Every uuid received, pending or acknowledged.
    received: HashSet<Vec<u8>>,
    acknowledged: HashSet<Vec<u8>>,
    /// When to resend the head.
    retry_at: Instant,
    backoff: Duration,
    /// The head's record is not on disk yet: it is not sent until then.
    held: bool,
}

impl Stream {
    fn new(now: Instant) -> Self {
        Self {
            pending: VecDeque::new(),
            received: HashSet::new(),
            acknowledged: HashSet::new(),
            retry_at: now,
            backoff: INITIAL_BACKOFF,
            held: false,
        }
    }

    /// The head to send, carrying the newest state queued behind it.
    fn head(&self) -> Option<StatusUpdate> {
        let mut head = self.pending.front()?.clone();
        head.latest_state = self.pending.back().map(|u| u.status.state);
        Some(head)
    }

    fn head_sent(&mut self, now: Instant) {
        self.backoff = INITIAL_BACKOFF;
        self.retry_at = now + INITIAL_BACKOFF;
    }
}

#[derive(Debug, Default)]
pub struct StatusUpdateManager {
    streams: BTreeMap<TaskKey, Stream>,
}

/// What became of an enqueued update.
#[derive(Debug, PartialEq)]
pub enum Enqueued {
    /// It is the task's head: send it now.
    SendNow(Box<StatusUpdate>),
    /// It waits behind earlier updates of the task.
    Queued,
    /// An update with the same uuid was received before; not forwarded
    /// again. `acknowledged`: the framework already acknowledged it (so the
    /// sender may be told again).
    Duplicate { acknowledged: bool },
}

/// What an acknowledgement did.
#[derive(Debug, PartialEq)]
pub enum Acked {
    /// The head was acknowledged; `next` is the new head, to send now.
    Head {
        acked: Box<StatusUpdate>,
        next: Option<Box<StatusUpdate>>,
    },
    /// The uuid was acknowledged before (a duplicate acknowledgement).
    Duplicate,
    /// The task has pending updates but the uuid is not the head's.
    NotHead,
    /// No stream for the task.
    UnknownTask,
}

fn key_of(update: &StatusUpdate) -> TaskKey {
    (
        update.framework_id.value.clone(),
        update.status.task_id.value.clone(),
    )
}

/// An UPDATE record of the update log.
pub fn update_record(update: &StatusUpdate) -> StatusUpdateRecord {
    StatusUpdateRecord {
        r#type: status_update_record::Type::Update as i32,
        update: Some(update.clone()),
        uuid: None,
    }
}

/// An ACK record of the update log.
pub fn ack_record(uuid: &[u8]) -> StatusUpdateRecord {
    StatusUpdateRecord {
        r#type: status_update_record::Type::Ack as i32,
        update: None,
        uuid: Some(uuid.to_vec()),
    }
}

/// A task's stream rebuilt from its update log.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Updates not acknowledged, in order.
    pub pending: Vec<StatusUpdate>,
    /// The newest state received (acknowledged or not).
    pub latest: Option<StatusUpdate>,
    /// Uuids of the acknowledged updates: an executor that missed an
    /// acknowledgement resends its update, which must be known as such
    /// (taken for new, it would be forwarded again behind later states).
    pub acknowledged: Vec<Vec<u8>>,
    /// The terminal update was acknowledged: the stream is over.
    pub terminated: bool,
}

/// Replays log records in order. An ACK for an unknown or non-head uuid is
/// ignored (it cannot happen in a log this module wrote).
pub fn replay(records: &[StatusUpdateRecord]) -> Replayed {
    let mut pending: VecDeque<StatusUpdate> = VecDeque::new();
    let mut out = Replayed::default();
    for record in records {
        match (record.r#type(), &record.update, &record.uuid) {
            (status_update_record::Type::Update, Some(update), _) => {
                let uuid = &update.status.uuid;
                if pending.iter().any(|p| p.status.uuid == *uuid)
                    || uuid.as_ref().is_some_and(|u| out.acknowledged.contains(u))
                {
                    continue;
                }
                out.latest = Some(update.clone());
                pending.push_back(update.clone());
            }
            (status_update_record::Type::Ack, _, Some(uuid)) => {
                if pending
                    .front()
                    .is_some_and(|h| h.status.uuid.as_deref() == Some(uuid.as_slice()))
                    && let Some(acked) = pending.pop_front()
                {
                    out.acknowledged.push(uuid.clone());
                    out.terminated |= acked.status.state().is_terminal();
                }
            }
            _ => {}
        }
    }
    out.pending = pending.into();
    out
}

impl StatusUpdateManager {
    /// Queues an update; its `status.uuid` must be set.
    pub fn enqueue(&mut self, update: StatusUpdate, now: Instant) -> Enqueued {
        let stream = self
            .streams
            .entry(key_of(&update))
            .or_insert_with(|| Stream::new(now));
        let uuid = update.status.uuid.clone().unwrap_or_default();
        if stream.received.contains(&uuid) {
            return Enqueued::Duplicate {
                acknowledged: stream.acknowledged.contains(&uuid),
            };
        }
        stream.received.insert(uuid);
        stream.pending.push_back(update);
        if stream.pending.len() > 1 {
            return Enqueued::Queued;
        }
        stream.head_sent(now);
        match stream.head() {
            Some(head) => Enqueued::SendNow(Box::new(head)),
            None => Enqueued::Queued,
        }
    }

    /// Restores a task's stream replayed from its update log after a
    /// restart. The heads go out when the agent registers with a master. A
    /// stream whose terminal update was acknowledged is over.
    pub fn restore(&mut self, framework_id: &str, task_id: &str, replayed: Replayed, now: Instant) {
        if replayed.terminated && replayed.pending.is_empty() {
            return;
        }
        let stream = self
            .streams
            .entry((framework_id.to_string(), task_id.to_string()))
            .or_insert_with(|| Stream::new(now));
        for uuid in replayed.acknowledged {
            stream.received.insert(uuid.clone());
            stream.acknowledged.insert(uuid);
        }
        for update in replayed.pending {
            stream
                .received
                .insert(update.status.uuid.clone().unwrap_or_default());
            stream.pending.push_back(update);
        }
    }

    pub fn acknowledge(
        &mut self,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
        now: Instant,
    ) -> Acked {
        let key = (framework_id.to_string(), task_id.to_string());
        let Some(stream) = self.streams.get_mut(&key) else {
            return Acked::UnknownTask;
        };
        if stream.acknowledged.contains(uuid) {
            return Acked::Duplicate;
        }
        let is_head = stream
            .pending
            .front()
            .is_some_and(|head| head.status.uuid.as_deref() == Some(uuid));
        if !is_head {
            return Acked::NotHead;
        }
        let Some(acked) = stream.pending.pop_front() else {
            return Acked::UnknownTask;
        };
        stream.acknowledged.insert(uuid.to_vec());
        let next = stream.head().map(Box::new);
        if next.is_some() {
            stream.head_sent(now);
        } else if acked.status.state().is_terminal() {
            // The stream is over (Mesos's rule); later duplicates of it
            // are unknown and answered as such.
            self.streams.remove(&key);
        }
        Acked::Head {
            acked: Box::new(acked),
            next,
        }
    }

    /// Keeps the task's head from going out (through [`Self::heads`] or
    /// [`Self::due`]) until [`Self::release`]: its record is not on disk
    /// yet, and the agent must not report what a crash could make it forget.
    pub fn hold(&mut self, framework_id: &str, task_id: &str) {
        if let Some(stream) = self
            .streams
            .get_mut(&(framework_id.to_string(), task_id.to_string()))
        {
            stream.held = true;
        }
    }

    /// Ends a hold: the head to send now, if the stream was held and still
    /// has one.
    pub fn release(
        &mut self,
        framework_id: &str,
        task_id: &str,
        now: Instant,
    ) -> Option<StatusUpdate> {
        let stream = self
            .streams
            .get_mut(&(framework_id.to_string(), task_id.to_string()))?;
        if !std::mem::take(&mut stream.held) {
            return None;
        }
        stream.head_sent(now);
        stream.head()
    }

    /// Heads whose retry time has come; each one's backoff doubles.
    pub fn due(&mut self, now: Instant) -> Vec<StatusUpdate> {
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            if stream.retry_at <= now
                && !stream.held
                && let Some(head) = stream.head()
            {
                stream.backoff = (stream.backoff * 2).min(MAX_BACKOFF);
                stream.retry_at = now + stream.backoff;
                out.push(head);
            }
        }
        out
    }

    /// Every head, to resend at once after (re)registering with a master.
    pub fn heads(&mut self, now: Instant) -> Vec<StatusUpdate> {
        self.streams
            .values_mut()
            .filter(|stream| !stream.held)
            .filter_map(|stream| {
                stream.head_sent(now);
                stream.head()
            })
            .collect()
    }

    /// Drops a removed framework's updates: nobody will acknowledge them.
    pub fn forget_framework(&mut self, framework_id: &str) {
        self.streams.retain(|(fid, _), _| fid != framework_id);
    }

    /// `Some(acknowledged)` if the task's stream already received an
    /// update with this uuid.
    pub fn seen(&self, framework_id: &str, task_id: &str, uuid: &[u8]) -> Option<bool> {
        let stream = self
            .streams
            .get(&(framework_id.to_string(), task_id.to_string()))?;
        stream
            .received
            .contains(uuid)
            .then(|| stream.acknowledged.contains(uuid))
    }

    /// Whether the task has updates not yet acknowledged.
    pub fn has_pending(&self, framework_id: &str, task_id: &str) -> bool {
        self.streams
            .get(&(framework_id.to_string(), task_id.to_string()))
            .is_some_and(|s| !s.pending.is_empty())
    }

    /// Updates not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.streams.values().map(|s| s.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1;

    fn update(framework: &str, task: &str, state: v1::TaskState, uuid: u8) -> StatusUpdate {
        StatusUpdate {
            framework_id: v1::FrameworkId {
                value: framework.into(),
            },
            status: v1::TaskStatus {
                task_id: v1::TaskId { value: task.into() },
                state: state as i32,
                uuid: Some(vec![uuid; 16]),
                ..Default::default()
            },
            executor_id: None,
            latest_state: None,
        }
    }

    fn sent_state(e: Enqueued) -> Option<v1::TaskState> {
        match e {
            Enqueued::SendNow(u) => Some(u.status.state()),
            _ => None,
        }
    }

    fn next_state(a: Acked) -> Option<v1::TaskState> {
        match a {
            Acked::Head { next, .. } => next.map(|n| n.status.state()),
            other => panic!("not a head ack: {other:?}"),
        }
    }

    #[test]
    fn only_the_head_is_in_flight_and_order_is_kept() {
        use v1::TaskState::*;
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        assert_eq!(
            sent_state(m.enqueue(update("f", "t", TaskStarting, 1), now)),
            Some(TaskStarting)
        );
        assert_eq!(
            m.enqueue(update("f", "t", TaskRunning, 2), now),
            Enqueued::Queued
        );
        assert_eq!(
            m.enqueue(update("f", "t", TaskFinished, 3), now),
            Enqueued::Queued
        );
        // Other tasks, also of other frameworks, have streams of their own.
        assert!(sent_state(m.enqueue(update("f", "u", TaskRunning, 9), now)).is_some());
        assert!(sent_state(m.enqueue(update("g", "t", TaskRunning, 8), now)).is_some());

        assert_eq!(
            next_state(m.acknowledge("f", "t", &[1; 16], now)),
            Some(TaskRunning)
        );
        assert_eq!(
            next_state(m.acknowledge("f", "t", &[2; 16], now)),
            Some(TaskFinished)
        );
        assert_eq!(next_state(m.acknowledge("f", "t", &[3; 16], now)), None);
        assert_eq!(m.pending(), 2);
    }

    #[test]
    fn stray_acknowledgements_are_ignored() {
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        m.enqueue(update("f", "t", v1::TaskState::TaskRunning, 1), now);
        m.enqueue(update("f", "t", v1::TaskState::TaskFinished, 2), now);
        assert_eq!(
            m.acknowledge("f", "t", &[2; 16], now),
            Acked::NotHead,
            "not the head yet"
        );
        assert_eq!(m.acknowledge("f", "x", &[1; 16], now), Acked::UnknownTask);
        assert_eq!(m.acknowledge("g", "t", &[1; 16], now), Acked::UnknownTask);
        assert!(matches!(
            m.acknowledge("f", "t", &[1; 16], now),
            Acked::Head { .. }
        ));
        assert_eq!(
            m.acknowledge("f", "t", &[1; 16], now),
            Acked::Duplicate,
            "duplicate"
        );
        assert!(matches!(
            m.acknowledge("f", "t", &[2; 16], now),
            Acked::Head { .. }
        ));
        assert_eq!(
            m.acknowledge("f", "t", &[2; 16], now),
            Acked::UnknownTask,
            "stream done"
        );
        assert_eq!(m.pending(), 0);
    }

    #[test]
    fn duplicate_updates_are_dropped() {
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        assert!(
            sent_state(m.enqueue(update("f", "t", v1::TaskState::TaskRunning, 1), now)).is_some()
        );
        assert_eq!(
            m.enqueue(update("f", "t", v1::TaskState::TaskRunning, 1), now),
            Enqueued::Duplicate {
                acknowledged: false
            }
        );
        assert_eq!(m.pending(), 1);
        assert_eq!(m.seen("f", "t", &[1; 16]), Some(false));
        assert_eq!(m.seen("f", "t", &[2; 16]), None);
        assert!(matches!(
            m.acknowledge("f", "t", &[1; 16], now),
            Acked::Head { .. }
        ));
        // Resent by a reconnecting executor after the acknowledgement: not
        // forwarded, but acknowledged again.
        assert_eq!(
            m.enqueue(update("f", "t", v1::TaskState::TaskRunning, 1), now),
            Enqueued::Duplicate { acknowledged: true }
        );
        assert_eq!(m.pending(), 0);
    }

    #[test]
    fn unacknowledged_heads_are_retried_with_backoff() {
        let mut m = StatusUpdateManager::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        m.enqueue(update("f", "t", v1::TaskState::TaskRunning, 1), t0);
        m.enqueue(update("f", "t", v1::TaskState::TaskFinished, 2), t0);
        assert!(m.due(at(9)).is_empty());
        let resent = m.due(at(10));
        assert_eq!(resent.len(), 1, "only the head");
        assert_eq!(resent[0].status.state(), v1::TaskState::TaskRunning);
        assert_eq!(
            resent[0].latest_state(),
            v1::TaskState::TaskFinished,
            "the head tells the newest state"
        );
        // The backoff doubled: next at 10 + 20.
        assert!(m.due(at(29)).is_empty());
        assert_eq!(m.due(at(30)).len(), 1);
        // Then 40, 80, ... capped at 10 minutes.
        let mut t = 30;
        let mut gaps = Vec::new();
        for _ in 0..8 {
            let before = t;
            loop {
                t += 1;
                if !m.due(at(t)).is_empty() {
                    break;
                }
            }
            gaps.push(t - before);
        }
        assert_eq!(gaps, vec![40, 80, 160, 320, 600, 600, 600, 600]);
        // An acknowledgement restarts the backoff for the next head.
        assert!(matches!(
            m.acknowledge("f", "t", &[1; 16], at(t)),
            Acked::Head { .. }
        ));
        assert!(m.due(at(t + 9)).is_empty());
        assert_eq!(m.due(at(t + 10)).len(), 1);
    }

    #[test]
    fn reconnecting_resends_every_head_and_restarts_backoff() {
        let mut m = StatusUpdateManager::default();
        let t0 = Instant::now();
        m.enqueue(update("f", "t", v1::TaskState::TaskRunning, 1), t0);
        m.enqueue(update("f", "t", v1::TaskState::TaskFinished, 2), t0);
        m.enqueue(update("f", "u", v1::TaskState::TaskRunning, 3), t0);
        for s in 1..=100 {
            m.due(t0 + Duration::from_secs(s * 10));
        }
        let later = t0 + Duration::from_secs(2000);
        let heads = m.heads(later);
        assert_eq!(heads.len(), 2);
        assert!(
            heads
                .iter()
                .all(|h| h.status.state() == v1::TaskState::TaskRunning)
        );
        assert_eq!(m.due(later + INITIAL_BACKOFF).len(), 2);
        m.forget_framework("f");
        assert_eq!(m.pending(), 0);
    }

    #[test]
    fn a_held_head_goes_out_once_on_release() {
        use v1::TaskState::*;
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        let running = update("f", "t", TaskRunning, 1);
        assert!(matches!(
            m.enqueue(running.clone(), now),
            Enqueued::SendNow(_)
        ));
        m.hold("f", "t");
        // Registering or retrying meanwhile does not send it...
        assert!(m.heads(now).is_empty());
        assert!(m.due(now + MAX_BACKOFF).is_empty());
        // ...the release does, once.
        let head = m.release("f", "t", now).map(|h| h.status);
        assert_eq!(head, Some(running.status));
        assert_eq!(m.release("f", "t", now), None);
        assert_eq!(m.heads(now).len(), 1);
    }

    #[test]
    fn the_log_replays_into_the_pending_updates() {
        use v1::TaskState::*;
        let starting = update("f", "t", TaskStarting, 1);
        let running = update("f", "t", TaskRunning, 2);
        let records = vec![
            update_record(&starting),
            update_record(&running),
            update_record(&running), // a duplicate written twice
            ack_record(&[1; 16]),
            ack_record(&[7; 16]),     // stray
            update_record(&starting), // acknowledged already
        ];
        let replayed = replay(&records);
        assert_eq!(replayed.pending, vec![running.clone()]);
        assert_eq!(
            replayed.latest.as_ref().map(|u| u.status.state()),
            Some(TaskRunning)
        );
        assert_eq!(replayed.acknowledged, vec![vec![1; 16]]);
        assert!(!replayed.terminated);

        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        m.restore("f", "t", replayed, now);
        let heads = m.heads(now);
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].status, running.status);
        assert_eq!(
            m.enqueue(running, now),
            Enqueued::Duplicate {
                acknowledged: false
            }
        );
        // The executor missed the acknowledgement of STARTING and resends
        // it after the restart: it is known, not queued behind RUNNING.
        assert_eq!(
            m.enqueue(starting, now),
            Enqueued::Duplicate { acknowledged: true }
        );
        assert_eq!(m.pending(), 1);

        let finished = update("f", "t", TaskFinished, 3);
        let done = replay(&[update_record(&finished), ack_record(&[3; 16])]);
        assert!(done.terminated && done.pending.is_empty());
    }
}
