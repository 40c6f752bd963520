//! The container's root filesystem: the image's unpacked layer directories stacked with overlayfs
//! (kernel docs `filesystems/overlayfs.rst`), plus a per-container upper and work dir that take writes.
//!
//! Layer order: callers pass layers in image order — `lowers[0]` is the base layer, the last element is
//! the image's last (top-most) layer. overlayfs wants the opposite: in `lowerdir=A:B:C` the first entry,
//! A, is on top. [`mount_overlay`] reverses the list so the image's last layer wins.
//!
//! Option length: the kernel copies mount data into one page (4096 bytes on x86_64), so a deep image with
//! long store paths can overflow it. When the absolute form is too long, the mount is retried from a
//! helper thread that has its own working directory (`unshare(CLONE_FS)`) set to the layers' common parent,
//! with each layer named relative to it; the rest of the process keeps its working directory. If even
//! that is too long, the error says how long and what the limit is.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::Error;

/// Mounts `lowers` (image order: base first) with a writable `upper` and its `work` dir on `target`.
/// `upper` and `work` must be empty directories on the same filesystem.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<(), Error> {
    if lowers.is_empty() {
        return Err(Error::NoLayers { target: target.to_path_buf() });
    }
    for path in lowers.iter().map(PathBuf::as_path).chain([upper, work]) {
        check_overlay_path(path)?;
    }
    let suffix = format!(",upperdir={},workdir={}", upper.display(), work.display());
    mount_with_lowers(lowers, &suffix, target)
}

/// Mounts the layers read-only, with no upper dir (for inspection, or a container whose root is read-only
/// and needs no writable layer). One layer is a read-only bind mount: overlayfs needs two lower layers
/// when it has no upper.
pub fn mount_read_only_layers(lowers: &[PathBuf], target: &Path) -> Result<(), Error> {
    match lowers {
        [] => Err(Error::NoLayers { target: target.to_path_buf() }),
        [only] => {
            let mount_error = |errno: rustix::io::Errno| Error::Mount {
                what: "a read-only layer bind",
                target: target.to_path_buf(),
                source: errno.into(),
            };
            rustix::mount::mount_bind(only, target).map_err(mount_error)?;
            // A bind mount ignores MS_RDONLY on creation; read-only takes a remount of the bind.
            rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, c"").map_err(
                |errno| {
                    let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
                    mount_error(errno)
                },
            )
        }
        _ => {
            for path in lowers {
                check_overlay_path(path)?;
            }
            mount_with_lowers(lowers, "", target)
        }
    }
}

/// Unmounts `target`. Nothing mounted there is not an error, so cleanup can run twice; a busy mount is
/// detached lazily, so a stray process holding it does not leak the container's directory forever.
pub fn unmount(target: &Path) -> Result<(), Error> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH)
            .map_err(|errno| Error::Unmount { target: target.to_path_buf(), source: errno.into() }),
        Err(errno) => Err(Error::Unmount { target: target.to_path_buf(), source: errno.into() }),
    }
}

/// ',' separates mount options and ':' separates layers; overlayfs has no escaping berth can rely on
/// across kernels, so such paths are refused with a clear message.
fn check_overlay_path(path: &Path) -> Result<(), Error> {
    let text = path.to_string_lossy();
    match text.chars().find(|character| matches!(character, ',' | ':')) {
        Some(character) => Err(Error::UnsupportedOverlayPath { path: path.to_path_buf(), character }),
        None => Ok(()),
    }
}

/// `lowerdir=` with the top-most layer first.
fn lowerdir_option(lowers: &[PathBuf], base: Option<&Path>) -> String {
    let names: Vec<String> = lowers
        .iter()
        .rev()
        .map(|lower| match base.and_then(|base| lower.strip_prefix(base).ok()) {
            Some(relative) => relative.display().to_string(),
            None => lower.display().to_string(),
        })
        .collect();
    format!("lowerdir={}", names.join(":"))
}

/// The largest mount data the kernel accepts, terminating NUL included.
fn mount_data_limit() -> usize {
    // SAFETY: sysconf only reads a constant of the running system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096)
}

