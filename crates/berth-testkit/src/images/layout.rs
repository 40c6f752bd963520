//! The blob side of an OCI image layout (image-layout.md): content-addressed files under
//! `blobs/sha256/`, written to a temp name and renamed to their digest once complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// Digest and size of a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// `sha256:<hex>`
    pub digest: String,
    pub size: u64,
}

/// The `blobs/sha256` directory of one layout. Cheap to clone; usable from several threads.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    next_temp: Arc<AtomicU64>,
}

impl BlobStore {
    /// Creates `<layout>/blobs/sha256` and the `oci-layout` marker file.
    pub fn create(layout: &Path) -> anyhow::Result<BlobStore> {
        let dir = layout.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let marker = layout.join("oci-layout");
        std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .with_context(|| format!("writing {}", marker.display()))?;
        Ok(BlobStore { dir, next_temp: Arc::new(AtomicU64::new(0)) })
    }

    /// A writer for a blob whose digest is known only at the end.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let number = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!(".partial-{number}"));
        let file = File::create(&temp)?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(1 << 20, file),
            temp,
            dir: self.dir.clone(),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores `bytes` as a blob.
    pub fn put(&self, bytes: &[u8]) -> anyhow::Result<BlobRef> {
        let mut writer =
            self.writer().with_context(|| format!("creating a blob in {}", self.dir.display()))?;
        writer.write_all(bytes)?;
        Ok(writer.commit()?)
    }
}

/// Writes a blob to a temp file while hashing it; [`BlobWriter::commit`] renames it to its digest.
pub struct BlobWriter {
    file: BufWriter<File>,
    temp: PathBuf,
    dir: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    pub fn commit(self) -> io::Result<BlobRef> {
        let file = self.file.into_inner().map_err(|error| error.into_error())?;
        drop(file);
        let hex = hex::encode(self.hasher.finalize());
        let target = self.dir.join(&hex);
        // Same content, same name: a second copy of an existing blob just replaces it.
        std::fs::rename(&self.temp, &target)?;
        Ok(BlobRef { digest: format!("sha256:{hex}"), size: self.size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_names_the_file_by_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::create(dir.path()).unwrap();
        let blob = store.put(b"hello").unwrap();
        assert_eq!(blob.digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(blob.size, 5);
        let stored = std::fs::read(dir.path().join("blobs/sha256").join(&blob.digest[7..])).unwrap();
        assert_eq!(stored, b"hello");
        assert!(dir.path().join("oci-layout").exists());
    }
}
