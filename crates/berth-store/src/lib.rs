//! berth's content-addressed store on local disk.
//!
//! Layout under the root (each piece is committed by `rename`, so a crash leaves either the old or the new
//! state, plus leftovers under `ingest/` and `tmp/` that [`Store::prune`] and [`Store::open`] clean up):
//!
//! ```text
//! blobs/<algorithm>/<hex>      manifests, configs, compressed layers: verified before they are renamed here
//! ingest/<hex>.partial         a blob being downloaded; resumable after a crash
//! layers/<chain-id hex>/       an unpacked layer, usable as an overlayfs lower dir
//! tmp/layer-*/                 a layer being unpacked
//! refs.json                    normalized image name -> manifest digest
//! lock                         the store lock (flock)
//! ```
//!
//! Entries being written are `flock`ed by their writer; anything under `ingest/` or `tmp/` that nobody holds a
//! lock on is stale. New entries are created under the store lock, which `prune` also holds, so a cleanup never
//! races with the creation of an entry. The store never talks to a registry and knows nothing of tar.

mod blobs;
mod error;
mod layers;
mod lock;
mod prune;
mod refs;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use berth_reference::{Algorithm, Digest, Hasher};
pub use blobs::Ingest;
pub use error::Error;
pub use layers::Staging;
pub use lock::StoreLock;
pub use prune::PruneReport;

/// A store rooted at one directory. Cheap to share between threads (`&Store` is enough).
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    lock_state: Arc<lock::LockState>,
}

impl std::fmt::Debug for lock::LockState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LockState")
    }
}

const SUBDIRS: [&str; 4] = ["blobs", "ingest", "layers", "tmp"];

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes staging dirs left by a crashed process when
    /// the store lock is free right now (a busy store is cleaned by the next `prune` instead).
    pub fn open(root: &Path) -> Result<Store, Error> {
        for sub in SUBDIRS {
            let path = root.join(sub);
            std::fs::create_dir_all(&path).map_err(Error::io("create directory", &path))?;
        }
        let store = Store { root: root.to_path_buf(), lock_state: Arc::default() };
        if let Some(_lock) = lock::acquire(&store.lock_state, store.lock_path(), false)? {
            prune::remove_stale(&store, false)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the exclusive store lock, waiting for other holders; released when the guard drops. Re-entrant
    /// on the same thread through the same `Store`.
    pub fn lock(&self) -> Result<StoreLock, Error> {
        let lock = lock::acquire(&self.lock_state, self.lock_path(), true)?;
        // With `wait = true`, `acquire` either returns the guard or an error.
        lock.ok_or_else(|| Error::Io {
            action: "lock",
            path: self.lock_path(),
            source: std::io::Error::other("lock not acquired"),
        })
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub(crate) fn dir(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }
}

/// The name of a digest's algorithm as used in digest strings and in `blobs/<algorithm>/`.
pub(crate) fn algorithm_name(digest: &Digest) -> &'static str {
    match digest.algorithm() {
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

/// ChainIDs of a layer stack (OCI image spec, config.md "Layer ChainID"):
/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = SHA256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// Unique names for temporary entries: pid + a process-wide counter.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_match_a_hand_computed_value() {
        // printf a | sha256sum; printf b | sha256sum; then sha256 of "sha256:<a> sha256:<b>" by sha256sum.
        let first =
            Digest::parse("sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb").unwrap();
        let second =
            Digest::parse("sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d").unwrap();
        let chain = chain_ids(&[first.clone(), second.clone(), first.clone()]);
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0], first);
        assert_eq!(
            chain[1].to_string(),
            "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676"
        );
        assert_eq!(chain[2], Digest::sha256_of(format!("{} {first}", chain[1]).as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}

#[cfg(test)]
mod store_tests;
