//! Temporary stand-in for `berth_reference::{Digest, Hasher, Algorithm}` while that crate is written.

use sha2::Digest as _;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug)]
pub struct ParseError(String);
impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ParseError {}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, ParseError> {
        let (alg, hex) = s.split_once(':').ok_or_else(|| ParseError(s.into()))?;
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(ParseError(s.into())),
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ParseError(s.into()));
        }
        Ok(Digest(s.into()))
    }
    pub fn algorithm(&self) -> Algorithm {
        if self.0.starts_with("sha256:") { Algorithm::Sha256 } else { Algorithm::Sha512 }
    }
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(bytes);
        h.finish()
    }
    pub fn hasher(&self) -> Hasher {
        Hasher::new(self.algorithm())
    }
}
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone)]
pub struct Hasher {
    sha256: Option<sha2::Sha256>,
    sha512: Option<sha2::Sha512>,
    bytes: u64,
}
impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher { sha256: Some(sha2::Sha256::new()), sha512: None, bytes: 0 },
            Algorithm::Sha512 => Hasher { sha256: None, sha512: Some(sha2::Sha512::new()), bytes: 0 },
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        self.bytes += data.len() as u64;
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn finish(self) -> Digest {
        match (self.sha256, self.sha512) {
            (Some(h), _) => Digest(format!("sha256:{}", hex::encode(h.finalize()))),
            (_, Some(h)) => Digest(format!("sha512:{}", hex::encode(h.finalize()))),
            _ => Digest(String::new()),
        }
    }
}
impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}
