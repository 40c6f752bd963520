//! Every entry type of a layer, unpacked as root, checked field by field; and the diff_id.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use berth_unpack::{Compression, Limits};
use common::{Layer, MTIME, Sandbox, gzip};
use sha2::Digest as _;
use tar::EntryType;

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let mut value = [0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut value[..]).ok().map(|length| value[..length].to_vec())
}

fn fixture() -> Vec<u8> {
    let long_name = format!("deep/{}/file", "n".repeat(150));
    let long_target = format!("/{}", "t".repeat(200));
    let mut layer = Layer::new();
    layer
        .entry("./", EntryType::Directory, 0o755, b"", |_| {})
        .entry("etc", EntryType::Directory, 0o750, b"", |header| header.set_gid(42))
        .pax(&[("SCHILY.xattr.user.origin", b"fixture"), ("SCHILY.xattr.security.selinux", b"dropped")])
        .entry("etc/hostname", EntryType::Regular, 0o640, b"berth\n", |header| {
            header.set_uid(1000);
            header.set_gid(1001);
        })
        .entry("usr/bin/tool", EntryType::Regular, 0o4755, b"#!/bin/sh\n", |header| header.set_uid(1000))
        .entry("tmp", EntryType::Directory, 0o1777, b"", |_| {})
        .entry("shared", EntryType::Directory, 0o2775, b"", |header| header.set_gid(100))
        .symlink("bin", "usr/bin")
        .hard_link("etc/hostname.hard", "etc/hostname")
        .entry("run/fifo", EntryType::Fifo, 0o600, b"", |_| {})
        .entry("dev/null", EntryType::Char, 0o666, b"", |header| {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        })
        .entry("dev/loop0", EntryType::Block, 0o660, b"", |header| {
            header.set_device_major(7).unwrap();
            header.set_device_minor(0).unwrap();
        })
        .file("etc/.wh.removed", b"")
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq", b"")
        .entry(&long_name, EntryType::Regular, 0o644, b"long", |_| {})
        .pax(&[("path", b"pax/named/by/extension"), ("mtime", b"1600000123.5")])
        .file("placeholder", b"pax")
        .pax(&[("linkpath", long_target.as_bytes())])
        .symlink("long-link", "short")
        // A later entry for an existing directory updates it; its mode wins.
        .entry("tmp", EntryType::Directory, 0o1777, b"", |_| {});
    layer.tar()
}

