//! Manifest and index resolution (OCI distribution spec "Pulling manifests"; OCI image spec manifest.md and
//! image-index.md; Docker image manifest v2 schema 2 and manifest list).
//!
//! A reference becomes exactly one image manifest for one platform, or a clear error: the manifest is capped
//! and verified against its digest, documents whose type is ambiguous are refused, and an index without the
//! wanted platform is an error listing what it has, never a silent fallback to another platform.

use std::collections::BTreeMap;

use berth_reference::{Digest, Platform, Reference};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::auth::pull_scope;
use crate::error::{Error, ErrorKind};
use crate::transport::{Inner, decode_envelope, read_limited};
use crate::{Descriptor, Known, Resolved, blob};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Every manifest type berth pulls, for the Accept header.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// The most bytes a manifest may have (the limit common registries enforce).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// The most bytes an image config blob may have.
pub const MAX_CONFIG_SIZE: u64 = 8 * 1024 * 1024;

const KNOWN_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<RawPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// One entry of an index, with what platform choice needs to know about it.
#[derive(Clone, Debug)]
pub(crate) struct IndexEntry {
    pub descriptor: Descriptor,
    /// Docker buildx attestations ride in the index as `unknown/unknown` manifests; they are not images.
    pub attestation: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum Parsed {
    Image { config: Descriptor, layers: Vec<Descriptor> },
    Index { entries: Vec<IndexEntry> },
}

fn convert(raw: RawDescriptor) -> Result<(Descriptor, bool), String> {
    let digest =
        Digest::parse(&raw.digest).map_err(|error| format!("invalid digest {:?}: {error}", raw.digest))?;
    let attestation =
        raw.annotations.get("vnd.docker.reference.type").is_some_and(|kind| kind == "attestation-manifest");
    let platform = raw.platform.map(|platform| Platform {
        os: platform.os,
        architecture: platform.architecture,
        variant: platform.variant.filter(|variant| !variant.is_empty()),
    });
    Ok((Descriptor { media_type: raw.media_type, digest, size: raw.size, platform }, attestation))
}

/// Parses a manifest or index; returns its media type and content. `content_type` is the response header.
pub(crate) fn parse_manifest(body: &[u8], content_type: Option<&str>) -> Result<(String, Parsed), String> {
    let document: Document =
        serde_json::from_slice(body).map_err(|error| format!("not a JSON manifest: {error}"))?;
    if document.schema_version == Some(1) {
        return Err("Docker schema 1 manifests are not supported (re-push the image with a current client)"
            .to_string());
    }
    if document.manifests.is_some() && (document.layers.is_some() || document.config.is_some()) {
        return Err(
            "the document has both `manifests` and `layers`/`config`: its type is ambiguous".to_string()
        );
    }
    let header_type =
        content_type.map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let media_type = match (&document.media_type, &header_type) {
        (Some(declared), Some(header)) if KNOWN_TYPES.contains(&header.as_str()) && declared != header => {
            return Err(format!(
                "the document says mediaType {declared} but the registry sent Content-Type {header}"
            ));
        }
        (Some(declared), _) => declared.clone(),
        (None, Some(header)) if KNOWN_TYPES.contains(&header.as_str()) => header.clone(),
        // No usable type anywhere: the OCI image spec lets the fields decide.
        (None, _) if document.manifests.is_some() => OCI_INDEX.to_string(),
        (None, _) if document.layers.is_some() => OCI_MANIFEST.to_string(),
        (None, _) => return Err("the document has no mediaType and no manifests or layers".to_string()),
    };
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let (Some(config), Some(layers)) = (document.config, document.layers) else {
                return Err(format!("{media_type} without config or layers"));
            };
            let (config, _) = convert(config)?;
            let layers = layers
                .into_iter()
                .map(|layer| convert(layer).map(|(descriptor, _)| descriptor))
                .collect::<Result<_, _>>()?;
            Ok((media_type, Parsed::Image { config, layers }))
        }
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            let Some(manifests) = document.manifests else {
                return Err(format!("{media_type} without manifests"));
            };
            if document.layers.is_some() {
                return Err(format!("{media_type} with layers: its type is ambiguous"));
            }
            let entries = manifests
                .into_iter()
                .map(|raw| {
                    convert(raw).map(|(descriptor, attestation)| IndexEntry { descriptor, attestation })
                })
                .collect::<Result<_, _>>()?;
            Ok((media_type, Parsed::Index { entries }))
        }
        other => Err(format!("unsupported manifest media type {other}")),
    }
}

