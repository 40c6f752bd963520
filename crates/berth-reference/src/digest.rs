//! Content digests (OCI image spec, "Digests" section) restricted to an allow-list of algorithms.
//!
//! A digest ends up in file names (`blobs/sha256/<hex>`) and URLs (`/v2/<name>/blobs/<digest>`), so it is
//! validated completely at parse time: only sha256 and sha512, exactly 64 or 128 lowercase hex characters.
//! Anything else is rejected before it can reach a path or a request (CVE-2024-3727 was a registry-supplied
//! digest used unchecked). [`Hasher`] computes digests over streamed bytes so data is verified as it arrives.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::Error;

/// A digest algorithm berth accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings ("sha256").
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex characters a digest of this algorithm has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A validated digest: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The whole string, so `Display` and `as_str` borrow instead of allocating.
    full: String,
    algorithm: Algorithm,
}

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(input: &str) -> Result<Digest, Error> {
        let Some((algorithm_name, hex)) = input.split_once(':') else {
            return Err(Error::digest(input, "expected \"<algorithm>:<hex>\", found no ':'"));
        };
        let Some(algorithm) = Algorithm::from_name(algorithm_name) else {
            return Err(Error::digest(
                input,
                format!(
                    "unsupported digest algorithm {algorithm_name:?} (only sha256 and sha512 are accepted)"
                ),
            ));
        };
        if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(Error::digest(input, format!("digest contains invalid character {bad:?}")));
        }
        if hex.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(Error::digest(input, "digest hex must be lowercase"));
        }
        if hex.len() != algorithm.hex_len() {
            return Err(Error::digest(
                input,
                format!(
                    "a {algorithm} digest has {} hex characters, this one has {}",
                    algorithm.hex_len(),
                    hex.len()
                ),
            ));
        }
        Ok(Digest { full: input.to_owned(), algorithm })
    }

    /// Builds a digest from raw hash output; the caller guarantees the length matches the algorithm.
    fn from_hash_output(algorithm: Algorithm, output: &[u8]) -> Digest {
        Digest { full: format!("{}:{}", algorithm.name(), hex::encode(output)), algorithm }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part: only `[0-9a-f]`, of the algorithm's exact length, so it is safe as a file name or a URL
    /// segment.
    pub fn hex(&self) -> &str {
        &self.full[self.algorithm.name().len() + 1..]
    }

    /// The whole digest string, "sha256:…".
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_hash_output(Algorithm::Sha256, &sha2::Sha256::digest(bytes))
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// A fresh hasher of this digest's algorithm, to verify content against it.
    pub fn hasher(&self) -> Hasher {
        Hasher::new(self.algorithm)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(input: &str) -> Result<Digest, Error> {
        Digest::parse(input)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.full)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Digest({})", self.full)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone)]
enum HasherState {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// A streaming hasher that also counts the bytes it has seen (so callers can check sizes in the same pass).
#[derive(Clone)]
pub struct Hasher {
    state: HasherState,
    bytes: u64,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
        };
        Hasher { state, bytes: 0 }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            HasherState::Sha256(_) => Algorithm::Sha256,
            HasherState::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HasherState::Sha256(hasher) => hasher.update(data),
            HasherState::Sha512(hasher) => hasher.update(data),
        }
        self.bytes += data.len() as u64;
    }

    /// How many bytes have been hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn finish(self) -> Digest {
        match self.state {
            HasherState::Sha256(hasher) => Digest::from_hash_output(Algorithm::Sha256, &hasher.finalize()),
            HasherState::Sha512(hasher) => Digest::from_hash_output(Algorithm::Sha512, &hasher.finalize()),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Hasher")
            .field("algorithm", &self.algorithm())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.update(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC_SHA512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    #[test]
    fn parses_valid_sha256_and_sha512() {
        let digest = Digest::parse(EMPTY_SHA256).unwrap();
        assert_eq!(digest.algorithm(), Algorithm::Sha256);
        assert_eq!(digest.hex().len(), 64);
        assert_eq!(digest.to_string(), EMPTY_SHA256);
        let digest: Digest = ABC_SHA512.parse().unwrap();
        assert_eq!(digest.algorithm(), Algorithm::Sha512);
        assert_eq!(digest.hex().len(), 128);
    }

    fn reason(input: &str) -> String {
        match Digest::parse(input) {
            Err(Error::InvalidDigest { input: got, reason }) => {
                assert_eq!(got, input);
                reason
            }
            other => panic!("expected InvalidDigest for {input:?}, got {other:?}"),
        }
    }

    #[test]
    fn rejects_unsupported_algorithms() {
        assert!(
            reason("md5:d41d8cd98f00b204e9800998ecf8427e").contains("unsupported digest algorithm \"md5\"")
        );
        assert!(reason(&EMPTY_SHA256.replace("sha256", "SHA256")).contains("unsupported"));
        assert!(reason(&EMPTY_SHA256.replace("sha256", "sha256+b64")).contains("unsupported"));
    }

    #[test]
    fn rejects_wrong_lengths_and_characters() {
        assert!(
            reason(&EMPTY_SHA256[..EMPTY_SHA256.len() - 1]).contains("64 hex characters, this one has 63")
        );
        assert!(reason(&format!("{EMPTY_SHA256}0")).contains("this one has 65"));
        assert!(reason(&EMPTY_SHA256.replace('e', "E")).contains("lowercase"));
        assert!(reason("sha256:../../etc/passwd").contains("invalid character '.'"));
        assert!(reason("sha256:").contains("this one has 0"));
        assert!(reason("e3b0c44298fc").contains("no ':'"));
        assert!(reason(&EMPTY_SHA256.replacen('e', "/", 1)).contains("'/'"));
        assert!(reason(&ABC_SHA512[..71]).contains("128"));
    }

    #[test]
    fn computes_known_digests() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
        assert_eq!(Digest::of(Algorithm::Sha512, b"abc").as_str(), ABC_SHA512);
    }

    #[test]
    fn hasher_streams_and_counts_bytes() {
        let expected = Digest::sha256_of(b"hello world");
        let mut hasher = expected.hasher();
        hasher.update(b"hello");
        hasher.update(b" world");
        assert_eq!(hasher.bytes(), 11);
        let copy = hasher.clone();
        assert_eq!(hasher.finish(), expected);
        assert_eq!(copy.finish(), expected);
        let mut sha512 = Digest::parse(ABC_SHA512).unwrap().hasher();
        std::io::Write::write_all(&mut sha512, b"abc").unwrap();
        assert_eq!(sha512.algorithm(), Algorithm::Sha512);
        assert_eq!(sha512.finish().as_str(), ABC_SHA512);
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let digest = Digest::parse(EMPTY_SHA256).unwrap();
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, digest);
        let error = serde_json::from_str::<Digest>("\"sha1:abc\"").unwrap_err();
        assert!(error.to_string().contains("unsupported digest algorithm"));
    }

    #[test]
    fn debug_shows_the_digest() {
        let digest = Digest::parse(EMPTY_SHA256).unwrap();
        assert_eq!(format!("{digest:?}"), format!("Digest({EMPTY_SHA256})"));
    }
}
