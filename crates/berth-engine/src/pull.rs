//! `berth pull`: name → registry (mirrors first) → credentials → manifest for this platform → config and
//! layers into the store.
//!
//! Each layer is read from the network once: a blocking worker takes the chunks, appends them to the
//! store's ingest file (which hashes the compressed bytes), decompresses and unpacks them into a staging
//! dir (which hashes the uncompressed bytes), and only when both digests match are the blob and the layer
//! dir committed by rename. Layers run concurrently so every core decompresses.

use std::io::{Read, Write};
use std::sync::Arc;

use berth_reference::{Digest, Platform, Reference};
use berth_registry::{Descriptor, ErrorKind, Known, Registry, Resolved};
use berth_store::Ingest;
use berth_unpack::{Compression, Limits};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{Engine, Error};

/// How a pull should go.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform`; the host's platform when `None`.
    pub platform: Option<Platform>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The normalized name that was asked for.
    pub reference: Reference,
    /// The digest the registry gave for the name: the index's when the name points at one.
    pub digest: Digest,
    /// The manifest for this platform (what `run` uses).
    pub manifest_digest: Digest,
    /// The registry (or mirror) that served it.
    pub served_by: String,
    pub layers_downloaded: usize,
    pub layers_cached: usize,
}

/// Progress of a pull, reported to the CLI. Every method has a no-op default.
pub trait PullObserver: Send + Sync {
    fn warning(&self, _message: &str) {}
    fn layer_started(&self, _digest: &Digest, _size: u64) {}
    fn layer_progress(&self, _digest: &Digest, _bytes: u64) {}
    fn layer_done(&self, _digest: &Digest, _cached: bool) {}
}

/// Observer that ignores everything.
pub struct Quiet;
impl PullObserver for Quiet {}

/// Channel depth between the network task and a layer's worker. The HTTP client hands out chunks of up to
/// ~400 KiB on loopback, so this bounds a layer's buffered bytes to about 1.6 MiB: the network is faster than
/// the decompressor and a deeper queue only fills up (32 chunks cost 12 MiB of RSS per layer, measured),
/// while the kernel's socket buffer keeps the next bytes ready anyway.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Attempts per layer: a stalled or broken transfer is resumed from its partial ingest file twice more.
const LAYER_ATTEMPTS: u32 = 3;

/// Failures of the transfer itself, which a resumed attempt can get past (not auth, not a wrong digest).
fn is_retryable(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Stalled | ErrorKind::Network | ErrorKind::Timeout | ErrorKind::ConnectionRefused
    )
}

impl Engine {
    /// Pulls `image` into the store and records its name.
    pub async fn pull(
        &self,
        image: &str,
        options: &PullOptions,
        observer: Arc<dyn PullObserver>,
    ) -> Result<Pulled, Error> {
        let reference = Reference::parse(image)?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let endpoints = self.endpoints(reference.domain());
        let (upstream, mirrors) =
            endpoints.split_last().expect("endpoints always end with the registry itself");
        for mirror in mirrors {
            let endpoint = reference.with_domain(mirror);
            match self.pull_from(&reference, &endpoint, &platform, &*observer).await {
                Ok(pulled) => return Ok(pulled),
                Err(Error::Registry { source, .. }) => {
                    observer.warning(&format!("mirror {mirror} failed, trying the next source: {source}"));
                }
                Err(e) => return Err(e),
            }
        }
        self.pull_from(&reference, &reference.with_domain(upstream), &platform, &*observer).await
    }

