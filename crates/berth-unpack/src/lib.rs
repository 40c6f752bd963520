//! One layer stream -> one directory usable as an overlayfs lower dir, confined to that directory.
//!
//! The layer is read once: decompressed (gzip or zstd), hashed to its diff_id while the tar parser reads it,
//! and written entry by entry. The tar crate parses headers only; files, links and nodes are created here with
//! `openat2(RESOLVE_IN_ROOT)`-resolved parents and `*at` calls (see the `root` module), so no entry can reach
//! outside the destination, whatever its name, link target or the symlinks before it.
//!
//! Whiteouts are converted to overlay's format (OCI image spec layer.md "Whiteouts";
//! kernel Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories"): `.wh.NAME` becomes a
//! 0/0 character device `NAME`, `.wh..wh..opq` becomes `trusted.overlay.opaque=y` on its directory.
//!
//! This crate depends only on `berth-reference`; it knows nothing of registries or of the store's layout.

mod apply;
mod names;
mod root;
mod stream;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub(crate) use berth_reference::{Algorithm, Digest, Hasher};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares; `None` (the Option) when the type says nothing about it.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        // OCI image spec media-types.md and Docker image manifest v2 schema 2.
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The compression the first bytes of a stream show (gzip: 1f 8b; zstd frame: 28 b5 2f fd), if any.
    pub fn sniff(magic: &[u8]) -> Option<Compression> {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// Caps on what one layer may expand to.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total uncompressed (tar) bytes.
    pub max_uncompressed: u64,
    /// Uncompressed bytes per compressed byte; checked only once the layer is past 64 MiB uncompressed.
    pub max_ratio: u64,
    /// zstd decoder window cap as a power of two (27 = 128 MiB, what zstd allows by default without --long).
    pub zstd_window_log_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_uncompressed: 64 << 30, max_ratio: 1000, zstd_window_log_max: 27 }
    }
}

/// The result of a successful unpack.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream, to compare with the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    /// Tar entries read (including skipped ones).
    pub entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the layer directory {path}")]
    Destination {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The compressed stream, the decompressor or the tar structure failed.
    #[error("cannot read the layer stream for {dest}")]
    Read {
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layer for {dest} expands past the limit of {limit} uncompressed bytes")]
    TooLarge { dest: PathBuf, limit: u64 },
    #[error(
        "layer for {dest} expands {uncompressed} bytes from {compressed} compressed bytes, past the ratio limit of {limit}:1 (a decompression bomb?)"
    )]
    RatioExceeded { dest: PathBuf, limit: u64, compressed: u64, uncompressed: u64 },
    /// The entry is refused: an escaping name, a malformed whiteout, a hard link to nothing in this layer...
    #[error("invalid layer entry {entry:?}: {reason}")]
    InvalidEntry { entry: String, reason: String },
    /// Creating or updating an entry in the layer directory failed.
    #[error("cannot {action} {entry:?} in {dest}")]
    Entry {
        entry: String,
        action: &'static str,
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Unpacks one layer into `dest` (an existing, empty directory) and returns its diff_id.
///
/// The declared `compression` (from the media type) is checked against the stream's magic bytes: a gzip or
/// zstd magic wins over the declaration (registries serve mislabelled layers), and a stream without either is
/// read as a plain tar. The stream is read to its end, so the caller's hash of the compressed bytes (if it
/// tees them) is complete when this returns.
///
/// Owners and device nodes are applied only when running as root (devices are skipped with a warning
/// otherwise); `trusted.*` xattrs need root too (the opaque marker falls back to `user.overlay.opaque`).
pub fn unpack(
    mut compressed: impl Read,
    compression: Compression,
    dest: &Path,
    limits: &Limits,
) -> Result<Unpacked, Error> {
    let root = root::Root::open(dest)
        .map_err(|errno| Error::Destination { path: dest.to_path_buf(), source: errno.into() })?;
    let mut magic = [0u8; 4];
    let magic_len = stream::read_magic(&mut compressed, &mut magic)
        .map_err(|source| Error::Read { dest: dest.to_path_buf(), source })?;
    let detected = Compression::sniff(&magic[..magic_len]).unwrap_or(Compression::None);
    if detected != compression {
        tracing::debug!(declared = ?compression, ?detected, dest = %dest.display(), "layer compression differs from its media type");
    }
    let shared = Rc::new(stream::Shared::default());
    let reader = stream::pipeline(&magic[..magic_len], compressed, detected, limits, &shared)
        .map_err(|source| Error::Read { dest: dest.to_path_buf(), source })?;
    apply::apply(reader, &root, dest, &shared)
}