/// Chooses the index entry for `wanted`; on failure returns the platforms the index offers.
pub(crate) fn choose_platform<'a>(
    entries: &'a [IndexEntry],
    wanted: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    let candidates = entries.iter().filter(|entry| !entry.attestation).filter_map(|entry| {
        let platform = entry.descriptor.platform.as_ref()?;
        (platform.os != "unknown" || platform.architecture != "unknown").then_some((entry, platform))
    });
    let mut available: Vec<String> = Vec::new();
    for (entry, platform) in candidates {
        if wanted.matches(&platform.os, &platform.architecture, platform.variant.as_deref()) {
            return Ok(&entry.descriptor);
        }
        let shown = platform.to_string();
        if !available.contains(&shown) {
            available.push(shown);
        }
    }
    Err(available)
}

/// A verified manifest as received.
pub(crate) struct Fetched {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub parsed: Parsed,
}

pub(crate) async fn fetch_manifest(
    inner: &Inner,
    repository: &str,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<Fetched, Error> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
    let path = format!("/v2/{repository}/manifests/{reference}");
    let scope = pull_scope(repository);
    let response = inner.send(Method::GET, &path, headers, Some(&scope)).await?;
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        let said = decode_envelope(&read_limited(response, 64 * 1024).await).1;
        return Err(not_found(inner, repository, reference, said).await);
    }
    if !status.is_success() {
        return Err(inner.status_error(response).await);
    }
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).map(str::to_string);
    let header_digest = response
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let bytes = blob::read_capped(inner, response, MAX_MANIFEST_SIZE).await?;
    let digest = verify_manifest_digest(inner, &bytes, expected, header_digest.as_deref())?;
    let (media_type, parsed) = parse_manifest(&bytes, content_type.as_deref())
        .map_err(|reason| inner.error(ErrorKind::InvalidManifest).said(reason))?;
    Ok(Fetched { digest, media_type, bytes, parsed })
}

/// The digest of the bytes received, checked against the digest asked for and Docker-Content-Digest.
fn verify_manifest_digest(
    inner: &Inner,
    bytes: &[u8],
    expected: Option<&Digest>,
    header: Option<&str>,
) -> Result<Digest, Error> {
    let hash_like = |like: &Digest| Digest::of(like.algorithm(), bytes);
    let digest = match expected {
        Some(expected) => {
            let actual = hash_like(expected);
            if &actual != expected {
                return Err(inner
                    .error(ErrorKind::DigestMismatch {
                        expected: expected.to_string(),
                        actual: actual.to_string(),
                    })
                    .said("the manifest does not hash to the digest asked for"));
            }
            actual
        }
        None => Digest::sha256_of(bytes),
    };
    if let Some(header) = header
        && let Ok(claimed) = Digest::parse(header.trim())
    {
        let actual = hash_like(&claimed);
        if actual != claimed {
            return Err(inner
                .error(ErrorKind::DigestMismatch {
                    expected: claimed.to_string(),
                    actual: actual.to_string(),
                })
                .said("the manifest does not match the registry's Docker-Content-Digest"));
        }
    }
    Ok(digest)
}

/// Tells "no such repository" from "no such tag": registries answer both with 404 on a manifest.
async fn not_found(inner: &Inner, repository: &str, reference: &str, said: String) -> Error {
    let path = format!("/v2/{repository}/tags/list");
    let scope = pull_scope(repository);
    let Ok(response) = inner.send(Method::GET, &path, HeaderMap::new(), Some(&scope)).await else {
        return inner.error(ErrorKind::ManifestNotFound).said(said);
    };
    if response.status() == StatusCode::NOT_FOUND {
        let tags_said = decode_envelope(&read_limited(response, 64 * 1024).await).1;
        return inner.error(ErrorKind::RepositoryNotFound).said(if tags_said.is_empty() {
            said
        } else {
            tags_said
        });
    }
    #[derive(Deserialize)]
    struct Tags {
        tags: Option<Vec<String>>,
    }
    let body = read_limited(response, 1024 * 1024).await;
    let tags = serde_json::from_slice::<Tags>(&body).ok().and_then(|tags| tags.tags).unwrap_or_default();
    let known = if tags.is_empty() {
        "the repository has no tags".to_string()
    } else {
        let shown: Vec<&str> = tags.iter().take(5).map(String::as_str).collect();
        let more = if tags.len() > 5 { format!(" and {} more", tags.len() - 5) } else { String::new() };
        format!("existing tags: {}{more}", shown.join(", "))
    };
    inner.error(ErrorKind::ManifestNotFound).said(format!("{reference} is not in {repository} ({known})"))
}

