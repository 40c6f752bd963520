//! Overlay mounts on their own, as root: layer stacks no container runs on, so no runtime backend is
//! involved (the conformance suite runs containers on an overlay rootfs). Skipped when not root.

use std::path::PathBuf;

use berth_runtime::{mount_overlay, mount_read_only_layers, unmount};

fn can_mount() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipping: needs root");
    }
    root
}

#[test]
fn many_long_layer_paths_mount_past_the_page_limit() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().join("layers");
    // 60 layers of 64-character names: about 4 KiB of lowerdir with absolute paths.
    let lowers: Vec<PathBuf> = (0..60).map(|index| layers.join(format!("{index:064}"))).collect();
    for (index, lower) in lowers.iter().enumerate() {
        std::fs::create_dir_all(lower).unwrap();
        std::fs::write(lower.join(format!("file{index}")), "x").unwrap();
        std::fs::write(lower.join("which"), index.to_string()).unwrap();
    }
    let (upper, work, target) =
        (dir.path().join("upper"), dir.path().join("work"), dir.path().join("merged"));
    for path in [&upper, &work, &target] {
        std::fs::create_dir(path).unwrap();
    }
    let absolute_length: usize = lowers.iter().map(|lower| lower.as_os_str().len() + 1).sum();
    assert!(absolute_length > 4096, "test layers too short: {absolute_length}");
    let cwd_before = std::env::current_dir().unwrap();
    mount_overlay(&lowers, &upper, &work, &target).unwrap();
    let merged_top = std::fs::read_to_string(target.join("which"));
    let has_base = target.join("file0").exists();
    unmount(&target).unwrap();
    assert_eq!(merged_top.unwrap(), "59", "the last layer must be on top");
    assert!(has_base);
    assert_eq!(std::env::current_dir().unwrap(), cwd_before, "the process cwd must not move");
}

#[test]
fn read_only_layers_without_upper() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (one, two, target) = (dir.path().join("one"), dir.path().join("two"), dir.path().join("merged"));
    for path in [&one, &two, &target] {
        std::fs::create_dir(path).unwrap();
    }
    std::fs::write(one.join("a"), "1").unwrap();
    std::fs::write(two.join("b"), "2").unwrap();

    mount_read_only_layers(std::slice::from_ref(&one), &target).unwrap();
    let single = (target.join("a").exists(), std::fs::write(target.join("new"), "x"));
    unmount(&target).unwrap();
    assert!(single.0);
    assert_eq!(single.1.unwrap_err().raw_os_error(), Some(libc::EROFS));

    mount_read_only_layers(&[one, two], &target).unwrap();
    let stacked =
        (target.join("a").exists(), target.join("b").exists(), std::fs::write(target.join("new"), "x"));
    unmount(&target).unwrap();
    assert!(stacked.0 && stacked.1);
    assert!(stacked.2.is_err());
}
