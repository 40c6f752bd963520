//! The testkit checks itself: every registry kind answers as documented, the issuer follows its
//! policy, and the proxy injects each fault. One fresh testbed (no image seeding) keeps this fast.

use std::sync::OnceLock;
use std::time::Instant;

use berth_testkit::proxy::{RATE_LIMIT_LIMIT, RATE_LIMIT_REMAINING};
use berth_testkit::{
    ALICE, BOB, Fault, Kind, Pki, Proxy, TOKEN_SERVICE, Testbed, TokenIssuer, jwt_claims, reqwest_client,
};

fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(|| {
        let started = Instant::now();
        let testbed = Testbed::start().expect("testbed starts");
        eprintln!("Testbed::start took {:?}", started.elapsed());
        testbed
    })
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn plain_registry_answers_v2() {
    let tb = testbed();
    let response = reqwest::get(format!("{}/v2/", tb.plain.url())).await.unwrap();
    assert_eq!(response.status(), 200, "{}", tb.plain.log_tail(10));
}

#[tokio::test]
async fn basic_registry_challenges_and_accepts_alice_only() {
    let tb = testbed();
    let client = reqwest_client(&tb.pki, false);
    let url = format!("{}/v2/", tb.basic.url());
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(header(&anonymous, "www-authenticate").starts_with("Basic realm="), "{anonymous:?}");
    let alice = client.get(&url).basic_auth(ALICE.0, Some(ALICE.1)).send().await.unwrap();
    assert_eq!(alice.status(), 200);
    let wrong = client.get(&url).basic_auth(ALICE.0, Some("nope")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let bob = client.get(&url).basic_auth(BOB.0, Some(BOB.1)).send().await.unwrap();
    assert_eq!(bob.status(), 401);
}

#[tokio::test]
async fn mtls_registry_needs_a_client_certificate() {
    let tb = testbed();
    let url = format!("{}/v2/", tb.mtls.url());
    let without = reqwest_client(&tb.pki, false).get(&url).send().await;
    assert!(without.is_err(), "handshake without a client cert must fail: {without:?}");
    let with = reqwest_client(&tb.pki, true).get(&url).send().await.unwrap();
    assert_eq!(with.status(), 200);
}

#[tokio::test]
async fn token_registry_challenges_and_accepts_issued_tokens() {
    let tb = testbed();
    let client = reqwest_client(&tb.pki, false);
    let url = format!("{}/v2/", tb.token.url());
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = header(&anonymous, "www-authenticate");
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}\",service=\"{TOKEN_SERVICE}\"", tb.issuer.realm())),
        "{challenge}"
    );
    let token = tb.token_for(Some(ALICE), "repository:testbed/busybox:pull").await.unwrap();
    let authorized = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(authorized.status(), 200, "{}", tb.token.log_tail(10));
    // A token with a pull grant reaches the repository (404 for an unknown manifest, not 401).
    let manifest = client
        .get(format!("{}/v2/testbed/busybox/manifests/none", tb.token.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 404);
    let forged = format!("{}AAAA", &token[..token.rfind('.').unwrap() + 1]);
    assert_eq!(client.get(&url).bearer_auth(forged).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn issuer_follows_its_policy() {
    let tb = testbed();
    let wrong = tb.token_for(Some((ALICE.0, "nope")), "repository:a/b:pull").await.unwrap_err();
    assert!(wrong.to_string().contains("401"), "{wrong:#}");
    assert!(wrong.to_string().contains("incorrect username or password"), "{wrong:#}");

    let bob = jwt_claims(&tb.token_for(Some(BOB), "repository:team/app:pull,push").await.unwrap()).unwrap();
    assert_eq!(bob["access"][0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(bob["sub"], "bob");

    let public = jwt_claims(&tb.token_for(None, "repository:library/x:pull").await.unwrap()).unwrap();
    assert_eq!(public["access"][0]["name"], "library/x");
    let private = jwt_claims(&tb.token_for(None, "repository:private/x:pull").await.unwrap()).unwrap();
    assert_eq!(private["access"], serde_json::json!([]));

    let issued = tb.issuer.issued();
    assert!(issued.iter().any(|token| token.user.as_deref() == Some("bob") && token.how == "GET"));
}

#[tokio::test]
async fn issuer_oauth_password_and_refresh_grants() {
    let tb = testbed();
    let client = reqwest_client(&tb.pki, false);
    let first: serde_json::Value = client
        .post(tb.issuer.realm())
        .form(&[
            ("grant_type", "password"),
            ("username", ALICE.0),
            ("password", ALICE.1),
            ("service", TOKEN_SERVICE),
            ("scope", "repository:a/b:pull,push"),
            ("access_type", "offline"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = first["refresh_token"].as_str().expect("refresh token").to_owned();
    assert_eq!(jwt_claims(first["access_token"].as_str().unwrap()).unwrap()["sub"], "alice");
    let second = client
        .post(tb.issuer.realm())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", TOKEN_SERVICE),
            ("scope", "repository:a/b:pull"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    let claims = jwt_claims(second["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull"]));
    let bad = client
        .post(tb.issuer.realm())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "nope"), ("service", TOKEN_SERVICE)])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    // GET with offline_token also hands out a refresh token.
    let offline: serde_json::Value = client
        .get(format!("{}?service={TOKEN_SERVICE}&offline_token=true", tb.issuer.realm()))
        .basic_auth(ALICE.0, Some(ALICE.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(offline["refresh_token"].is_string(), "{offline}");
    assert!(tb.issuer.issued().iter().any(|token| token.how == "POST refresh_token"));
}

#[tokio::test]
async fn short_lived_issuer_and_failing_issuer() {
    let pki = Pki::shared();
    let issuer = TokenIssuer::start(pki, 2).unwrap();
    let client = reqwest_client(pki, false);
    let url = format!("{}?service={TOKEN_SERVICE}&scope=repository:a/b:pull", issuer.realm());
    let body: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["expires_in"], 2);
    let claims = jwt_claims(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["exp"].as_u64().unwrap(), claims["iat"].as_u64().unwrap() + 2);

    issuer.set_failing(Some(503));
    assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    issuer.set_failing(None);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn proxy_forwards_and_injects_faults() {
    let tb = testbed();
    let proxy = Proxy::start(&tb.plain.url(), &tb.pki).unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Push a blob through the proxy: the upload Location must point back at the proxy.
    let blob = vec![7u8; 100_000];
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob)));
    let start =
        client.post(format!("{}/v2/selftest/proxy/blobs/uploads/", proxy.url())).send().await.unwrap();
    assert_eq!(start.status(), 202);
    let location = header(&start, "location");
    assert!(location.starts_with(&proxy.url()), "{location}");
    let separator = if location.contains('?') { '&' } else { '?' };
    let put =
        client.put(format!("{location}{separator}digest={digest}")).body(blob.clone()).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let blob_url = format!("{}/v2/selftest/proxy/blobs/{digest}", proxy.url());
    let fetched = client.get(&blob_url).header("authorization", "Bearer x").send().await.unwrap();
    assert_eq!(header(&fetched, "docker-content-digest"), digest);
    assert_eq!(fetched.bytes().await.unwrap().len(), blob.len());
    let seen = proxy.requests();
    assert!(seen.iter().any(|request| request.method == "GET" && request.had_authorization));
    assert!(seen.iter().any(|request| request.method == "POST" && !request.had_authorization));

    proxy.set_fault(Fault::Status { status: 500, retry_after: None, path_contains: None, times: 1 });
    assert_eq!(client.get(&blob_url).send().await.unwrap().status(), 500);
    assert_eq!(client.get(&blob_url).send().await.unwrap().status(), 200, "times: 1 fires once");

    proxy.set_fault(Fault::Status {
        status: 429,
        retry_after: Some(3),
        path_contains: Some("/blobs/".into()),
        times: 0,
    });
    let limited = client.get(&blob_url).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "retry-after"), "3");
    assert_eq!(header(&limited, "ratelimit-limit"), RATE_LIMIT_LIMIT);
    assert_eq!(header(&limited, "ratelimit-remaining"), RATE_LIMIT_REMAINING);
    assert_eq!(client.get(format!("{}/v2/", proxy.url())).send().await.unwrap().status(), 200);

    proxy.set_fault(Fault::ResetAfter { bytes: 1000, path_contains: Some("/blobs/".into()), times: 1 });
    let cut = client.get(&blob_url).send().await.unwrap();
    assert_eq!(cut.status(), 200);
    assert!(cut.bytes().await.is_err(), "the body must break off after 1000 bytes");
    let ranged = client.get(&blob_url).header("range", "bytes=1000-").send().await.unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap().len(), blob.len() - 1000);

    proxy.set_fault(Fault::Stall { bytes: 500, path_contains: None, times: 1 });
    let impatient = {
        berth_testkit::pki::install_default_crypto_provider();
        reqwest::Client::builder()
    }
    .read_timeout(std::time::Duration::from_millis(500))
    .build()
    .unwrap();
    let mut stalled = impatient.get(&blob_url).send().await.unwrap();
    let mut received = 0;
    let outcome = loop {
        match stalled.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            other => break other,
        }
    };
    assert!(outcome.is_err(), "a stalled body must time out on the client: {outcome:?}");
    assert_eq!(received, 500);

    let other = Proxy::start(&tb.plain.url(), &tb.pki).unwrap();
    proxy.set_fault(Fault::RedirectBlobs { to: other.url() });
    let redirected = client.get(&blob_url).send().await.unwrap();
    assert_eq!(redirected.status(), 307);
    let target = header(&redirected, "location");
    assert_eq!(target, format!("{}/v2/selftest/proxy/blobs/{digest}", other.url()));
    assert_eq!(client.get(&target).send().await.unwrap().bytes().await.unwrap().len(), blob.len());
    assert_eq!(other.requests().len(), 1);
}

