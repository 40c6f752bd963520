//! `cargo bench -p berth-unpack`: times one layer through `unpack` against its parts (inflate alone,
//! sha256 alone), so a regression shows which stage it is in. Plain timing loops (no bench framework):
//! each case runs a few times and the median is printed.
//!
//! The layer is synthetic and deterministic, shaped like the testbed's `multi` image: 5000 small files in
//! 50 directories, one 40 MiB file, a few 2-5 MiB files, all half text, half noise. It is unpacked under
//! `$BERTH_BENCH_DIR` (default /dev/shm) so the disk does not dominate.

// A bench binary reports on stdout; that is its whole purpose.
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_unpack::{Compression, Limits, unpack};

const RUNS: usize = 5;

/// xorshift64: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Half noise, half repeated text: compresses about 2:1 like a typical layer.
fn content(noise: &mut Noise, size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let half = size / 2;
    noise.fill(&mut data[..half]);
    let text = b"the quick brown fox jumps over the lazy dog 0123456789\n";
    for (index, byte) in data[half..].iter_mut().enumerate() {
        *byte = text[index % text.len()];
    }
    data
}

fn layer_tar() -> Vec<u8> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut builder = tar::Builder::new(Vec::new());
    let add = |builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, data).expect("in-memory tar");
    };
    for directory in 0..50 {
        for file in 0..100 {
            let size = 512 + (file * 37 % 4) * 1024;
            let data = content(&mut noise, size);
            add(&mut builder, &format!("small/d{directory}/f{file}"), &data);
        }
    }
    add(&mut builder, "big/forty", &content(&mut noise, 40 << 20));
    for index in 0..10 {
        add(&mut builder, &format!("medium/m{index}"), &content(&mut noise, (2 + index % 4) << 20));
    }
    builder.into_inner().expect("in-memory tar")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(label: &str, bytes: usize, mut run: impl FnMut()) {
    let samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    let median = median(samples);
    let rate = bytes as f64 / median.as_secs_f64() / (1024.0 * 1024.0);
    println!("{label:<32} {:>8.1} ms  {rate:>7.0} MiB/s (of tar)", median.as_secs_f64() * 1000.0);
}

fn fresh(base: &Path, counter: &mut u32) -> PathBuf {
    *counter += 1;
    let dest = base.join(format!("run-{counter}"));
    std::fs::create_dir(&dest).expect("bench dir");
    dest
}

fn main() {
    let base_root =
        std::env::var_os("BERTH_BENCH_DIR").map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    let base = base_root.join(format!("berth-unpack-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("bench dir");
    let tar = layer_tar();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gzip.write_all(&tar).expect("in-memory gzip");
    let gzip = gzip.finish().expect("in-memory gzip");
    let zstd = zstd::encode_all(tar.as_slice(), 3).expect("in-memory zstd");
    println!(
        "layer: {} MiB tar, {} MiB gzip, {} MiB zstd",
        tar.len() >> 20,
        gzip.len() >> 20,
        zstd.len() >> 20
    );
    let limits = Limits::default();
    let mut counter = 0;
    time("sha256 of the tar", tar.len(), || {
        std::hint::black_box(berth_reference::Digest::sha256_of(&tar));
    });
    time("gzip inflate to a sink", tar.len(), || {
        let mut decoder = flate2::read::MultiGzDecoder::new(gzip.as_slice());
        std::io::copy(&mut decoder, &mut std::io::sink()).expect("inflate");
    });
    time("zstd decode to a sink", tar.len(), || {
        let mut decoder = zstd::stream::read::Decoder::new(zstd.as_slice()).expect("zstd");
        std::io::copy(&mut decoder, &mut std::io::sink()).expect("decode");
    });
    for (label, compression, data) in [
        ("unpack tar", Compression::None, &tar),
        ("unpack gzip", Compression::Gzip, &gzip),
        ("unpack zstd", Compression::Zstd, &zstd),
    ] {
        time(label, tar.len(), || {
            let dest = fresh(&base, &mut counter);
            let unpacked = unpack(data.as_slice(), compression, &dest, &limits).expect("unpack");
            assert_eq!(unpacked.uncompressed_size, tar.len() as u64);
        });
    }
    // Reading in small pieces is what a network stream looks like.
    time("unpack gzip, 16 KiB reads", tar.len(), || {
        let dest = fresh(&base, &mut counter);
        let reader = SmallReads { inner: gzip.as_slice(), size: 16 << 10 };
        unpack(reader, Compression::Gzip, &dest, &limits).expect("unpack");
    });
    let _ = std::fs::remove_dir_all(&base);
}

struct SmallReads<R> {
    inner: R,
    size: usize,
}

impl<R: Read> Read for SmallReads<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let limit = buffer.len().min(self.size);
        self.inner.read(&mut buffer[..limit])
    }
}
