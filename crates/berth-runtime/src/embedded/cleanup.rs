//! What the helper removes itself after a container failed to start.
//!
//! libcontainer removes the cgroups of a container whose init process failed (a missing command, say)
//! inside `build`, while that process is still an unreaped zombie of the helper. Since Linux keeps a
//! zombie in its cgroup until it is reaped (cgroup v1 and v2 alike), the removal can fail after its
//! retries and leave empty cgroup directories behind. The helper reaps its children, then removes what is
//! left.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a failed init process may take to exit after reporting its error.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// Reaps every child, waiting up to [`REAP_WAIT`] for those still running, then removes the container's
/// cgroup directory in every cgroup hierarchy where it is left. `cgroups_path` is the spec's
/// `linux.cgroupsPath`; only an absolute path (what berth's specs hold) is cleaned up.
pub(super) fn after_failed_start(cgroups_path: Option<&Path>) {
    reap_children(REAP_WAIT);
    let Some(relative) = cgroups_path.and_then(|path| path.strip_prefix("/").ok()) else { return };
    if relative.as_os_str().is_empty() {
        return;
    }
    for hierarchy in cgroup_mount_points() {
        let directory = hierarchy.join(relative);
        if directory.is_dir()
            && let Err(error) = std::fs::remove_dir(&directory)
        {
            eprintln!("embedded runtime: cannot remove cgroup {}: {error}", directory.display());
        }
    }
}

/// Reaps exited children until none is left or `limit` has passed.
pub(super) fn reap_children(limit: Duration) {
    let started = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only the status integer.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped > 0 {
            continue;
        }
        if reaped < 0 || started.elapsed() > limit {
            // ECHILD: no child left (or an error waiting would not cure).
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Mount points of cgroup and cgroup2 filesystems, from /proc/self/mountinfo (proc(5): field 5 is the
/// mount point, the filesystem type follows the " - " separator).
fn cgroup_mount_points() -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    mountinfo.lines().filter_map(parse_cgroup_mount).collect()
}

fn parse_cgroup_mount(line: &str) -> Option<PathBuf> {
    let (mount, filesystem) = line.split_once(" - ")?;
    let filesystem_type = filesystem.split(' ').next()?;
    if filesystem_type != "cgroup" && filesystem_type != "cgroup2" {
        return None;
    }
    let mount_point = mount.split(' ').nth(4)?;
    // mountinfo escapes spaces and a few other bytes as octal; cgroup mount points have none in practice.
    Some(PathBuf::from(mount_point))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup_mounts_in_mountinfo_lines() {
        let v1 = "35 25 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory";
        let v2 = "30 25 0:26 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw";
        let other = "25 1 0:24 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755";
        assert_eq!(parse_cgroup_mount(v1), Some(PathBuf::from("/sys/fs/cgroup/memory")));
        assert_eq!(parse_cgroup_mount(v2), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(parse_cgroup_mount(other), None);
        assert_eq!(parse_cgroup_mount("garbage"), None);
    }
}
