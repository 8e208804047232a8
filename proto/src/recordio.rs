//! RecordIO, the framing of Mesos's streaming responses:
//! `<decimal length>\n<bytes>` repeated, no trailing newline.

use bytes::{Buf, Bytes, BytesMut};

/// Frames one record.
pub fn frame(record: &[u8]) -> Bytes {
    let header = format!("{}\n", record.len());
    let mut out = BytesMut::with_capacity(header.len() + record.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(record);
    out.freeze()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    #[error("invalid record length {0:?}")]
    BadLength(String),
    #[error("record of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
}

/// Incremental decoder: feed it bytes as they arrive, take records out.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max_record: usize,
}

/// Digits in the longest accepted length header.
const MAX_HEADER_DIGITS: usize = 20;

impl Default for Decoder {
    fn default() -> Self {
        Self::new(64 * 1024 * 1024)
    }
}

impl Decoder {
    pub fn new(max_record: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_record,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let Some(newline) = self.buffer.iter().position(|b| *b == b'\n') else {
            if self.buffer.len() > MAX_HEADER_DIGITS || !self.buffer.iter().all(u8::is_ascii_digit)
            {
                return Err(RecordIoError::BadLength(
                    String::from_utf8_lossy(&self.buffer[..self.buffer.len().min(32)]).into_owned(),
                ));
            }
            return Ok(None);
        };
        let header = &self.buffer[..newline];
        let text = String::from_utf8_lossy(header).into_owned();
        if header.is_empty()
            || header.len() > MAX_HEADER_DIGITS
            || !header.iter().all(u8::is_ascii_digit)
        {
            return Err(RecordIoError::BadLength(text));
        }
        let size: usize = text
            .parse()
            .map_err(|_| RecordIoError::BadLength(text.clone()))?;
        if size == 0 {
            return Err(RecordIoError::BadLength(text));
        }
        if size > self.max_record {
            return Err(RecordIoError::TooLarge {
                size,
                max: self.max_record,
            });
        }
        if self.buffer.len() < newline + 1 + size {
            return Ok(None);
        }
        self.buffer.advance(newline + 1);
        Ok(Some(self.buffer.split_to(size).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_like_mesos() {
        assert_eq!(
            &frame(br#"{"type":"HEARTBEAT"}"#)[..],
            b"20\n{\"type\":\"HEARTBEAT\"}"
        );
    }

    #[test]
    fn decodes_across_arbitrary_splits() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&frame(b"hello"));
        stream.extend_from_slice(&frame(b"a longer second record"));
        for split in 0..stream.len() {
            let mut d = Decoder::default();
            let mut out = Vec::new();
            d.push(&stream[..split]);
            while let Some(r) = d.next_record().unwrap() {
                out.push(r);
            }
            d.push(&stream[split..]);
            while let Some(r) = d.next_record().unwrap() {
                out.push(r);
            }
            assert_eq!(
                out,
                vec![Bytes::from("hello"), Bytes::from("a longer second record")]
            );
        }
    }

    #[test]
    fn rejects_garbage_zero_and_oversized() {
        let mut d = Decoder::default();
        d.push(b"x1\nabc");
        assert!(d.next_record().is_err());
        let mut d = Decoder::default();
        d.push(b"0\n");
        assert!(d.next_record().is_err());
        let mut d = Decoder::new(4);
        d.push(b"5\nabcde");
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::TooLarge { size: 5, max: 4 })
        );
        // A header that can no longer become a length fails before its
        // newline arrives.
        let mut d = Decoder::default();
        d.push(b"12a");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::default();
        d.push(&[b'9'; MAX_HEADER_DIGITS + 1]);
        assert!(d.next_record().is_err());
        let mut d = Decoder::default();
        d.push(b" 5\nhello");
        assert!(d.next_record().is_err());
    }

    #[test]
    fn yields_every_record_of_one_chunk_byte_exact() {
        let mut d = Decoder::default();
        let binary = [0u8, 10, 255, b'\n'];
        let mut chunk = frame(&binary).to_vec();
        chunk.extend_from_slice(&frame(b"{}"));
        d.push(&chunk);
        assert_eq!(
            d.next_record().unwrap(),
            Some(Bytes::copy_from_slice(&binary))
        );
        assert_eq!(d.next_record().unwrap(), Some(Bytes::from_static(b"{}")));
        assert_eq!(d.next_record().unwrap(), None);
    }
}
