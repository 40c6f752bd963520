//! The test images: deterministic across builds, complete, and pullable by an independent client
//! (skopeo) from every registry kind with the digests the catalog promises.

use std::path::Path;
use std::process::Command;

use berth_testkit::images::{self, Catalog, Image, media_type};
use berth_testkit::{ALICE, Kind, Testbed};
use sha2::Digest as _;

fn digests(catalog: &Catalog) -> Vec<(String, String)> {
    catalog
        .images
        .iter()
        .map(|image| (format!("{}:{}", image.repository, image.tag), image.manifest.digest.clone()))
        .collect()
}

#[test]
fn builds_are_byte_identical() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let busybox = Path::new(images::HOST_BUSYBOX);
    let one = images::build_into(first.path(), busybox, false).unwrap();
    let two = images::build_into(second.path(), busybox, false).unwrap();
    assert_eq!(digests(&one), digests(&two));
    assert_eq!(one.images, two.images);
    let layers = one.image("testbed/layers", "1").unwrap();
    let busybox_image = one.image("testbed/busybox", "1").unwrap();
    for image in [layers, busybox_image] {
        for blob in image.blobs() {
            assert_eq!(one.read_blob(&blob.digest).unwrap(), two.read_blob(&blob.digest).unwrap());
        }
    }
    assert!(one.get("testbed/multi", "1").is_none(), "multi was asked to be skipped");
}

/// Every blob and manifest the catalog names exists, has the promised size and digest, and the
/// manifests reference exactly what the catalog says.
fn check_catalog(catalog: &Catalog) {
    for image in &catalog.images {
        let mut descriptors = vec![&image.manifest];
        descriptors.extend(image.manifests.iter().map(|manifest| &manifest.manifest));
        descriptors.extend(image.blobs());
        for descriptor in descriptors {
            let bytes = catalog.read_blob(&descriptor.digest).unwrap();
            assert_eq!(bytes.len() as u64, descriptor.size, "{}", descriptor.digest);
            assert_eq!(format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))), descriptor.digest);
        }
        for manifest in &image.manifests {
            let body: serde_json::Value =
                serde_json::from_slice(&catalog.read_blob(&manifest.manifest.digest).unwrap()).unwrap();
            assert_eq!(body["mediaType"], manifest.manifest.media_type.as_str());
            assert_eq!(body["config"]["digest"], manifest.config.digest.as_str());
            let layer_digests: Vec<&str> = body["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|layer| layer["digest"].as_str().unwrap())
                .collect();
            let expected: Vec<&str> = manifest.layers.iter().map(|layer| layer.digest.as_str()).collect();
            assert_eq!(layer_digests, expected);
            let config: serde_json::Value =
                serde_json::from_slice(&catalog.read_blob(&manifest.config.digest).unwrap()).unwrap();
            assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(manifest.diff_ids));
        }
    }
}

#[test]
fn cache_is_complete_and_consistent() {
    let catalog = images::build_all().unwrap();
    check_catalog(catalog);
    let expected = [
        ("testbed/busybox", "1", media_type::OCI_MANIFEST),
        ("testbed/busybox", "1-zstd", media_type::OCI_MANIFEST),
        ("testbed/busybox", "1-docker", media_type::DOCKER_MANIFEST),
        ("library/busybox", "1", media_type::OCI_MANIFEST),
        ("library/busybox", "latest", media_type::OCI_MANIFEST),
        ("testbed/multi", "1", media_type::OCI_MANIFEST),
        ("testbed/multi", "1-zstd", media_type::OCI_MANIFEST),
        ("testbed/multiarch", "1", media_type::OCI_INDEX),
        ("testbed/multiarch", "1-docker", media_type::DOCKER_MANIFEST_LIST),
        ("testbed/layers", "1", media_type::OCI_MANIFEST),
    ];
    for (repository, tag, manifest_type) in expected {
        assert_eq!(
            catalog.image(repository, tag).unwrap().manifest.media_type,
            manifest_type,
            "{repository}:{tag}"
        );
    }
    assert_eq!(catalog.images.len(), expected.len());
    let busybox = catalog.image("testbed/busybox", "1").unwrap();
    assert_eq!(catalog.image("library/busybox", "latest").unwrap().manifest, busybox.manifest);
    let zstd = catalog.image("testbed/busybox", "1-zstd").unwrap().single().unwrap();
    assert_eq!(zstd.layers[0].media_type, media_type::OCI_LAYER_ZSTD);
    assert_eq!(zstd.diff_ids, busybox.single().unwrap().diff_ids, "same rootfs, other compression");

    let multi = catalog.image("testbed/multi", "1").unwrap().single().unwrap();
    assert_eq!(multi.layers.len(), 6);
    let raw: u64 = multi.uncompressed_sizes.iter().sum();
    let compressed: u64 = multi.layers.iter().map(|layer| layer.size).sum();
    assert!((190 << 20..230 << 20).contains(&raw), "multi is {raw} bytes uncompressed");
    let ratio = raw as f64 / compressed as f64;
    assert!((1.15..1.8).contains(&ratio), "multi compresses {ratio}x");

    let index = catalog.image("testbed/multiarch", "1").unwrap();
    assert_eq!(index.manifests.len(), 3);
    let attestation = &index.manifests[2];
    assert_eq!(attestation.platform.as_ref().unwrap().os, "unknown");
    assert_eq!(attestation.annotations["vnd.docker.reference.type"], "attestation-manifest");
    assert_eq!(attestation.annotations["vnd.docker.reference.digest"], index.manifests[0].manifest.digest);
    let arm = index.manifests[1].platform.as_ref().unwrap();
    assert_eq!((arm.architecture.as_str(), arm.variant.as_deref()), ("arm64", Some("v8")));
}

