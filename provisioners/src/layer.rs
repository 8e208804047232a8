//! Unpacking one layer blob from a bundle: decompress (gzip or none),
//! extract safely, and check both digests the format gives (the blob as
//! stored, and the uncompressed tar's `diff_id`) in the same pass.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::bundle::Bundle;
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::extract::{ExtractStats, Whiteouts, extract_layer};
use crate::image::LayerSource;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug)]
pub struct Unpacked {
    pub whiteouts: Whiteouts,
    pub stats: ExtractStats,
    /// Digest of the uncompressed tar, checked against the config's when
    /// it had one.
    pub diff_id: Digest,
    pub blob_bytes: u64,
}

/// Extracts `layer` into `root`, which must be an empty private directory
/// that the caller deletes on error.
pub fn unpack(bundle: &Bundle, layer: &LayerSource, root: &Path) -> Result<Unpacked> {
    let (blob, _) = bundle.open(&layer.member)?;
    let mut stored = HashingReader::new(blob);
    let (whiteouts, stats, diff_id) = {
        let mut buffered = BufReader::new(&mut stored);
        let head = buffered.fill_buf().at(&layer.member)?;
        let compressed = head.starts_with(&GZIP_MAGIC);
        if head.starts_with(&ZSTD_MAGIC) {
            return Err(Error::format(
                format!("layer {}", layer.member),
                "zstd-compressed layers are not supported (gzip or uncompressed only)",
            ));
        }
        let decoder: Box<dyn Read + '_> = if compressed {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut tar_stream = HashingReader::new(decoder);
        let (whiteouts, stats) = extract_layer(&mut tar_stream, root)?;
        let (diff_id, _) = tar_stream
            .finish()
            .map_err(|e| Error::format(format!("layer {}", layer.member), e))?;
        (whiteouts, stats, diff_id)
    };
    let (blob_digest, blob_bytes) = stored.finish().at(&layer.member)?;
    if let Some(expected) = &layer.blob_digest {
        expected.verify(&blob_digest, format!("layer blob {}", layer.member))?;
    }
    if let Some(expected) = &layer.diff_id {
        expected.verify(
            &diff_id,
            format!("diff_id of layer {} (its uncompressed tar)", layer.member),
        )?;
    }
    Ok(Unpacked {
        whiteouts,
        stats,
        diff_id,
        blob_bytes,
    })
}