fn mount_with_lowers(lowers: &[PathBuf], suffix: &str, target: &Path) -> Result<(), Error> {
    let limit = mount_data_limit();
    let absolute = format!("{}{suffix}", lowerdir_option(lowers, None));
    if absolute.len() < limit {
        return overlay_mount_call(&absolute, target);
    }
    let Some(base) = common_parent(lowers) else {
        return Err(Error::OverlayOptionsTooLong {
            target: target.to_path_buf(),
            length: absolute.len(),
            limit,
            layers: lowers.len(),
        });
    };
    let relative = format!("{}{suffix}", lowerdir_option(lowers, Some(&base)));
    if relative.len() >= limit {
        return Err(Error::OverlayOptionsTooLong {
            target: target.to_path_buf(),
            length: relative.len(),
            limit,
            layers: lowers.len(),
        });
    }
    // A relative target would resolve against the helper thread's directory; pin it first.
    let target = std::path::absolute(target).map_err(|source| Error::Mount {
        what: "overlay",
        target: target.to_path_buf(),
        source,
    })?;
    let thread_target = target.clone();
    let worker = std::thread::spawn(move || -> Result<(), Error> {
        let fs_error = |errno: rustix::io::Errno| Error::Mount {
            what: "overlay (relative layer paths)",
            target: thread_target.clone(),
            source: errno.into(),
        };
        // SAFETY: CLONE_FS only gives this thread a private cwd/root/umask; no file descriptor table is
        // unshared, so the safety condition of `unshare_unsafe` (about CLONE_FILES) does not arise.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }.map_err(fs_error)?;
        rustix::process::chdir(&base).map_err(fs_error)?;
        overlay_mount_call(&relative, &thread_target)
    });
    worker.join().unwrap_or_else(|_| {
        Err(Error::Mount {
            what: "overlay",
            target,
            source: std::io::Error::other("the mount helper thread panicked"),
        })
    })
}

fn overlay_mount_call(data: &str, target: &Path) -> Result<(), Error> {
    let mount_error =
        |source: std::io::Error| Error::Mount { what: "overlay", target: target.to_path_buf(), source };
    let data = CString::new(data)
        .map_err(|_| mount_error(std::io::Error::other("a layer path contains a NUL byte")))?;
    rustix::mount::mount("overlay", target, "overlay", MountFlags::empty(), data.as_c_str())
        .map_err(|errno| mount_error(errno.into()))
}

/// The deepest directory containing every layer, if there is one other than "/".
fn common_parent(lowers: &[PathBuf]) -> Option<PathBuf> {
    let first = lowers.first()?.parent()?.to_path_buf();
    let mut base = first;
    for lower in lowers {
        while !lower.starts_with(&base) || lower == &base {
            base = base.parent()?.to_path_buf();
        }
    }
    (base != Path::new("/") && base.is_absolute()).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_layer_comes_first() {
        let lowers = vec![
            PathBuf::from("/s/layers/base"),
            PathBuf::from("/s/layers/mid"),
            PathBuf::from("/s/layers/top"),
        ];
        assert_eq!(lowerdir_option(&lowers, None), "lowerdir=/s/layers/top:/s/layers/mid:/s/layers/base");
        assert_eq!(lowerdir_option(&lowers, Some(Path::new("/s/layers"))), "lowerdir=top:mid:base");
    }

    #[test]
    fn common_parent_of_store_layers() {
        let lowers = vec![PathBuf::from("/s/layers/a"), PathBuf::from("/s/layers/b")];
        assert_eq!(common_parent(&lowers), Some(PathBuf::from("/s/layers")));
        let lowers = vec![PathBuf::from("/s/layers/a"), PathBuf::from("/t/b")];
        assert_eq!(common_parent(&lowers), None);
    }

    #[test]
    fn separators_in_paths_are_refused() {
        assert!(matches!(
            check_overlay_path(Path::new("/a,b")),
            Err(Error::UnsupportedOverlayPath { character: ',', .. })
        ));
        assert!(matches!(
            check_overlay_path(Path::new("/a:b")),
            Err(Error::UnsupportedOverlayPath { character: ':', .. })
        ));
        assert!(check_overlay_path(Path::new("/store/layers/0123abc")).is_ok());
    }
}
