//! Assembles the test images from layers: configs, manifests, indexes and manifest lists (OCI
//! image-spec manifest.md, image-index.md, config.md; Docker "Image Manifest V2, Schema 2"), all
//! serialized compactly with sorted keys so their digests depend on content alone.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::compress::Codec;
use super::content::{self, PATH_ENV};
use super::layout::{BlobRef, BlobStore};
use super::media_type;
use super::tar_layer::{BuiltLayer, LayerSink, TarLayer, build_two_at_a_time};
use super::{Catalog, Descriptor, Image, Manifest, Platform};

const CREATED: &str = "2024-01-01T00:00:00Z";

/// Layers that appear in both a gzip and a zstd image.
const GZIP_AND_ZSTD: &[Codec] = &[Codec::Gzip, Codec::Zstd];
/// Layers only gzip images use (the fixture, the multiarch markers).
const GZIP_ONLY: &[Codec] = &[Codec::Gzip];

/// Builds every image into the OCI layout `dir` (created if missing). `with_multi = false` leaves out
/// the ~200 MiB `testbed/multi`.
pub fn build_into(dir: &Path, busybox: &Path, with_multi: bool) -> anyhow::Result<Catalog> {
    let store = BlobStore::create(dir)?;
    let base = build_layer(&store, GZIP_AND_ZSTD, |layer| content::busybox_layer(layer, busybox))?;
    let arch = host_architecture();
    let mut images = Vec::new();

    let busybox_gzip = write_image(&store, &ImageSpec::new(&[&base], arch))?;
    let busybox_zstd = write_image(&store, &ImageSpec { zstd: true, ..ImageSpec::new(&[&base], arch) })?;
    let busybox_docker = write_image(&store, &ImageSpec { docker: true, ..ImageSpec::new(&[&base], arch) })?;
    images.push(single("testbed/busybox", "1", &busybox_gzip));
    images.push(single("testbed/busybox", "1-zstd", &busybox_zstd));
    images.push(single("testbed/busybox", "1-docker", &busybox_docker));
    images.push(single("library/busybox", "1", &busybox_gzip));
    images.push(single("library/busybox", "latest", &busybox_gzip));

    if with_multi {
        let data = build_data_layers(&store)?;
        let mut layers = vec![&base];
        layers.extend(data.iter());
        let gzip = write_image(&store, &ImageSpec::new(&layers, arch))?;
        let zstd = write_image(&store, &ImageSpec { zstd: true, ..ImageSpec::new(&layers, arch) })?;
        images.push(single("testbed/multi", "1", &gzip));
        images.push(single("testbed/multi", "1-zstd", &zstd));
    }

    images.extend(multiarch(&store, &base)?);

    let lower = build_layer(&store, GZIP_ONLY, content::fixture_lower)?;
    let upper = build_layer(&store, GZIP_ONLY, content::fixture_upper)?;
    let extra = json!({
        "Env": [PATH_ENV, "BERTH_TESTBED=layers"],
        "WorkingDir": "/data",
        "Labels": {"org.berth.testbed": "layers"},
    });
    let fixture = write_image(
        &store,
        &ImageSpec { config_extra: Some(extra), ..ImageSpec::new(&[&base, &lower, &upper], arch) },
    )?;
    images.push(single("testbed/layers", "1", &fixture));

    write_index_json(dir, &images)?;
    Ok(Catalog { dir: dir.to_path_buf(), images })
}

/// Go's GOARCH name of this machine, as image configs spell it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn build_layer<F>(store: &BlobStore, codecs: &[Codec], fill: F) -> anyhow::Result<BuiltLayer>
where
    F: FnOnce(&mut TarLayer<LayerSink>) -> anyhow::Result<()>,
{
    let mut layer = TarLayer::new(LayerSink::new(store, codecs)?);
    fill(&mut layer)?;
    Ok(layer.finish()?.finish()?)
}

/// The five data layers, two at a time.
fn build_data_layers(store: &BlobStore) -> anyhow::Result<Vec<BuiltLayer>> {
    build_two_at_a_time(&[1, 2, 3, 4, 5], |index| {
        build_layer(store, GZIP_AND_ZSTD, |layer| content::data_layer(layer, index))
    })
}

/// What one image manifest is made of; the synthetic images use it too.
pub(super) struct ImageSpec<'a> {
    layers: &'a [&'a BuiltLayer],
    pub(super) zstd: bool,
    docker: bool,
    architecture: &'a str,
    variant: Option<&'a str>,
    config_extra: Option<Value>,
}

