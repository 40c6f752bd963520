//! What goes into the test layers: a busybox rootfs from the host's static busybox, seeded data
//! for the pull benchmark image, per-platform markers, and the layer-semantics fixture with its
//! `/check.sh`. All content is a pure function of its inputs (the busybox binary and fixed seeds).

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use super::tar_layer::{EPOCH, Meta, TarLayer};

pub const MIB: usize = 1 << 20;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever, unlike a library PRNG
/// whose output may change between crate versions (which would change every digest).
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough integer in `low..=high` (the modulo bias is irrelevant for test data).
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next_u64() % (high - low + 1) as u64) as usize
    }

    pub fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Letters in roughly English frequencies, spaces and newlines, no long repeats: gzip gets
    /// about 2x, like real text and binaries, so decompression costs show in benchmarks.
    pub fn text_bytes(&mut self, len: usize) -> Vec<u8> {
        let table = text_table();
        let mut out = self.random_bytes(len);
        for byte in &mut out {
            *byte = table[usize::from(*byte)];
        }
        out
    }
}

fn text_table() -> [u8; 256] {
    const WEIGHTS: &[(u8, usize)] = &[
        (b'e', 12),
        (b't', 9),
        (b'a', 8),
        (b'o', 8),
        (b'i', 7),
        (b'n', 7),
        (b's', 6),
        (b'h', 6),
        (b'r', 6),
        (b'd', 4),
        (b'l', 4),
        (b'c', 3),
        (b'u', 3),
        (b'm', 2),
        (b'w', 2),
        (b'f', 2),
        (b'g', 2),
        (b'y', 2),
        (b'p', 2),
        (b'b', 1),
        (b'v', 1),
        (b'k', 1),
        (b'j', 1),
        (b'x', 1),
        (b'q', 1),
        (b'z', 1),
        (b' ', 18),
        (b'\n', 2),
    ];
    let mut alphabet: Vec<u8> =
        WEIGHTS.iter().flat_map(|&(byte, weight)| std::iter::repeat_n(byte, weight)).collect();
    alphabet.extend_from_slice(b".,;ETAOIN0123456789");
    std::array::from_fn(|index| alphabet[index % alphabet.len()])
}

pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The busybox rootfs: base directories, the binary, one symlink per applet, passwd and group.
pub fn busybox_layer<W: Write>(layer: &mut TarLayer<W>, busybox: &Path) -> anyhow::Result<()> {
    for (dir, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("run", 0o755),
    ] {
        layer.dir(dir, Meta::mode(mode))?;
    }
    let binary = std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    layer.file("bin/busybox", &binary, Meta::mode(0o755))?;
    for applet in applets(busybox)? {
        if applet != "bin/busybox" {
            layer.symlink(&applet, "/bin/busybox")?;
        }
    }
    layer.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        Meta::mode(0o644),
    )?;
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n", Meta::mode(0o644))?;
    layer.file("etc/berth-testbed", b"busybox\n", Meta::mode(0o644))?;
    Ok(())
}

/// `busybox --list-full`: applet paths relative to `/`, sorted and unique.
fn applets(busybox: &Path) -> anyhow::Result<Vec<String>> {
    let output = std::process::Command::new(busybox)
        .arg("--list-full")
        .output()
        .with_context(|| format!("running {} --list-full", busybox.display()))?;
    anyhow::ensure!(output.status.success(), "{} --list-full failed: {}", busybox.display(), output.status);
    let text = String::from_utf8(output.stdout).context("busybox --list-full printed non-UTF-8")?;
    let mut applets: Vec<String> =
        text.split_whitespace().map(|path| path.trim_matches('/').to_owned()).collect();
    applets.sort();
    applets.dedup();
    anyhow::ensure!(applets.len() > 50, "busybox --list-full listed only {} applets", applets.len());
    Ok(applets)
}

