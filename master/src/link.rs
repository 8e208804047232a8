//! The master's end of the internal agent link (gRPC, one bidirectional
//! stream per agent). It only translates between the stream and master
//! commands; all decisions are made in the master loop.

use std::sync::atomic::{AtomicU64, Ordering};

use mesos_proto::internal::v1::agent_link_server::AgentLink;
use mesos_proto::internal::v1::{AgentToMaster, MasterToAgent, agent_to_master};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::master::{self, Command, Handle};

/// Messages queued towards one agent. Launches and acknowledgements are
/// small; an agent that cannot keep up this far behind is in trouble anyway.
const AGENT_QUEUE: usize = 8 * 1024;

#[derive(Debug)]
pub struct LinkService {
    handle: Handle,
    next_conn: AtomicU64,
}

impl LinkService {
    pub fn new(handle: Handle) -> Self {
        Self {
            handle,
            next_conn: AtomicU64::new(1),
        }
    }
}

#[tonic::async_trait]
impl AgentLink for LinkService {
    type AttachStream = ReceiverStream<Result<MasterToAgent, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<AgentToMaster>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = request.into_inner();
        let register = match inbound.message().await? {
            Some(AgentToMaster {
                message: Some(agent_to_master::Message::Register(register)),
            }) => register,
            _ => {
                return Err(Status::failed_precondition(
                    "the first message on the agent link must be RegisterAgent",
                ));
            }
        };
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(AGENT_QUEUE);
        let link = master::AgentLink { conn, tx };
        let agent_id = self
            .handle
            .request(|reply| Command::AgentConnected {
                register: Box::new(register),
                link,
                reply,
            })
            .await
            .map_err(|e| Status::unavailable(e.message))?
            // Forbidden is final (an agent marked gone); the agent stops.
            .map_err(|e| match e.status {
                http::StatusCode::FORBIDDEN => Status::permission_denied(e.message),
                _ => Status::invalid_argument(e.message),
            })?;

        let handle = self.handle.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(AgentToMaster {
                        message: Some(message),
                    })) => {
                        let command = Command::AgentMessage {
                            agent_id: agent_id.clone(),
                            conn,
                            message,
                        };
                        if handle.send(command).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(_)) => {} // empty message from a newer agent: nothing to do
                    Ok(None) => break,
                    Err(status) => {
                        tracing::info!(agent = %agent_id, %status, "agent link broke");
                        break;
                    }
                }
            }
            handle.notify(Command::AgentDisconnected { agent_id, conn });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