#[tokio::test]
async fn tls_proxy_in_front_of_the_mtls_registry() {
    let tb = testbed();
    let token_proxy = Proxy::start(&tb.token.url(), &tb.pki).unwrap();
    token_proxy.set_fault(Fault::Status {
        status: 401,
        retry_after: None,
        path_contains: Some("/manifests/".into()),
        times: 1,
    });
    let expired =
        reqwest::get(format!("{}/v2/testbed/busybox/manifests/1", token_proxy.url())).await.unwrap();
    assert_eq!(expired.status(), 401);
    let challenge = header(&expired, "www-authenticate");
    assert!(challenge.contains("scope=\"repository:testbed/busybox:pull\""), "{challenge}");

    let proxy = Proxy::start_tls(&tb.mtls.url(), &tb.pki).unwrap();
    let response = reqwest_client(&tb.pki, false).get(format!("{}/v2/", proxy.url())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(tb.registry(Kind::Mtls).kind, Kind::Mtls);
}

#[test]
fn certs_d_layout() {
    let tb = testbed();
    let root = tempfile::tempdir().unwrap();
    tb.certs_d(root.path()).unwrap();
    assert!(root.path().join(tb.mtls.host()).join("client.cert").is_file());
    assert!(root.path().join(tb.mtls.host()).join("client.key").is_file());
    assert!(!root.path().join(tb.basic.host()).join("client.cert").exists());
    assert!(root.path().join(tb.issuer.host()).join("ca.crt").is_file());
}