/// The fixture's upper layer really carries whiteouts and the script, and the lower one the PAX
/// entries, as an unpacker will see them.
#[test]
fn layers_fixture_entries() {
    let catalog = images::build_all().unwrap();
    let fixture = catalog.image("testbed/layers", "1").unwrap().single().unwrap();
    assert_eq!(fixture.layers.len(), 3);
    let entries = |index: usize| -> Vec<(String, tar::EntryType, u32, u64)> {
        let blob = catalog.read_blob(&fixture.layers[index].digest).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.entry_type(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                )
            })
            .collect()
    };
    let lower = entries(1);
    let find =
        |name: &str| lower.iter().find(|entry| entry.0 == name).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(find("data/setuid").2, 0o4755);
    assert_eq!(find("data/owned").3, 1000);
    assert_eq!(find("data/sticky/").2, 0o1777);
    assert!(find("data/fifo").1.is_fifo());
    assert!(find("data/hardlink-dst").1.is_hard_link());
    assert!(find("data/unicode-ñé-日本.txt").1.is_file());
    assert!(lower.iter().any(|entry| entry.0.len() > 200 && entry.0.starts_with("data/long/")));
    let upper: Vec<String> = entries(2).into_iter().map(|entry| entry.0).collect();
    assert!(upper.contains(&"data/.wh.gone.txt".to_owned()));
    assert!(upper.contains(&"data/dir-opaque/.wh..wh..opq".to_owned()));
    assert!(upper.contains(&"check.sh".to_owned()));
    let config: serde_json::Value =
        serde_json::from_slice(&catalog.read_blob(&fixture.config.digest).unwrap()).unwrap();
    assert_eq!(config["config"]["WorkingDir"], "/data");
    assert!(config["config"]["Env"].as_array().unwrap().iter().any(|env| env == "BERTH_TESTBED=layers"));
}

/// skopeo's flags to read from `kind`, with a certs dir written into `scratch`.
fn skopeo_source_flags(testbed: &Testbed, kind: Kind, scratch: &Path) -> Vec<String> {
    let host = testbed.registry(kind).host();
    match kind {
        Kind::Plain => vec!["--src-tls-verify=false".to_owned()],
        Kind::Basic | Kind::Token | Kind::Mtls => {
            let dir = testbed.pki.write_certs_d(scratch, &host, kind == Kind::Mtls).unwrap();
            let mut flags = vec!["--src-cert-dir".to_owned(), dir.display().to_string()];
            if kind != Kind::Mtls {
                flags.extend(["--src-creds".to_owned(), format!("{}:{}", ALICE.0, ALICE.1)]);
            }
            flags
        }
    }
}

