//! The layer directory as a confinement root: every path is resolved by the kernel with `openat2`
//! (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`), so `..`, absolute symlinks and symlinked parents all stay
//! inside it, and every change is made with a `*at` call on a single name relative to a resolved directory.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
const DIRECTORY: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
/// openat2 returns EAGAIN when a concurrent rename could have let a lookup escape; retrying is the remedy.
const EAGAIN_RETRIES: usize = 16;
/// Bound on nesting when removing a directory tree an entry replaces.
const MAX_REMOVE_DEPTH: usize = 4096;

pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    pub(crate) fn open(dest: &Path) -> rustix::io::Result<Root> {
        let fd = rustix::fs::open(dest, DIRECTORY.union(OFlags::NOFOLLOW), Mode::empty())?;
        Ok(Root { fd })
    }

    /// Opens `path` (cleaned, relative; "" = the root) resolved inside the root with `flags` added.
    pub(crate) fn resolve(&self, path: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let path: &[u8] = if path.is_empty() { b"." } else { path };
        let mut attempts = 0;
        loop {
            match rustix::fs::openat2(&self.fd, path, flags, Mode::empty(), RESOLVE) {
                Err(Errno::AGAIN) if attempts < EAGAIN_RETRIES => attempts += 1,
                other => return other,
            }
        }
    }

    /// Opens the directory `path` (following symlinks, inside the root).
    pub(crate) fn directory(&self, path: &[u8]) -> rustix::io::Result<OwnedFd> {
        self.resolve(path, DIRECTORY)
    }

    /// Opens the directory `path`, creating missing components with mode 0755 (tar streams often omit
    /// parent directory entries).
    pub(crate) fn directory_creating(&self, path: &[u8]) -> rustix::io::Result<OwnedFd> {
        match self.directory(path) {
            Err(Errno::NOENT) => {}
            other => return other,
        }
        let mut parent = self.directory(b"")?;
        let mut end = 0;
        for component in path.split(|byte| *byte == b'/') {
            match rustix::fs::mkdirat(&parent, component, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    // mkdir's mode went through the umask; an implicit parent is 0755 regardless.
                    rustix::fs::chmodat(&parent, component, Mode::from_raw_mode(0o755), AtFlags::empty())?;
                }
                Err(Errno::EXIST) => {}
                Err(error) => return Err(error),
            }
            end += component.len();
            parent = self.directory(&path[..end])?;
            end += 1;
        }
        Ok(parent)
    }
}

/// Removes whatever is at `name` in `parent` unless it is a directory and `keep_directory` is set; returns
/// whether a directory was kept. Never follows symlinks.
pub(crate) fn clear(parent: &OwnedFd, name: &[u8], keep_directory: bool) -> rustix::io::Result<bool> {
    let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(false),
        Err(error) => return Err(error),
    };
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
        if keep_directory {
            return Ok(true);
        }
        remove_tree_at(parent, name, 0)?;
    } else {
        rustix::fs::unlinkat(parent, name, AtFlags::empty())?;
    }
    Ok(false)
}

fn remove_tree_at(parent: &OwnedFd, name: &[u8], depth: usize) -> rustix::io::Result<()> {
    if depth > MAX_REMOVE_DEPTH {
        return Err(Errno::LOOP);
    }
    let directory = rustix::fs::openat(parent, name, DIRECTORY.union(OFlags::NOFOLLOW), Mode::empty())?;
    let mut children: Vec<(Vec<u8>, bool)> = Vec::new();
    for entry in rustix::fs::Dir::read_from(&directory)? {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child == b"." || child == b".." {
            continue;
        }
        let is_directory = match entry.file_type() {
            rustix::fs::FileType::Unknown => {
                let stat = rustix::fs::statat(&directory, child, AtFlags::SYMLINK_NOFOLLOW)?;
                rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory
            }
            file_type => file_type == rustix::fs::FileType::Directory,
        };
        children.push((child.to_vec(), is_directory));
    }
    for (child, is_directory) in children {
        if is_directory {
            remove_tree_at(&directory, &child, depth + 1)?;
        } else {
            rustix::fs::unlinkat(&directory, child.as_slice(), AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}
