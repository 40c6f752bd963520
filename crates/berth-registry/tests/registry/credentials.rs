//! The other credential forms (identity token, registry token) and token server failures.

use berth_auth::{Credential, Found, Secret, Source};
use berth_registry::ErrorKind;
use berth_testkit::{ALICE, TOKEN_SERVICE, Testbed};

use crate::*;

fn found(credential: Credential) -> Option<Found> {
    Some(Found { credential, source: Source::Flag })
}

#[test]
fn identity_token_is_exchanged_with_a_refresh_token_post() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let config = host_config(testbed, certs.path());
    let host = testbed.token.host();
    let refresh_token = run(async {
        let client = berth_testkit::reqwest_builder(&testbed.pki, false).unwrap().build().unwrap();
        let url = url::Url::parse_with_params(
            &testbed.issuer.realm(),
            [("service", TOKEN_SERVICE), ("offline_token", "true")],
        )
        .unwrap();
        let body: serde_json::Value =
            client.get(url).basic_auth(ALICE.0, Some(ALICE.1)).send().await.unwrap().json().await.unwrap();
        body["refresh_token"].as_str().expect("a refresh token").to_string()
    });
    let issued_before = testbed.issuer.issued().len();
    let credential =
        Credential::IdentityToken { username: "alice".into(), token: Secret::new(refresh_token) };
    let client = registry(&host, &config, found(credential));
    let resolved = run(client.resolve(&reference(&host, "testbed/busybox:1"), &amd64()))
        .expect("resolve with identity token");
    assert_eq!(resolved.layers.len(), 1);
    let issued = testbed.issuer.issued();
    assert!(
        issued[issued_before..]
            .iter()
            .any(|token| token.how == "POST refresh_token" && token.user.as_deref() == Some("alice")),
        "{:?}",
        &issued[issued_before..]
    );

    let wrong =
        Credential::IdentityToken { username: "alice".into(), token: Secret::new("not-a-refresh-token") };
    let error = run(registry(&host, &config, found(wrong)).check_login()).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::WrongCredentials, "{error}");
    assert!(error.to_string().contains("invalid refresh token"), "{error}");
    assert!(!error.to_string().contains("not-a-refresh-token"), "{error}");
}

#[test]
fn registry_token_is_sent_as_the_bearer_token() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let config = host_config(testbed, certs.path());
    let host = testbed.token.host();
    let token = run(testbed.token_for(Some(ALICE), "repository:testbed/busybox:pull")).expect("token");
    // testbed/ is private on the token registry: resolving proves the stored token was the bearer token.
    let client = registry(&host, &config, found(Credential::RegistryToken(Secret::new(token))));
    let resolved = run(client.resolve(&reference(&host, "testbed/busybox:1"), &amd64()))
        .expect("resolve with registry token");
    run(verify_layers(&client, &resolved));
}

#[test]
fn failing_token_server_is_reported_as_such() {
    // An own testbed: making the shared issuer fail would break tests running in parallel.
    let testbed = Testbed::start().expect("testbed");
    let certs = tempfile::tempdir().unwrap();
    let config = host_config(&testbed, certs.path());
    let host = testbed.token.host();
    testbed.issuer.set_failing(Some(500));
    let error =
        run(registry(&host, &config, basic(ALICE)).resolve(&reference(&host, "testbed/busybox:1"), &amd64()))
            .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::TokenServer, "{error}");
    assert!(error.to_string().contains("500"), "{error}");
}

#[test]
fn tokens_are_cached_by_scope_until_they_expire() {
    let pki = berth_testkit::Pki::shared();
    let issuer = berth_testkit::TokenIssuer::start(pki, 2).expect("issuer with 2-second tokens");
    let token_registry = berth_testkit::Registry::start(berth_testkit::Kind::Token, pki, Some(&issuer))
        .expect("token registry");
    let certs = tempfile::tempdir().unwrap();
    pki.write_certs_d(certs.path(), &token_registry.host(), false).unwrap();
    pki.write_certs_d(certs.path(), &issuer.host(), false).unwrap();
    let config = searching(certs.path());
    let host = token_registry.host();
    let client = registry(&host, &config, basic(ALICE));
    let missing = reference(&host, "testbed/nothing-here:1");
    run(async {
        // Manifest GET and the tags/list lookup after its 404 share one scope, hence one token.
        let error = client.resolve(&missing, &amd64()).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::RepositoryNotFound, "{error}");
        assert_eq!(issuer.issued().len(), 1);
        client.resolve(&missing, &amd64()).await.unwrap_err();
        assert_eq!(issuer.issued().len(), 1, "the cached token is reused");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        client.resolve(&missing, &amd64()).await.unwrap_err();
        assert_eq!(issuer.issued().len(), 2, "an expired token is replaced");
    });
    let scopes = &issuer.issued()[0].scopes;
    assert_eq!(scopes, &vec!["repository:testbed/nothing-here:pull".to_string()]);
}