/// Pulls `image` with skopeo into `out` and returns the digest of the manifest it received. OCI
/// types go to an `oci:` layout; Docker types to `dir:`, because skopeo's `oci:` transport converts
/// them to OCI (another digest) while `dir:` stores the manifest bytes as received.
fn skopeo_pull(image: &Image, host: &str, flags: &[String], out: &Path) -> Result<String, String> {
    let docker = matches!(
        image.manifest.media_type.as_str(),
        media_type::DOCKER_MANIFEST | media_type::DOCKER_MANIFEST_LIST
    );
    let destination =
        if docker { format!("dir:{}", out.display()) } else { format!("oci:{}:pulled", out.display()) };
    let output = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all"])
        .args(flags)
        .arg(format!("docker://{}", image.reference(host)))
        .arg(destination)
        .output()
        .map_err(|error| format!("running skopeo: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    if docker {
        let manifest = std::fs::read(out.join("manifest.json")).map_err(|error| error.to_string())?;
        return Ok(format!("sha256:{}", hex::encode(sha2::Sha256::digest(&manifest))));
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).map_err(|error| error.to_string())?)
            .map_err(|error| error.to_string())?;
    // With --all, every child manifest of an index lands in the layout too.
    for child in image.manifests.iter().filter(|_| image.is_index()) {
        let path = out.join("blobs/sha256").join(&child.manifest.digest[7..]);
        if !path.exists() {
            return Err(format!("child manifest {} not pulled", child.manifest.digest));
        }
    }
    Ok(index["manifests"][0]["digest"].as_str().unwrap_or_default().to_owned())
}

/// Every image from every registry, pulled by skopeo, has the catalog's manifest digest.
#[test]
fn skopeo_pulls_every_image_from_every_registry() {
    let testbed = Testbed::shared();
    let catalog = images::build_all().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut pulled = 0;
    for kind in Kind::ALL {
        let host = testbed.registry(kind).host();
        let flags = skopeo_source_flags(testbed, kind, &scratch.path().join("certs"));
        for image in &catalog.images {
            let out = scratch.path().join(format!(
                "{}-{}-{}",
                kind.name(),
                image.repository.replace('/', "_"),
                image.tag
            ));
            match skopeo_pull(image, &host, &flags, &out) {
                Ok(digest) if digest == image.manifest.digest => pulled += 1,
                Ok(digest) => failures.push(format!(
                    "{} {}: pulled {digest}, catalog {}",
                    kind.name(),
                    image.reference(&host),
                    image.manifest.digest
                )),
                Err(error) => failures.push(format!("{} {}: {error}", kind.name(), image.reference(&host))),
            }
            // The pulled copies of the benchmark image are big: keep at most one at a time.
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(pulled, 4 * catalog.images.len());
}

/// Applies the fixture's layers like an engine would (GNU tar extracts, whiteouts applied before
/// each layer) and runs its `/check.sh` in a chroot: proves the fixture itself is right, so a
/// FAIL from berth later means berth is wrong.
#[test]
fn layers_fixture_check_script_passes_when_applied_correctly() {
    let catalog = images::build_all().unwrap();
    let fixture = catalog.image("testbed/layers", "1").unwrap().single().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    for layer in &fixture.layers {
        let blob = catalog.blob_path(&layer.digest);
        let bytes = std::fs::read(&blob).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        for entry in archive.entries().unwrap() {
            let path = entry.unwrap().path().unwrap().into_owned();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let parent = root.join(path.parent().unwrap());
            if name == ".wh..wh..opq" {
                for child in std::fs::read_dir(&parent).into_iter().flatten() {
                    let child = child.unwrap().path();
                    if child.is_dir() && !child.is_symlink() {
                        std::fs::remove_dir_all(&child)
                    } else {
                        std::fs::remove_file(&child)
                    }
                    .unwrap();
                }
            } else if let Some(hidden) = name.strip_prefix(".wh.") {
                let target = parent.join(hidden);
                if target.is_dir() {
                    std::fs::remove_dir_all(&target)
                } else {
                    std::fs::remove_file(&target)
                }
                .unwrap();
            }
        }
        let status = Command::new("tar")
            .args(["-xzpf"])
            .arg(&blob)
            .args(["--same-owner", "--numeric-owner", "--exclude=.wh.*", "-C"])
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success(), "GNU tar could not extract {}", layer.digest);
    }
    let output = Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/env", "-i", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "BERTH_TESTBED=layers"])
        .args(["/bin/sh", "-c", "cd /data && exec /bin/sh /check.sh"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && report.contains("ALL OK"),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
