//! Record framing of checkpoint files: each record is a 4-byte
//! little-endian length followed by that many bytes of protobuf.

use std::path::Path;

use prost::Message;

use super::CheckpointError;

/// One record, framed.
pub fn encode(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 4);
    // A record is a protobuf message of the agent's own making, far below
    // 4 GiB; saturate rather than wrap if that ever changes.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Every record of `bytes` (read from `path`, named in errors). A record
/// cut short at the end (the agent died while appending) is dropped with a
/// warning: it was never acknowledged to anyone. A record that does not
/// decode is corruption.
pub fn decode_all<M: Message + Default>(
    path: &Path,
    mut bytes: &[u8],
) -> Result<Vec<M>, CheckpointError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            warn_truncated(path, bytes.len());
            break;
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            warn_truncated(path, bytes.len());
            break;
        }
        let (body, rest) = rest.split_at(len);
        let message = M::decode(body).map_err(|e| {
            CheckpointError::corrupt(path, format!("record {} does not decode: {e}", out.len()))
        })?;
        out.push(message);
        bytes = rest;
    }
    Ok(out)
}

fn warn_truncated(path: &Path, len: usize) {
    tracing::warn!(
        path = %path.display(),
        "ignoring a truncated record of {len} bytes at the end of the checkpoint"
    );
}

/// The single record of an `.info` file.
pub fn decode_one<M: Message + Default>(path: &Path, bytes: &[u8]) -> Result<M, CheckpointError> {
    let mut records = decode_all::<M>(path, bytes)?;
    match records.len() {
        1 => records
            .pop()
            .ok_or_else(|| CheckpointError::corrupt(path, "empty")),
        0 => Err(CheckpointError::corrupt(path, "empty or truncated")),
        n => Err(CheckpointError::corrupt(
            path,
            format!("expected one record, found {n}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1;

    fn id(value: &str) -> v1::TaskId {
        v1::TaskId {
            value: value.into(),
        }
    }

    #[test]
    fn records_round_trip_and_a_cut_tail_is_dropped() {
        let path = Path::new("x/task.updates");
        let mut bytes = encode(&id("a"));
        bytes.extend(encode(&id("b")));
        let all: Vec<v1::TaskId> = decode_all(path, &bytes).unwrap();
        assert_eq!(all, vec![id("a"), id("b")]);
        for cut in 1..5 {
            let short = &bytes[..bytes.len() - cut];
            let some: Vec<v1::TaskId> = decode_all(path, short).unwrap();
            assert_eq!(some, vec![id("a")], "cut {cut}");
        }
        assert_eq!(
            decode_one::<v1::TaskId>(path, &encode(&id("a"))).unwrap(),
            id("a")
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let path = Path::new("meta/x/task.info");
        let garbage = [3u8, 0, 0, 0, 0xff, 0xff, 0xff];
        let err = decode_all::<v1::TaskInfo>(path, &garbage).unwrap_err();
        assert!(err.to_string().contains("meta/x/task.info"), "{err}");
        let err = decode_one::<v1::TaskInfo>(path, &[]).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
