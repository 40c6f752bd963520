//! Resolving and streaming images from each registry kind with the authentication it asks for.

use berth_registry::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ErrorKind, OCI_INDEX, OCI_MANIFEST};
use berth_testkit::{ALICE, BOB, Testbed, images};

use crate::*;

fn catalog() -> &'static images::Catalog {
    images::build_all().expect("test images")
}

fn expected_manifest_digest(repository: &str, tag: &str) -> String {
    catalog().image(repository, tag).expect("catalog image").manifest.digest.clone()
}

#[test]
fn plain_registry_over_http_on_loopback_without_insecure() {
    let testbed = Testbed::shared();
    let host = testbed.plain.host();
    let registry = registry(&host, &HostConfig::default(), None);
    run(async {
        let resolved =
            registry.resolve(&reference(&host, "testbed/busybox:1"), &amd64()).await.expect("resolve");
        assert_eq!(resolved.manifest_digest.to_string(), expected_manifest_digest("testbed/busybox", "1"));
        assert_eq!(resolved.manifest_media_type, OCI_MANIFEST);
        assert!(resolved.index.is_none());
        assert!(verify_layers(&registry, &resolved).await > 0);
        assert!(registry.ping().await.expect("ping").is_empty(), "the plain registry needs no auth");
    });
}

#[test]
fn basic_registry_with_password() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let host = testbed.basic.host();
    let registry = registry(&host, &host_config(testbed, certs.path()), basic(ALICE));
    run(async {
        let challenges = registry.ping().await.expect("ping");
        assert_eq!(challenges[0].scheme, "basic");
        let resolved =
            registry.resolve(&reference(&host, "testbed/busybox:1-docker"), &amd64()).await.expect("resolve");
        assert_eq!(resolved.manifest_media_type, DOCKER_MANIFEST);
        assert_eq!(
            resolved.manifest_digest.to_string(),
            expected_manifest_digest("testbed/busybox", "1-docker")
        );
        verify_layers(&registry, &resolved).await;
        registry.check_login().await.expect("alice can log in");
    });
}

#[test]
fn mtls_registry_with_client_certificate() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let host = testbed.mtls.host();
    let registry = registry(&host, &host_config(testbed, certs.path()), None);
    assert!(registry.warnings().is_empty(), "{:?}", registry.warnings());
    run(async {
        let resolved =
            registry.resolve(&reference(&host, "testbed/busybox:1-zstd"), &amd64()).await.expect("resolve");
        assert!(resolved.layers[0].media_type.ends_with("zstd"), "{}", resolved.layers[0].media_type);
        verify_layers(&registry, &resolved).await;
    });
}

#[test]
fn token_registry_as_user_and_anonymous() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let host = testbed.token.host();
    let config = host_config(testbed, certs.path());
    // Tokens issued before this test (the image upload) asked for push; ours must not.
    let issued_before = testbed.issuer.issued().len();
    run(async {
        let alice = registry(&host, &config, basic(ALICE));
        let resolved =
            alice.resolve(&reference(&host, "testbed/busybox:1"), &amd64()).await.expect("resolve as alice");
        verify_layers(&alice, &resolved).await;
        alice.check_login().await.expect("alice logs in");

        let bob = registry(&host, &config, basic(BOB));
        bob.resolve(&reference(&host, "testbed/busybox:1"), &amd64()).await.expect("bob may pull");

        let anonymous = registry(&host, &config, None);
        let public = anonymous
            .resolve(&reference(&host, "library/busybox:1"), &amd64())
            .await
            .expect("anonymous public pull");
        verify_layers(&anonymous, &public).await;
    });
    let scopes: Vec<String> =
        testbed.issuer.issued()[issued_before..].iter().flat_map(|token| token.scopes.clone()).collect();
    assert!(scopes.iter().all(|scope| !scope.contains("push")), "only pull is ever asked for: {scopes:?}");
    assert!(scopes.iter().any(|scope| scope == "repository:testbed/busybox:pull"), "{scopes:?}");
}

#[test]
fn index_picks_the_wanted_platform_and_never_falls_back() {
    let testbed = Testbed::shared();
    let host = testbed.plain.host();
    let registry = registry(&host, &HostConfig::default(), None);
    let multiarch = catalog().image("testbed/multiarch", "1").expect("multiarch");
    run(async {
        for (tag, index_type) in [("1", OCI_INDEX), ("1-docker", DOCKER_MANIFEST_LIST)] {
            let image = reference(&host, &format!("testbed/multiarch:{tag}"));
            let arm64 = Platform::parse("linux/arm64/v8").unwrap();
            let resolved = registry.resolve(&image, &arm64).await.expect("arm64");
            let (_, media_type, _) = resolved.index.clone().expect("came from an index");
            assert_eq!(media_type, index_type);
            let amd = registry.resolve(&image, &amd64()).await.expect("amd64");
            assert_ne!(amd.manifest_digest, resolved.manifest_digest);

            let error = registry.resolve(&image, &Platform::parse("linux/s390x").unwrap()).await.unwrap_err();
            let ErrorKind::NoMatchingPlatform { wanted, available } = error.kind() else { panic!("{error}") };
            assert_eq!(wanted, "linux/s390x");
            assert!(available.contains(&"linux/amd64".to_string()) && available.len() == 2, "{available:?}");
            assert!(
                !available.iter().any(|platform| platform.contains("unknown")),
                "attestations are not platforms"
            );
            assert!(error.to_string().contains(&format!("{host}/testbed/multiarch:{tag}")), "{error}");
        }
        let arm_entry = multiarch.manifests.iter().find(|manifest| {
            manifest.platform.as_ref().is_some_and(|platform| platform.architecture == "arm64")
        });
        let resolved = registry
            .resolve(&reference(&host, "testbed/multiarch:1"), &Platform::parse("linux/arm64").unwrap())
            .await
            .unwrap();
        assert_eq!(
            Some(resolved.manifest_digest.to_string()),
            arm_entry.map(|entry| entry.manifest.digest.clone())
        );
    });
}

#[test]
fn by_digest_and_resume_from_offset() {
    let testbed = Testbed::shared();
    let host = testbed.plain.host();
    let registry = registry(&host, &HostConfig::default(), None);
    run(async {
        let digest = expected_manifest_digest("testbed/busybox", "1");
        let by_digest = reference(&host, &format!("testbed/busybox@{digest}"));
        let resolved = registry.resolve(&by_digest, &amd64()).await.expect("by digest");
        assert_eq!(resolved.manifest_digest.to_string(), digest);
        let layer = &resolved.layers[0];
        let (_, whole) = stream_all(&registry, "testbed/busybox", layer, 0).await;
        let offset = layer.size / 3;
        let (length, tail) = stream_all(&registry, "testbed/busybox", layer, offset).await;
        assert_eq!(length, layer.size - offset);
        assert_eq!(&whole[offset as usize..], &tail[..]);
        let (length, _) = stream_all(&registry, "testbed/busybox", layer, layer.size).await;
        assert_eq!(length, 0, "a complete blob streams nothing");
    });
}
