//! The one place that decides how layer blobs are compressed, for the catalog and the synthetic
//! images alike.
//!
//! Every test image digest depends on these settings: gzip level 6 with header mtime 0, OS byte 255
//! ("unknown", RFC 1952 section 2.3.1) and no file name; zstd level 3 without the content checksum,
//! single-threaded (multi-threaded zstd output depends on timing). Changing any of them changes the
//! digests, which needs a bump of [`super::FORMAT_VERSION`].

use std::io::{self, Write};

/// A layer compression the images use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
}

/// A streaming compressor of one [`Codec`] writing into `W`.
pub struct Compressor<W: Write> {
    encoder: Encoder<W>,
}

enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(codec: Codec, out: W) -> io::Result<Compressor<W>> {
        let encoder = match codec {
            Codec::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(6)),
            ),
            Codec::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, 3)?;
                encoder.include_checksum(false)?;
                Encoder::Zstd(encoder)
            }
        };
        Ok(Compressor { encoder })
    }

    pub fn codec(&self) -> Codec {
        match self.encoder {
            Encoder::Gzip(_) => Codec::Gzip,
            Encoder::Zstd(_) => Codec::Zstd,
        }
    }

    /// Writes the end of the compressed stream and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self.encoder {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut compressor = Compressor::new(codec, Vec::new()).unwrap();
        assert_eq!(compressor.codec(), codec);
        compressor.write_all(data).unwrap();
        compressor.finish().unwrap()
    }

    #[test]
    fn gzip_header_is_fixed_and_round_trips() {
        let data = b"layer data layer data layer data".repeat(100);
        let compressed = compress(Codec::Gzip, &data);
        // RFC 1952 section 2.3: magic, deflate, no flags (no name), mtime 0, XFL 0, OS 255.
        assert_eq!(compressed[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut round_trip = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice()).read_to_end(&mut round_trip).unwrap();
        assert_eq!(round_trip, data);
        assert_eq!(compressed, compress(Codec::Gzip, &data));
    }

    #[test]
    fn zstd_has_no_checksum_and_round_trips() {
        let data = b"layer data layer data layer data".repeat(100);
        let compressed = compress(Codec::Zstd, &data);
        assert_eq!(compressed[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        // Frame header descriptor (RFC 8878 section 3.1.1.1.1): bit 2 is the content checksum flag.
        assert_eq!(compressed[4] & 0b100, 0);
        assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), data);
        assert_eq!(compressed, compress(Codec::Zstd, &data));
    }
}
