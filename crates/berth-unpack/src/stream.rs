//! The byte pipeline in front of the tar parser: count compressed bytes, decompress, then hash and cap the
//! uncompressed stream (the layer's diff_id, OCI image spec config.md "Layer DiffID").
//!
//! Limits are enforced inside the readers, where the bytes flow; a reader that trips one records which in
//! [`Shared`] and fails with a plain I/O error, because the tar parser wraps errors and would lose the
//! detail. The caller asks [`Shared::violation`] first when a read fails.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::{Compression, Hasher, Limits};

/// Ratios are only checked past this many uncompressed bytes: tiny layers of zeros are legitimately extreme.
const RATIO_GRACE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Violation {
    TooLarge { limit: u64 },
    Ratio { limit: u64, compressed: u64, uncompressed: u64 },
}

/// State shared between the two ends of the pipeline.
#[derive(Default)]
pub(crate) struct Shared {
    compressed: Cell<u64>,
    violation: Cell<Option<Violation>>,
}

impl Shared {
    pub(crate) fn violation(&self) -> Option<Violation> {
        self.violation.get()
    }
}

/// Counts the bytes read from the compressed input.
pub(crate) struct CountingReader<R> {
    inner: R,
    shared: Rc<Shared>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.shared.compressed.set(self.shared.compressed.get() + read as u64);
        Ok(read)
    }
}

/// Hashes the uncompressed tar stream and enforces the size and ratio caps.
pub(crate) struct DiffReader<R> {
    inner: R,
    hasher: Hasher,
    max_uncompressed: u64,
    max_ratio: u64,
    shared: Rc<Shared>,
}

impl<R> DiffReader<R> {
    pub(crate) fn finish(self) -> (crate::Digest, u64) {
        let size = self.hasher.bytes();
        (self.hasher.finish(), size)
    }
}

impl<R: Read> Read for DiffReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        let uncompressed = self.hasher.bytes();
        let compressed = self.shared.compressed.get();
        let violation = if uncompressed > self.max_uncompressed {
            Some(Violation::TooLarge { limit: self.max_uncompressed })
        } else if uncompressed > RATIO_GRACE_BYTES && uncompressed / compressed.max(1) > self.max_ratio {
            Some(Violation::Ratio { limit: self.max_ratio, compressed, uncompressed })
        } else {
            None
        };
        if let Some(violation) = violation {
            self.shared.violation.set(Some(violation));
            return Err(io::Error::other("layer exceeds the unpack limits"));
        }
        Ok(read)
    }
}

/// Reads up to 4 bytes (fewer only at end of input) to identify the compression.
pub(crate) fn read_magic(input: &mut impl Read, magic: &mut [u8; 4]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < magic.len() {
        match input.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Builds the pipeline: `input` (already missing `magic`, which is put back in front) -> count ->
/// decompress -> hash and cap.
pub(crate) fn pipeline<'input>(
    magic: &'input [u8],
    input: impl Read + 'input,
    compression: Compression,
    limits: &Limits,
    shared: &Rc<Shared>,
) -> io::Result<DiffReader<Box<dyn Read + 'input>>> {
    let counted = CountingReader { inner: magic.chain(input), shared: Rc::clone(shared) };
    let decompressed: Box<dyn Read + 'input> = match compression {
        Compression::None => Box::new(counted),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(counted)?;
            decoder.window_log_max(limits.zstd_window_log_max)?;
            Box::new(decoder)
        }
    };
    Ok(DiffReader {
        inner: decompressed,
        hasher: Hasher::new(crate::Algorithm::Sha256),
        max_uncompressed: limits.max_uncompressed,
        max_ratio: limits.max_ratio,
        shared: Rc::clone(shared),
    })
}
