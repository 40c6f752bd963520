//! A minimal pusher for the test images, deliberately independent of berth's registry client so a
//! bug there cannot hide in the fixtures. It speaks the OCI Distribution Spec push flow: "Checking
//! if content exists in the registry" (HEAD blob), "Pushing a blob monolithically" (POST then PUT
//! with `digest`), and "Pushing Manifests" (PUT by digest for index children, then by tag).

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Catalog, Descriptor, Image};
use crate::{ALICE, Kind, TOKEN_SERVICE, Testbed};

/// Blobs up to this size are sent from memory; bigger ones are streamed from their file.
const STREAM_THRESHOLD: u64 = 4 << 20;

/// How the uploader authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    Anonymous,
    /// `Authorization: Basic` on every request.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from a Docker-protocol token issuer at `realm`, fetched with Basic credentials,
    /// one per repository with `pull,push` scope.
    Token {
        realm: String,
        service: String,
        user: String,
        password: String,
    },
}

/// Pushes images to one registry.
#[derive(Debug)]
pub struct Uploader {
    client: reqwest::Client,
    /// `http(s)://host:port`, no trailing slash.
    base_url: String,
    auth: Auth,
    tokens: tokio::sync::Mutex<HashMap<String, String>>,
}

impl Uploader {
    pub fn new(client: reqwest::Client, base_url: &str, auth: Auth) -> Uploader {
        Uploader {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// An uploader for the `kind` registry of `testbed`, as alice.
    pub fn for_registry(testbed: &Testbed, kind: Kind) -> anyhow::Result<Uploader> {
        let registry = testbed.registry(kind);
        let (user, password) = (ALICE.0.to_owned(), ALICE.1.to_owned());
        let auth = match kind {
            Kind::Plain | Kind::Mtls => Auth::Anonymous,
            Kind::Basic => Auth::Basic { user, password },
            Kind::Token => Auth::Token {
                realm: testbed.issuer.realm(),
                service: TOKEN_SERVICE.to_owned(),
                user,
                password,
            },
        };
        // Trusting only the testkit CA, with the client certificate the mTLS registry requires.
        let client = crate::http::reqwest_builder(&testbed.pki, kind == Kind::Mtls)?
            .timeout(Duration::from_secs(300))
            .build()
            .context("building the HTTP client")?;
        Ok(Uploader::new(client, &registry.url(), auth))
    }

    /// Pushes every image of `catalog`.
    pub async fn push_catalog(&self, catalog: &Catalog) -> anyhow::Result<()> {
        for image in &catalog.images {
            self.push_image(catalog, image)
                .await
                .with_context(|| format!("pushing {}", image.reference(&self.base_url)))?;
        }
        Ok(())
    }

    /// Pushes the blobs, then the child manifests by digest, then the tag.
    pub async fn push_image(&self, catalog: &Catalog, image: &Image) -> anyhow::Result<()> {
        let repository = &image.repository;
        for blob in image.blobs() {
            self.push_blob(catalog, repository, blob).await?;
        }
        if image.is_index() {
            for child in &image.manifests {
                self.put_manifest(catalog, repository, &child.manifest, &child.manifest.digest).await?;
            }
        }
        self.put_manifest(catalog, repository, &image.manifest, &image.tag).await
    }

    async fn push_blob(&self, catalog: &Catalog, repository: &str, blob: &Descriptor) -> anyhow::Result<()> {
        let url = format!("{}/v2/{repository}/blobs/{}", self.base_url, blob.digest);
        let response = self
            .request(reqwest::Method::HEAD, &url, repository)
            .await?
            .send()
            .await
            .with_context(|| format!("HEAD {url}"))?;
        if response.status() == StatusCode::OK {
            return Ok(());
        }
        let start_url = format!("{}/v2/{repository}/blobs/uploads/", self.base_url);
        let response = self
            .request(reqwest::Method::POST, &start_url, repository)
            .await?
            .send()
            .await
            .with_context(|| format!("POST {start_url}"))?;
        let response = expect(response, StatusCode::ACCEPTED, "POST", &start_url).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .with_context(|| format!("POST {start_url}: no Location header"))?;
        let mut upload_url = if location.starts_with('/') {
            format!("{}{location}", self.base_url)
        } else {
            location.to_owned()
        };
        upload_url.push(if upload_url.contains('?') { '&' } else { '?' });
        upload_url.push_str("digest=");
        upload_url.push_str(&blob.digest);

        let path = catalog.blob_path(&blob.digest);
        let body = if blob.size > STREAM_THRESHOLD {
            let file =
                tokio::fs::File::open(&path).await.with_context(|| format!("opening {}", path.display()))?;
            reqwest::Body::wrap(FileBody::new(file, blob.size))
        } else {
            reqwest::Body::from(
                tokio::fs::read(&path).await.with_context(|| format!("reading {}", path.display()))?,
            )
        };
        let response = self
            .request(reqwest::Method::PUT, &upload_url, repository)
            .await?
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, blob.size)
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT {upload_url}"))?;
        expect(response, StatusCode::CREATED, "PUT", &upload_url).await?;
        Ok(())
    }

    async fn put_manifest(
        &self,
        catalog: &Catalog,
        repository: &str,
        manifest: &Descriptor,
        reference: &str,
    ) -> anyhow::Result<()> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base_url);
        let body = catalog.read_blob(&manifest.digest)?;
        let response = self
            .request(reqwest::Method::PUT, &url, repository)
            .await?
            .header(CONTENT_TYPE, &manifest.media_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let response = expect(response, StatusCode::CREATED, "PUT", &url).await?;
        let returned = response.headers().get("docker-content-digest").and_then(|value| value.to_str().ok());
        if let Some(returned) = returned {
            anyhow::ensure!(
                returned == manifest.digest,
                "PUT {url}: registry says digest {returned}, expected {}",
                manifest.digest
            );
        }
        Ok(())
    }

    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        repository: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let request = self.client.request(method, url);
        Ok(match &self.auth {
            Auth::Anonymous => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Token { .. } => {
                request.header(AUTHORIZATION, format!("Bearer {}", self.token(repository).await?))
            }
        })
    }

    /// A `pull,push` token for `repository` (Docker "Token Authentication Specification"), fetched
    /// once and reused: the seeding finishes well within a token's lifetime.
    async fn token(&self, repository: &str) -> anyhow::Result<String> {
        let Auth::Token { realm, service, user, password } = &self.auth else {
            anyhow::bail!("no token issuer configured");
        };
        let mut tokens = self.tokens.lock().await;
        if let Some(token) = tokens.get(repository) {
            return Ok(token.clone());
        }
        let scope = format!("repository:{repository}:pull,push");
        let url = reqwest::Url::parse_with_params(
            realm,
            [("service", service.as_str()), ("scope", scope.as_str())],
        )
        .with_context(|| format!("token realm {realm}"))?;
        let response = self
            .client
            .get(url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .with_context(|| format!("GET {realm}"))?;
        let response = expect(response, StatusCode::OK, "GET", realm).await?;
        let body: serde_json::Value =
            response.json().await.with_context(|| format!("parsing the answer of {realm}"))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|token| token.as_str())
            .with_context(|| format!("{realm} answered without a token"))?
            .to_owned();
        tokens.insert(repository.to_owned(), token.clone());
        Ok(token)
    }
}

