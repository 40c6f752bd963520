//! Blob reads (OCI distribution spec "Pulling blobs", with `Range` as in RFC 9110 section 14).
//!
//! A layer can be hundreds of MiB, so it streams: the reader never goes past the descriptor's size, resumes
//! with `Range: bytes=<received>-` after a connection reset or an early end (re-authenticating through the
//! auth layer if the token expired meanwhile), and gives up with `Stalled` when no byte arrives within the
//! stall timeout instead of hanging forever. The caller hashes the stream; small blobs are verified here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderValue, RANGE};
use reqwest::{Method, Response, StatusCode};

use crate::Descriptor;
use crate::auth::pull_scope;
use crate::classify;
use crate::error::{Error, ErrorKind};
use crate::transport::Inner;

/// How many times one stream reconnects after resets or early ends.
const MAX_RESUMES: u32 = 5;

/// Reads a whole (small) response body, refusing more than `max` bytes.
pub(crate) async fn read_capped(inner: &Inner, mut response: Response, max: u64) -> Result<Vec<u8>, Error> {
    if let Some(length) =
        response.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        && length > max
    {
        return Err(inner
            .error(ErrorKind::TooLarge)
            .said(format!("{length} bytes announced, the limit is {max}")));
    }
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(inner.opts.stall_timeout, response.chunk()).await {
            Err(_) => {
                return Err(inner
                    .error(ErrorKind::Stalled)
                    .said(format!("no data for {:?}", inner.opts.stall_timeout)));
            }
            Ok(Err(error)) => {
                let kind = classify::classify(&error, inner.sent_client_cert);
                return Err(inner.error(kind).said(classify::describe(&error)));
            }
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(chunk))) => {
                if body.len() as u64 + chunk.len() as u64 > max {
                    return Err(inner.error(ErrorKind::TooLarge).said(format!("more than {max} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// Fetches a small blob whole and verifies its size and digest.
pub(crate) async fn fetch_blob(
    inner: &Arc<Inner>,
    repository: &str,
    descriptor: &Descriptor,
    max: u64,
) -> Result<Vec<u8>, Error> {
    if descriptor.size > max {
        return Err(inner
            .error(ErrorKind::TooLarge)
            .said(format!("blob {} is {} bytes, the limit is {max}", descriptor.digest, descriptor.size)));
    }
    let mut stream = BlobStream::open(Arc::clone(inner), repository, descriptor, 0).await?;
    let mut hasher = descriptor.digest.hasher();
    let mut body = Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0));
    // Bounded: the stream ends at descriptor.size.
    while let Some(chunk) = stream.chunk().await? {
        hasher.update(&chunk);
        body.extend_from_slice(&chunk);
    }
    let actual = hasher.finish();
    if actual != descriptor.digest {
        return Err(inner.error(ErrorKind::DigestMismatch {
            expected: descriptor.digest.to_string(),
            actual: actual.to_string(),
        }));
    }
    Ok(body)
}

/// A blob's bytes from an offset to its descriptor size, resuming after resets. See the module docs.
pub struct BlobStream {
    inner: Arc<Inner>,
    repository: String,
    descriptor: Descriptor,
    /// Offset of the next byte handed to the caller.
    position: u64,
    response: Option<Response>,
    /// Bytes still to drop because the server ignored our Range and started from zero.
    skip: u64,
    resumes: u32,
}

impl BlobStream {
    pub(crate) async fn open(
        inner: Arc<Inner>,
        repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<BlobStream, Error> {
        if offset > descriptor.size {
            return Err(inner.error(ErrorKind::TooLarge).said(format!(
                "offset {offset} is past the end of blob {} ({} bytes)",
                descriptor.digest, descriptor.size
            )));
        }
        let mut stream = BlobStream {
            inner,
            repository: repository.to_string(),
            descriptor: descriptor.clone(),
            position: offset,
            response: None,
            skip: 0,
            resumes: 0,
        };
        if offset < descriptor.size {
            stream.connect().await?;
        }
        Ok(stream)
    }

    /// Offset of the next byte (bytes received so far plus the starting offset).
    pub fn position(&self) -> u64 {
        self.position
    }

    async fn connect(&mut self) -> Result<(), Error> {
        let path = format!("/v2/{}/blobs/{}", self.repository, self.descriptor.digest);
        let mut headers = HeaderMap::new();
        if self.position > 0 {
            let range = format!("bytes={}-", self.position);
            if let Ok(value) = HeaderValue::from_str(&range) {
                headers.insert(RANGE, value);
            }
        }
        let scope = pull_scope(&self.repository);
        let response = self.inner.send(Method::GET, &path, headers, Some(&scope)).await?;
        let expected_remaining = self.descriptor.size - self.position;
        let announced =
            response.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        match response.status() {
            StatusCode::PARTIAL_CONTENT => self.skip = 0,
            StatusCode::OK => {
                // A server that ignores Range sends the whole blob: drop what we already have.
                self.skip = self.position;
                if announced.is_some_and(|length| length > self.descriptor.size) {
                    return Err(self.size_error(announced.unwrap_or_default()));
                }
            }
            _ => return Err(self.inner.status_error(response).await),
        }
        if response.status() == StatusCode::PARTIAL_CONTENT
            && announced.is_some_and(|length| length > expected_remaining)
        {
            return Err(self.size_error(announced.unwrap_or_default() + self.position));
        }
        self.response = Some(response);
        Ok(())
    }

    fn size_error(&self, announced: u64) -> Error {
        self.inner.error(ErrorKind::TooLarge).said(format!(
            "blob {} is {} bytes per its descriptor, the registry sends {announced}",
            self.descriptor.digest, self.descriptor.size
        ))
    }

    async fn resume(&mut self, why: String) -> Result<(), Error> {
        self.response = None;
        if self.resumes >= MAX_RESUMES {
            return Err(self.inner.error(ErrorKind::Network).said(format!(
                "{why}; gave up after {MAX_RESUMES} resumes at byte {} of {}",
                self.position, self.descriptor.size
            )));
        }
        self.resumes += 1;
        tracing::debug!(digest = %self.descriptor.digest, position = self.position, attempt = self.resumes, reason = %why, "resuming blob");
        tokio::time::sleep(Duration::from_millis(100) * self.resumes).await;
        self.connect().await
    }

    /// The next chunk, or `None` once `descriptor.size` bytes were delivered.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        // Bounded: each pass delivers bytes, drops skipped bytes, or uses up one of MAX_RESUMES.
        loop {
            if self.position >= self.descriptor.size {
                self.response = None;
                return Ok(None);
            }
            let Some(response) = self.response.as_mut() else {
                self.connect().await?;
                continue;
            };
            let next = tokio::time::timeout(self.inner.opts.stall_timeout, response.chunk()).await;
            match next {
                Err(_) => {
                    self.response = None;
                    return Err(self.inner.error(ErrorKind::Stalled).said(format!(
                        "no data for {:?} at byte {} of {} of blob {}",
                        self.inner.opts.stall_timeout,
                        self.position,
                        self.descriptor.size,
                        self.descriptor.digest
                    )));
                }
                Ok(Ok(Some(mut bytes))) => {
                    if self.skip > 0 {
                        let dropped = self.skip.min(bytes.len() as u64);
                        self.skip -= dropped;
                        bytes = bytes.slice(usize::try_from(dropped).unwrap_or(bytes.len())..);
                        if bytes.is_empty() {
                            continue;
                        }
                    }
                    let remaining = self.descriptor.size - self.position;
                    if bytes.len() as u64 > remaining {
                        self.response = None;
                        return Err(self.size_error(self.position + bytes.len() as u64));
                    }
                    self.position += bytes.len() as u64;
                    return Ok(Some(bytes));
                }
                Ok(Ok(None)) => {
                    self.resume(format!("the registry ended the blob early at byte {}", self.position))
                        .await?;
                }
                Ok(Err(error)) => {
                    let why = classify::describe(&error);
                    self.resume(format!("connection lost: {why}")).await?;
                }
            }
        }
    }
}
