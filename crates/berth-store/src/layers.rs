//! Unpacked layers: staged under `tmp/`, made durable with one `syncfs`, then renamed to
//! `layers/<chain-id hex>/`.
//!
//! One `syncfs` of the staging filesystem replaces an `fsync` per file: a layer has thousands of files and
//! the rename must not become visible before their data is on disk.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{Digest, Error, Store, tree};

/// An empty directory under `tmp/` to unpack a layer into. Removed on drop unless committed. While it exists
/// its directory is `flock`ed, which is how `prune` and `open` tell it from one left by a crash.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    /// The open, locked directory (also what `syncfs` is called on).
    directory: File,
    committed: bool,
}

impl Staging {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed
            && let Err(error) = tree::remove_tree(&self.path)
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove layer staging directory");
        }
    }
}

impl Store {
    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.dir("layers").join(chain_id.hex())
    }

    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_path(chain_id).is_dir()
    }

    pub fn stage_layer(&self) -> Result<Staging, Error> {
        let path = self.dir("tmp").join(format!("layer-{}", crate::unique_suffix()));
        let _lock = self.lock()?;
        std::fs::create_dir(&path).map_err(Error::io("create directory", &path))?;
        let directory = File::open(&path).map_err(Error::io("open", &path))?;
        directory.lock().map_err(Error::io("lock", &path))?;
        Ok(Staging { path, directory, committed: false })
    }

    /// Makes the staged tree durable and renames it to [`Store::layer_path`]. If that layer is already present
    /// (another pull got there first), the staging dir is dropped and this is a success.
    pub fn commit_layer(&self, mut staging: Staging, chain_id: &Digest) -> Result<(), Error> {
        let target = self.layer_path(chain_id);
        if target.is_dir() {
            return Ok(());
        }
        rustix::fs::syncfs(&staging.directory).map_err(|errno| Error::Io {
            action: "syncfs",
            path: staging.path.clone(),
            source: errno.into(),
        })?;
        match std::fs::rename(&staging.path, &target) {
            Ok(()) => staging.committed = true,
            // A concurrent commit of the same layer won the race; ours is a duplicate.
            Err(error) if target.is_dir() => {
                tracing::debug!(path = %target.display(), %error, "layer already committed");
                return Ok(());
            }
            Err(source) => return Err(Error::Io { action: "rename into", path: target, source }),
        }
        let layers = self.dir("layers");
        File::open(&layers).and_then(|dir| dir.sync_all()).map_err(Error::io("sync", &layers))
    }
}
