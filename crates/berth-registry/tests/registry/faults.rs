//! Transfer faults injected by the testkit proxy: resets, expiring tokens, 5xx, rate limits, stalls,
//! redirects to another host.

use berth_registry::ErrorKind;
use berth_testkit::{ALICE, Fault, Proxy, Testbed};

use crate::*;

/// A plain-HTTP proxy in front of the token registry, and a client for it as alice.
fn token_proxy(testbed: &Testbed, certs: &Path) -> (Proxy, Registry) {
    let proxy = Proxy::start(&testbed.token.url(), &testbed.pki).expect("proxy");
    let client = registry(&proxy.host(), &host_config(testbed, certs), basic(ALICE));
    (proxy, client)
}

fn layer_of(client: &Registry, host: &str) -> (Resolved, Descriptor) {
    let resolved = run(client.resolve(&reference(host, "testbed/busybox:1"), &amd64())).expect("resolve");
    let layer = resolved.layers[0].clone();
    (resolved, layer)
}

fn digest_of(layer: &Descriptor, bytes: &[u8]) -> Digest {
    let mut hasher = layer.digest.hasher();
    hasher.update(bytes);
    hasher.finish()
}

#[test]
fn connection_reset_mid_blob_resumes_with_range() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let (proxy, client) = token_proxy(testbed, certs.path());
    let (_, layer) = layer_of(&client, &proxy.host());
    proxy.set_fault(Fault::ResetAfter { bytes: 100_000, path_contains: Some("/blobs/".into()), times: 2 });
    let (length, bytes) = run(stream_all(&client, "testbed/busybox", &layer, 0));
    assert_eq!(length, layer.size);
    assert_eq!(digest_of(&layer, &bytes), layer.digest);
    let blob_gets = proxy.requests().iter().filter(|request| request.path.contains("/blobs/sha256")).count();
    assert!(blob_gets >= 3, "two resets mean at least three blob requests, saw {blob_gets}");
}

#[test]
fn expired_token_is_refreshed_once_and_the_pull_continues() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let (proxy, client) = token_proxy(testbed, certs.path());
    let (_, layer) = layer_of(&client, &proxy.host());
    let issued_before = testbed.issuer.issued().len();
    proxy.set_fault(Fault::Status {
        status: 401,
        retry_after: None,
        path_contains: Some("/blobs/".into()),
        times: 1,
    });
    let (length, bytes) = run(stream_all(&client, "testbed/busybox", &layer, 0));
    assert_eq!(length, layer.size);
    assert_eq!(digest_of(&layer, &bytes), layer.digest);
    assert!(testbed.issuer.issued().len() > issued_before, "a new token was fetched after the 401");
}

#[test]
fn server_errors_are_retried() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let (proxy, client) = token_proxy(testbed, certs.path());
    proxy.set_fault(Fault::Status {
        status: 503,
        retry_after: None,
        path_contains: Some("/manifests/".into()),
        times: 2,
    });
    let resolved = run(client.resolve(&reference(&proxy.host(), "testbed/busybox:1"), &amd64()));
    assert!(resolved.is_ok(), "{:?}", resolved.err().map(|error| error.to_string()));
}

#[test]
fn persistent_rate_limit_reports_the_headers() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let (proxy, client) = token_proxy(testbed, certs.path());
    proxy.set_fault(Fault::Status {
        status: 429,
        retry_after: Some(1),
        path_contains: Some("/manifests/".into()),
        times: 0,
    });
    let error = run(client.resolve(&reference(&proxy.host(), "testbed/busybox:1"), &amd64())).unwrap_err();
    let ErrorKind::RateLimited { limit, remaining, retry_after, .. } = error.kind() else {
        panic!("{error}")
    };
    assert_eq!(limit.as_deref(), Some(berth_testkit::proxy::RATE_LIMIT_LIMIT));
    assert_eq!(remaining.as_deref(), Some(berth_testkit::proxy::RATE_LIMIT_REMAINING));
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(error.to_string().contains("rate-limited"), "{error}");
}

#[test]
fn stalled_transfer_fails_after_the_stall_timeout() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let (proxy, client) = token_proxy(testbed, certs.path());
    let (_, layer) = layer_of(&client, &proxy.host());
    proxy.set_fault(Fault::Stall { bytes: 50_000, path_contains: Some("/blobs/".into()), times: 0 });
    let started = std::time::Instant::now();
    let error = run(async {
        let mut stream = client.blob_stream("testbed/busybox", &layer, 0).await?;
        while stream.chunk().await?.is_some() {}
        Ok::<(), berth_registry::Error>(())
    })
    .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Stalled, "{error}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn authorization_is_not_forwarded_on_redirect_to_another_host() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    // Blob storage: a second proxy in front of the same registry records what reaches it.
    let storage = Proxy::start(&testbed.basic.url(), &testbed.pki).expect("storage proxy");
    let front = Proxy::start(&testbed.basic.url(), &testbed.pki).expect("front proxy");
    let client = registry(&front.host(), &host_config(testbed, certs.path()), basic(ALICE));
    let (_, layer) = layer_of(&client, &front.host());
    front.set_fault(Fault::RedirectBlobs { to: storage.url() });
    // The storage proxy forwards to the basic registry, which demands credentials: the redirect target
    // not getting them is the point, so the transfer itself is expected to fail there.
    let _ = run(stream_all_result(&client, &layer));
    let at_storage = storage.requests();
    assert!(!at_storage.is_empty(), "the redirect was followed");
    assert!(at_storage.iter().all(|request| !request.had_authorization), "{at_storage:?}");
    assert!(
        front.requests().iter().any(|request| request.had_authorization),
        "the registry itself got the credential"
    );
}

async fn stream_all_result(client: &Registry, layer: &Descriptor) -> Result<u64, berth_registry::Error> {
    let mut stream = client.blob_stream("testbed/busybox", layer, 0).await?;
    let mut length = 0;
    while let Some(chunk) = stream.chunk().await? {
        length += chunk.len() as u64;
    }
    Ok(length)
}

#[test]
fn forbidden_is_denied_not_unauthorized() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let (proxy, client) = token_proxy(testbed, certs.path());
    proxy.set_fault(Fault::Status {
        status: 403,
        retry_after: None,
        path_contains: Some("/manifests/".into()),
        times: 0,
    });
    let error = run(client.resolve(&reference(&proxy.host(), "testbed/busybox:1"), &amd64())).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Denied, "{error}");
    assert!(error.to_string().contains("denied access for"), "{error}");
    assert!(error.hint().is_some_and(|hint| hint.contains("lacks pull access")));
}
