//! Building layer tars byte by byte (names the tar crate's builder would refuse included) and watching a
//! sentinel directory next to the destination.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const MTIME: u64 = 1_600_000_000;

pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer { builder: tar::Builder::new(Vec::new()) }
    }

    fn header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    /// Appends an entry with `name` and `link` copied verbatim into the header (no validation).
    pub fn raw(&mut self, name: &[u8], entry_type: tar::EntryType, link: &[u8], data: &[u8]) -> &mut Layer {
        let mut header = Layer::header(entry_type, 0o644, data.len() as u64);
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Layer {
        self.raw(name.as_bytes(), tar::EntryType::Regular, b"", data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Layer {
        self.raw(name.as_bytes(), tar::EntryType::Directory, b"", b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.raw(name.as_bytes(), tar::EntryType::Symlink, target.as_bytes(), b"")
    }

    pub fn hard_link(&mut self, name: &str, target: &str) -> &mut Layer {
        self.raw(name.as_bytes(), tar::EntryType::Link, target.as_bytes(), b"")
    }

    /// A full entry through the tar crate (long names become GNU long-name records).
    pub fn entry(
        &mut self,
        name: &str,
        entry_type: tar::EntryType,
        mode: u32,
        data: &[u8],
        edit: impl FnOnce(&mut tar::Header),
    ) -> &mut Layer {
        let mut header = Layer::header(entry_type, mode, data.len() as u64);
        edit(&mut header);
        self.builder.append_data(&mut header, name, data).unwrap();
        self
    }

    /// A PAX extended header ('x') applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Layer {
        let mut body = Vec::new();
        for (key, value) in records {
            let payload = key.len() + value.len() + 3;
            let mut length = payload + 1;
            while length != payload + length.to_string().len() {
                length = payload + length.to_string().len();
            }
            write!(body, "{length} {key}=").unwrap();
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        self.raw(b"PaxHeaders/x", tar::EntryType::XHeader, b"", &body.clone())
    }

    pub fn tar(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A temp dir holding `dest/` (empty, to unpack into) and `outside/` (a sentinel with one file).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub dest: PathBuf,
    pub outside: PathBuf,
    before: BTreeMap<PathBuf, (u64, u32, u64, Vec<u8>)>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"do not touch").unwrap();
        let mut sandbox = Sandbox { dir, dest, outside, before: BTreeMap::new() };
        sandbox.before = sandbox.outside_snapshot();
        sandbox
    }

    /// Everything next to `dest` (the temp dir minus `dest` itself) plus /etc/passwd: path -> (inode, mode,
    /// nlink, content or xattr list).
    pub fn outside_snapshot(&self) -> BTreeMap<PathBuf, (u64, u32, u64, Vec<u8>)> {
        let mut snapshot = BTreeMap::new();
        let mut pending = vec![self.dir.path().to_path_buf(), PathBuf::from("/etc/passwd")];
        while let Some(path) = pending.pop() {
            if path == self.dest {
                continue;
            }
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let mut names = [0u8; 4096];
            let listed = rustix::fs::llistxattr(&path, &mut names[..]).unwrap_or(0);
            let mut content = names[..listed].to_vec();
            if metadata.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    pending.push(entry.unwrap().path());
                }
            } else if metadata.is_file() {
                content.extend(std::fs::read(&path).unwrap());
            }
            snapshot.insert(path, (metadata.ino(), metadata.mode(), metadata.nlink(), content));
        }
        snapshot
    }

    pub fn assert_outside_unchanged(&self) {
        assert_eq!(self.outside_snapshot(), self.before, "something outside the layer dir changed");
    }

    pub fn unpack(&self, tar: &[u8]) -> Result<berth_unpack::Unpacked, berth_unpack::Error> {
        berth_unpack::unpack(
            tar,
            berth_unpack::Compression::None,
            &self.dest,
            &berth_unpack::Limits::default(),
        )
    }
}

pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
