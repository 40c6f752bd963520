//! A deterministic tar writer for layer contents, and the sink that turns one tar stream into its
//! diff_id plus one compressed blob per codec (gzip, zstd or both) in a single pass.
//!
//! Headers are written by hand on top of the `tar` crate's `Header` so that nothing depends on the
//! host (no uname/gname, fixed mtime, uid/gid as given) and so that long or non-ASCII names use PAX
//! extended headers (POSIX.1-2001 `pax` format, typeflag `x`), which is what image builders emit,
//! instead of the GNU `././@LongLink` extension the crate would pick.

use std::collections::BTreeSet;
use std::io::{self, Write};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::compress::{Codec, Compressor};
use super::layout::{BlobRef, BlobStore, BlobWriter};

/// 2024-01-01T00:00:00Z: the mtime of every entry.
pub const EPOCH: u64 = 1_704_067_200;

/// Builds one layer tar. Parent directories are added (0755, root) on first use, like the entries an
/// image builder writes, so every file has its directory chain in the same layer.
pub struct TarLayer<W: Write> {
    builder: tar::Builder<W>,
    dirs: BTreeSet<String>,
}

/// Ownership and mode of one entry.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Meta {
    pub const fn mode(mode: u32) -> Meta {
        Meta { mode, uid: 0, gid: 0 }
    }
}

impl<W: Write> TarLayer<W> {
    pub fn new(out: W) -> TarLayer<W> {
        TarLayer { builder: tar::Builder::new(out), dirs: BTreeSet::new() }
    }

    /// Adds a directory (and its missing parents). A directory already added is left as it is.
    pub fn dir(&mut self, path: &str, meta: Meta) -> io::Result<()> {
        let path = path.trim_matches('/');
        if self.dirs.contains(path) {
            return Ok(());
        }
        self.parents(path)?;
        self.dirs.insert(path.to_owned());
        self.entry(&format!("{path}/"), EntryType::Directory, meta, None, &[], &[])
    }

    pub fn file(&mut self, path: &str, data: &[u8], meta: Meta) -> io::Result<()> {
        self.file_with_pax(path, data, meta, &[])
    }

    /// A regular file with extra PAX records (e.g. `SCHILY.xattr.*`).
    pub fn file_with_pax(
        &mut self,
        path: &str,
        data: &[u8],
        meta: Meta,
        pax: &[(&str, &[u8])],
    ) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        self.entry(path, EntryType::Regular, meta, None, pax, data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        self.entry(path, EntryType::Symlink, Meta::mode(0o777), Some(target), &[], &[])
    }

    /// A hard link to `target`, an entry earlier in the same layer (path relative to the layer root).
    pub fn hardlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        self.entry(path, EntryType::Link, Meta::mode(0o644), Some(target.trim_matches('/')), &[], &[])
    }

    pub fn fifo(&mut self, path: &str, meta: Meta) -> io::Result<()> {
        let path = path.trim_matches('/');
        self.parents(path)?;
        self.entry(path, EntryType::Fifo, meta, None, &[], &[])
    }

    /// Writes the two zero blocks that end the archive and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        let parts: Vec<&str> = path.split('/').collect();
        for end in 1..parts.len() {
            self.dir(&parts[..end].join("/"), Meta::mode(0o755))?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &str,
        kind: EntryType,
        meta: Meta,
        link: Option<&str>,
        extra_pax: &[(&str, &[u8])],
        data: &[u8],
    ) -> io::Result<()> {
        let mut pax: Vec<(&str, &[u8])> = Vec::new();
        if needs_pax(path) {
            pax.push(("path", path.as_bytes()));
        }
        if let Some(link) = link.filter(|link| needs_pax(link)) {
            pax.push(("linkpath", link.as_bytes()));
        }
        pax.extend_from_slice(extra_pax);
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut header = base_header("././@PaxHeader", EntryType::XHeader, Meta::mode(0o644))?;
            header.set_size(records.len() as u64);
            header.set_cksum();
            self.builder.append(&header, records.as_slice())?;
        }
        let mut header = base_header(path, kind, meta)?;
        if let Some(link) = link {
            copy_truncated(&mut header.as_old_mut().linkname, link);
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data)
    }
}

/// A ustar header with everything that varies by host fixed. Names that do not fit are truncated
/// here; the full name is then in the preceding PAX header.
fn base_header(path: &str, kind: EntryType, meta: Meta) -> io::Result<Header> {
    let mut header = Header::new_ustar();
    copy_truncated(&mut header.as_old_mut().name, path);
    header.set_entry_type(kind);
    header.set_mode(meta.mode);
    header.set_uid(meta.uid);
    header.set_gid(meta.gid);
    header.set_mtime(EPOCH);
    header.set_size(0);
    header.set_device_major(0)?;
    header.set_device_minor(0)?;
    Ok(header)
}

