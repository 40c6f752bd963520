//! OCI distribution client for berth: per-host TLS, authentication, manifests and verified blob streams.
//!
//! One [`Registry`] talks to one registry host. It owns a reqwest client built from its own rustls
//! configuration (certs.d CAs and client identity), and an authentication layer around every request: ping
//! `/v2/`, read the challenge, attach Basic credentials or a bearer token for exactly the scope needed,
//! and refresh once on a 401. Callers ask for what they want (`resolve`, `fetch_blob`, `blob_stream`) and
//! never see challenges, tokens or redirects.
//!
//! This crate depends on `berth-reference` and `berth-auth` only; it never knows about the store.

mod auth;
mod blob;
mod challenge;
mod classify;
mod error;
mod manifest;
mod tls;
mod token;
mod transport;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_auth::Found;
use berth_reference::{Digest, Platform, Reference};

pub use blob::BlobStream;
pub use challenge::{Challenge, parse_challenges};
pub use error::{Error, ErrorKind};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_ACCEPT, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, OCI_INDEX,
    OCI_MANIFEST,
};

/// How to reach one registry host.
#[derive(Clone, Debug, Default)]
pub struct HostConfig {
    /// Allow plain HTTP (also implied for loopback hosts: 127.0.0.0/8, ::1, localhost). HTTPS is still tried
    /// first; HTTP is used only when the server answers the TLS handshake with plain HTTP.
    pub insecure: bool,
    /// Never use plain HTTP, not even for a loopback host: the user declared this host secure
    /// (`insecure = false` in its config entry). An HTTPS port that answers in plain HTTP is then an error
    /// saying so, instead of a silent switch to HTTP.
    pub https_only: bool,
    /// certs.d roots, searched in order: `<root>/<host[:port]>/{*.crt, *.cert + *.key}`.
    pub cert_roots: Vec<PathBuf>,
    /// `--cert-dir`: this exact directory replaces the search.
    pub cert_dir: Option<PathBuf>,
}

/// Network behaviour shared by every registry.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// How long a response (headers or the next body chunk) may take before the transfer counts as stalled.
    pub stall_timeout: Duration,
    /// Retries of one request on 5xx, 429 and connection resets.
    pub max_retries: u32,
    pub retry_base_delay: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(30),
            max_retries: 4,
            retry_base_delay: Duration::from_millis(250),
        }
    }
}

/// A content descriptor (OCI image spec, descriptor.md), as far as pulling needs it.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
}

/// A reference resolved to one image manifest for one platform.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The reference as asked for (tag and/or digest).
    pub reference: Reference,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: Vec<u8>,
    /// Digest, media type and bytes of the index/list the manifest was chosen from.
    pub index: Option<(Digest, String, Vec<u8>)>,
    pub config: Descriptor,
    /// The config blob's bytes, already verified against `config.digest`.
    pub config_bytes: Vec<u8>,
    pub layers: Vec<Descriptor>,
}

/// Documents the caller already holds, by digest: the manifests and configs in its store. Resolution
/// reads them instead of asking the registry, since what a digest names cannot change: a second pull of
/// an image costs one manifest request (the tag's, which can move), and a pull by digest of a stored image
/// none at all.
pub trait Known: Sync {
    /// The bytes kept under `digest`, if any. They are hashed again before use; bytes that do not match
    /// are ignored and the document is fetched.
    fn get(&self, digest: &Digest) -> Option<Vec<u8>>;
}

/// Holds nothing: every document is fetched.
pub struct NothingKnown;

impl Known for NothingKnown {
    fn get(&self, _digest: &Digest) -> Option<Vec<u8>> {
        None
    }
}

/// A client for one registry host. Cheap to clone: clones share the connection pool and token cache.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<transport::Inner>,
}

