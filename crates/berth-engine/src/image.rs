//! Local images: the name → manifest digest records and what `berth images` shows.

use berth_reference::{Digest, Reference};
use berth_store::Store;
use serde::Deserialize;

use crate::{Engine, Error};

/// The largest manifest the store hands out (the registry caps them at the same size).
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;

/// One row of `berth images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub name: String,
    pub manifest_digest: Digest,
    pub config_digest: Option<Digest>,
    /// Compressed size of config and layers.
    pub size: u64,
}

#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: Rootfs,
}

#[derive(Deserialize)]
struct Rootfs {
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ManifestSizes {
    config: SizedDescriptor,
    #[serde(default)]
    layers: Vec<SizedDescriptor>,
}

#[derive(Deserialize)]
struct SizedDescriptor {
    digest: String,
    size: u64,
}

/// The uncompressed layer digests an image config lists, validated.
pub(crate) fn diff_ids(config: &[u8]) -> Result<Vec<Digest>, String> {
    let parsed: ConfigRootfs =
        serde_json::from_slice(config).map_err(|e| format!("the image config is not valid JSON: {e}"))?;
    parsed
        .rootfs
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| format!("bad diff_id in the image config: {e}")))
        .collect()
}

/// Records `reference` → `manifest`. A tag+digest name is recorded under both forms users may type.
pub(crate) fn record(store: &Store, reference: &Reference, manifest: &Digest) -> Result<(), Error> {
    store.set_ref(&reference.to_string(), manifest)?;
    Ok(())
}

impl Engine {
    /// Every named image in the store.
    pub fn images(&self) -> Result<Vec<ImageSummary>, Error> {
        let mut images = Vec::new();
        for (name, digest) in self.store.refs()? {
            let (config_digest, size) = match self.store.read_blob(&digest, MAX_MANIFEST) {
                Ok(bytes) => match serde_json::from_slice::<ManifestSizes>(&bytes) {
                    Ok(m) => (
                        Digest::parse(&m.config.digest).ok(),
                        m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
                    ),
                    Err(_) => (None, 0),
                },
                Err(_) => (None, 0),
            };
            images.push(ImageSummary { name, manifest_digest: digest, config_digest, size });
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_are_parsed_and_validated() {
        let good = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#, "a".repeat(64));
        assert_eq!(diff_ids(good.as_bytes()).unwrap().len(), 1);
        let bad = r#"{"rootfs":{"type":"layers","diff_ids":["sha256:xyz"]}}"#;
        assert!(diff_ids(bad.as_bytes()).unwrap_err().contains("bad diff_id"));
    }
}