#[test]
fn every_entry_type_is_unpacked_with_its_metadata() {
    let sandbox = Sandbox::new();
    let tar = fixture();
    let unpacked =
        berth_unpack::unpack(&gzip(&tar)[..], Compression::Gzip, &sandbox.dest, &Limits::default()).unwrap();
    assert_eq!(unpacked.entries, 18);
    let root = &sandbox.dest;
    let metadata = |path: &str| std::fs::symlink_metadata(root.join(path)).unwrap();

    // Directories: mode, owner and mtime (set after their children were created).
    let etc = metadata("etc");
    assert!(etc.is_dir());
    assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
    assert_eq!(etc.gid(), 42);
    assert_eq!(etc.mtime(), MTIME as i64);
    assert_eq!(metadata("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(metadata("shared").permissions().mode() & 0o7777, 0o2775);
    assert_eq!(metadata("shared").gid(), 100);
    // An implicit parent.
    assert_eq!(metadata("usr").permissions().mode() & 0o7777, 0o755);

    // Regular files: content, owner, mode incl. setuid (applied after chown), mtime, xattrs.
    let hostname = metadata("etc/hostname");
    assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"berth\n");
    assert_eq!((hostname.uid(), hostname.gid()), (1000, 1001));
    assert_eq!(hostname.permissions().mode() & 0o7777, 0o640);
    assert_eq!(hostname.mtime(), MTIME as i64);
    assert_eq!(xattr(&root.join("etc/hostname"), "user.origin").as_deref(), Some(&b"fixture"[..]));
    assert_eq!(xattr(&root.join("etc/hostname"), "security.selinux"), None);
    let tool = metadata("usr/bin/tool");
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(tool.uid(), 1000);

    // Links.
    assert_eq!(std::fs::read_link(root.join("bin")).unwrap().to_str(), Some("usr/bin"));
    assert_eq!(metadata("etc/hostname.hard").ino(), hostname.ino());
    assert_eq!(metadata("etc/hostname").nlink(), 2);
    let long_target = std::fs::read_link(root.join("long-link")).unwrap();
    assert_eq!(long_target.to_str().unwrap().len(), 201);

    // Nodes.
    assert!(metadata("run/fifo").file_type().is_fifo());
    assert_eq!(metadata("run/fifo").permissions().mode() & 0o7777, 0o600);
    let null = metadata("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.permissions().mode() & 0o7777, 0o666);
    let loop0 = metadata("dev/loop0");
    assert!(loop0.file_type().is_block_device());
    assert_eq!(loop0.rdev(), rustix::fs::makedev(7, 0));

    // Whiteouts in overlay format.
    let removed = metadata("etc/removed");
    assert!(removed.file_type().is_char_device());
    assert_eq!(removed.rdev(), 0);
    assert!(!root.join("etc/.wh.removed").exists());
    assert_eq!(xattr(&root.join("var/cache"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(!root.join("var/cache/.wh..wh..opq").exists());

    // Long and PAX names, PAX mtime with a fraction.
    let long_name = format!("deep/{}/file", "n".repeat(150));
    assert_eq!(std::fs::read(root.join(long_name)).unwrap(), b"long");
    let pax_named = metadata("pax/named/by/extension");
    assert_eq!(std::fs::read(root.join("pax/named/by/extension")).unwrap(), b"pax");
    assert_eq!((pax_named.mtime(), pax_named.mtime_nsec()), (1_600_000_123, 500_000_000));
    assert!(!root.join("placeholder").exists());

    sandbox.assert_outside_unchanged();
}

#[test]
fn diff_id_is_the_sha256_of_the_raw_tar() {
    let tar = fixture();
    let expected = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
    // Declared compression, sniffed compression, and plain.
    let zstd = zstd::encode_all(&tar[..], 3).unwrap();
    for (bytes, declared) in [
        (gzip(&tar), Compression::Gzip),
        (gzip(&tar), Compression::None),
        (zstd, Compression::Zstd),
        (tar.clone(), Compression::None),
    ] {
        let sandbox = Sandbox::new();
        let unpacked = berth_unpack::unpack(&bytes[..], declared, &sandbox.dest, &Limits::default()).unwrap();
        assert_eq!(unpacked.diff_id.to_string(), expected, "{declared:?}");
        assert_eq!(unpacked.uncompressed_size, tar.len() as u64);
    }
}

#[test]
fn media_types_map_to_compressions() {
    assert_eq!(
        Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
        Some(Compression::Zstd)
    );
    assert_eq!(
        Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Some(Compression::Gzip)
    );
    assert_eq!(
        Compression::from_media_type("application/vnd.oci.image.layer.v1.tar"),
        Some(Compression::None)
    );
    assert_eq!(Compression::from_media_type("application/octet-stream"), None);
    assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Compression::Zstd));
    assert_eq!(Compression::sniff(b"etc/"), None);
}

#[test]
fn truncated_stream_is_a_read_error() {
    let sandbox = Sandbox::new();
    let compressed = gzip(&fixture());
    let result = berth_unpack::unpack(
        &compressed[..compressed.len() / 2],
        Compression::Gzip,
        &sandbox.dest,
        &Limits::default(),
    );
    assert!(matches!(result, Err(berth_unpack::Error::Read { .. })), "{result:?}");
}

#[test]
fn files_follow_a_directory_replaced_between_them() {
    // Files of one directory reuse its resolved descriptor; an entry that replaces the directory in between
    // (with a symlink, a file, a fresh directory) must send the later files through the new path.
    let sandbox = Sandbox::new();
    let mut layer = Layer::new();
    layer
        .dir("real")
        .file("d/first", b"1")
        .symlink("d", "real")
        .file("d/second", b"2")
        .file("gone/a", b"a")
        .file("gone", b"now a file")
        .dir("gone")
        .file("gone/b", b"b")
        .file("x/y/z", b"z")
        .file("x/y", b"now a file")
        .file("x/y2", b"sibling");
    let tar = layer.tar();
    sandbox.unpack(&tar).unwrap();
    let dest = &sandbox.dest;
    assert_eq!(std::fs::read(dest.join("real/second")).unwrap(), b"2");
    assert!(!dest.join("real/first").exists());
    assert!(std::fs::symlink_metadata(dest.join("d")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(dest.join("gone/b")).unwrap(), b"b");
    assert!(!dest.join("gone/a").exists());
    assert_eq!(std::fs::read(dest.join("x/y")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(dest.join("x/y2")).unwrap(), b"sibling");
    sandbox.assert_outside_unchanged();
}
