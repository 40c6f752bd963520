//! Garbage collection: everything not kept goes, along with leftovers of crashed writers.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use crate::{Digest, Error, Store, tree};

/// What [`Store::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs_removed: u64,
    pub layers_removed: u64,
    /// Abandoned partial downloads and staging directories.
    pub stale_removed: u64,
    pub bytes_freed: u64,
}

impl Store {
    /// Removes every blob not in `keep_blobs` and every layer dir not in `keep_layers` (by chain id), plus
    /// partial downloads and staging dirs no live writer holds. Runs under the store lock.
    pub fn prune(
        &self,
        keep_blobs: &HashSet<Digest>,
        keep_layers: &HashSet<Digest>,
    ) -> Result<PruneReport, Error> {
        let _lock = self.lock()?;
        let mut report = remove_stale(self, true)?;

        let blobs = self.dir("blobs");
        for algorithm_dir in read_dir(&blobs)? {
            let algorithm = algorithm_dir.file_name().to_string_lossy().into_owned();
            for blob in read_dir(&algorithm_dir.path())? {
                let name = blob.file_name().to_string_lossy().into_owned();
                let kept = Digest::parse(&format!("{algorithm}:{name}"))
                    .is_ok_and(|digest| keep_blobs.contains(&digest));
                if !kept {
                    report.bytes_freed += remove(&blob.path())?;
                    report.blobs_removed += 1;
                }
            }
        }

        let layers = self.dir("layers");
        for layer in read_dir(&layers)? {
            let name = layer.file_name().to_string_lossy().into_owned();
            let algorithm = if name.len() == 128 { "sha512" } else { "sha256" };
            let kept = Digest::parse(&format!("{algorithm}:{name}"))
                .is_ok_and(|digest| keep_layers.contains(&digest));
            if !kept {
                report.bytes_freed += remove(&layer.path())?;
                report.layers_removed += 1;
            }
        }
        Ok(report)
    }
}

/// Removes entries of `tmp/` (and, with `include_partials`, of `ingest/`) that no writer holds a lock on.
/// The caller holds the store lock, so no writer is between creating and locking its entry.
/// Without `include_partials` only `.put` temporaries are removed from `ingest/`: partial downloads stay
/// to be resumed.
pub(crate) fn remove_stale(store: &Store, include_partials: bool) -> Result<PruneReport, Error> {
    let mut report = PruneReport::default();
    for sub in ["tmp", "ingest"] {
        for entry in read_dir(&store.dir(sub))? {
            let path = entry.path();
            let is_partial = path.extension().is_some_and(|extension| extension == "partial");
            if sub == "ingest" && is_partial && !include_partials {
                continue;
            }
            if is_locked(&path) {
                continue;
            }
            report.bytes_freed += remove(&path)?;
            report.stale_removed += 1;
        }
    }
    Ok(report)
}

/// Whether a live writer holds `path` (file or directory). An entry that cannot be opened is not held.
fn is_locked(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

fn read_dir(path: &Path) -> Result<Vec<std::fs::DirEntry>, Error> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>().map_err(Error::io("read directory", path)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io { action: "read directory", path: path.to_path_buf(), source }),
    }
}

/// Removes `path` and returns the bytes it held.
fn remove(path: &Path) -> Result<u64, Error> {
    let bytes = tree::tree_size(path).unwrap_or(0);
    tree::remove_tree(path).map_err(Error::io("remove", path))?;
    Ok(bytes)
}