impl<'a> ImageSpec<'a> {
    pub(super) fn new(layers: &'a [&'a BuiltLayer], architecture: &'a str) -> ImageSpec<'a> {
        ImageSpec { layers, zstd: false, docker: false, architecture, variant: None, config_extra: None }
    }
}

/// Writes the config and manifest of `spec` into `store` (OCI image-spec manifest.md and config.md, or
/// Docker schema 2).
pub(super) fn write_image(store: &BlobStore, spec: &ImageSpec<'_>) -> anyhow::Result<Manifest> {
    let (manifest_type, config_type, layer_type) = match (spec.docker, spec.zstd) {
        (true, false) => {
            (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG, media_type::DOCKER_LAYER_GZIP)
        }
        (true, true) => anyhow::bail!("Docker schema 2 has no zstd layer type"),
        (false, false) => (media_type::OCI_MANIFEST, media_type::OCI_CONFIG, media_type::OCI_LAYER_GZIP),
        (false, true) => (media_type::OCI_MANIFEST, media_type::OCI_CONFIG, media_type::OCI_LAYER_ZSTD),
    };
    let mut layers = Vec::new();
    for layer in spec.layers {
        let codec = if spec.zstd { Codec::Zstd } else { Codec::Gzip };
        let blob = layer.blob(codec).with_context(|| format!("layer built without {codec:?}"))?;
        layers.push(descriptor(layer_type, blob));
    }
    let diff_ids: Vec<String> = spec.layers.iter().map(|layer| layer.diff_id.clone()).collect();
    let uncompressed_sizes = spec.layers.iter().map(|layer| layer.raw_size).collect();
    let mut runtime = json!({"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"});
    if let (Some(Value::Object(extra)), Value::Object(runtime)) = (&spec.config_extra, &mut runtime) {
        runtime.extend(extra.clone());
    }
    let history: Vec<Value> = (0..spec.layers.len())
        .map(|index| json!({"created": CREATED, "created_by": format!("berth-testkit layer {index}")}))
        .collect();
    let mut config = json!({
        "created": CREATED,
        "architecture": spec.architecture,
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    if let Some(variant) = spec.variant {
        config["variant"] = json!(variant);
    }
    let config = descriptor(config_type, &store.put(&canonical(&config)?)?);
    let body = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor_json(&config),
        "layers": layers.iter().map(descriptor_json).collect::<Vec<_>>(),
    });
    let manifest = descriptor(manifest_type, &store.put(&canonical(&body)?)?);
    let platform = Platform {
        os: "linux".to_owned(),
        architecture: spec.architecture.to_owned(),
        variant: spec.variant.map(str::to_owned),
    };
    Ok(Manifest {
        manifest,
        platform: Some(platform),
        annotations: BTreeMap::new(),
        config,
        layers,
        diff_ids,
        uncompressed_sizes,
    })
}

/// `testbed/multiarch:1` (OCI index with an attestation) and `:1-docker` (Docker manifest list).
fn multiarch(store: &BlobStore, base: &BuiltLayer) -> anyhow::Result<Vec<Image>> {
    let amd_marker = build_layer(store, GZIP_ONLY, |layer| content::marker_layer(layer, "linux/amd64"))?;
    let arm_marker = build_layer(store, GZIP_ONLY, |layer| content::marker_layer(layer, "linux/arm64/v8"))?;
    let amd_layers = [base, &amd_marker];
    let arm_layers = [base, &arm_marker];
    let amd = ImageSpec::new(&amd_layers, "amd64");
    let arm = ImageSpec { variant: Some("v8"), ..ImageSpec::new(&arm_layers, "arm64") };

    let oci_amd = write_image(store, &amd)?;
    let oci_arm = write_image(store, &arm)?;
    let attestation = attestation(store, &oci_amd)?;
    let children = vec![oci_amd, oci_arm, attestation];
    let index = write_index(store, media_type::OCI_INDEX, &children)?;

    let docker_amd = write_image(store, &ImageSpec { docker: true, ..amd })?;
    let docker_arm = write_image(store, &ImageSpec { docker: true, ..arm })?;
    let docker_children = vec![docker_amd, docker_arm];
    let list = write_index(store, media_type::DOCKER_MANIFEST_LIST, &docker_children)?;

    Ok(vec![
        Image {
            repository: "testbed/multiarch".to_owned(),
            tag: "1".to_owned(),
            manifest: index,
            manifests: children,
        },
        Image {
            repository: "testbed/multiarch".to_owned(),
            tag: "1-docker".to_owned(),
            manifest: list,
            manifests: docker_children,
        },
    ])
}

