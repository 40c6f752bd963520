//! `-u name|uid[:group|gid]` resolution against the image's own /etc/passwd and /etc/group, following the
//! rules Docker applies (moby's `GetExecUser`): numbers pass through, names must exist, and supplementary
//! groups come from /etc/group membership when no group was named. The files are opened with
//! `openat2(RESOLVE_IN_ROOT)` so an image whose /etc/passwd is a symlink cannot make berth read host files.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::Error;

/// The most berth reads of an image's passwd or group file; real ones are a few KiB.
const MAX_ACCOUNT_FILE: u64 = 16 * 1024 * 1024;

/// The ids a container process runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The passwd name, when the user was found there.
    pub username: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves a user spec (`-u` or the image's `User`); `None` or "" means root.
pub fn resolve_user(rootfs: &Path, spec: Option<&str>) -> Result<ResolvedUser, Error> {
    let spec = spec.unwrap_or("");
    if spec.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd_path = rootfs.join("etc/passwd");
    let passwd = read_in_root(rootfs, "etc/passwd")?.map(|text| parse_passwd(&text)).unwrap_or_default();

    let mut resolved = ResolvedUser::default();
    let numeric_uid = user_part.parse::<u32>().ok();
    let matched = passwd.iter().find(|entry| match numeric_uid {
        Some(uid) => entry.uid == uid,
        None => entry.name == user_part,
    });
    match (matched, numeric_uid) {
        (Some(entry), _) => {
            resolved.uid = entry.uid;
            resolved.gid = entry.gid;
            resolved.username = Some(entry.name.clone());
        }
        (None, Some(uid)) => resolved.uid = uid,
        (None, None) if user_part.is_empty() => {}
        (None, None) => return Err(Error::UserNotFound { name: user_part.to_string(), file: passwd_path }),
    }

    let group_path = rootfs.join("etc/group");
    let wants_groups =
        resolved.username.is_some() || group_part.is_some_and(|group| group.parse::<u32>().is_err());
    let groups = if wants_groups {
        read_in_root(rootfs, "etc/group")?.map(|text| parse_group(&text)).unwrap_or_default()
    } else {
        Vec::new()
    };
    match group_part.filter(|group| !group.is_empty()) {
        Some(group) => {
            let numeric_gid = group.parse::<u32>().ok();
            let matched = groups.iter().find(|entry| match numeric_gid {
                Some(gid) => entry.gid == gid,
                None => entry.name == group,
            });
            resolved.gid = match (matched, numeric_gid) {
                (Some(entry), _) => entry.gid,
                (None, Some(gid)) => gid,
                (None, None) => {
                    return Err(Error::GroupNotFound { name: group.to_string(), file: group_path });
                }
            };
        }
        None => {
            if let Some(name) = &resolved.username {
                for entry in &groups {
                    if entry.members.iter().any(|member| member == name)
                        && !resolved.additional_gids.contains(&entry.gid)
                    {
                        resolved.additional_gids.push(entry.gid);
                    }
                }
            }
        }
    }
    Ok(resolved)
}

/// Reads `relative` inside `rootfs` without following links out of it; `Ok(None)` if it does not exist.
fn read_in_root(rootfs: &Path, relative: &str) -> Result<Option<String>, Error> {
    let path = rootfs.join(relative);
    let read_error = |source: std::io::Error| Error::Read { path: path.clone(), source };
    let root: OwnedFd =
        rustix::fs::open(rootfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|errno| Error::Read { path: rootfs.to_path_buf(), source: errno.into() })?;
    let file = match rustix::fs::openat2(
        &root,
        relative,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(file) => file,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(read_error(errno.into())),
    };
    let mut bytes = Vec::new();
    std::fs::File::from(file).take(MAX_ACCOUNT_FILE).read_to_end(&mut bytes).map_err(read_error)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// passwd(5): `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped, as libc does.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// group(5): `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let members = fields
                .get(3)
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|member| !member.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some(GroupEntry { name: fields.first()?.to_string(), gid: fields.get(2)?.parse().ok()?, members })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nusers:x:100:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:bob\nstaff:x:50: alice \n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn empty_spec_is_root() {
        let rootfs = fake_rootfs();
        assert_eq!(resolve_user(rootfs.path(), None).unwrap(), ResolvedUser::default());
        assert_eq!(resolve_user(rootfs.path(), Some("")).unwrap(), ResolvedUser::default());
    }

    #[test]
    fn name_resolves_with_primary_and_supplementary_groups() {
        let rootfs = fake_rootfs();
        let user = resolve_user(rootfs.path(), Some("alice")).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.additional_gids, vec![10, 50]);
        assert_eq!(user.username.as_deref(), Some("alice"));
    }

    #[test]
    fn numeric_uid_in_passwd_takes_its_gid() {
        let rootfs = fake_rootfs();
        let user = resolve_user(rootfs.path(), Some("1001")).unwrap();
        assert_eq!((user.uid, user.gid), (1001, 100));
        assert_eq!(user.additional_gids, vec![10, 29]);
    }

    #[test]
    fn unknown_numeric_uid_passes_through_with_gid_zero() {
        let rootfs = fake_rootfs();
        let user = resolve_user(rootfs.path(), Some("4242")).unwrap();
        assert_eq!((user.uid, user.gid), (4242, 0));
        assert!(user.additional_gids.is_empty());
        let user = resolve_user(rootfs.path(), Some("4242:4343")).unwrap();
        assert_eq!((user.uid, user.gid), (4242, 4343));
    }

    #[test]
    fn explicit_group_by_name_replaces_supplementary_lookup() {
        let rootfs = fake_rootfs();
        let user = resolve_user(rootfs.path(), Some("alice:audio")).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 29));
        assert!(user.additional_gids.is_empty());
    }

    #[test]
    fn missing_names_are_errors_naming_them() {
        let rootfs = fake_rootfs();
        let error = resolve_user(rootfs.path(), Some("mallory")).unwrap_err();
        assert!(matches!(&error, Error::UserNotFound { name, .. } if name == "mallory"));
        assert!(error.to_string().contains("mallory"), "{error}");
        let error = resolve_user(rootfs.path(), Some("alice:nogroup")).unwrap_err();
        assert!(matches!(&error, Error::GroupNotFound { name, .. } if name == "nogroup"));
    }

    #[test]
    fn missing_passwd_file_allows_numbers_only() {
        let rootfs = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(rootfs.path(), Some("7:8")).unwrap().uid, 7);
        assert!(matches!(resolve_user(rootfs.path(), Some("alice")), Err(Error::UserNotFound { .. })));
    }

    #[test]
    fn passwd_symlink_cannot_escape_the_rootfs() {
        let host = tempfile::tempdir().unwrap();
        let host_passwd = host.path().join("passwd");
        std::fs::write(&host_passwd, "escaped:x:5:5::/:/bin/sh\n").unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        // The absolute target names a real host file; resolved inside the rootfs it does not exist.
        std::os::unix::fs::symlink(&host_passwd, rootfs.path().join("etc/passwd")).unwrap();
        assert!(std::fs::read_to_string(rootfs.path().join("etc/passwd")).unwrap().contains("escaped"));
        assert!(matches!(resolve_user(rootfs.path(), Some("escaped")), Err(Error::UserNotFound { .. })));
    }
}
