//! Bounding native calls in time. Native code cannot be stopped, so a
//! plugin's calls run on a thread of its own and the caller waits for
//! each at most its timeout. A call that overruns is abandoned (its thread
//! stays blocked) and the plugin is marked wedged: later calls fail at
//! once instead of queueing behind it.
//!
//! The hand-off between the caller and the plugin's thread is the cost of
//! this safety. Waking a sleeping thread takes tens of microseconds on a
//! VM (an interrupt to an idle virtual CPU), more than the call itself, so
//! both sides poll for a short while before they sleep: the plugin's
//! thread for the next call, the caller for the answer. Calls made in a
//! row (`usage` of every container when statistics are asked for) then
//! cost a few cache misses each; a call after a quiet spell still pays
//! one wake-up, but only one: the caller, seeing the plugin's thread
//! asleep, polls long enough for it to wake, run and answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::envelope::{Envelope, ErrorCode, PluginError, Response};

type Job = Box<dyn FnOnce() + Send>;

/// How long each side polls before it sleeps: a few calls' worth, short
/// enough that an idle plugin costs nothing measurable.
const SPIN: Duration = Duration::from_micros(20);

/// How long the caller polls for the answer when it had to wake the
/// plugin's thread: the wake-up itself takes tens of microseconds on a
/// VM, and sleeping meanwhile would add a second one on the way back.
const COLD_SPIN: Duration = Duration::from_micros(150);

/// Runs a plugin's calls on its own thread, each for at most `timeout`.
pub struct Watchdog {
    timeout: Duration,
    inner: Arc<dyn Envelope>,
    /// Held for the length of a call, so the timeout measures the
    /// plugin's own time, not a wait behind another caller.
    jobs: Mutex<mpsc::Sender<Job>>,
    wedged: AtomicBool,
    /// Set while the plugin's thread sleeps waiting for a call.
    asleep: Arc<AtomicBool>,
    /// [`SPIN`], or zero on a single CPU, where polling would only delay
    /// the thread it waits for.
    spin: Duration,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("timeout", &self.timeout)
            .field("wedged", &self.wedged)
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    pub fn new(plugin: &str, timeout: Duration, inner: Arc<dyn Envelope>) -> std::io::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let spin = if cpus > 1 { SPIN } else { Duration::ZERO };
        let (jobs, queue) = mpsc::channel::<Job>();
        let asleep = Arc::new(AtomicBool::new(false));
        let thread_asleep = Arc::clone(&asleep);
        std::thread::Builder::new()
            .name(format!("plugin:{plugin}"))
            .spawn(move || serve(&queue, spin, &thread_asleep))?;
        Ok(Self {
            timeout,
            inner,
            jobs: Mutex::new(jobs),
            wedged: AtomicBool::new(false),
            asleep,
            spin,
        })
    }

    pub fn is_wedged(&self) -> bool {
        self.wedged.load(Ordering::Relaxed)
    }

    /// Runs `f` on the plugin's thread; `what` names it in errors.
    pub fn run<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
    ) -> Result<T, PluginError> {
        let wedged = || {
            PluginError::new(
                ErrorCode::Unavailable,
                "wedged: an earlier call never returned; restart the agent to reload it",
            )
        };
        if self.is_wedged() {
            return Err(wedged());
        }
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_wedged() {
            return Err(wedged());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            // The caller may have given up; nobody to tell then.
            let _ = reply.send(f());
        });
        let started = Instant::now();
        let cold = self.asleep.load(Ordering::Acquire);
        if jobs.send(job).is_err() {
            return Err(PluginError::internal("the plugin's thread is gone"));
        }
        let window = match (self.spin.is_zero(), cold) {
            (true, _) => Duration::ZERO,
            (false, true) => COLD_SPIN,
            (false, false) => self.spin,
        };
        let polled = poll(window.min(self.timeout), || match answer.try_recv() {
            Err(TryRecvError::Empty) => None,
            Ok(result) => Some(Ok(result)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
        });
        let received = polled
            .unwrap_or_else(|| answer.recv_timeout(self.timeout.saturating_sub(started.elapsed())));
        match received {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                self.wedged.store(true, Ordering::Relaxed);
                Err(PluginError::new(
                    ErrorCode::Timeout,
                    format!(
                        "{what} did not return within {} ms; the plugin is wedged",
                        self.timeout.as_millis()
                    ),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err(PluginError::internal(format!(
                "{what} ended without an answer"
            ))),
        }
    }
}

impl Envelope for Watchdog {
    fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
        let inner = Arc::clone(&self.inner);
        // Owned copies: an abandoned call may outlive the caller's borrow.
        let (name, request) = (method.to_string(), request.to_vec());
        self.run(method, move || inner.call(&name, &request))
    }
}

