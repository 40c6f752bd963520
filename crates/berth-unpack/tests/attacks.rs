//! One test per way a hostile layer tries to reach outside its directory. Each asserts that nothing next to
//! the destination (nor /etc/passwd) changed, whatever the outcome of the unpack.

mod common;

use berth_unpack::{Compression, Error, Limits};
use common::{Layer, Sandbox, exists};

fn assert_invalid(result: Result<berth_unpack::Unpacked, Error>) -> String {
    match result {
        Err(Error::InvalidEntry { entry, reason }) => format!("{entry}: {reason}"),
        other => panic!("expected InvalidEntry, got {other:?}"),
    }
}

#[test]
fn dot_dot_names_are_rejected() {
    let sandbox = Sandbox::new();
    let tar = Layer::new().file("../outside/evil", b"x").tar();
    let message = assert_invalid(sandbox.unpack(&tar));
    assert!(message.contains("escapes"), "{message}");
    let tar = Layer::new().file("a/../../outside/secret", b"x").tar();
    assert_invalid(sandbox.unpack(&tar));
    sandbox.assert_outside_unchanged();
}

#[test]
fn absolute_names_land_inside_the_root() {
    let sandbox = Sandbox::new();
    let absolute = format!("{}/evil", sandbox.outside.display());
    let tar = Layer::new().file(&absolute, b"inside").file("/etc/passwd", b"root::0:0::/:/bin/sh\n").tar();
    sandbox.unpack(&tar).unwrap();
    let relative = absolute.trim_start_matches('/');
    assert_eq!(std::fs::read(sandbox.dest.join(relative)).unwrap(), b"inside");
    assert!(exists(&sandbox.dest.join("etc/passwd")));
    sandbox.assert_outside_unchanged();
}

#[test]
fn writing_through_a_symlink_to_outside_is_refused() {
    let sandbox = Sandbox::new();
    let outside = sandbox.outside.to_str().unwrap().to_owned();
    let tar = Layer::new().symlink("link", &outside).file("link/evil", b"x").tar();
    assert_invalid(sandbox.unpack(&tar));
    assert!(!exists(&sandbox.outside.join("evil")));
    // The symlink itself is stored as-is.
    assert_eq!(std::fs::read_link(sandbox.dest.join("link")).unwrap().to_str().unwrap(), outside);
    sandbox.assert_outside_unchanged();
}

#[test]
fn overwriting_a_file_through_a_symlink_is_refused() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside.join("secret");
    let tar =
        Layer::new().symlink("secret-link", secret.to_str().unwrap()).file("secret-link", b"owned").tar();
    // The second entry replaces the symlink itself; the target is never opened.
    sandbox.unpack(&tar).unwrap();
    assert_eq!(std::fs::read(sandbox.dest.join("secret-link")).unwrap(), b"owned");
    sandbox.assert_outside_unchanged();
}

#[test]
fn symlink_to_dot_dot_stays_in_the_root() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .symlink("up", "..")
        .file("up/evil", b"x")
        .symlink("deep", "../../..")
        .file("deep/outside/evil2", b"y")
        .tar();
    let result = sandbox.unpack(&tar);
    // "up/evil" resolves to the root itself: the file is created inside.
    assert!(exists(&sandbox.dest.join("evil")));
    assert!(!exists(&sandbox.dir.path().join("evil")));
    assert!(result.is_ok(), "{result:?}");
    assert!(exists(&sandbox.dest.join("outside/evil2")));
    sandbox.assert_outside_unchanged();
}

#[test]
fn hard_links_out_of_the_root_are_refused() {
    let sandbox = Sandbox::new();
    let message = assert_invalid(sandbox.unpack(&Layer::new().hard_link("passwd", "/etc/passwd").tar()));
    assert!(message.contains("does not exist in this layer"), "{message}");
    assert_invalid(sandbox.unpack(&Layer::new().hard_link("secret", "../outside/secret").tar()));
    let outside = format!("{}/secret", sandbox.outside.display());
    assert_invalid(sandbox.unpack(&Layer::new().hard_link("secret2", &outside).tar()));
    // Through a symlinked directory: the link source is resolved inside the root too.
    let tar = Layer::new()
        .symlink("out", sandbox.outside.to_str().unwrap())
        .hard_link("secret3", "out/secret")
        .tar();
    assert_invalid(sandbox.unpack(&tar));
    sandbox.assert_outside_unchanged();
}

