//! RS256 JSON Web Tokens as Distribution's token authentication expects them.
//!
//! Distribution (`registry/auth/token`) accepts a token whose JOSE header names the signing key either by
//! `x5c` (a certificate chain up to `rootcertbundle`) or by `kid` in libtrust's key id format; both are
//! sent, like Docker Hub's auth service does. RFC 7515 (JWS compact serialization) and RFC 7518 §3.3
//! (RS256 = RSASSA-PKCS1-v1_5 with SHA-256).

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};

use crate::Pki;

/// Signs tokens with the PKI's token key; the header carries the token certificate as `x5c`.
#[derive(Debug)]
pub(crate) struct Signer {
    key: rsa::PrivateKey,
    header: String,
}

impl Signer {
    pub(crate) fn load(pki: &Pki) -> anyhow::Result<Signer> {
        let pem = std::fs::read_to_string(&pki.token_key)
            .with_context(|| format!("reading {}", pki.token_key.display()))?;
        let key = rsa::PrivateKey::from_pkcs8_pem(&pem)
            .with_context(|| format!("parsing {}", pki.token_key.display()))?;
        let spki = key.to_public_key().to_public_key_der().context("encoding the token public key")?;
        let certificate = first_certificate(&pki.token_cert)?;
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "RS256",
            "kid": libtrust_key_id(spki.as_bytes()),
            "x5c": [STANDARD.encode(certificate)],
        });
        Ok(Signer { key, header: URL_SAFE_NO_PAD.encode(header.to_string()) })
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub(crate) fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        let signing_input = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature =
            self.key.pkcs1v15_sign::<Sha256>(signing_input.as_bytes()).context("RS256 signature")?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn first_certificate(path: &Path) -> anyhow::Result<Vec<u8>> {
    let certificates = Pki::certificates(path)?;
    let first =
        certificates.into_iter().next().with_context(|| format!("no certificate in {}", path.display()))?;
    Ok(first.to_vec())
}

/// libtrust's key id: the first 240 bits of sha256(DER SubjectPublicKeyInfo), base32 (RFC 4648 §6,
/// exactly 48 characters so no padding), in groups of four joined by ':'.
pub(crate) fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = base32(&digest[..30]);
    let groups: Vec<&str> =
        encoded.as_bytes().chunks(4).filter_map(|chunk| std::str::from_utf8(chunk).ok()).collect();
    groups.join(":")
}

/// RFC 4648 §6 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time, the `issued_at` format of the token response.
pub(crate) fn rfc3339_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    // Days since 1970-01-01 to a proleptic Gregorian civil date (the usual era-based conversion).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn key_id_has_twelve_groups_of_four() {
        let id = libtrust_key_id(b"anything");
        assert_eq!(id.len(), 48 + 11);
        assert!(id.split(':').all(|group| group.len() == 4));
    }

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
