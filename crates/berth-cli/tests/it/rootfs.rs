//! The root filesystem berth builds equals, file for file, what `umoci unpack` (an independent
//! implementation) makes of the same image: names, types, modes, owners, sizes, link targets.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_testkit::Kind;

use crate::util::{Sandbox, image};

/// One entry as both sides must agree on it.
type Entry = (char, u32, u32, u32, u64, Option<PathBuf>);

fn walk(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let kind = meta.file_type();
            let (type_char, size, target) = if kind.is_dir() {
                pending.push(path.clone());
                ('d', 0, None)
            } else if kind.is_symlink() {
                ('l', 0, Some(std::fs::read_link(&path).expect("readlink")))
            } else if kind.is_fifo() {
                ('p', 0, None)
            } else if kind.is_char_device() {
                ('c', meta.rdev(), None)
            } else {
                ('f', meta.len(), None)
            };
            let relative = path.strip_prefix(root).expect("under root").to_path_buf();
            entries.insert(relative, (type_char, meta.mode() & 0o7777, meta.uid(), meta.gid(), size, target));
        }
    }
    entries
}

fn sha256_hex(text: &str) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("hash").to_string()
}

/// The image's layer dirs in berth's store, base first (chain IDs per the OCI image spec).
fn layer_dirs(sandbox: &Sandbox, reference: &str) -> Vec<PathBuf> {
    let inspect = sandbox.berth(&["inspect", reference]).success();
    let value: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("inspect json");
    let diff_ids: Vec<String> = value[0]["Config"]["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().expect("string").to_string())
        .collect();
    let mut chain = diff_ids[0].clone();
    let mut dirs = vec![];
    for (i, diff_id) in diff_ids.iter().enumerate() {
        if i > 0 {
            chain = format!("sha256:{}", sha256_hex(&format!("{chain} {diff_id}")));
        }
        dirs.push(sandbox.path().join("store/layers").join(chain.trim_start_matches("sha256:")));
    }
    dirs
}

fn compare_with_umoci(repo_tag: &str) {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, repo_tag);
    sandbox.berth(&["pull", &reference]).success();
    let layers = layer_dirs(&sandbox, &reference);
    let merged = sandbox.path().join("merged");
    std::fs::create_dir_all(&merged).expect("mountpoint");
    let berth_root = if layers.len() == 1 {
        layers[0].clone()
    } else {
        let lower: Vec<String> = layers.iter().rev().map(|p| p.display().to_string()).collect();
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &format!("ro,lowerdir={}", lower.join(":"))])
            .arg(&merged)
            .status()
            .expect("mount");
        assert!(status.success(), "overlay mount of berth's layers failed");
        merged.clone()
    };
    let catalog = berth_testkit::images::build_all().expect("test images");
    let bundle = sandbox.path().join("umoci-bundle");
    let output = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{repo_tag}", catalog.dir.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    let berth_entries = walk(&berth_root);
    if layers.len() > 1 {
        let _ = std::process::Command::new("umount").arg(&merged).status();
    }
    assert!(output.status.success(), "umoci unpack: {}", String::from_utf8_lossy(&output.stderr));
    let umoci_entries = walk(&bundle.join("rootfs"));
    let only_berth: Vec<_> = berth_entries.keys().filter(|k| !umoci_entries.contains_key(*k)).collect();
    let only_umoci: Vec<_> = umoci_entries.keys().filter(|k| !berth_entries.contains_key(*k)).collect();
    assert!(
        only_berth.is_empty() && only_umoci.is_empty(),
        "only berth: {only_berth:?}\nonly umoci: {only_umoci:?}"
    );
    for (path, entry) in &berth_entries {
        assert_eq!(Some(entry), umoci_entries.get(path), "{} differs", path.display());
    }
    assert!(berth_entries.len() > 10, "suspiciously few entries: {}", berth_entries.len());
}

#[test]
fn busybox_matches_umoci() {
    compare_with_umoci("testbed/busybox:1");
}

#[test]
fn layer_semantics_image_matches_umoci() {
    compare_with_umoci("testbed/layers:1");
}

#[test]
fn multi_layer_image_matches_umoci() {
    compare_with_umoci("testbed/multi:1");
}

/// umoci 0.4 reads neither zstd layers nor Docker media types nor indexes, so those variants are held to the
/// gzip OCI image umoci did check: the same uncompressed layers must land in the same layer dirs, with the
/// same contents, whatever the compression or manifest format.
#[test]
fn zstd_and_docker_variants_unpack_to_the_same_layers() {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, "testbed/busybox:1");
    sandbox.berth(&["pull", &reference]).success();
    let expected = layer_dirs(&sandbox, &reference);
    let expected_entries: Vec<_> = expected.iter().map(|dir| walk(dir)).collect();
    for variant in ["testbed/busybox:1-zstd", "testbed/busybox:1-docker", "testbed/multiarch:1"] {
        let other = Sandbox::new();
        let variant_reference = image(Kind::Plain, variant);
        other.berth(&["pull", &variant_reference]).success();
        let dirs = layer_dirs(&other, &variant_reference);
        let base = walk(&dirs[0]);
        assert_eq!(dirs[0].file_name(), expected[0].file_name(), "{variant}: base layer chain ID");
        assert_eq!(base, expected_entries[0], "{variant}: base layer contents");
    }
}
