//! The container's mount list (runtime-spec `config.md` "Mounts"): the kernel filesystems every Linux
//! container expects, berth's per-container /etc files, then the user's binds. Options follow Docker's
//! defaults so programs see the same /dev, /dev/shm and /sys they see under Docker.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use crate::error::Error;
use crate::options::{BindMount, EtcFiles};

fn mount(destination: &str, typ: &str, source: &Path, options: &[&str]) -> Result<Mount, Error> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|option| option.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|error| Error::SpecBuild { part: "mounts", reason: error.to_string() })
}

/// Kernel filesystems, /etc files, then binds. A user bind onto one of the default destinations (say
/// `-v ./hosts:/etc/hosts`) replaces the default rather than stacking on it.
pub(crate) fn container_mounts(binds: &[BindMount], etc_files: &EtcFiles) -> Result<Vec<Mount>, Error> {
    let kernel = |name: &str| PathBuf::from(name);
    let mut mounts = vec![
        mount("/proc", "proc", &kernel("proc"), &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", &kernel("tmpfs"), &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount(
            "/dev/pts",
            "devpts",
            &kernel("devpts"),
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        mount("/sys", "sysfs", &kernel("sysfs"), &["nosuid", "noexec", "nodev", "ro"])?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            &kernel("cgroup"),
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
        mount("/dev/mqueue", "mqueue", &kernel("mqueue"), &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev/shm",
            "tmpfs",
            &kernel("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount("/etc/resolv.conf", "bind", &etc_files.resolv_conf, &["rbind", "rprivate"])?,
        mount("/etc/hostname", "bind", &etc_files.hostname, &["rbind", "rprivate"])?,
        mount("/etc/hosts", "bind", &etc_files.hosts, &["rbind", "rprivate"])?,
    ];
    for bind in binds {
        if !bind.destination.starts_with('/') {
            return Err(Error::InvalidOption {
                option: "--volume",
                value: bind.destination.clone(),
                reason: "the destination must be an absolute path inside the container".into(),
            });
        }
        let destination = normalize_destination(&bind.destination);
        mounts.retain(|existing| existing.destination() != Path::new(&destination));
        let access = if bind.read_only { "ro" } else { "rw" };
        mounts.push(mount(&destination, "bind", &bind.source, &["rbind", "rprivate", access])?);
    }
    Ok(mounts)
}

/// "/data/" and "/data//x" name the same place as "/data" and "/data/x"; compare them that way.
fn normalize_destination(destination: &str) -> String {
    let parts: Vec<&str> = destination.split('/').filter(|part| !part.is_empty() && *part != ".").collect();
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etc_files() -> EtcFiles {
        EtcFiles {
            hosts: "/run/c/hosts".into(),
            resolv_conf: "/run/c/resolv.conf".into(),
            hostname: "/run/c/hostname".into(),
        }
    }

    #[test]
    fn default_mounts_cover_kernel_filesystems_and_etc_files() {
        let mounts = container_mounts(&[], &etc_files()).unwrap();
        let destinations: Vec<_> =
            mounts.iter().map(|mount| mount.destination().to_string_lossy().into_owned()).collect();
        for expected in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
        ] {
            assert!(
                destinations.iter().any(|destination| destination == expected),
                "{expected} missing from {destinations:?}"
            );
        }
        let sys = mounts.iter().find(|mount| mount.destination() == Path::new("/sys")).unwrap();
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
        let hosts = mounts.iter().find(|mount| mount.destination() == Path::new("/etc/hosts")).unwrap();
        assert_eq!(hosts.source().as_deref(), Some(Path::new("/run/c/hosts")));
    }

    #[test]
    fn binds_carry_read_only_and_replace_defaults() {
        let binds = vec![
            BindMount { source: "/srv/data".into(), destination: "/data/".into(), read_only: true },
            BindMount { source: "/srv/hosts".into(), destination: "/etc/hosts".into(), read_only: false },
        ];
        let mounts = container_mounts(&binds, &etc_files()).unwrap();
        let data = mounts.iter().find(|mount| mount.destination() == Path::new("/data")).unwrap();
        assert_eq!(data.typ().as_deref(), Some("bind"));
        assert!(data.options().as_ref().unwrap().iter().any(|option| option == "rbind"));
        assert!(data.options().as_ref().unwrap().iter().any(|option| option == "ro"));
        let hosts: Vec<_> =
            mounts.iter().filter(|mount| mount.destination() == Path::new("/etc/hosts")).collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].source().as_deref(), Some(Path::new("/srv/hosts")));
    }

    #[test]
    fn relative_destination_is_refused() {
        let binds = vec![BindMount { source: "/srv".into(), destination: "data".into(), read_only: false }];
        assert!(matches!(container_mounts(&binds, &etc_files()), Err(Error::InvalidOption { .. })));
    }
}
