//! Every failure class has its own message, the normalized image name, and a `hint:` with the fix.

use berth_testkit::{ALICE, Fault, Kind, Pki, Proxy, Registry, TokenIssuer};

use crate::util::{Sandbox, image, testbed};

#[test]
fn no_credentials_for_a_private_repository() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    for kind in [Kind::Basic, Kind::Token] {
        let reference = image(kind, "testbed/busybox:1");
        let run = sandbox.berth(&["pull", &reference]).failure();
        run.stderr_has(&reference).stderr_has("credentials");
        assert!(
            run.hint().contains(&format!("berth login {}", testbed().registry(kind).host())),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn wrong_username_or_password() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    for kind in [Kind::Basic, Kind::Token] {
        let run =
            sandbox.berth(&["pull", "--creds", "alice:nope", &image(kind, "testbed/busybox:1")]).failure();
        run.stderr_has("username or password");
        assert!(run.hint().contains("berth login"), "{}", run.stderr);
    }
}

#[test]
fn repository_not_found() {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, "nobody/nothing:1");
    let run = sandbox.berth(&["pull", &reference]).failure();
    run.stderr_has(&reference).stderr_has("repository");
    run.hint();
}

#[test]
fn tag_not_found_lists_tags_that_exist() {
    let sandbox = Sandbox::new();
    let reference = image(Kind::Plain, "testbed/busybox:nope");
    let run = sandbox.berth(&["pull", &reference]).failure();
    run.stderr_has(&reference).stderr_has("tag").stderr_has("1-zstd");
    run.hint();
}

#[test]
fn unknown_ca_names_the_certs_d_paths() {
    let sandbox = Sandbox::new();
    let run = sandbox
        .berth(&["pull", "--creds", "alice:wonderland", &image(Kind::Basic, "testbed/busybox:1")])
        .failure();
    run.stderr_has("certificate");
    let hint = run.hint();
    assert!(hint.contains("certs.d") && hint.contains(&testbed().basic.host()), "{hint}");
}

#[test]
fn client_certificate_required() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    tb.pki.write_certs_d(&sandbox.config_dir().join("certs.d"), &tb.mtls.host(), false).expect("certs.d");
    let run = sandbox.berth(&["pull", &image(Kind::Mtls, "testbed/busybox:1")]).failure();
    run.stderr_has("client certificate");
    assert!(run.hint().contains("client.cert"), "{}", run.stderr);
}

#[test]
fn client_certificate_rejected() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let stranger = Pki::generate(&sandbox.path().join("stranger-pki")).expect("second pki");
    let dir = sandbox.config_dir().join("certs.d").join(tb.mtls.host());
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(&tb.pki.ca_cert, dir.join("ca.crt")).expect("ca");
    std::fs::copy(&stranger.client_cert, dir.join("client.cert")).expect("cert");
    std::fs::copy(&stranger.client_key, dir.join("client.key")).expect("key");
    let run = sandbox.berth(&["pull", &image(Kind::Mtls, "testbed/busybox:1")]).failure();
    run.stderr_has("client certificate");
    run.hint();
}

#[test]
fn misnamed_client_certificate_is_reported() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let dir =
        tb.pki.write_certs_d(&sandbox.config_dir().join("certs.d"), &tb.mtls.host(), false).expect("certs.d");
    std::fs::copy(&tb.pki.client_cert, dir.join("client.crt")).expect("misnamed cert");
    std::fs::copy(&tb.pki.client_key, dir.join("client.key")).expect("key");
    let run = sandbox.berth(&["pull", &image(Kind::Mtls, "testbed/busybox:1")]).failure();
    run.stderr_has("warning").stderr_has("client.crt");
}

#[test]
fn connection_refused() {
    let sandbox = Sandbox::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let reference = format!("127.0.0.1:{port}/testbed/busybox:1");
    let run = sandbox.berth(&["pull", &reference]).failure();
    run.stderr_has("refused");
    run.hint();
}

#[test]
fn dns_failure() {
    let sandbox = Sandbox::new();
    let run = sandbox.berth(&["pull", "registry.does-not-exist.invalid/team/app:1"]).failure();
    run.stderr_has("registry.does-not-exist.invalid");
    run.stderr_has("dns");
    run.hint();
}

#[test]
fn no_image_for_this_platform_lists_what_there_is() {
    let sandbox = Sandbox::new();
    let run = sandbox
        .berth(&["pull", "--platform", "linux/s390x", &image(Kind::Plain, "testbed/multiarch:1")])
        .failure();
    run.stderr_has("linux/s390x").stderr_has("linux/amd64").stderr_has("linux/arm64");
    assert!(!run.stderr.contains("unknown/unknown"), "attestations are not platforms:\n{}", run.stderr);
    assert!(run.hint().contains("--platform"), "{}", run.stderr);
}

#[test]
fn rate_limited_shows_limit_and_reset() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let proxy = Proxy::start(&tb.plain.url(), &tb.pki).expect("proxy");
    proxy.set_fault(Fault::Status {
        status: 429,
        retry_after: Some(1),
        path_contains: Some("/manifests/".into()),
        times: 0,
    });
    let run = sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", proxy.host())]).failure();
    run.stderr_has("rate");
    run.hint();
}

#[test]
fn a_stalled_transfer_is_reported() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let proxy = Proxy::start(&tb.plain.url(), &tb.pki).expect("proxy");
    proxy.set_fault(Fault::Stall { bytes: 1000, path_contains: Some("/blobs/".into()), times: 0 });
    let run = sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", proxy.host())]).failure();
    run.stderr_has("stalled");
    run.hint();
}

#[test]
fn a_token_server_failure_is_not_a_login_problem() {
    let sandbox = Sandbox::new();
    let pki = &testbed().pki;
    let issuer = TokenIssuer::start(pki, 300).expect("issuer");
    let registry = Registry::start(Kind::Token, pki, Some(&issuer)).expect("registry");
    let root = sandbox.config_dir().join("certs.d");
    pki.write_certs_d(&root, &registry.host(), false).expect("certs.d");
    pki.write_certs_d(&root, &format!("127.0.0.1:{}", issuer.port), false).expect("certs.d");
    issuer.set_failing(Some(500));
    let run = sandbox
        .berth(&[
            "pull",
            "--creds",
            &format!("{}:{}", ALICE.0, ALICE.1),
            &format!("{}/library/busybox:1", registry.host()),
        ])
        .failure();
    run.stderr_has("token");
    assert!(!run.stderr.to_lowercase().contains("password"), "{}", run.stderr);
    run.hint();
}

#[test]
fn a_missing_credential_helper_is_named() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    sandbox.write("home/.docker/config.json", r#"{"credsStore":"nowhere-to-be-found"}"#);
    let run = sandbox.berth(&["pull", &image(Kind::Basic, "testbed/busybox:1")]).failure();
    run.stderr_has("docker-credential-nowhere-to-be-found");
    run.hint();
}

#[test]
fn a_stale_login_does_not_break_a_public_image() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let host = testbed().token.host();
    let config =
        format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, crate::util::basic_auth((ALICE.0, "expired")));
    sandbox.write("home/.docker/config.json", &config);
    let run = sandbox.berth(&["pull", &image(Kind::Token, "library/busybox:1")]).success();
    run.stderr_has("warning").stderr_has("anonymously");
}

#[test]
fn invalid_names_are_usage_errors() {
    let sandbox = Sandbox::new();
    for bad in [
        "UPPER/case:1",
        "busybox:bad!tag",
        "busybox@sha256:1234",
        "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        let run = sandbox.berth(&["pull", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("error: "), "{}", run.stderr);
    }
}