    async fn pull_from(
        &self,
        reference: &Reference,
        endpoint: &Reference,
        platform: &Platform,
        observer: &dyn PullObserver,
    ) -> Result<Pulled, Error> {
        let registry_error = |source| Error::Registry { image: reference.to_string(), source };
        let registry = self.registry(endpoint.domain(), endpoint.repository())?;
        for warning in registry.warnings() {
            observer.warning(warning);
        }
        let known = StoredDocuments(&self.store);
        let (registry, resolved) = match registry.resolve_with(endpoint, platform, &known).await {
            Ok(resolved) => (registry, resolved),
            // A stale login must not break a public image: try once more without it, and say so.
            Err(e) if registry.credential().is_some() && matches!(e.kind(), ErrorKind::WrongCredentials) => {
                let anonymous = registry.without_credential().map_err(registry_error)?;
                match anonymous.resolve_with(endpoint, platform, &known).await {
                    Ok(resolved) => {
                        observer.warning(&format!(
                            "the stored login for {} was rejected ({e}); pulled anonymously. \
                             Run `berth login {}` to refresh it",
                            endpoint.domain(),
                            endpoint.domain()
                        ));
                        (anonymous, resolved)
                    }
                    Err(_) => return Err(registry_error(e)),
                }
            }
            Err(e) => return Err(registry_error(e)),
        };
        self.fetch_image(reference, &registry, endpoint, resolved, observer).await
    }

