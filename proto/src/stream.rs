//! Reading a streaming response (SUBSCRIBE) as RecordIO records of JSON
//! messages, as they arrive, from any HTTP body.

use bytes::{Buf, Bytes};
use http_body::Body;
use http_body_util::BodyExt;
use prost_reflect::ReflectMessage;

use crate::json::JsonError;
use crate::recordio::{Decoder, RecordIoError};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading the stream failed: {0}")]
    Body(String),
    #[error(transparent)]
    RecordIo(#[from] RecordIoError),
    #[error("bad record: {0}")]
    Json(#[from] JsonError),
}

pub struct RecordStream<B> {
    body: B,
    decoder: Decoder,
}

impl<B> RecordStream<B>
where
    B: Body + Unpin,
    B::Error: std::fmt::Display,
{
    pub fn new(body: B) -> Self {
        Self {
            body,
            decoder: Decoder::default(),
        }
    }

    /// The next record; `None` once the stream ended.
    pub async fn next_record(&mut self) -> Result<Option<Bytes>, StreamError> {
        loop {
            if let Some(record) = self.decoder.next_record()? {
                return Ok(Some(record));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        let chunk = data.copy_to_bytes(data.remaining());
                        self.decoder.push(&chunk);
                    }
                }
                Some(Err(e)) => return Err(StreamError::Body(e.to_string())),
                None => return Ok(None),
            }
        }
    }

    /// The next record, parsed as a JSON message.
    pub async fn next_json<M: ReflectMessage + Default>(
        &mut self,
    ) -> Result<Option<M>, StreamError> {
        match self.next_record().await? {
            Some(record) => Ok(Some(crate::json::from_json(&record)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::scheduler::{Event, event};
    use http_body_util::StreamBody;

    #[tokio::test]
    async fn reads_messages_split_across_chunks() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&crate::recordio::frame(br#"{"type":"HEARTBEAT"}"#));
        wire.extend_from_slice(&crate::recordio::frame(
            br#"{"type":"RESCIND","rescind":{"offer_id":{"value":"o"}}}"#,
        ));
        let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = wire
            .chunks(7)
            .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = StreamBody::new(futures::stream::iter(chunks));
        let mut stream = RecordStream::new(body);
        let first: Event = stream.next_json().await.unwrap().unwrap();
        assert_eq!(first.r#type(), event::Type::Heartbeat);
        let second: Event = stream.next_json().await.unwrap().unwrap();
        assert_eq!(second.rescind.unwrap().offer_id.value, "o");
        assert!(stream.next_json::<Event>().await.unwrap().is_none());
    }
}