/// The plugin's thread: runs jobs until the watchdog is dropped.
fn serve(queue: &Receiver<Job>, spin: Duration, asleep: &AtomicBool) {
    loop {
        let polled = poll(spin, || match queue.try_recv() {
            Err(TryRecvError::Empty) => None,
            other => Some(other.ok()),
        });
        let job = polled.unwrap_or_else(|| {
            asleep.store(true, Ordering::Release);
            let job = queue.recv().ok();
            asleep.store(false, Ordering::Release);
            job
        });
        let Some(job) = job else {
            return;
        };
        job();
    }
}

/// Tries `once` until it answers or `window` has passed.
fn poll<T>(window: Duration, mut once: impl FnMut() -> Option<T>) -> Option<T> {
    if window.is_zero() {
        return None;
    }
    let start = Instant::now();
    loop {
        // The clock is read once per round: it costs more than a try.
        for _ in 0..32 {
            if let Some(answer) = once() {
                return Some(answer);
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= window {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Answers after `delay`, echoing the request.
    struct Slow(Duration);

    impl Envelope for Slow {
        fn call(&self, method: &str, request: &[u8]) -> Result<Response, PluginError> {
            std::thread::sleep(self.0);
            if method == "fail" {
                return Err(PluginError::invalid("as asked"));
            }
            Ok(Response::from(request.to_vec()))
        }
    }

    fn watchdog(delay: Duration, timeout: Duration) -> Watchdog {
        Watchdog::new("test", timeout, Arc::new(Slow(delay))).expect("thread")
    }

    #[test]
    fn answers_and_errors_pass_through_in_a_row_and_after_a_pause() {
        let dog = watchdog(Duration::ZERO, Duration::from_secs(5));
        for i in 0..1000u32 {
            let bytes = i.to_le_bytes();
            assert_eq!(&*dog.call("echo", &bytes).expect("answer"), &bytes);
        }
        // Longer than both sides poll: the plugin's thread sleeps (the
        // caller then polls longer), and must still be woken by the next
        // call.
        std::thread::sleep(SPIN * 50);
        assert!(dog.asleep.load(Ordering::Acquire));
        assert_eq!(&*dog.call("echo", b"again").expect("answer"), b"again");
        assert!(!dog.asleep.load(Ordering::Acquire), "awake after a call");
        let error = dog.call("fail", b"").expect_err("an error");
        assert_eq!(error.code, ErrorCode::Invalid);
        assert!(!dog.is_wedged());
    }

    #[test]
    fn a_call_that_overruns_wedges_the_plugin_and_later_calls_fail_at_once() {
        let dog = watchdog(Duration::from_secs(3), Duration::from_millis(50));
        let started = Instant::now();
        let error = dog.call("echo", b"x").expect_err("a timeout");
        assert_eq!(error.code, ErrorCode::Timeout);
        assert!(error.message.contains("within 50 ms"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(dog.is_wedged());

        let started = Instant::now();
        let error = dog.call("echo", b"y").expect_err("refused");
        assert_eq!(error.code, ErrorCode::Unavailable);
        assert!(started.elapsed() < Duration::from_millis(10));
    }

    #[test]
    fn polling_gives_up_after_its_window() {
        let started = Instant::now();
        assert_eq!(poll(Duration::from_millis(2), || None::<()>), None);
        assert!(started.elapsed() >= Duration::from_millis(2));
        assert_eq!(poll(Duration::ZERO, || Some(1)), None);
        let mut tries = 0;
        assert_eq!(
            poll(Duration::from_secs(1), || {
                tries += 1;
                (tries == 3).then_some(tries)
            }),
            Some(3)
        );
    }
}