/// Data layer `index` (1..=5) of the benchmark image, about 40 MiB each, each a different mix of
/// file sizes and compressibility so a puller sees big sequential files and many small ones.
pub fn data_layer<W: Write>(layer: &mut TarLayer<W>, index: u32) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(1000 + u64::from(index));
    let base = format!("data/layer{index}");
    let file = Meta::mode(0o644);
    match index {
        1 => {
            for number in 0..30 {
                layer.file(&format!("{base}/text-{number:03}.txt"), &rng.text_bytes(MIB), file)?;
            }
            for number in 0..10 {
                layer.file(&format!("{base}/rand-{number:03}.bin"), &rng.random_bytes(MIB), file)?;
            }
        }
        2 => {
            // One 40 MiB file of 64 KiB chunks, three text to one random.
            let mut big = Vec::with_capacity(40 * MIB);
            for chunk in 0..640 {
                if chunk % 4 == 3 {
                    big.extend_from_slice(&rng.random_bytes(64 * 1024));
                } else {
                    big.extend_from_slice(&rng.text_bytes(64 * 1024));
                }
            }
            layer.file(&format!("{base}/big.bin"), &big, file)?;
        }
        3 => {
            for number in 0..5000 {
                let len = rng.range(256, 4096);
                let path = format!("{base}/small/d{:02}/f{number:04}.txt", number % 50);
                layer.file(&path, &rng.text_bytes(len), file)?;
            }
            for number in 0..15 {
                layer.file(&format!("{base}/text-{number:03}.txt"), &rng.text_bytes(2 * MIB), file)?;
            }
        }
        4 => {
            for number in 0..20 {
                let mut data = rng.text_bytes(MIB);
                data.extend_from_slice(&rng.random_bytes(MIB));
                layer.file(&format!("{base}/mix-{number:03}.bin"), &data, file)?;
            }
        }
        _ => {
            for number in 0..8 {
                let meta = Meta::mode(if number % 2 == 1 { 0o755 } else { 0o644 });
                layer.file(&format!("{base}/text-{number:03}.txt"), &rng.text_bytes(5 * MIB), meta)?;
            }
        }
    }
    Ok(())
}

/// `/etc/berth-platform` naming the platform, so a test can see which manifest of an index ran.
pub fn marker_layer<W: Write>(layer: &mut TarLayer<W>, platform: &str) -> anyhow::Result<()> {
    layer.file("etc/berth-platform", format!("{platform}\n").as_bytes(), Meta::mode(0o644))?;
    Ok(())
}

/// The 216-character file name under `/data/long/`, which needs a PAX `path` record.
pub fn long_name() -> String {
    format!("{}-long-name-needs-pax-or-gnu-headers-{}", "n".repeat(120), "x".repeat(60))
}

/// Lower layer of the fixture: everything the upper layer then removes, hides or overwrites, plus
/// every file kind and attribute an unpacker must reproduce.
pub fn fixture_lower<W: Write>(layer: &mut TarLayer<W>) -> anyhow::Result<()> {
    let file = Meta::mode(0o644);
    layer.file("data/keep.txt", b"v1", file)?;
    layer.file("data/gone.txt", b"bye", file)?;
    layer.file("data/dir-opaque/a", b"lower-a", file)?;
    layer.file("data/dir-opaque/b", b"lower-b", file)?;
    layer.file("data/dir-removed/x", b"x", file)?;
    layer.file("data/hardlink-src", b"linked", file)?;
    layer.hardlink("data/hardlink-dst", "data/hardlink-src")?;
    layer.symlink("data/symlink", "keep.txt")?;
    layer.file("data/setuid", b"#!/bin/sh\n", Meta::mode(0o4755))?;
    layer.file("data/private", b"secret", Meta::mode(0o600))?;
    layer.file("data/owned", b"owned", Meta { mode: 0o644, uid: 1000, gid: 1000 })?;
    layer.dir("data/sticky", Meta::mode(0o1777))?;
    layer.file(&format!("data/long/{}", long_name()), b"long", file)?;
    layer.file("data/unicode-ñé-日本.txt", b"unicode", file)?;
    layer.fifo("data/fifo", Meta::mode(0o644))?;
    layer.dir("data/empty-dir", Meta::mode(0o755))?;
    layer.file_with_pax("data/xattr", b"x", file, &[("SCHILY.xattr.user.berth-testbed", b"1")])?;
    Ok(())
}

