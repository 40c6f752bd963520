//! Synthetic images of any shape for the pull scaling benchmark: N layers holding M MiB of
//! uncompressed tar in total, pushed to a plain-HTTP registry.
//!
//! The catalog images have one fixed shape; measuring how pull time and memory grow with layer count
//! and layer size needs images built on demand. Content follows the data layers of `testbed/multi`
//! (1–4 MiB files, each half text-like, compressing ~2x, half random) and is a pure function of
//! (layers, total MiB, compression), so a repeated run pushes the same digests. Every layer is
//! streamed through its hash and compressor into a blob file; no layer is ever held in memory.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;

use super::compress::Codec;
use super::content::{MIB, SplitMix64};
use super::layout::BlobStore;
use super::tar_layer::{BuiltLayer, LayerSink, Meta, TarLayer, build_two_at_a_time};
use super::upload::{Auth, Uploader};
use super::{Catalog, Image, build};

/// The shape of one synthetic image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticSpec {
    pub repository: String,
    pub tag: String,
    /// Number of layers, at least 1.
    pub layers: u32,
    /// File data across all layers in MiB, split evenly (tar headers add ~0.03%).
    pub total_mib: u64,
    /// zstd layers instead of gzip.
    pub zstd: bool,
}

/// One layer's files: sizes in bytes, 1–4 MiB each (the last one takes what is left), summing to
/// `bytes`.
fn file_sizes(rng: &mut SplitMix64, bytes: u64) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = bytes;
    while left > 0 {
        let size = (rng.range(MIB, 4 * MIB) as u64).min(left);
        sizes.push(size as usize);
        left -= size;
    }
    sizes
}

/// Bytes of file data in layer `index` of `spec`: an even split, the remainder in the last layer.
fn layer_bytes(spec: &SyntheticSpec, index: u32) -> u64 {
    let total = spec.total_mib * MIB as u64;
    let share = total / u64::from(spec.layers);
    if index + 1 == spec.layers { total - share * u64::from(spec.layers - 1) } else { share }
}

/// Fills layer `index`: files of half text, half random bytes, one at a time.
fn fill_layer<W: Write>(layer: &mut TarLayer<W>, spec: &SyntheticSpec, index: u32) -> anyhow::Result<()> {
    let seed = 0x5EED_0000 ^ (spec.total_mib << 24) ^ (u64::from(spec.layers) << 12) ^ u64::from(index);
    let mut rng = SplitMix64::new(seed);
    let sizes = file_sizes(&mut rng, layer_bytes(spec, index));
    for (number, size) in sizes.into_iter().enumerate() {
        let text = size / 2;
        let mut data = rng.text_bytes(text);
        data.extend_from_slice(&rng.random_bytes(size - text));
        let path = format!("data/synthetic{index}/d{:02}/file-{number:04}.bin", number % 16);
        layer.file(&path, &data, Meta::mode(0o644))?;
    }
    Ok(())
}

impl SyntheticSpec {
    /// The one codec of every layer: a catalog layer's second codec would be wasted work here.
    fn codec(&self) -> Codec {
        if self.zstd { Codec::Zstd } else { Codec::Gzip }
    }
}

/// Streams layer `index` through its hash and compressor (the catalog's settings, so the
/// decompression cost per byte matches `testbed/multi`) into one blob file.
fn build_layer(store: &BlobStore, spec: &SyntheticSpec, index: u32) -> anyhow::Result<BuiltLayer> {
    let sink = LayerSink::new(store, &[spec.codec()]).context("creating a layer blob")?;
    let mut layer = TarLayer::new(sink);
    fill_layer(&mut layer, spec, index)?;
    Ok(layer.finish()?.finish()?)
}

/// Builds every layer, two at a time; each thread holds one file of at most 4 MiB at a time.
fn build_layers(store: &BlobStore, spec: &SyntheticSpec) -> anyhow::Result<Vec<BuiltLayer>> {
    let indexes: Vec<u32> = (0..spec.layers).collect();
    build_two_at_a_time(&indexes, |index| build_layer(store, spec, index))
}