/// A BuildKit-style provenance attestation for `subject`: an in-toto statement as the only layer,
/// listed in the index with platform unknown/unknown and the `vnd.docker.reference.*` annotations.
fn attestation(store: &BlobStore, subject: &Manifest) -> anyhow::Result<Manifest> {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "pkg:docker/testbed/multiarch@1", "digest": {"sha256": &subject.manifest.digest[7..]}}],
        "predicate": {"builder": {"id": "berth-testkit"}},
    });
    let statement_bytes = canonical(&statement)?;
    let statement_blob = store.put(&statement_bytes)?;
    let layer = descriptor(media_type::IN_TOTO, &statement_blob);
    let diff_ids = vec![statement_blob.digest.clone()];
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = descriptor(media_type::OCI_CONFIG, &store.put(&canonical(&config)?)?);
    let mut layer_json = descriptor_json(&layer);
    layer_json["annotations"] = json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
    let body = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": descriptor_json(&config),
        "layers": [layer_json],
    });
    let manifest = descriptor(media_type::OCI_MANIFEST, &store.put(&canonical(&body)?)?);
    let annotations = BTreeMap::from([
        ("vnd.docker.reference.digest".to_owned(), subject.manifest.digest.clone()),
        ("vnd.docker.reference.type".to_owned(), "attestation-manifest".to_owned()),
    ]);
    let platform = Platform { os: "unknown".to_owned(), architecture: "unknown".to_owned(), variant: None };
    let uncompressed_sizes = vec![statement_blob.size];
    Ok(Manifest {
        manifest,
        platform: Some(platform),
        annotations,
        config,
        layers: vec![layer],
        diff_ids,
        uncompressed_sizes,
    })
}

fn write_index(store: &BlobStore, media_type: &str, children: &[Manifest]) -> anyhow::Result<Descriptor> {
    let entries: Vec<Value> = children.iter().map(index_entry).collect();
    let body = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries});
    Ok(descriptor(media_type, &store.put(&canonical(&body)?)?))
}

fn index_entry(child: &Manifest) -> Value {
    let mut entry = descriptor_json(&child.manifest);
    if let Some(platform) = &child.platform {
        let mut platform_json = json!({"architecture": platform.architecture, "os": platform.os});
        if let Some(variant) = &platform.variant {
            platform_json["variant"] = json!(variant);
        }
        entry["platform"] = platform_json;
    }
    if !child.annotations.is_empty() {
        entry["annotations"] = json!(child.annotations);
    }
    entry
}

fn single(repository: &str, tag: &str, manifest: &Manifest) -> Image {
    let mut child = manifest.clone();
    child.platform = None;
    Image {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        manifest: manifest.manifest.clone(),
        manifests: vec![child],
    }
}

/// The layout's `index.json`, one entry per tag, named `repository:tag` in
/// `org.opencontainers.image.ref.name` (image-layout.md).
fn write_index_json(dir: &Path, images: &[Image]) -> anyhow::Result<()> {
    let entries: Vec<Value> = images
        .iter()
        .map(|image| {
            let mut entry = descriptor_json(&image.manifest);
            entry["annotations"] =
                json!({"org.opencontainers.image.ref.name": format!("{}:{}", image.repository, image.tag)});
            entry
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": entries});
    let path = dir.join("index.json");
    let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&serde_json::to_vec_pretty(&index)?)?;
    Ok(())
}

fn descriptor(media_type: &str, blob: &BlobRef) -> Descriptor {
    Descriptor { media_type: media_type.to_owned(), digest: blob.digest.clone(), size: blob.size }
}

fn descriptor_json(descriptor: &Descriptor) -> Value {
    json!({"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size})
}

/// Compact JSON with object keys sorted at every level, whatever serde_json's map order is.
fn canonical(value: &Value) -> anyhow::Result<Vec<u8>> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(key, value)| (key, sorted(value))).collect();
                let mut out = serde_json::Map::new();
                for (key, value) in ordered {
                    out.insert(key.clone(), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    Ok(serde_json::to_vec(&sorted(value))?)
}
