//! Which cgroup layout the host has. The runtime spec differs (no cgroup namespace unless the host is pure
//! cgroup v2) and the engine reports it, because hybrid hosts break some runtimes (crun 1.8 refuses them).

use std::path::Path;

/// cgroup2 filesystem magic (linux/magic.h `CGROUP2_SUPER_MAGIC`).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// tmpfs magic (linux/magic.h `TMPFS_MAGIC`), what /sys/fs/cgroup is on v1 and hybrid hosts.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The host's cgroup layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 hierarchies under `/sys/fs/cgroup/<controller>`.
    V1,
    /// v1 controllers plus a cgroup2 tree at /sys/fs/cgroup/unified.
    Hybrid,
    /// /sys/fs/cgroup itself is cgroup2.
    V2,
}

impl std::fmt::Display for CgroupMode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            CgroupMode::V1 => "v1",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::V2 => "v2",
        })
    }
}

/// Looks at /sys/fs/cgroup the way runc does: its filesystem type decides v2; otherwise a cgroup2 mount at
/// /sys/fs/cgroup/unified means hybrid. A host where /sys/fs/cgroup cannot be examined counts as v1, the
/// layout that asks the least of the spec.
pub fn detect_cgroup_mode() -> CgroupMode {
    classify(
        filesystem_magic(Path::new("/sys/fs/cgroup")),
        filesystem_magic(Path::new("/sys/fs/cgroup/unified")),
    )
}

/// Whether a memory limit can also hold swap. cgroup v1 needs swap accounting (`memory.memsw.*`, off
/// unless the kernel was booted with it); runc fails to start a container whose spec sets swap without it.
/// On v2 runc ignores the swap setting when the kernel lacks swap support, so it is always safe.
pub fn memory_swap_supported(mode: CgroupMode) -> bool {
    match mode {
        CgroupMode::V2 => true,
        CgroupMode::V1 | CgroupMode::Hybrid => {
            Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        }
    }
}

// f_type is i64 on x86_64 but narrower on other architectures; the cast is a no-op only here.
#[allow(clippy::unnecessary_cast)]
fn filesystem_magic(path: &Path) -> Option<i64> {
    rustix::fs::statfs(path).ok().map(|stat| stat.f_type as i64)
}

fn classify(root: Option<i64>, unified: Option<i64>) -> CgroupMode {
    match (root, unified) {
        (Some(CGROUP2_SUPER_MAGIC), _) => CgroupMode::V2,
        (Some(TMPFS_MAGIC), Some(CGROUP2_SUPER_MAGIC)) => CgroupMode::Hybrid,
        _ => CgroupMode::V1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_filesystem_magic() {
        assert_eq!(classify(Some(CGROUP2_SUPER_MAGIC), None), CgroupMode::V2);
        assert_eq!(classify(Some(TMPFS_MAGIC), Some(CGROUP2_SUPER_MAGIC)), CgroupMode::Hybrid);
        assert_eq!(classify(Some(TMPFS_MAGIC), Some(TMPFS_MAGIC)), CgroupMode::V1);
        assert_eq!(classify(Some(TMPFS_MAGIC), None), CgroupMode::V1);
        assert_eq!(classify(None, None), CgroupMode::V1);
    }

    #[test]
    fn detects_something_on_this_host() {
        let mode = detect_cgroup_mode();
        // The testbed is hybrid; any answer must at least agree with the mount table.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let root_is_v2 = mounts.lines().any(|line| {
            line.split(' ').nth(1) == Some("/sys/fs/cgroup") && line.split(' ').nth(2) == Some("cgroup2")
        });
        assert_eq!(mode == CgroupMode::V2, root_is_v2);
    }
}