/// `known`'s bytes for `digest` when they hash to it and stay within `max`.
fn known_bytes(known: &dyn Known, digest: &Digest, max: u64) -> Option<Vec<u8>> {
    let bytes = known.get(digest)?;
    if bytes.len() as u64 > max {
        return None;
    }
    (&Digest::of(digest.algorithm(), &bytes) == digest).then_some(bytes)
}

/// A manifest `known` holds under `digest`, parsed as a fetched one would be.
fn known_manifest(known: &dyn Known, digest: &Digest) -> Option<Fetched> {
    let bytes = known_bytes(known, digest, MAX_MANIFEST_SIZE)?;
    let (media_type, parsed) = parse_manifest(&bytes, None).ok()?;
    Some(Fetched { digest: digest.clone(), media_type, bytes, parsed })
}

/// The manifest named by `digest`: from `known` when it holds it, otherwise from the registry.
async fn manifest_by_digest(
    inner: &Inner,
    known: &dyn Known,
    repository: &str,
    digest: &Digest,
) -> Result<Fetched, Error> {
    match known_manifest(known, digest) {
        Some(fetched) => Ok(fetched),
        None => fetch_manifest(inner, repository, &digest.to_string(), Some(digest)).await,
    }
}

pub(crate) async fn resolve(
    inner: &std::sync::Arc<Inner>,
    reference: &Reference,
    platform: &Platform,
    known: &dyn Known,
) -> Result<Resolved, Error> {
    let repository = reference.repository();
    // A tag is always asked for (it can move); a digest only when the document is not already held.
    let first = match reference.digest() {
        Some(digest) => manifest_by_digest(inner, known, repository, digest).await?,
        None => fetch_manifest(inner, repository, &reference.manifest_reference(), None).await?,
    };
    let (image, index) = match &first.parsed {
        Parsed::Image { .. } => (first, None),
        Parsed::Index { entries } => {
            let chosen = choose_platform(entries, platform).map_err(|available| {
                inner.error(ErrorKind::NoMatchingPlatform { wanted: platform.to_string(), available })
            })?;
            let image = manifest_by_digest(inner, known, repository, &chosen.digest).await?;
            if matches!(image.parsed, Parsed::Index { .. }) {
                return Err(inner
                    .error(ErrorKind::InvalidManifest)
                    .said(format!("index entry {} is itself an index", chosen.digest)));
            }
            (image, Some((first.digest, first.media_type, first.bytes)))
        }
    };
    let Parsed::Image { config, layers } = image.parsed else {
        return Err(inner.error(ErrorKind::InvalidManifest).said("expected an image manifest"));
    };
    let config_bytes = match known_bytes(known, &config.digest, MAX_CONFIG_SIZE) {
        Some(bytes) if bytes.len() as u64 == config.size => bytes,
        _ => blob::fetch_blob(inner, repository, &config, MAX_CONFIG_SIZE).await?,
    };
    Ok(Resolved {
        reference: reference.clone(),
        manifest_digest: image.digest,
        manifest_media_type: image.media_type,
        manifest: image.bytes,
        index,
        config,
        config_bytes,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const HEX_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn image_manifest(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{HEX_A}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{HEX_B}","size":20}}]}}"#
        )
    }

    fn entry(os: &str, architecture: &str, variant: Option<&str>, hex: &str, attestation: bool) -> String {
        let variant = variant.map(|variant| format!(r#","variant":"{variant}""#)).unwrap_or_default();
        let annotations = if attestation {
            r#","annotations":{"vnd.docker.reference.type":"attestation-manifest"}"#
        } else {
            ""
        };
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{hex}","size":5,"platform":{{"os":"{os}","architecture":"{architecture}"{variant}}}{annotations}}}"#
        )
    }

    fn index(entries: &[String]) -> String {
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#, entries.join(","))
    }

    #[test]
    fn image_manifest_from_document_type() {
        let (media_type, parsed) =
            parse_manifest(image_manifest(DOCKER_MANIFEST).as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(media_type, DOCKER_MANIFEST);
        let Parsed::Image { config, layers } = parsed else { panic!("expected an image") };
        assert_eq!(config.digest.hex(), HEX_A);
        assert_eq!(config.size, 10);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    }

    #[test]
    fn media_type_from_content_type_when_document_has_none() {
        let body = image_manifest(OCI_MANIFEST).replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
        let (media_type, _) = parse_manifest(
            body.as_bytes(),
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(media_type, DOCKER_MANIFEST);
        let (media_type, _) = parse_manifest(body.as_bytes(), Some("application/json")).unwrap();
        assert_eq!(media_type, OCI_MANIFEST);
    }

    #[test]
    fn ambiguous_documents_are_rejected() {
        let both = format!(
            r#"{{"schemaVersion":2,"manifests":[],"layers":[],"config":{{"digest":"sha256:{HEX_A}","size":1}}}}"#
        );
        assert!(parse_manifest(both.as_bytes(), None).unwrap_err().contains("ambiguous"));
        let contradiction =
            parse_manifest(image_manifest(OCI_MANIFEST).as_bytes(), Some(OCI_INDEX)).unwrap_err();
        assert!(contradiction.contains("Content-Type"), "{contradiction}");
        let index_with_layers = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","layers":[]}}"#);
        assert!(parse_manifest(index_with_layers.as_bytes(), None).is_err());
        assert!(
            parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).unwrap_err().contains("schema 1")
        );
        assert!(parse_manifest(b"not json", None).is_err());
        let bad_digest = image_manifest(OCI_MANIFEST).replace(HEX_B, "abc");
        assert!(parse_manifest(bad_digest.as_bytes(), None).unwrap_err().contains("invalid digest"));
    }

    #[test]
    fn platform_choice_skips_attestations_and_never_falls_back() {
        let body = index(&[
            entry("linux", "amd64", None, HEX_A, false),
            entry("unknown", "unknown", None, HEX_B, true),
            entry("linux", "arm64", Some("v8"), HEX_B, false),
        ]);
        let (_, Parsed::Index { entries }) = parse_manifest(body.as_bytes(), None).unwrap() else {
            panic!("expected an index")
        };
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(choose_platform(&entries, &amd64).unwrap().digest.hex(), HEX_A);
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(choose_platform(&entries, &arm64).unwrap().digest.hex(), HEX_B);
        let s390x = Platform::parse("linux/s390x").unwrap();
        assert_eq!(
            choose_platform(&entries, &s390x).unwrap_err(),
            vec!["linux/amd64".to_string(), "linux/arm64/v8".to_string()]
        );
    }

    #[test]
    fn attestation_for_the_wanted_platform_is_not_chosen() {
        let body = index(&[entry("linux", "amd64", None, HEX_A, true)]);
        let (_, Parsed::Index { entries }) = parse_manifest(body.as_bytes(), None).unwrap() else {
            panic!("expected an index")
        };
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert!(choose_platform(&entries, &amd64).unwrap_err().is_empty());
    }

    struct Holds(Vec<(Digest, Vec<u8>)>);

    impl Known for Holds {
        fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
            self.0.iter().find(|(held, _)| held == digest).map(|(_, bytes)| bytes.clone())
        }
    }

    #[test]
    fn known_documents_are_used_only_when_they_hash_to_their_digest() {
        let manifest = image_manifest(OCI_MANIFEST).into_bytes();
        let digest = Digest::sha256_of(&manifest);
        let holds = Holds(vec![(digest.clone(), manifest.clone())]);
        let fetched = known_manifest(&holds, &digest).expect("a held manifest is used");
        assert_eq!(fetched.media_type, OCI_MANIFEST);
        assert_eq!(fetched.bytes, manifest);
        assert!(matches!(fetched.parsed, Parsed::Image { .. }));

        // Bytes kept under the wrong name (a damaged store) are ignored, so the registry is asked instead.
        let other = Digest::sha256_of(b"something else");
        let damaged = Holds(vec![(other.clone(), manifest.clone())]);
        assert!(known_manifest(&damaged, &other).is_none());
        assert!(known_bytes(&holds, &digest, manifest.len() as u64 - 1).is_none(), "over the cap");
        assert!(known_manifest(&crate::NothingKnown, &digest).is_none());
    }
}