/// Writes the layers, config and manifest of `spec` into the OCI layout `dir` and returns the image
/// (OCI image-spec manifest.md and config.md).
pub fn build_into(dir: &std::path::Path, spec: &SyntheticSpec) -> anyhow::Result<Image> {
    anyhow::ensure!(spec.layers >= 1, "a synthetic image needs at least one layer");
    anyhow::ensure!(
        spec.total_mib >= u64::from(spec.layers),
        "{} MiB cannot fill {} layers",
        spec.total_mib,
        spec.layers
    );
    let store = BlobStore::create(dir)?;
    let built = build_layers(&store, spec)?;
    let layers: Vec<&BuiltLayer> = built.iter().collect();
    let architecture = build::host_architecture();
    let mut image_spec = build::ImageSpec::new(&layers, architecture);
    image_spec.zstd = spec.zstd;
    let manifest = build::write_image(&store, &image_spec)?;
    Ok(Image {
        repository: spec.repository.clone(),
        tag: spec.tag.clone(),
        manifest: manifest.manifest.clone(),
        manifests: vec![manifest],
    })
}

/// Builds `spec` in a temp dir and pushes it to the plain-HTTP registry at `host` (`HOST:PORT`),
/// anonymously. Returns the image; its `manifest.digest` is what the tag points to. The temp dir
/// (the compressed layers, on disk) is removed on return.
pub fn build_and_push(host: &str, spec: &SyntheticSpec) -> anyhow::Result<Image> {
    let dir =
        tempfile::Builder::new().prefix("berth-testkit-synth-").tempdir().context("creating a temp dir")?;
    let image = build_into(dir.path(), spec)?;
    let catalog = Catalog { dir: dir.path().to_path_buf(), images: vec![image.clone()] };
    crate::pki::install_default_crypto_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build()
        .context("building the HTTP client")?;
    let uploader = Uploader::new(client, &format!("http://{host}"), Auth::Anonymous);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    runtime
        .block_on(uploader.push_image(&catalog, &image))
        .with_context(|| format!("pushing {}", image.reference(host)))?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::super::media_type;

    use super::*;

    fn spec(layers: u32, total_mib: u64, zstd: bool) -> SyntheticSpec {
        SyntheticSpec {
            repository: "synthetic/test".to_owned(),
            tag: "1".to_owned(),
            layers,
            total_mib,
            zstd,
        }
    }

    #[test]
    fn layers_split_the_total_and_files_stay_within_four_mib() {
        let spec = spec(3, 10, false);
        let sum: u64 = (0..3).map(|index| layer_bytes(&spec, index)).sum();
        assert_eq!(sum, 10 * MIB as u64);
        let mut rng = SplitMix64::new(7);
        let sizes = file_sizes(&mut rng, layer_bytes(&spec, 2));
        assert_eq!(sizes.iter().sum::<usize>() as u64, layer_bytes(&spec, 2));
        assert!(sizes.iter().all(|&size| size > 0 && size <= 4 * MIB));
    }

    #[test]
    fn images_are_deterministic_and_compress_about_twofold() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let one = build_into(first.path(), &spec(2, 6, false)).unwrap();
        let two = build_into(second.path(), &spec(2, 6, false)).unwrap();
        assert_eq!(one.manifest.digest, two.manifest.digest);
        let manifest = one.single().unwrap();
        assert_eq!(manifest.layers.len(), 2);
        let raw: u64 = manifest.uncompressed_sizes.iter().sum();
        let compressed: u64 = manifest.layers.iter().map(|layer| layer.size).sum();
        assert!(raw >= 6 * MIB as u64 && raw < 7 * MIB as u64, "raw {raw}");
        let ratio = raw as f64 / compressed as f64;
        assert!((1.2..2.0).contains(&ratio), "ratio {ratio}");

        let zstd = tempfile::tempdir().unwrap();
        let image = build_into(zstd.path(), &spec(1, 2, true)).unwrap();
        let layer = &image.single().unwrap().layers[0];
        assert_eq!(layer.media_type, media_type::OCI_LAYER_ZSTD);
        let blob = std::fs::read(zstd.path().join("blobs/sha256").join(&layer.digest[7..])).unwrap();
        let tar = zstd::decode_all(blob.as_slice()).unwrap();
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&tar))),
            image.single().unwrap().diff_ids[0]
        );
    }
}