fn needs_pax(name: &str) -> bool {
    name.len() > 100 || !name.is_ascii()
}

/// Copies `name` into a fixed header field, non-ASCII bytes replaced by `_`, cut to the field size.
fn copy_truncated(field: &mut [u8; 100], name: &str) {
    for (slot, byte) in field.iter_mut().zip(name.bytes()) {
        *slot = if byte.is_ascii() { byte } else { b'_' };
    }
}

/// PAX records `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including itself
/// (POSIX.1-2001, pax "extended header").
fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The result of writing one layer: its diff_id and its compressed blobs.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    pub raw_size: u64,
    /// One blob per codec the layer was built with, in the order asked for.
    pub blobs: Vec<(Codec, BlobRef)>,
}

impl BuiltLayer {
    /// The blob compressed with `codec`, if the layer was built with it.
    pub fn blob(&self, codec: Codec) -> Option<&BlobRef> {
        self.blobs.iter().find(|(built, _)| *built == codec).map(|(_, blob)| blob)
    }
}

/// Receives the tar stream, hashes it and compresses it into one blob file per codec at once, so a
/// layer never has to be held in memory.
pub struct LayerSink {
    hasher: Sha256,
    raw_size: u64,
    compressors: Vec<Compressor<BlobWriter>>,
}

impl LayerSink {
    /// A sink writing one new blob of `store` for each of `codecs`.
    pub fn new(store: &BlobStore, codecs: &[Codec]) -> io::Result<LayerSink> {
        let compressors =
            codecs.iter().map(|&codec| Compressor::new(codec, store.writer()?)).collect::<io::Result<_>>()?;
        Ok(LayerSink { hasher: Sha256::new(), raw_size: 0, compressors })
    }

    pub fn finish(self) -> io::Result<BuiltLayer> {
        let mut blobs = Vec::with_capacity(self.compressors.len());
        for compressor in self.compressors {
            blobs.push((compressor.codec(), compressor.finish()?.commit()?));
        }
        Ok(BuiltLayer {
            diff_id: format!("sha256:{}", hex::encode(self.hasher.finalize())),
            raw_size: self.raw_size,
            blobs,
        })
    }
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.raw_size += buf.len() as u64;
        for compressor in &mut self.compressors {
            compressor.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.compressors.iter_mut().try_for_each(Write::flush)
    }
}

/// Builds one layer per index, two at a time (the compressors are single-threaded; two threads halve a
/// cold build on two cores without holding more than two layers' buffers), in the order of `indexes`.
pub(crate) fn build_two_at_a_time<T: Send>(
    indexes: &[u32],
    build: impl Fn(u32) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let mut built = Vec::with_capacity(indexes.len());
    for pair in indexes.chunks(2) {
        let results: Vec<anyhow::Result<T>> = std::thread::scope(|scope| {
            let build = &build;
            let handles: Vec<_> = pair.iter().map(|&index| scope.spawn(move || build(index))).collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a layer thread panicked")))
                })
                .collect()
        });
        for result in results {
            built.push(result?);
        }
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let records = pax_records(&[("path", b"abc")]);
        assert_eq!(records, b"12 path=abc\n");
        let long = "x".repeat(95);
        let records = pax_records(&[("path", long.as_bytes())]);
        let text = String::from_utf8(records).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }

    #[test]
    fn long_unicode_and_xattr_entries_read_back() {
        let long = format!("data/{}", "n".repeat(150));
        let mut layer = TarLayer::new(Vec::new());
        layer.file(&long, b"long", Meta::mode(0o644)).unwrap();
        layer.file("data/ñé-日本.txt", b"u", Meta { mode: 0o600, uid: 1000, gid: 1000 }).unwrap();
        layer.file_with_pax("data/x", b"x", Meta::mode(0o644), &[("SCHILY.xattr.user.k", b"1")]).unwrap();
        layer.symlink("data/link", "x").unwrap();
        let bytes = layer.finish().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let header = entry.header();
            seen.push((path.clone(), header.mode().unwrap(), header.uid().unwrap(), header.mtime().unwrap()));
            if path == "data/x" {
                let pax = entry.pax_extensions().unwrap().unwrap();
                let keys: Vec<String> = pax.map(|ext| ext.unwrap().key().unwrap().to_owned()).collect();
                assert_eq!(keys, ["SCHILY.xattr.user.k"]);
            }
        }
        let names: Vec<&str> = seen.iter().map(|entry| entry.0.as_str()).collect();
        assert_eq!(names, ["data/", long.as_str(), "data/ñé-日本.txt", "data/x", "data/link"]);
        assert_eq!(seen[2].1, 0o600);
        assert_eq!(seen[2].2, 1000);
        assert!(seen.iter().all(|entry| entry.3 == EPOCH));
    }
}
