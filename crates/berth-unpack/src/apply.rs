//! The single pass over tar entries: each header is turned into `*at` calls relative to a directory the
//! kernel resolved inside the layer root. One copy buffer and a few path buffers are reused for all entries.
//!
//! Order of metadata matters: owner first (chown clears setuid/setgid and file capabilities), then mode,
//! then xattrs (`security.capability` must survive), then times. Directory modes and mtimes are applied after
//! the last entry, because creating children changes a directory's mtime and a read-only directory mode
//! would stop an unprivileged unpack from creating them.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::names::{self, Kind};
use crate::root::{self, Root};
use crate::stream::{DiffReader, Shared, Violation};
use crate::{Error, Unpacked};

/// One buffer for all file contents: large enough that a read reaches through to the decompressor in big
/// pieces, small enough to stay in cache.
const COPY_BUFFER: usize = 256 * 1024;
/// In front of the tar parser, whose header reads are 512 bytes each.
const READ_BUFFER: usize = 64 * 1024;

/// The fields of a header this walker applies.
struct Metadata {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
}

/// A directory whose mode and mtime wait for the end of the stream.
struct Deferred {
    path: Box<[u8]>,
    mode: u32,
    mtime: Timespec,
}

struct Walker<'a> {
    root: &'a Root,
    dest: &'a Path,
    shared: &'a Shared,
    is_root: bool,
    buffer: Vec<u8>,
    /// The current entry's cleaned path.
    path: Vec<u8>,
    /// The current entry's link target: raw for symlinks, cleaned for hard links.
    link: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    deferred: Vec<Deferred>,
    /// The last regular file's parent directory: its cleaned path and descriptor.
    parent_cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
}

pub(crate) fn apply<R: Read>(
    reader: DiffReader<R>,
    root: &Root,
    dest: &Path,
    shared: &Shared,
) -> Result<Unpacked, Error> {
    let mut walker = Walker {
        root,
        dest,
        shared,
        is_root: rustix::process::geteuid().is_root(),
        buffer: vec![0; COPY_BUFFER],
        path: Vec::new(),
        link: Vec::new(),
        xattrs: Vec::new(),
        deferred: Vec::new(),
        parent_cache: None,
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(READ_BUFFER, reader));
    let mut entries = 0u64;
    for entry in archive.entries().map_err(|error| walker.stream_error(error))? {
        let entry = entry.map_err(|error| walker.stream_error(error))?;
        entries += 1;
        walker.entry(entry)?;
    }
    walker.finish_directories()?;
    // Past the end-of-archive blocks come padding and possibly more: all of it belongs to the diff_id, and
    // the compressed input must be consumed to its end.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|error| walker.stream_error(error))?;
    let (diff_id, uncompressed_size) = rest.into_inner().finish();
    Ok(Unpacked { diff_id, uncompressed_size, entries })
}