/// Upper layer: whiteouts (`.wh.<name>`), an opaque-dir marker (`.wh..wh..opq`), an overwrite, and
/// the checker script (OCI image-spec layer.md, "Whiteouts").
pub fn fixture_upper<W: Write>(layer: &mut TarLayer<W>) -> anyhow::Result<()> {
    let file = Meta::mode(0o644);
    layer.file("data/.wh.gone.txt", b"", file)?;
    layer.file("data/.wh.dir-removed", b"", file)?;
    layer.file("data/dir-opaque/.wh..wh..opq", b"", file)?;
    layer.file("data/dir-opaque/c", b"upper", file)?;
    layer.file("data/keep.txt", b"v2", file)?;
    layer.file("check.sh", check_script().as_bytes(), Meta::mode(0o755))?;
    Ok(())
}

/// `/check.sh`: one `ok`/`FAIL` line per property and `ALL OK` (exit 0) when all hold.
pub fn check_script() -> String {
    CHECK_SCRIPT.replace("LONGNAME", &long_name()).replace("EPOCH", &EPOCH.to_string())
}

const CHECK_SCRIPT: &str = r#"#!/bin/sh
# Verifies that the engine applied the layers of testbed/layers:1 correctly. Prints one line per check
# and "ALL OK" / exit 0 when everything matches.
fail=0
ck() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
ck "whiteout removed /data/gone.txt"          '[ ! -e /data/gone.txt ]'
ck "whiteout removed dir /data/dir-removed"   '[ ! -e /data/dir-removed ]'
ck "opaque dir hides lower entries"           '[ ! -e /data/dir-opaque/a ] && [ ! -e /data/dir-opaque/b ]'
ck "opaque dir keeps upper entry"             '[ "$(cat /data/dir-opaque/c)" = upper ]'
ck "file overwritten by upper layer"          '[ "$(cat /data/keep.txt)" = v2 ]'
ck "hardlink shares inode"                    '[ "$(stat -c %i /data/hardlink-src)" = "$(stat -c %i /data/hardlink-dst)" ]'
ck "hardlink content"                         '[ "$(cat /data/hardlink-dst)" = linked ]'
ck "symlink target"                           '[ "$(readlink /data/symlink)" = keep.txt ]'
ck "setuid bit + mode 4755"                   '[ "$(stat -c %a /data/setuid)" = 4755 ]'
ck "mode 0600 preserved"                      '[ "$(stat -c %a /data/private)" = 600 ]'
ck "uid/gid 1000:1000"                        '[ "$(stat -c %u:%g /data/owned)" = 1000:1000 ]'
ck "sticky dir 1777"                          '[ "$(stat -c %a /data/sticky)" = 1777 ]'
ck "long (PAX) file name"                     '[ -f /data/long/LONGNAME ]'
ck "unicode file name"                        '[ -f "/data/unicode-ñé-日本.txt" ]'
ck "fifo"                                     '[ -p /data/fifo ]'
ck "empty dir"                                '[ -d /data/empty-dir ] && [ -z "$(ls -A /data/empty-dir)" ]'
ck "mtime preserved (2024-01-01)"             '[ "$(stat -c %Y /data/keep.txt)" = EPOCH ]'
ck "Env from config"                          '[ "$BERTH_TESTBED" = layers ]'
ck "WorkingDir from config"                   '[ "$(pwd)" = /data ]'
if [ $fail = 0 ]; then echo "ALL OK"; fi
exit $fail
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::compress::{Codec, Compressor};

    #[test]
    fn generator_is_fixed() {
        let mut rng = SplitMix64::new(0);
        // Reference values of SplitMix64 seeded with 0.
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn text_compresses_about_two_to_one() {
        let text = SplitMix64::new(7).text_bytes(MIB);
        let mut encoder = Compressor::new(Codec::Gzip, Vec::new()).unwrap();
        encoder.write_all(&text).unwrap();
        let ratio = text.len() as f64 / encoder.finish().unwrap().len() as f64;
        assert!((1.6..2.6).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn check_script_has_the_long_name_and_epoch() {
        let script = check_script();
        assert!(script.contains(&format!("/data/long/{}", long_name())));
        assert!(script.contains("= 1704067200 ]"));
        assert_eq!(long_name().len(), 216);
    }
}
