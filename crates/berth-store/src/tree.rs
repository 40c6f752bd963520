//! Measuring and removing directory trees that may hold read-only directories (an unpacked layer keeps the
//! image's modes, e.g. 0555, which stop a non-root owner from deleting inside them).

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Bytes held by regular files under `path` (hard links counted once), without following symlinks.
pub(crate) fn tree_size(path: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    size_of(path, &mut seen)
}

fn size_of(path: &Path, seen: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.is_dir() {
        let mut total = 0;
        for entry in std::fs::read_dir(path)? {
            total += size_of(&entry?.path(), seen)?;
        }
        Ok(total)
    } else if metadata.is_file() && (metadata.nlink() == 1 || seen.insert((metadata.dev(), metadata.ino()))) {
        Ok(metadata.len())
    } else {
        Ok(0)
    }
}

/// Removes `path` (a file or a whole tree, never following symlinks). Missing is fine.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.is_dir() {
        return std::fs::remove_file(path);
    }
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path)?;
            std::fs::remove_dir_all(path)
        }
        other => other,
    }
}

fn make_writable(path: &Path) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.is_dir() {
        let mode = metadata.permissions().mode();
        if mode & 0o700 != 0o700 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700))?;
        }
        for entry in std::fs::read_dir(path)? {
            make_writable(&entry?.path())?;
        }
    }
    Ok(())
}