impl Walker<'_> {
    fn stream_error(&self, source: io::Error) -> Error {
        let dest = self.dest.to_path_buf();
        match self.shared.violation() {
            Some(Violation::TooLarge { limit }) => Error::TooLarge { dest, limit },
            Some(Violation::Ratio { limit, compressed, uncompressed }) => {
                Error::RatioExceeded { dest, limit, compressed, uncompressed }
            }
            None => Error::Read { dest, source },
        }
    }

    fn name(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidEntry { entry: self.name(), reason: reason.into() }
    }

    fn failed(&self, action: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        move |errno| Error::Entry {
            entry: self.name(),
            action,
            dest: self.dest.to_path_buf(),
            source: errno.into(),
        }
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), Error> {
        let header = entry.header();
        let mut entry_type = header.entry_type();
        {
            let raw = entry.path_bytes();
            if entry_type == EntryType::Regular && raw.ends_with(b"/") {
                // Pre-POSIX archives mark directories with a trailing slash only.
                entry_type = EntryType::Directory;
            }
            if let Err(reason) = names::clean(&raw, &mut self.path) {
                return Err(Error::InvalidEntry {
                    entry: String::from_utf8_lossy(&raw).into_owned(),
                    reason: reason.into(),
                });
            }
        }
        let metadata = self.metadata(&mut entry)?;
        if !matches!(entry_type, EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse) {
            // Directories, links and nodes can replace a directory the cached parent was resolved through.
            self.parent_cache = None;
        }

        if self.path.is_empty() {
            return match entry_type {
                EntryType::Directory => self.directory_root(&metadata),
                EntryType::XGlobalHeader => Ok(()),
                _ => Err(self.invalid("the entry names the layer root itself")),
            };
        }
        let (_, name) = names::split(&self.path);
        let kind = names::classify(name).map_err(|reason| self.invalid(reason))?;
        if kind != Kind::Plain {
            // Whiteouts remove what they name, which may be the cached directory.
            self.parent_cache = None;
        }
        match kind {
            Kind::Opaque => return self.opaque(),
            Kind::Whiteout(target) => {
                let target_len = target.len();
                return self.whiteout(target_len);
            }
            Kind::AufsMeta => return Ok(()),
            Kind::Plain => {}
        }
        match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&mut entry, &metadata)
            }
            EntryType::Directory => self.directory(&metadata),
            EntryType::Symlink => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| self.invalid("symlink without a target"))?;
                self.link.clear();
                self.link.extend_from_slice(&target);
                self.symlink(&metadata)
            }
            EntryType::Link => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| self.invalid("hard link without a target"))?;
                let mut link = std::mem::take(&mut self.link);
                let cleaned = names::clean(&target, &mut link);
                self.link = link;
                cleaned.map_err(|reason| self.invalid(format!("hard link target: {reason}")))?;
                self.hard_link()
            }
            EntryType::Fifo => self.node(FileType::Fifo, 0, &metadata),
            EntryType::Char | EntryType::Block => {
                if !self.is_root {
                    tracing::warn!(entry = %self.name(), "skipping a device node: only root can create one");
                    return Ok(());
                }
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let file_type = if entry_type == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                self.node(file_type, rustix::fs::makedev(major, minor), &metadata)
            }
            EntryType::XGlobalHeader => Ok(()),
            other => {
                tracing::warn!(entry = %self.name(), kind = ?other, "skipping a tar entry of unsupported type");
                Ok(())
            }
        }
    }

    /// Reads the header fields and PAX records (mtime with fractions, SCHILY.xattr.*) of an entry.
    fn metadata<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Metadata, Error> {
        let mut xattrs = std::mem::take(&mut self.xattrs);
        xattrs.clear();
        let header = entry.header();
        let bad = |field: &str, error: io::Error| self.invalid(format!("invalid {field}: {error}"));
        let mode = header.mode().map_err(|error| bad("mode", error))? & 0o7777;
        let uid = header.uid().map_err(|error| bad("uid", error))?;
        let gid = header.gid().map_err(|error| bad("gid", error))?;
        let seconds = header.mtime().map_err(|error| bad("mtime", error))?;
        let uid = u32::try_from(uid).map_err(|_| self.invalid(format!("uid {uid} out of range")))?;
        let gid = u32::try_from(gid).map_err(|_| self.invalid(format!("gid {gid} out of range")))?;
        let mut mtime = Timespec { tv_sec: i64::try_from(seconds).unwrap_or(i64::MAX), tv_nsec: 0 };
        let extensions = entry.pax_extensions().map_err(|error| bad("PAX header", error))?;
        if let Some(extensions) = extensions {
            for extension in extensions {
                let extension = extension.map_err(|error| bad("PAX record", error))?;
                let key = extension.key_bytes();
                if key == b"mtime" {
                    if let Some(parsed) = parse_pax_time(extension.value_bytes()) {
                        mtime = parsed;
                    }
                } else if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((xattr.to_vec(), extension.value_bytes().to_vec()));
                }
            }
        }
        self.xattrs = xattrs;
        Ok(Metadata { mode, uid, gid, mtime })
    }

    /// Like [`Walker::parent`], but reuses the last regular file's parent when it is the same directory
    /// (tar streams list a directory's files together). Only regular files use and fill the cache: creating
    /// a file never replaces a directory above it, so the cached descriptor still names the directory the
    /// path resolves to; every other entry clears the cache before it changes the tree (see `entry`).
    fn file_parent(&mut self) -> Result<Rc<OwnedFd>, Error> {
        let (parent, _) = names::split(&self.path);
        if let Some((cached_path, fd)) = &self.parent_cache
            && cached_path.as_slice() == parent
        {
            return Ok(Rc::clone(fd));
        }
        let fd = self.parent()?;
        let (parent, _) = names::split(&self.path);
        self.parent_cache = Some((parent.to_vec(), Rc::clone(&fd)));
        Ok(fd)
    }

    /// The current entry's parent directory, resolved (and created) inside the root.
    fn parent(&self) -> Result<Rc<OwnedFd>, Error> {
        let (parent, _) = names::split(&self.path);
        self.root.directory_creating(parent).map(Rc::new).map_err(|errno| match errno {
            Errno::NOTDIR | Errno::NOENT | Errno::LOOP => {
                self.invalid(format!("its parent directory cannot be created inside the layer ({errno})"))
            }
            errno => self.failed("open the parent directory of")(errno),
        })
    }

    fn file<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, metadata: &Metadata) -> Result<(), Error> {
        let parent = self.file_parent()?;
        let (_, name) = names::split(&self.path);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // Most names are new in their layer: try the create first and clear only what is in the way.
        let fd = match rustix::fs::openat(&*parent, name, flags, Mode::from_raw_mode(0o600)) {
            Err(Errno::EXIST) => {
                root::clear(&parent, name, false).map_err(self.failed("replace"))?;
                rustix::fs::openat(&*parent, name, flags, Mode::from_raw_mode(0o600))
            }
            other => other,
        }
        .map_err(self.failed("create"))?;
        let mut file = File::from(fd);
        loop {
            let read = match entry.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.stream_error(error)),
            };
            if let Err(error) = file.write_all(&self.buffer[..read]) {
                return Err(Error::Entry {
                    entry: self.name(),
                    action: "write",
                    dest: self.dest.to_path_buf(),
                    source: error,
                });
            }
        }
        self.apply_to_fd(&OwnedFd::from(file), metadata, true)
    }

    /// Owner, mode (unless deferred), xattrs and mtime on an open file or directory.
    fn apply_to_fd(&self, fd: &OwnedFd, metadata: &Metadata, with_mode_and_time: bool) -> Result<(), Error> {
        if self.is_root {
            rustix::fs::fchown(fd, Some(Uid::from_raw(metadata.uid)), Some(Gid::from_raw(metadata.gid)))
                .map_err(self.failed("set the owner of"))?;
        }
        if with_mode_and_time {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(metadata.mode))
                .map_err(self.failed("set the mode of"))?;
        }
        for (name, value) in &self.xattrs {
            if !self.xattr_allowed(name) {
                continue;
            }
            rustix::fs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty())
                .map_err(self.failed("set an extended attribute on"))?;
        }
        if with_mode_and_time {
            let times = Timestamps { last_access: metadata.mtime, last_modification: metadata.mtime };
            rustix::fs::futimens(fd, &times).map_err(self.failed("set the times of"))?;
        }
        Ok(())
    }

    /// `user.*`, `trusted.*` (root only) and `security.capability`; never overlay's own attributes, which
    /// only the whiteout conversion may set (a layer could otherwise forge redirects or opaque markers).
    fn xattr_allowed(&self, name: &[u8]) -> bool {
        let allowed = if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            false
        } else if name.starts_with(b"trusted.") {
            self.is_root
        } else {
            name.starts_with(b"user.") || name == b"security.capability"
        };
        if !allowed {
            tracing::debug!(entry = %self.name(), xattr = %String::from_utf8_lossy(name), "skipping extended attribute");
        }
        allowed
    }

    fn directory(&mut self, metadata: &Metadata) -> Result<(), Error> {
        let parent = self.parent()?;
        let (_, name) = names::split(&self.path);
        let kept = root::clear(&parent, name, true).map_err(self.failed("replace"))?;
        if !kept {
            rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)).map_err(self.failed("create"))?;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&parent, name, flags, Mode::empty()).map_err(self.failed("open"))?;
        self.apply_to_fd(&fd, metadata, false)?;
        self.defer(metadata);
        Ok(())
    }

    fn directory_root(&mut self, metadata: &Metadata) -> Result<(), Error> {
        let fd = self.root.directory(b"").map_err(self.failed("open"))?;
        self.apply_to_fd(&fd, metadata, false)?;
        self.defer(metadata);
        Ok(())
    }

    fn defer(&mut self, metadata: &Metadata) {
        self.deferred.push(Deferred {
            path: self.path.as_slice().into(),
            mode: metadata.mode,
            mtime: metadata.mtime,
        });
    }

    fn finish_directories(&mut self) -> Result<(), Error> {
        let deferred = std::mem::take(&mut self.deferred);
        // In stream order, so a later entry for the same directory wins.
        for directory in &deferred {
            self.path.clear();
            self.path.extend_from_slice(&directory.path);
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match self.root.resolve(&directory.path, flags) {
                Ok(fd) => fd,
                // Replaced by a later entry (a file or a symlink): nothing to apply.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(errno) => return Err(self.failed("open")(errno)),
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(directory.mode))
                .map_err(self.failed("set the mode of"))?;
            let times = Timestamps { last_access: directory.mtime, last_modification: directory.mtime };
            rustix::fs::futimens(&fd, &times).map_err(self.failed("set the times of"))?;
        }
        Ok(())
    }

    fn symlink(&mut self, metadata: &Metadata) -> Result<(), Error> {
        if self.link.is_empty() || self.link.contains(&0) {
            return Err(self.invalid("the symlink target is empty or contains a NUL byte"));
        }
        let parent = self.parent()?;
        let (_, name) = names::split(&self.path);
        root::clear(&parent, name, false).map_err(self.failed("replace"))?;
        // Stored as-is and never followed here: resolution happens in the container, or inside the root.
        rustix::fs::symlinkat(self.link.as_slice(), &parent, name).map_err(self.failed("create"))?;
        if !self.xattrs.is_empty() {
            tracing::debug!(entry = %self.name(), "skipping extended attributes on a symlink");
        }
        self.apply_at(&parent, name, metadata, false)
    }

    fn hard_link(&mut self) -> Result<(), Error> {
        if self.link.is_empty() {
            return Err(self.invalid("the hard link target is the layer root"));
        }
        let (source_parent, source_name) = names::split(&self.link);
        let missing = || {
            self.invalid(format!(
                "the hard link target {:?} does not exist in this layer",
                String::from_utf8_lossy(&self.link)
            ))
        };
        let source_directory = match self.root.directory(source_parent) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Err(missing()),
            Err(errno) => return Err(self.failed("open the hard link target of")(errno)),
        };
        let parent = self.parent()?;
        let (_, name) = names::split(&self.path);
        if source_parent == names::split(&self.path).0 && source_name == name {
            return Err(self.invalid("the hard link points at itself"));
        }
        root::clear(&parent, name, false).map_err(self.failed("replace"))?;
        // Without AT_SYMLINK_FOLLOW a symlink source is linked itself, never followed.
        match rustix::fs::linkat(&source_directory, source_name, &parent, name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(missing()),
            Err(errno) => Err(self.failed("create the hard link")(errno)),
        }
    }

    fn node(&mut self, file_type: FileType, device: u64, metadata: &Metadata) -> Result<(), Error> {
        let parent = self.parent()?;
        let (_, name) = names::split(&self.path);
        root::clear(&parent, name, false).map_err(self.failed("replace"))?;
        rustix::fs::mknodat(&parent, name, file_type, Mode::from_raw_mode(metadata.mode), device)
            .map_err(self.failed("create"))?;
        self.apply_at(&parent, name, metadata, true)
    }

    /// Owner, mode and mtime of a node that cannot be opened (symlink, fifo, device), by name in `parent`.
    fn apply_at(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        metadata: &Metadata,
        with_mode: bool,
    ) -> Result<(), Error> {
        if self.is_root {
            let (uid, gid) = (Some(Uid::from_raw(metadata.uid)), Some(Gid::from_raw(metadata.gid)));
            rustix::fs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(self.failed("set the owner of"))?;
        }
        if with_mode {
            // chmodat follows a symlink, but `name` was just created by us as this very node.
            rustix::fs::chmodat(parent, name, Mode::from_raw_mode(metadata.mode), AtFlags::empty())
                .map_err(self.failed("set the mode of"))?;
        }
        let times = Timestamps { last_access: metadata.mtime, last_modification: metadata.mtime };
        rustix::fs::utimensat(parent, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(self.failed("set the times of"))
    }

    /// `.wh..wh..opq`: the parent directory hides the lower layers' content.
    fn opaque(&mut self) -> Result<(), Error> {
        let parent = self.parent()?;
        let attribute: &[u8] = if self.is_root { b"trusted.overlay.opaque" } else { b"user.overlay.opaque" };
        rustix::fs::fsetxattr(&parent, attribute, b"y", XattrFlags::empty())
            .map_err(self.failed("mark the parent directory opaque for"))
    }

    /// `.wh.NAME`: a 0/0 character device NAME next to it, created in this layer only.
    fn whiteout(&mut self, target_len: usize) -> Result<(), Error> {
        let parent = self.parent()?;
        let target = &self.path[self.path.len() - target_len..];
        root::clear(&parent, target, false).map_err(self.failed("replace the whiteout target of"))?;
        rustix::fs::mknodat(
            &parent,
            target,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(self.failed("create the whiteout device for"))
    }
}

/// A PAX time ("1700000000.5"): seconds with an optional fraction. None if malformed.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = seconds.parse().ok()?;
    if tv_sec < 0 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let mut nanoseconds: i64 = 0;
    for index in 0..9 {
        let digit = fraction.as_bytes().get(index).map_or(0, |byte| i64::from(byte - b'0'));
        nanoseconds = nanoseconds * 10 + digit;
    }
    Some(Timespec { tv_sec, tv_nsec: nanoseconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_parse_with_fractions() {
        let parsed = parse_pax_time(b"1700000000.25").unwrap();
        assert_eq!((parsed.tv_sec, parsed.tv_nsec), (1_700_000_000, 250_000_000));
        let parsed = parse_pax_time(b"12").unwrap();
        assert_eq!((parsed.tv_sec, parsed.tv_nsec), (12, 0));
        assert!(parse_pax_time(b"-1").is_none());
        assert!(parse_pax_time(b"1.x").is_none());
    }
}