impl Registry {
    /// `domain` is the registry as in a reference ("docker.io", "127.0.0.1:5000"); Docker Hub is reached at
    /// its API host. Fails only when the TLS configuration cannot be built (e.g. an unreadable client key).
    pub fn new(
        domain: &str,
        host: &HostConfig,
        opts: &ClientOptions,
        credential: Option<Found>,
    ) -> Result<Registry, Error> {
        let api_host = if domain == berth_reference::DOCKER_HUB {
            berth_reference::DOCKER_HUB_API.to_string()
        } else {
            domain.to_string()
        };
        let mut certs = tls::discover(&api_host, &host.cert_roots, host.cert_dir.as_deref());
        if api_host != domain && certs.ca_files.is_empty() && certs.identity.is_none() {
            // certs.d for Docker Hub may be keyed by the user-facing name.
            let by_domain = tls::discover(domain, &host.cert_roots, host.cert_dir.as_deref());
            if !by_domain.ca_files.is_empty() || by_domain.identity.is_some() {
                certs = by_domain;
            }
        }
        let tls_config = tls::client_config(domain, &mut certs)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config.clone())
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.connect_timeout)
            // Redirects are followed by the transport layer, which decides per hop whether to send credentials.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| Error::new(ErrorKind::Tls, domain).said(classify::describe(&error)))?;
        let allow_http = !host.https_only && (host.insecure || token::is_loopback_host(domain));
        Ok(Registry {
            inner: Arc::new(transport::Inner {
                domain: domain.to_string(),
                api_host,
                client,
                tls_config,
                allow_http,
                use_http: Mutex::new(false),
                credential,
                auth: tokio::sync::OnceCell::new(),
                realm_client: tokio::sync::OnceCell::new(),
                tokens: token::TokenCache::default(),
                opts: opts.clone(),
                certs_searched: certs.searched.clone(),
                sent_client_cert: certs.identity.is_some(),
                warnings: certs.warnings,
                host: host.clone(),
            }),
        })
    }

    /// Ignored certs.d files and directories, each named, for the user to fix.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// The same registry without a credential: for retrying a public image when a stale login is refused.
    pub fn without_credential(&self) -> Result<Registry, Error> {
        Registry::new(&self.inner.domain, &self.inner.host, &self.inner.opts, None)
    }

    /// The registry's domain as given to [`Registry::new`].
    pub fn domain(&self) -> &str {
        &self.inner.domain
    }

    /// Where the credential in use came from, for messages ("using credentials from ...").
    pub fn credential(&self) -> Option<&Found> {
        self.inner.credential.as_ref()
    }

    /// `GET /v2/` anonymously: the challenges the registry answers with (empty when it needs no auth).
    pub async fn ping(&self) -> Result<Vec<Challenge>, Error> {
        self.inner.ping_challenges().await
    }

    /// Proves the credential works (for `berth login`): Basic is sent to `/v2/`; for Bearer a token with no
    /// scope is fetched with the credential, then `/v2/` is called with it.
    pub async fn check_login(&self) -> Result<(), Error> {
        self.inner.check_login().await
    }

    /// Resolves a reference to one image manifest for `platform`, with its config blob.
    pub async fn resolve(&self, reference: &Reference, platform: &Platform) -> Result<Resolved, Error> {
        self.resolve_with(reference, platform, &NothingKnown).await
    }

    /// [`Registry::resolve`], reading documents named by digest from `known` when it has them.
    pub async fn resolve_with(
        &self,
        reference: &Reference,
        platform: &Platform,
        known: &dyn Known,
    ) -> Result<Resolved, Error> {
        manifest::resolve(&self.inner, reference, platform, known)
            .await
            .map_err(|error| error.with_image(reference.to_string()))
    }

    /// Fetches a small blob (a config) whole, at most `max` bytes, and verifies its digest and size.
    pub async fn fetch_blob(&self, repository: &str, d: &Descriptor, max: u64) -> Result<Vec<u8>, Error> {
        blob::fetch_blob(&self.inner, repository, d, max).await
    }

    /// Streams a blob from `offset` to `d.size`, resuming after resets. The caller hashes the bytes.
    pub async fn blob_stream(
        &self,
        repository: &str,
        d: &Descriptor,
        offset: u64,
    ) -> Result<BlobStream, Error> {
        BlobStream::open(Arc::clone(&self.inner), repository, d, offset).await
    }
}