    async fn fetch_image(
        &self,
        reference: &Reference,
        registry: &Registry,
        endpoint: &Reference,
        resolved: Resolved,
        observer: &dyn PullObserver,
    ) -> Result<Pulled, Error> {
        let image = reference.to_string();
        let repository = endpoint.repository();

        // The registry client fetched and verified the config while resolving: store it, never fetch it twice.
        // Kept as is when the store has it intact; a damaged stored copy is replaced.
        let config_bytes = resolved.config_bytes.as_slice();
        self.store.put_blob(&resolved.config.digest, config_bytes)?;
        let diff_ids = crate::image::diff_ids(config_bytes)
            .map_err(|reason| Error::Corrupt { image: image.clone(), reason })?;
        if diff_ids.len() != resolved.layers.len() {
            return Err(Error::Corrupt {
                image: image.clone(),
                reason: format!(
                    "the manifest lists {} layers but the config has {} diff_ids",
                    resolved.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let chain_ids = berth_store::chain_ids(&diff_ids);

        let jobs: Vec<_> = resolved.layers.iter().zip(diff_ids.iter()).zip(chain_ids.iter()).collect();
        let mut cached = 0;
        let mut downloaded = 0;
        let image = image.as_str();
        let mut results =
            futures_util::stream::iter(jobs.into_iter().map(|((layer, diff_id), chain_id)| async move {
                if self.store.has_layer(chain_id) && self.store.has_blob(&layer.digest) {
                    observer.layer_done(&layer.digest, true);
                    return Ok(true);
                }
                observer.layer_started(&layer.digest, layer.size);
                let job = LayerJob { image, registry, repository, layer, diff_id, chain_id, observer };
                self.fetch_layer_with_retries(&job).await?;
                observer.layer_done(&layer.digest, false);
                Ok::<bool, Error>(false)
            }))
            .buffer_unordered(self.layer_concurrency(&resolved.layers));
        while let Some(result) = results.next().await {
            if result? {
                cached += 1;
            } else {
                downloaded += 1;
            }
        }
        drop(results);

        // Manifest (and index) last: an image is only visible once everything it names is stored. Under the
        // store lock, so a concurrent prune cannot see the fresh layers unreferenced and delete them between
        // their commit and the ref that names them.
        let _lock = self.store.lock()?;
        self.store.put_blob(&resolved.manifest_digest, &resolved.manifest)?;
        let digest = match &resolved.index {
            Some((index_digest, _, index_bytes)) => {
                self.store.put_blob(index_digest, index_bytes)?;
                index_digest.clone()
            }
            None => resolved.manifest_digest.clone(),
        };
        crate::image::record(&self.store, reference, &resolved.manifest_digest)?;
        drop(_lock);
        Ok(Pulled {
            reference: reference.clone(),
            digest,
            manifest_digest: resolved.manifest_digest,
            served_by: endpoint.domain().to_string(),
            layers_downloaded: downloaded,
            layers_cached: cached,
        })
    }

    /// Layers in flight at once. zstd decodes several times faster than gzip, so a layer per core keeps
    /// every core busy, and each zstd layer in flight holds a decoder window of several MiB: by default a
    /// zstd image gets one layer per core (at least 2), not the gzip default. A chosen value is kept.
    fn layer_concurrency(&self, layers: &[Descriptor]) -> usize {
        if let Some(chosen) = self.chosen_concurrency {
            return chosen;
        }
        let all_zstd = !layers.is_empty()
            && layers.iter().all(|l| Compression::from_media_type(&l.media_type) == Some(Compression::Zstd));
        if !all_zstd {
            return crate::DEFAULT_CONCURRENCY;
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        crate::DEFAULT_CONCURRENCY.min(cores.max(2))
    }

    /// [`Engine::fetch_layer`], tried again (resuming from the partial ingest file) when the transfer stalls
    /// or the connection fails mid-layer; the last error is kept when every attempt fails.
    async fn fetch_layer_with_retries(&self, job: &LayerJob<'_>) -> Result<(), Error> {
        let (layer, observer) = (job.layer, job.observer);
        let mut attempt = 1;
        loop {
            let resuming = self.store.partial_len(&layer.digest) > 0;
            match self.fetch_layer(job).await {
                // Bytes kept from an earlier attempt can be bad (a write that failed half-way, a crash);
                // the store has dropped them, so start over from zero once rather than fail.
                Err(Error::Store(berth_store::Error::DigestMismatch { .. }))
                    if resuming && attempt < LAYER_ATTEMPTS =>
                {
                    observer.warning(&format!(
                        "layer {}: the partial download kept from an earlier attempt was damaged; downloading it again",
                        layer.digest
                    ));
                    attempt += 1;
                }
                Err(Error::Registry { source, .. })
                    if attempt < LAYER_ATTEMPTS && is_retryable(source.kind()) =>
                {
                    observer.warning(&format!(
                        "layer {} failed ({source}); resuming (attempt {} of {LAYER_ATTEMPTS})",
                        layer.digest,
                        attempt + 1
                    ));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One layer, one network pass: chunks go to a blocking worker that tees them into the ingest file
    /// and the unpacker.
    async fn fetch_layer(&self, job: &LayerJob<'_>) -> Result<(), Error> {
        let LayerJob { image, registry, repository, layer, diff_id, chain_id, observer } = *job;
        let ingest = self.store.ingest(&layer.digest, layer.size)?;
        let offset = ingest.offset();
        let staging = self.store.stage_layer()?;
        let compression = Compression::from_media_type(&layer.media_type).unwrap_or(Compression::None);
        let replay = if offset > 0 { Some((ingest.path().to_path_buf(), offset)) } else { None };
        let (sender, receiver) = mpsc::channel::<Result<Bytes, ()>>(CHUNKS_IN_FLIGHT);
        let staging_path = staging.path().to_path_buf();
        let limits = Limits::default();
        let worker = tokio::task::spawn_blocking(move || {
            let mut reader = TeeReader::new(replay, receiver, ingest)?;
            let unpacked = berth_unpack::unpack(&mut reader, compression, &staging_path, &limits);
            // Drain what the unpacker did not need (tar padding) so the blob hash covers every byte.
            let drained = std::io::copy(&mut reader, &mut std::io::sink());
            Ok::<_, std::io::Error>((unpacked, drained, reader.into_ingest()))
        });

        let mut network_error = None;
        match registry.blob_stream(repository, layer, offset).await {
            Ok(mut stream) => loop {
                match stream.chunk().await {
                    Ok(Some(chunk)) => {
                        observer.layer_progress(&layer.digest, chunk.len() as u64);
                        if sender.send(Ok(chunk)).await.is_err() {
                            break; // the worker stopped early; its error says why
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = sender.send(Err(())).await;
                        network_error = Some(e);
                        break;
                    }
                }
            },
            Err(e) => {
                let _ = sender.send(Err(())).await;
                network_error = Some(e);
            }
        }
        drop(sender);
        let joined = worker.await.map_err(|e| Error::Io {
            context: format!("layer {} worker", layer.digest),
            source: std::io::Error::other(e.to_string()),
        })?;
        if let Some(e) = network_error {
            return Err(Error::Registry { image: image.to_string(), source: e });
        }
        let (unpacked, drained, ingest) =
            joined.map_err(Error::io(format!("ingest of layer {}", layer.digest)))?;
        let unpacked = match unpacked {
            Ok(unpacked) => unpacked,
            Err(source) => {
                // Damaged bytes usually trip the decompressor before the digest is checked. When every
                // byte arrived, the digest decides which it was: a mismatch is reported as such (and the
                // store drops the partial); otherwise the partial goes too, so that no later pull replays
                // bytes that cannot be unpacked.
                if drained.is_ok() && ingest.offset() == ingest.size() {
                    ingest.commit()?;
                } else {
                    ingest.discard();
                }
                return Err(Error::Unpack {
                    image: image.to_string(),
                    digest: layer.digest.to_string(),
                    source,
                });
            }
        };
        drained.map_err(Error::io(format!("reading layer {}", layer.digest)))?;
        // A wrong compressed digest is reported by the store, which also discards the partial file.
        ingest.commit()?;
        if &unpacked.diff_id != diff_id {
            return Err(Error::Corrupt {
                image: image.to_string(),
                reason: format!(
                    "layer {} unpacks to {} but the config says {}",
                    layer.digest, unpacked.diff_id, diff_id
                ),
            });
        }
        self.store.commit_layer(staging, chain_id)?;
        Ok(())
    }
}

/// One layer to fetch and what it is checked against.
#[derive(Clone, Copy)]
struct LayerJob<'a> {
    /// The name asked for, for error messages.
    image: &'a str,
    registry: &'a Registry,
    repository: &'a str,
    layer: &'a Descriptor,
    /// What the layer must unpack to (the config's diff_id) and where it goes in the store.
    diff_id: &'a Digest,
    chain_id: &'a Digest,
    observer: &'a dyn PullObserver,
}

/// The store's manifests and configs, offered to the registry client so that documents named by a digest
/// are not fetched again.
struct StoredDocuments<'a>(&'a berth_store::Store);

impl Known for StoredDocuments<'_> {
    fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.0.read_blob(digest, berth_registry::MAX_CONFIG_SIZE).ok()
    }
}

/// The worker's reader: first the bytes of an interrupted earlier attempt (already in the ingest file),
/// then network chunks, each appended to the ingest file as it passes.
struct TeeReader {
    replay: Option<std::io::Take<std::fs::File>>,
    receiver: mpsc::Receiver<Result<Bytes, ()>>,
    ingest: Ingest,
    current: Bytes,
    finished: bool,
}

impl TeeReader {
    fn new(
        replay: Option<(std::path::PathBuf, u64)>,
        receiver: mpsc::Receiver<Result<Bytes, ()>>,
        ingest: Ingest,
    ) -> std::io::Result<TeeReader> {
        let replay = match replay {
            Some((path, length)) => Some(std::fs::File::open(path)?.take(length)),
            None => None,
        };
        Ok(TeeReader { replay, receiver, ingest, current: Bytes::new(), finished: false })
    }

    fn into_ingest(self) -> Ingest {
        self.ingest
    }
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(replay) = &mut self.replay {
            let n = replay.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.replay = None;
        }
        while self.current.is_empty() {
            if self.finished {
                return Ok(0);
            }
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.ingest.write_all(&chunk)?;
                    self.current = chunk;
                }
                Some(Err(())) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "download interrupted",
                    ));
                }
                None => self.finished = true,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
