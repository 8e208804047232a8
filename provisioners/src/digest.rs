//! Content digests (`sha256:<64 hex>`) and a reader that hashes what flows
//! through it, so a blob is verified in the same pass that extracts it.

use std::fmt;
use std::io::Read;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A sha256 content digest. Other algorithms are refused: every format read
/// here (docker save, OCI) uses sha256, and accepting a digest we cannot
/// check would silently skip verification.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(text: &str) -> Result<Digest> {
        let bad = |reason: &str| Error::format(format!("digest '{text}'"), reason);
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| bad("expected <algorithm>:<hex>"))?;
        if algorithm != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        Digest::from_hex(hex).ok_or_else(|| bad("expected 64 lowercase hex digits"))
    }

    /// From the bare hex form used in file names (`blobs/sha256/<hex>`).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let valid = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Digest {
            hex: hex.to_string(),
        })
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: format!("{:x}", Sha256::digest(bytes)),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Fails with a message naming `what` when `actual` differs.
    pub fn verify(&self, actual: &Digest, what: impl Into<String>) -> Result<()> {
        if self == actual {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                what: what.into(),
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reads whatever the consumer left unread (tar readers stop at the end
    /// marker, gzip trailers may follow), then returns the digest and size
    /// of the whole stream.
    pub fn finish(mut self) -> std::io::Result<(Digest, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        let digest = Digest {
            hex: format!("{:x}", self.hasher.finalize()),
        };
        Ok((digest, self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_and_prints_sha256() {
        let text = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Digest::parse(&text).unwrap().to_string(), text);
    }

    #[test]
    fn refuses_other_algorithms_and_bad_hex() {
        assert!(Digest::parse(&format!("sha512:{}", "ab".repeat(64))).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "AB".repeat(32))).is_err());
        assert!(Digest::parse("nocolon").is_err());
    }

    #[test]
    fn hashing_reader_matches_one_shot_digest() {
        let data = b"hello layer".repeat(1000);
        let mut reader = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        let (digest, bytes) = reader.finish().unwrap();
        assert_eq!(digest, Digest::of(&data));
        assert_eq!(bytes, data.len() as u64);
    }
}
