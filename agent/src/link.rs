//! The agent's end of the internal link: dial the master, register, relay
//! messages both ways; on any failure back off and dial again.

use std::time::Duration;

use mesos_proto::internal::v1::agent_link_client::AgentLinkClient;
use mesos_proto::internal::v1::{AgentToMaster, agent_to_master, master_to_agent};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::agent::{Command, Handle};

/// Mesos caps the registration backoff at one minute.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A master silent for this many ping intervals is considered lost.
const MISSED_PINGS: u32 = 3;

/// Runs forever, keeping the agent connected to `master` (`host:port`).
pub async fn run(master: String, handle: Handle, backoff_factor: Duration) {
    let mut attempt: u32 = 0;
    loop {
        match session(&master, &handle).await {
            Ok(()) => {
                tracing::warn!(%master, "link to the master closed");
                attempt = 0;
            }
            Err(e) => tracing::warn!(%master, "link to the master failed: {e}"),
        }
        handle.notify(Command::LinkDown);
        // Random in [0, factor * 2^n], as Mesos spreads re-registrations.
        let cap = backoff_factor
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF);
        let delay = if cap.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=cap)
        };
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay.max(Duration::from_millis(50))).await;
    }
}

async fn session(master: &str, handle: &Handle) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{master}"))
        .map_err(|e| format!("bad master address '{master}': {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let mut client = AgentLinkClient::new(channel);

    let (tx, rx) = mpsc::channel::<AgentToMaster>(4096);
    let register = handle
        .request(|reply| Command::LinkUp { tx: tx.clone(), reply })
        .await
        .map_err(|e| e.message)?;
    tx.send(AgentToMaster {
        message: Some(agent_to_master::Message::Register(register)),
    })
    .await
    .map_err(|_| "link closed before registering".to_string())?;
    // The actor holds the other sender; this one would keep the stream open
    // after the actor dropped its link.
    drop(tx);

    let mut inbound = client
        .attach(ReceiverStream::new(rx))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let mut ping_interval = Duration::from_secs(15);
    loop {
        let message = tokio::time::timeout(ping_interval * MISSED_PINGS, inbound.message())
            .await
            .map_err(|_| format!("no message from the master for {:?}", ping_interval * MISSED_PINGS))?
            .map_err(|s| s.message().to_string())?;
        let Some(message) = message else {
            return Ok(());
        };
        let Some(message) = message.message else {
            continue;
        };
        if let master_to_agent::Message::Registered(r) = &message
            && let Some(secs) = r.ping_interval_seconds.filter(|s| s.is_finite() && *s > 0.0)
        {
            ping_interval = Duration::from_secs_f64(secs);
        }
        handle
            .send(Command::FromMaster(Box::new(message)))
            .await
            .map_err(|e| e.message)?;
    }
}
