//! Finding an image in the store for `run`: name → manifest → config → layer dirs, pulling first when
//! the policy says so.

use std::path::PathBuf;
use std::sync::Arc;

use berth_reference::{Digest, Platform, Reference};
use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use crate::image::MAX_MANIFEST;
use crate::{Engine, Error, PullObserver, PullOptions};

/// `--pull always|missing|never`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    #[default]
    Missing,
    Never,
}

/// An image ready to run: its config and its layer dirs, base layer first.
pub struct LocalImage {
    pub reference: Reference,
    pub manifest_digest: Digest,
    pub config: ImageConfiguration,
    pub layers: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct ManifestConfig {
    config: ConfigDescriptor,
}

#[derive(Deserialize)]
struct ConfigDescriptor {
    digest: String,
}

impl Engine {
    /// The image `name` from the store, pulled first per `policy`.
    pub async fn local_image(
        &self,
        name: &str,
        policy: PullPolicy,
        platform: Option<Platform>,
        observer: Arc<dyn PullObserver>,
    ) -> Result<LocalImage, Error> {
        let reference = Reference::parse(name)?;
        if policy == PullPolicy::Always {
            self.pull(name, &PullOptions { platform: platform.clone() }, observer.clone()).await?;
        }
        match self.load_local(&reference)? {
            Some(image) => Ok(image),
            None if policy == PullPolicy::Never => Err(Error::NotLocal { image: reference.to_string() }),
            None => {
                self.pull(name, &PullOptions { platform }, observer).await?;
                self.load_local(&reference)?.ok_or_else(|| Error::NotLocal { image: reference.to_string() })
            }
        }
    }

    /// `None` when the name is unknown or any of its layers is missing (an interrupted pull).
    fn load_local(&self, reference: &Reference) -> Result<Option<LocalImage>, Error> {
        let image = reference.to_string();
        let Some(manifest_digest) = self.store.get_ref(&image)? else { return Ok(None) };
        let corrupt = |reason: String| Error::Corrupt { image: image.clone(), reason };
        if !self.store.has_blob(&manifest_digest) {
            return Ok(None);
        }
        let manifest = self.store.read_blob(&manifest_digest, MAX_MANIFEST)?;
        let manifest: ManifestConfig = serde_json::from_slice(&manifest)
            .map_err(|e| corrupt(format!("manifest {manifest_digest}: {e}")))?;
        let config_digest = Digest::parse(&manifest.config.digest)?;
        let config_bytes = self.store.read_blob(&config_digest, 8 << 20)?;
        let diff_ids = crate::image::diff_ids(&config_bytes).map_err(corrupt)?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
            Error::Corrupt { image: image.clone(), reason: format!("config {config_digest}: {e}") }
        })?;
        let mut layers = Vec::with_capacity(diff_ids.len());
        for chain_id in berth_store::chain_ids(&diff_ids) {
            if !self.store.has_layer(&chain_id) {
                return Ok(None);
            }
            layers.push(self.store.layer_path(&chain_id));
        }
        Ok(Some(LocalImage { reference: reference.clone(), manifest_digest, config, layers }))
    }
}
