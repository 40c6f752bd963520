//! `berth pull` of every test image from every registry kind, and what lands in the store.

use berth_testkit::proxy::Proxy;
use berth_testkit::{ALICE, Kind};

use crate::util::{Sandbox, image, testbed};

/// Every image kind the issue names: OCI gzip, zstd, Docker schema2, the big multi-layer one, an OCI index
/// with an attestation, a Docker manifest list, and the layer-semantics fixture.
const IMAGES: [&str; 8] = [
    "testbed/busybox:1",
    "testbed/busybox:1-zstd",
    "testbed/busybox:1-docker",
    "testbed/multi:1",
    "testbed/multi:1-zstd",
    "testbed/multiarch:1",
    "testbed/multiarch:1-docker",
    "testbed/layers:1",
];

/// The digest `berth pull` must print for `repo_tag`: what the registry's tag points at.
fn expected_digest(repo_tag: &str) -> String {
    let (repository, tag) = repo_tag.split_once(':').expect("repo:tag");
    testbed_catalog_digest(repository, tag)
}

fn testbed_catalog_digest(repository: &str, tag: &str) -> String {
    berth_testkit::images::build_all()
        .expect("test images")
        .image(repository, tag)
        .expect("a test image")
        .manifest
        .digest
        .clone()
}

fn pull_all_from(kind: Kind, sandbox: &Sandbox, extra: &[&str]) {
    for repo_tag in IMAGES {
        let reference = image(kind, repo_tag);
        let mut args = vec!["pull", "-q"];
        args.extend_from_slice(extra);
        args.push(&reference);
        let run = sandbox.berth(&args).success();
        assert_eq!(run.stdout.trim(), expected_digest(repo_tag), "digest of {reference}");
    }
}

#[test]
fn every_image_from_the_plain_registry() {
    let sandbox = Sandbox::new();
    pull_all_from(Kind::Plain, &sandbox, &[]);
    let images = sandbox.berth(&["images", "-q"]).success();
    for repo_tag in IMAGES {
        assert!(
            images.stdout.contains(&image(Kind::Plain, repo_tag)),
            "{repo_tag} missing:\n{}",
            images.stdout
        );
    }
}

#[test]
fn every_image_from_the_basic_registry_with_creds() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    pull_all_from(Kind::Basic, &sandbox, &["--creds", &creds]);
}

#[test]
fn every_image_from_the_mtls_registry_via_certs_d() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    pull_all_from(Kind::Mtls, &sandbox, &[]);
}

#[test]
fn every_image_from_the_token_registry_after_login() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    sandbox.login(&testbed().token.host(), ALICE).success();
    pull_all_from(Kind::Token, &sandbox, &[]);
}

#[test]
fn a_second_pull_is_one_manifest_request() {
    let sandbox = Sandbox::new();
    let proxy = Proxy::start(&testbed().plain.url(), &testbed().pki).expect("proxy");
    // An index: the tag names the index, which names the platform's manifest, which names the config.
    let reference = format!("{}/testbed/multiarch:1", proxy.host());
    let first = sandbox.berth(&["pull", &reference]).success();
    first.stderr_has("2 layers downloaded");
    let paths = |proxy: &Proxy| -> Vec<String> {
        proxy
            .requests()
            .into_iter()
            .filter(|r| r.path != "/v2/")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    };
    assert!(paths(&proxy).len() >= 4, "index, manifest, config and layer: {:?}", paths(&proxy));

    proxy.clear_requests();
    let digest = sandbox.berth(&["pull", "-q", &reference]).success().stdout.trim().to_string();
    assert_eq!(paths(&proxy), vec!["GET /v2/testbed/multiarch/manifests/1".to_string()]);

    // By digest, a stored image needs nothing from the registry at all.
    proxy.clear_requests();
    let pinned = format!("{}/testbed/multiarch@{digest}", proxy.host());
    sandbox.berth(&["pull", &pinned]).success().stderr_has("0 layers downloaded, 2 already present");
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

#[test]
fn a_damaged_stored_config_is_fetched_again() {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, "testbed/busybox:1");
    let digest = sandbox.berth(&["pull", "-q", &reference]).success().stdout.trim().to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandbox.blob(&digest)).expect("manifest"))
            .expect("manifest json");
    let config = manifest["config"]["digest"].as_str().expect("config digest");
    std::fs::write(sandbox.blob(config), b"{}").expect("damage the config");
    sandbox.berth(&["pull", &reference]).success().stderr_has("0 layers downloaded, 1 already present");
    let restored = std::fs::read(sandbox.blob(config)).expect("config");
    assert_eq!(berth_reference::Digest::sha256_of(&restored).as_str(), config, "the config was not restored");
}

#[test]
fn stored_blobs_are_what_skopeo_sees() {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, "testbed/busybox:1");
    let digest = sandbox.berth(&["pull", "-q", &reference]).success().stdout.trim().to_string();
    let output = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .expect("skopeo");
    assert!(output.status.success(), "skopeo: {}", String::from_utf8_lossy(&output.stderr));
    let stored = std::fs::read(sandbox.blob(&digest)).expect("manifest blob stored");
    assert_eq!(stored, output.stdout, "stored manifest differs from the registry's");
    let manifest: serde_json::Value = serde_json::from_slice(&stored).expect("manifest json");
    for layer in manifest["layers"].as_array().expect("layers") {
        let blob = sandbox.blob(layer["digest"].as_str().expect("digest"));
        assert_eq!(
            std::fs::metadata(&blob).expect("layer blob stored").len(),
            layer["size"].as_u64().expect("size")
        );
    }
}

#[test]
fn the_platform_can_be_chosen_from_an_index() {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, "testbed/multiarch:1");
    sandbox.berth(&["pull", "--platform", "linux/arm64/v8", &reference]).success();
    sandbox
        .berth(&["pull", "--platform", "linux/arm64", &image(Kind::Plain, "testbed/multiarch:1-docker")])
        .success();
}

#[test]
fn by_digest() {
    let sandbox = Sandbox::new();
    let digest = expected_digest("testbed/busybox:1");
    let reference = format!("{}@{digest}", image(Kind::Plain, "testbed/busybox"));
    let run = sandbox.berth(&["pull", "-q", &reference]).success();
    assert_eq!(run.stdout.trim(), digest);
}