/// A file as a request body in large frames. `Body::from(tokio::fs::File)` sends 4 KiB frames,
/// which makes pushing the 300 MB of the benchmark image CPU-bound on the client.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
}

impl FileBody {
    const FRAME: usize = 512 * 1024;

    fn new(file: tokio::fs::File, size: u64) -> FileBody {
        FileBody { file, remaining: size }
    }
}

impl hyper::body::Body for FileBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(Self::FRAME);
        let mut buffer = vec![0; want];
        let mut read_buffer = ReadBuf::new(&mut buffer);
        match Pin::new(&mut self.file).poll_read(context, &mut read_buffer) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            Poll::Ready(Ok(())) => {
                let filled = read_buffer.filled().len();
                if filled == 0 {
                    let error = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob file shorter than its size",
                    );
                    return Poll::Ready(Some(Err(error)));
                }
                buffer.truncate(filled);
                self.remaining -= filled as u64;
                Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes::Bytes::from(buffer)))))
            }
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

async fn expect(
    response: reqwest::Response,
    status: StatusCode,
    method: &str,
    url: &str,
) -> anyhow::Result<reqwest::Response> {
    if response.status() == status {
        return Ok(response);
    }
    let got = response.status();
    let body = response.text().await.unwrap_or_default();
    anyhow::bail!(
        "{method} {url}: expected {status}, got {got}: {}",
        body.chars().take(500).collect::<String>()
    )
}

/// Pushes `catalog` to the four registries of `testbed` at once, on a small runtime of its own.
pub fn push_everywhere(testbed: &Testbed, catalog: &Catalog) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the upload runtime")?;
    let uploaders = Kind::ALL
        .iter()
        .map(|&kind| Ok((kind, Uploader::for_registry(testbed, kind)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime.block_on(async {
        let mut pushes = uploaders.iter().map(|(kind, uploader)| seed_one(testbed, *kind, uploader, catalog));
        let (Some(plain), Some(basic), Some(mtls), Some(token)) =
            (pushes.next(), pushes.next(), pushes.next(), pushes.next())
        else {
            anyhow::bail!("expected four registries");
        };
        let (plain, basic, mtls, token) = tokio::join!(plain, basic, mtls, token);
        plain.and(basic).and(mtls).and(token)
    })
}

async fn seed_one(
    testbed: &Testbed,
    kind: Kind,
    uploader: &Uploader,
    catalog: &Catalog,
) -> anyhow::Result<()> {
    let registry = testbed.registry(kind).host();
    let started = Instant::now();
    uploader
        .push_catalog(catalog)
        .await
        .with_context(|| format!("seeding the {} registry {registry}", kind.name()))?;
    eprintln!("berth-testkit: seeded the {} registry {registry} in {:.1?}", kind.name(), started.elapsed());
    Ok(())
}
