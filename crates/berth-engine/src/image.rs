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

/// What `berth image prune` removed.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    pub blobs: u64,
    pub layers: u64,
    pub bytes: u64,
}

#[derive(Deserialize)]
struct IndexManifests {
    #[serde(default)]
    manifests: Vec<SizedDescriptor>,
}

impl Engine {
    /// Removes a name. The blobs stay until `image prune`, as other names or containers may use them.
    pub fn remove_image(&self, name: &str) -> Result<Reference, Error> {
        let reference = Reference::parse(name)?;
        let _lock = self.store.lock()?;
        if !self.store.remove_ref(&reference.to_string())? {
            return Err(Error::NotLocal { image: reference.to_string() });
        }
        Ok(reference)
    }

    /// Gives a stored image another name.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference, Error> {
        let source = Reference::parse(source)?;
        let target = Reference::parse(target)?;
        let digest =
            self.store.get_ref(&source.to_string())?.ok_or(Error::NotLocal { image: source.to_string() })?;
        self.store.set_ref(&target.to_string(), &digest)?;
        Ok(target)
    }

    /// Removes every blob and layer dir that no named image and no container uses.
    pub fn prune_images(&self) -> Result<Pruned, Error> {
        let _lock = self.store.lock()?;
        let mut roots: Vec<Digest> = self.store.refs()?.into_iter().map(|(_, d)| d).collect();
        for container in self.containers()? {
            if let Ok(d) = Digest::parse(&container.manifest_digest) {
                roots.push(d);
            }
        }
        let mut keep_blobs = std::collections::HashSet::new();
        let mut keep_layers = std::collections::HashSet::new();
        for manifest_digest in roots {
            self.mark(&manifest_digest, &mut keep_blobs, &mut keep_layers);
        }
        let report = self.store.prune(&keep_blobs, &keep_layers)?;
        Ok(Pruned { blobs: report.blobs_removed, layers: report.layers_removed, bytes: report.bytes_freed })
    }

    /// Marks a manifest, its config, its layer blobs and its unpacked layers as in use.
    fn mark(
        &self,
        manifest_digest: &Digest,
        keep_blobs: &mut std::collections::HashSet<Digest>,
        keep_layers: &mut std::collections::HashSet<Digest>,
    ) {
        keep_blobs.insert(manifest_digest.clone());
        let Ok(bytes) = self.store.read_blob(manifest_digest, MAX_MANIFEST) else { return };
        if let Ok(manifest) = serde_json::from_slice::<ManifestSizes>(&bytes) {
            let config = Digest::parse(&manifest.config.digest).ok();
            for layer in &manifest.layers {
                if let Ok(d) = Digest::parse(&layer.digest) {
                    keep_blobs.insert(d);
                }
            }
            if let Some(config) = config {
                if let Ok(config_bytes) = self.store.read_blob(&config, 8 << 20)
                    && let Ok(diff_ids) = diff_ids(&config_bytes)
                {
                    keep_layers.extend(berth_store::chain_ids(&diff_ids));
                }
                keep_blobs.insert(config);
            }
        } else if let Ok(index) = serde_json::from_slice::<IndexManifests>(&bytes) {
            for child in index.manifests {
                if let Ok(d) = Digest::parse(&child.digest) {
                    keep_blobs.insert(d);
                }
            }
        }
    }

    /// The stored manifest and config of an image, for `inspect`.
    pub fn inspect_image(&self, name: &str) -> Result<serde_json::Value, Error> {
        let reference = Reference::parse(name)?;
        let digest = self
            .store
            .get_ref(&reference.to_string())?
            .ok_or(Error::NotLocal { image: reference.to_string() })?;
        let manifest_bytes = self.store.read_blob(&digest, MAX_MANIFEST)?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| Error::Corrupt { image: reference.to_string(), reason: e.to_string() })?;
        let config = manifest["config"]["digest"]
            .as_str()
            .and_then(|d| Digest::parse(d).ok())
            .and_then(|d| self.store.read_blob(&d, 8 << 20).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or_default();
        Ok(serde_json::json!({
            "Name": reference.to_string(),
            "Digest": digest.to_string(),
            "Manifest": manifest,
            "Config": config,
        }))
    }
}
