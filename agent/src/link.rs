//! The agent's end of the internal link: dial the master's `AgentLink`,
//! register, relay messages both ways; when the link breaks or the master
//! goes silent, back off and dial again. What to say is decided by the
//! agent loop; this module only moves messages.

use std::time::Duration;

use mesos_proto::internal::v1::agent_link_client::AgentLinkClient;
use mesos_proto::internal::v1::{AgentToMaster, master_to_agent};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::agent::{Command, Handle};

/// Mesos caps the registration backoff at one minute.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A master silent for this many ping intervals is considered lost.
const MISSED_PINGS: u32 = 3;
/// Ping interval assumed until the master states its own.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Messages queued towards the master.
const OUTBOUND_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("invalid master address '{0}'")]
    Address(String),
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the master refused the link: {0}")]
    Refused(tonic::Status),
    #[error("the link broke: {0}")]
    Broken(tonic::Status),
    #[error("no message from the master for {0:?}")]
    Silent(Duration),
    #[error("the master closed the link")]
    Closed,
    #[error("the agent loop is gone")]
    AgentGone,
}

/// Keeps the agent connected to `master` (`host:port`) until the agent
/// loop goes away.
/// Returns when the agent loop went away, or with the master's reason when
/// it refuses this agent for good (an operator marked it gone).
pub async fn run(master: String, handle: Handle, backoff_factor: Duration) -> Option<String> {
    let master = with_default_port(&master);
    let mut failures: u32 = 0;
    loop {
        // Mesos delays even the first registration by a random fraction of
        // the factor, so that agents started together do not stampede.
        let delay = backoff(backoff_factor, failures, &mut rand::rng());
        tokio::time::sleep(delay).await;
        let mut registered = false;
        let result = session(&master, &handle, &mut registered).await;
        if handle.send(Command::LinkDown).await.is_err() {
            return None;
        }
        match result {
            Err(LinkError::AgentGone) => return None,
            Err(LinkError::Refused(status)) if status.code() == tonic::Code::PermissionDenied => {
                return Some(status.message().to_string());
            }
            Err(e) => tracing::warn!(%master, "{}", with_causes(&e)),
            Ok(()) => {}
        }
        failures = if registered {
            0
        } else {
            failures.saturating_add(1)
        };
    }
}

/// The error and its sources: tonic's own messages ("transport error")
/// say little without them.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// `host` alone means Mesos's default master port.
fn with_default_port(master: &str) -> String {
    if master.contains(':') {
        master.to_string()
    } else {
        format!("{master}:5050")
    }
}

/// A random delay in `[0, factor * 2^failures]`, at most a minute.
fn backoff(factor: Duration, failures: u32, rng: &mut impl Rng) -> Duration {
    let cap = factor
        .saturating_mul(1u32 << failures.min(20))
        .min(MAX_BACKOFF);
    if cap.is_zero() {
        return Duration::ZERO;
    }
    rng.random_range(Duration::ZERO..=cap)
}

async fn session(master: &str, handle: &Handle, registered: &mut bool) -> Result<(), LinkError> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{master}"))
        .map_err(|_| LinkError::Address(master.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let channel = endpoint.connect().await?;
    let mut client = AgentLinkClient::new(channel);

    // The agent loop holds the only sender and puts RegisterAgent first;
    // when it drops the sender (LinkDown), the outbound stream ends.
    let (tx, rx) = mpsc::channel::<AgentToMaster>(OUTBOUND_QUEUE);
    handle
        .send(Command::LinkUp { tx })
        .await
        .map_err(|_| LinkError::AgentGone)?;
    let mut inbound = client
        .attach(ReceiverStream::new(rx))
        .await
        .map_err(LinkError::Refused)?
        .into_inner();

    let mut ping_interval = DEFAULT_PING_INTERVAL;
    loop {
        let silence = ping_interval * MISSED_PINGS;
        let message = tokio::time::timeout(silence, inbound.message())
            .await
            .map_err(|_| LinkError::Silent(silence))?
            .map_err(LinkError::Broken)?
            .ok_or(LinkError::Closed)?;
        let Some(message) = message.message else {
            continue; // a message kind newer than this agent
        };
        if let master_to_agent::Message::Registered(r) = &message {
            *registered = true;
            if let Some(secs) = r
                .ping_interval_seconds
                .filter(|s| s.is_finite() && *s > 0.0)
            {
                ping_interval = Duration::from_secs_f64(secs);
            }
        }
        handle
            .send(Command::FromMaster(Box::new(message)))
            .await
            .map_err(|_| LinkError::AgentGone)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_caps_at_a_minute() {
        let mut rng = rand::rng();
        let factor = Duration::from_secs(1);
        for failures in 0..10 {
            let cap = Duration::from_secs(1 << failures).min(MAX_BACKOFF);
            for _ in 0..200 {
                let d = backoff(factor, failures, &mut rng);
                assert!(d <= cap, "{d:?} > {cap:?} after {failures} failures");
            }
        }
        assert!(backoff(factor, u32::MAX, &mut rng) <= MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3, &mut rng), Duration::ZERO);
        // Spread out, not always the cap.
        let samples: Vec<Duration> = (0..50).map(|_| backoff(factor, 3, &mut rng)).collect();
        assert!(samples.iter().any(|d| *d < Duration::from_secs(4)));
    }

    #[test]
    fn master_port_defaults_to_5050() {
        assert_eq!(with_default_port("m.example"), "m.example:5050");
        assert_eq!(with_default_port("10.0.0.1:6050"), "10.0.0.1:6050");
    }
}
