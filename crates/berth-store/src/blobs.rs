//! Blobs: verified writes through `ingest/` and reads by digest.
//!
//! A blob reaches `blobs/<algorithm>/<hex>` only by renaming a file whose size and digest were checked, so a
//! path under `blobs/` always holds exactly the content its name promises.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::{Digest, Error, Hasher, Store, algorithm_name};

/// Buffer size for rehashing a partial download when it is resumed.
const REHASH_BUFFER: usize = 256 * 1024;

impl Store {
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir("blobs").join(algorithm_name(digest)).join(digest.hex())
    }

    /// Where an unfinished download of `digest` is kept: `ingest/<hex>.partial`.
    fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.dir("ingest").join(format!("{}.partial", digest.hex()))
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// How many bytes an interrupted download of `digest` left to resume from (0 when none).
    pub fn partial_len(&self, digest: &Digest) -> u64 {
        std::fs::metadata(self.partial_path(digest)).map(|m| m.len()).unwrap_or(0)
    }

    /// Reads a whole blob into memory, refusing blobs larger than `max` bytes, and verifies its digest (a
    /// blob damaged on disk is an error, not data).
    pub fn read_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(Error::io("open", &path))?;
        let size = file.metadata().map_err(Error::io("stat", &path))?.len();
        if size > max {
            return Err(Error::TooLarge { path, size, max });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // One byte past `max` tells a file that grew after the stat apart from one that did not.
        file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(Error::io("read", &path))?;
        if bytes.len() as u64 > max {
            return Err(Error::TooLarge { path, size: bytes.len() as u64, max });
        }
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch { path, expected: digest.clone(), actual });
        }
        Ok(bytes)
    }

    /// Stores `bytes` as the blob `digest` after checking they hash to it; on a mismatch nothing is written.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let actual = Digest::of(digest.algorithm(), bytes);
        let blob_path = self.blob_path(digest);
        if &actual != digest {
            return Err(Error::DigestMismatch { path: blob_path, expected: digest.clone(), actual });
        }
        // Already stored and intact (`bytes` were just checked, so equal bytes are intact ones): nothing
        // to do. A damaged copy is replaced by the rename below.
        let same_size = std::fs::metadata(&blob_path).is_ok_and(|stored| stored.len() == bytes.len() as u64);
        if same_size && std::fs::read(&blob_path).is_ok_and(|stored| stored == bytes) {
            return Ok(());
        }
        let temp_path = self.dir("ingest").join(format!("{}.{}.put", digest.hex(), crate::unique_suffix()));
        let mut file = {
            let _lock = self.lock()?;
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp_path)
                .map_err(Error::io("create", &temp_path))?;
            // Locked while it is written, so a concurrent prune leaves it alone.
            file.lock().map_err(Error::io("lock", &temp_path))?;
            file
        };
        let result = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(Error::io("write", &temp_path))
            .and_then(|()| rename_into_blobs(&temp_path, &blob_path));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp_path);
        }
        result
    }

    /// Starts or resumes writing the blob `digest` of `size` bytes. An existing `ingest/<hex>.partial` is
    /// rehashed and writing continues after its last byte; a partial longer than `size` is started over.
    /// Returns [`Error::Busy`] if another writer holds the same partial.
    pub fn ingest(&self, digest: &Digest, size: u64) -> Result<Ingest, Error> {
        let partial_path = self.partial_path(digest);
        let mut file = {
            let _lock = self.lock()?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&partial_path)
                .map_err(Error::io("open", &partial_path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Busy { path: partial_path }),
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(Error::Io { action: "lock", path: partial_path, source });
                }
            }
            file
        };
        let existing = file.metadata().map_err(Error::io("stat", &partial_path))?.len();
        let mut hasher = digest.hasher();
        if existing > size {
            tracing::debug!(path = %partial_path.display(), existing, size, "partial longer than the blob, starting over");
            file.set_len(0).map_err(Error::io("truncate", &partial_path))?;
        } else if existing > 0 {
            rehash(&mut file, &mut hasher).map_err(Error::io("read", &partial_path))?;
        }
        // Continue after what was hashed (a partial that grew meanwhile is impossible: we hold its lock).
        file.seek(io::SeekFrom::Start(hasher.bytes())).map_err(Error::io("seek", &partial_path))?;
        Ok(Ingest {
            file,
            hasher,
            digest: digest.clone(),
            size,
            partial_path,
            blob_path: self.blob_path(digest),
        })
    }
}

fn rehash(file: &mut File, hasher: &mut Hasher) -> io::Result<()> {
    file.seek(io::SeekFrom::Start(0))?;
    let mut buffer = vec![0u8; REHASH_BUFFER];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
    }
}

fn rename_into_blobs(from: &Path, to: &Path) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
    }
    std::fs::rename(from, to).map_err(Error::io("rename into", to))
}

/// A blob being written: bytes are hashed as they are written, and [`Ingest::commit`] moves the file into
/// `blobs/` only if exactly the declared size arrived and it hashes to the expected digest. Dropping an
/// `Ingest` without committing keeps the partial file for a later resume.
#[derive(Debug)]
pub struct Ingest {
    file: File,
    hasher: Hasher,
    digest: Digest,
    size: u64,
    partial_path: PathBuf,
    blob_path: PathBuf,
}

impl Ingest {
    /// How many bytes the blob has so far (where a resumed download continues, e.g. with an HTTP `Range`).
    pub fn offset(&self) -> u64 {
        self.hasher.bytes()
    }

    /// The hash of the bytes so far.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The partial file (to replay what an earlier attempt already received).
    pub fn path(&self) -> &Path {
        &self.partial_path
    }

    /// The size the blob was announced with.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Deletes the partial file: its bytes are known to be unusable, and a later pull must not resume from
    /// them.
    pub fn discard(self) {
        let Ingest { file, partial_path, .. } = self;
        drop(file);
        let _ = std::fs::remove_file(&partial_path);
    }

    /// Verifies size and digest, then renames the partial into `blobs/`. On a digest mismatch the partial is
    /// deleted (its bytes are wrong, resuming would not help); on a short size it is kept for a resume.
    pub fn commit(self) -> Result<(), Error> {
        let Ingest { file, hasher, digest, size, partial_path, blob_path } = self;
        if hasher.bytes() != size {
            return Err(Error::SizeMismatch {
                path: partial_path,
                digest,
                expected: size,
                actual: hasher.bytes(),
            });
        }
        let actual = hasher.finish();
        if actual != digest {
            drop(file);
            let _ = std::fs::remove_file(&partial_path);
            return Err(Error::DigestMismatch { path: partial_path, expected: digest, actual });
        }
        file.sync_all().map_err(Error::io("sync", &partial_path))?;
        rename_into_blobs(&partial_path, &blob_path)
    }
}

impl Write for Ingest {
    /// Refuses (writes nothing of) a buffer that would go past the declared size.
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        if self.hasher.bytes().saturating_add(buffer.len() as u64) > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                Error::SizeExceeded {
                    path: self.partial_path.clone(),
                    digest: self.digest.clone(),
                    size: self.size,
                },
            ));
        }
        let written = self.file.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
