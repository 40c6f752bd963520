//! Image refs: `refs.json`, a map from normalized image name to manifest digest.
//!
//! Readers see either the old or the new file (tmp + rename); writers serialize on the store lock so no update
//! is lost between the read and the rename.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use crate::{Digest, Error, Store};

impl Store {
    fn refs_path(&self) -> PathBuf {
        self.root().join("refs.json")
    }

    fn read_refs(&self) -> Result<BTreeMap<String, Digest>, Error> {
        let path = self.refs_path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(Error::Io { action: "read", path, source }),
        };
        let raw: BTreeMap<String, String> = serde_json::from_slice(&text)
            .map_err(|error| Error::InvalidRefs { path: path.clone(), reason: error.to_string() })?;
        raw.into_iter()
            .map(|(name, digest)| match Digest::parse(&digest) {
                Ok(digest) => Ok((name, digest)),
                Err(error) => {
                    Err(Error::InvalidRefs { path: path.clone(), reason: format!("{name}: {error}") })
                }
            })
            .collect()
    }

    fn write_refs(&self, refs: &BTreeMap<String, Digest>) -> Result<(), Error> {
        let path = self.refs_path();
        let temp_path = self.root().join("refs.json.tmp");
        let raw: BTreeMap<&str, String> =
            refs.iter().map(|(name, digest)| (name.as_str(), digest.to_string())).collect();
        let mut text = serde_json::to_vec_pretty(&raw)
            .map_err(|error| Error::InvalidRefs { path: path.clone(), reason: error.to_string() })?;
        text.push(b'\n');
        let mut file = File::create(&temp_path).map_err(Error::io("create", &temp_path))?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(Error::io("write", &temp_path))?;
        std::fs::rename(&temp_path, &path).map_err(Error::io("rename into", &path))?;
        // The rename is durable only once the directory entry is.
        File::open(self.root()).and_then(|dir| dir.sync_all()).map_err(Error::io("sync", self.root()))
    }

    /// Points `name` (a normalized reference string) at manifest `digest`.
    pub fn set_ref(&self, name: &str, digest: &Digest) -> Result<(), Error> {
        let _lock = self.lock()?;
        let mut refs = self.read_refs()?;
        if refs.get(name) == Some(digest) {
            return Ok(());
        }
        refs.insert(name.to_owned(), digest.clone());
        self.write_refs(&refs)
    }

    pub fn get_ref(&self, name: &str) -> Result<Option<Digest>, Error> {
        Ok(self.read_refs()?.remove(name))
    }

    /// All refs, sorted by name.
    pub fn refs(&self) -> Result<Vec<(String, Digest)>, Error> {
        Ok(self.read_refs()?.into_iter().collect())
    }

    /// Removes `name`; `true` if it existed.
    pub fn remove_ref(&self, name: &str) -> Result<bool, Error> {
        let _lock = self.lock()?;
        let mut refs = self.read_refs()?;
        if refs.remove(name).is_none() {
            return Ok(false);
        }
        self.write_refs(&refs)?;
        Ok(true)
    }
}
