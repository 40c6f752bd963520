//! The one error type of the store: every variant names the file or directory involved.

use std::io;
use std::path::PathBuf;

use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed; `action` says what the store was doing ("create", "rename", ...).
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The bytes received do not hash to the digest they were announced as; nothing was stored.
    #[error("digest mismatch for {path}: expected {expected}, got {actual}")]
    DigestMismatch { path: PathBuf, expected: Digest, actual: Digest },

    /// An ingest was committed before (or after) exactly `expected` bytes were written.
    #[error("size mismatch for {path} ({digest}): expected {expected} bytes, got {actual}")]
    SizeMismatch { path: PathBuf, digest: Digest, expected: u64, actual: u64 },

    /// A write would have gone past the size the blob was announced with.
    #[error("refusing to write past the declared size of {digest} ({size} bytes) to {path}")]
    SizeExceeded { path: PathBuf, digest: Digest, size: u64 },

    /// A blob is larger than the caller allows reading into memory.
    #[error("{path} is {size} bytes, more than the {max} bytes allowed")]
    TooLarge { path: PathBuf, size: u64, max: u64 },

    /// Another process or thread is writing the same blob right now.
    #[error("{path} is being written by another process")]
    Busy { path: PathBuf },

    /// refs.json cannot be understood; it is left untouched.
    #[error("invalid refs file {path}: {reason}")]
    InvalidRefs { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }
}