#[test]
fn whiteouts_of_dot_dot_and_dot_are_rejected() {
    let sandbox = Sandbox::new();
    for name in [".wh...", ".wh..", ".wh.", "sub/.wh...", "../.wh.outside"] {
        assert_invalid(sandbox.unpack(&Layer::new().file(name, b"").tar()));
    }
    assert!(exists(&sandbox.outside), "a whiteout never deletes anything");
    sandbox.assert_outside_unchanged();
}

#[test]
fn whiteout_through_a_symlink_stays_in_the_root() {
    let sandbox = Sandbox::new();
    let tar = Layer::new().symlink("up", "..").file("up/.wh.outside", b"").tar();
    sandbox.unpack(&tar).unwrap();
    // The whiteout device lands in the layer root, the sibling directory is untouched.
    let metadata = std::fs::symlink_metadata(sandbox.dest.join("outside")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&metadata.file_type()));
    sandbox.assert_outside_unchanged();
}

#[test]
fn opaque_marker_behind_a_symlink_stays_in_the_root() {
    let sandbox = Sandbox::new();
    let outside = sandbox.outside.to_str().unwrap().to_owned();
    let tar = Layer::new().symlink("link", &outside).file("link/.wh..wh..opq", b"").tar();
    assert_invalid(sandbox.unpack(&tar));
    let tar = Layer::new().symlink("up", "..").file("up/.wh..wh..opq", b"").tar();
    sandbox.unpack(&tar).unwrap();
    let mut value = [0u8; 8];
    let length = rustix::fs::getxattr(&sandbox.dest, "trusted.overlay.opaque", &mut value[..]).unwrap();
    assert_eq!(&value[..length], b"y", "the marker went on the layer root");
    sandbox.assert_outside_unchanged();
}

#[test]
fn forged_overlay_xattrs_are_dropped() {
    let sandbox = Sandbox::new();
    let tar = Layer::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc"), ("SCHILY.xattr.user.kept", b"1")])
        .dir("d")
        .tar();
    sandbox.unpack(&tar).unwrap();
    let mut value = [0u8; 16];
    assert!(
        rustix::fs::getxattr(sandbox.dest.join("d"), "trusted.overlay.redirect", &mut value[..]).is_err()
    );
    assert_eq!(rustix::fs::getxattr(sandbox.dest.join("d"), "user.kept", &mut value[..]).unwrap(), 1);
    sandbox.assert_outside_unchanged();
}

#[test]
fn nul_in_a_pax_path_is_rejected() {
    let sandbox = Sandbox::new();
    let tar = Layer::new().pax(&[("path", b"a\0/../../outside/evil")]).file("placeholder", b"x").tar();
    assert!(sandbox.unpack(&tar).is_err());
    sandbox.assert_outside_unchanged();
}

/// A tar with one file of `zeros` zero bytes, gzip'd as it is produced (never held whole in memory).
fn zero_bomb(zeros: u64) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(zeros);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    encoder.write_all(header.as_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let take = left.min(chunk.len() as u64) as usize;
        encoder.write_all(&chunk[..take]).unwrap();
        left -= take as u64;
    }
    encoder.write_all(&[0u8; 1024]).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn decompression_bomb_hits_the_size_cap() {
    let sandbox = Sandbox::new();
    let bomb = zero_bomb(200 << 20);
    assert!(bomb.len() < 1 << 20, "200 MiB of zeros compress to {} bytes", bomb.len());
    let limits = Limits { max_uncompressed: 16 << 20, ..Limits::default() };
    match berth_unpack::unpack(&bomb[..], Compression::Gzip, &sandbox.dest, &limits) {
        Err(Error::TooLarge { limit, .. }) => assert_eq!(limit, 16 << 20),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let written = std::fs::metadata(sandbox.dest.join("zeros")).map(|metadata| metadata.len()).unwrap_or(0);
    assert!(written <= 16 << 20, "wrote {written} bytes past the cap");
    sandbox.assert_outside_unchanged();
}

#[test]
fn decompression_bomb_hits_the_ratio_cap() {
    let sandbox = Sandbox::new();
    let bomb = zero_bomb(200 << 20);
    let limits = Limits { max_ratio: 100, ..Limits::default() };
    match berth_unpack::unpack(&bomb[..], Compression::Gzip, &sandbox.dest, &limits) {
        Err(error @ Error::RatioExceeded { .. }) => {
            let message = error.to_string();
            assert!(message.contains("100:1"), "{message}");
        }
        other => panic!("expected RatioExceeded, got {other:?}"),
    }
    sandbox.assert_outside_unchanged();
}
