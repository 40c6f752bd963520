//! Integration tests against real Distribution registries on loopback (berth-testkit): every registry kind,
//! every way of authenticating, the error classes, and transfer faults injected by the testkit proxy.

mod credentials;
mod errors;
mod faults;
mod pull;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use berth_auth::{Credential, Found, Secret, Source};
use berth_reference::{Digest, Platform, Reference};
use berth_registry::{ClientOptions, Descriptor, HostConfig, Registry, Resolved};
use berth_testkit::Testbed;

/// Runs a future on a fresh runtime: the shared testbed is started outside any runtime.
pub fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

pub fn basic(user: (&str, &str)) -> Option<Found> {
    Some(Found {
        credential: Credential::Basic { username: user.0.to_string(), password: Secret::new(user.1) },
        source: Source::Flag,
    })
}

/// Short timeouts so fault tests finish quickly.
pub fn quick_options() -> ClientOptions {
    ClientOptions {
        stall_timeout: Duration::from_secs(3),
        retry_base_delay: Duration::from_millis(50),
        ..ClientOptions::default()
    }
}

/// A HostConfig whose certs.d holds the testbed CA (and the client pair for the mTLS registry).
pub fn host_config(testbed: &Testbed, certs_d: &Path) -> HostConfig {
    testbed.certs_d(certs_d).expect("writing certs.d");
    searching(certs_d)
}

/// A HostConfig that looks for CAs and client pairs in `certs_d` alone.
pub fn searching(certs_d: &Path) -> HostConfig {
    HostConfig { insecure: false, https_only: false, cert_roots: vec![certs_d.to_path_buf()], cert_dir: None }
}

pub fn registry(domain: &str, host: &HostConfig, credential: Option<Found>) -> Registry {
    Registry::new(domain, host, &quick_options(), credential).expect("registry client")
}

pub fn reference(host: &str, name: &str) -> Reference {
    Reference::parse(&format!("{host}/{name}")).expect("reference")
}

pub fn amd64() -> Platform {
    Platform::parse("linux/amd64").expect("platform")
}

/// Reads a whole blob through `blob_stream` from `offset` and returns the digest of bytes [offset..].
pub async fn stream_all(
    registry: &Registry,
    repository: &str,
    descriptor: &Descriptor,
    offset: u64,
) -> (u64, Vec<u8>) {
    let mut stream = registry.blob_stream(repository, descriptor, offset).await.expect("blob stream");
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.chunk().await.expect("blob chunk") {
        bytes.extend_from_slice(&chunk);
    }
    (bytes.len() as u64, bytes)
}

/// Streams every layer and checks size and digest; returns the number of layer bytes.
pub async fn verify_layers(registry: &Registry, resolved: &Resolved) -> u64 {
    let mut total = 0;
    for layer in &resolved.layers {
        let (length, bytes) = stream_all(registry, resolved.reference.repository(), layer, 0).await;
        assert_eq!(length, layer.size, "layer {} size", layer.digest);
        let mut hasher = layer.digest.hasher();
        hasher.update(&bytes);
        assert_eq!(hasher.finish(), layer.digest, "layer digest");
        total += length;
    }
    assert_eq!(Digest::sha256_of(&resolved.config_bytes), resolved.config.digest);
    total
}
