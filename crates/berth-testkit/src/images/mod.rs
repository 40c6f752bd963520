//! Deterministic test images, built in Rust with no network, and a small uploader that pushes them
//! through the registry HTTP API (independent of berth's own client).
//!
//! The images are built once per machine into an OCI image layout (the cache, see [`build_all`]);
//! every digest is a function of the host's `/bin/busybox` and this code only (fixed mtimes and
//! owners, seeded data, gzip mtime 0, single-threaded zstd), so tests may hard-code nothing but
//! still compare digests across pulls, registries and runs.
//!
//! | reference | content |
//! |---|---|
//! | `testbed/busybox:1`, `:1-zstd`, `:1-docker` | one busybox layer; gzip OCI, zstd OCI, Docker schema 2 |
//! | `library/busybox:1`, `:latest` | = `testbed/busybox:1` (short-name tests through a mirror) |
//! | `testbed/multi:1`, `:1-zstd` | busybox + 5 data layers, ~206 MiB uncompressed (pull benchmarks) |
//! | `testbed/multiarch:1` | OCI index: linux/amd64, linux/arm64/v8, an attestation manifest |
//! | `testbed/multiarch:1-docker` | Docker manifest list of the two platforms |
//! | `testbed/layers:1` | layer-semantics fixture; `/check.sh` prints ok/FAIL per item and `ALL OK` |

mod build;
mod compress;
mod content;
mod layout;
pub mod synthetic;
mod tar_layer;
pub mod upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use build::host_architecture;
pub use content::check_script;

/// Media types used by the test images.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const IN_TOTO: &str = "application/vnd.in-toto+json";
}

/// Bumped whenever image content or the cache layout changes, so an old cache is never reused.
pub const FORMAT_VERSION: u32 = 1;

/// The busybox binary the images are built from.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub media_type: String,
    /// `sha256:<hex>`
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// One image manifest (OCI or Docker schema 2) with what it references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest: Descriptor,
    /// The platform the parent index lists; `None` for a manifest a tag points to directly.
    pub platform: Option<Platform>,
    /// Annotations of the index entry (the attestation's `vnd.docker.reference.*`).
    pub annotations: BTreeMap<String, String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// `sha256:<hex>` of each uncompressed layer, as in the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// Size in bytes of each uncompressed layer.
    pub uncompressed_sizes: Vec<u64>,
}

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub repository: String,
    pub tag: String,
    /// What the tag points to: an image manifest, an OCI index or a Docker manifest list.
    pub manifest: Descriptor,
    /// The manifest itself for a single image; every child manifest, in index order, for an index.
    pub manifests: Vec<Manifest>,
}

impl Image {
    pub fn is_index(&self) -> bool {
        matches!(self.manifest.media_type.as_str(), media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST)
    }

    /// The image manifest of a single-manifest tag.
    pub fn single(&self) -> Option<&Manifest> {
        if self.is_index() { None } else { self.manifests.first() }
    }

    /// `HOST/REPOSITORY:TAG`
    pub fn reference(&self, host: &str) -> String {
        format!("{host}/{}:{}", self.repository, self.tag)
    }

    /// Every config and layer blob of every manifest, each once, in push order.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        let mut seen = std::collections::BTreeSet::new();
        let mut blobs = Vec::new();
        for manifest in &self.manifests {
            for blob in manifest.layers.iter().chain(std::iter::once(&manifest.config)) {
                if seen.insert(blob.digest.as_str()) {
                    blobs.push(blob);
                }
            }
        }
        blobs
    }
}

/// Every test image, and the OCI layout directory holding their blobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    /// The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`).
    #[serde(skip)]
    pub dir: PathBuf,
    pub images: Vec<Image>,
}

impl Catalog {
    pub fn get(&self, repository: &str, tag: &str) -> Option<&Image> {
        self.images.iter().find(|image| image.repository == repository && image.tag == tag)
    }

    /// Like [`Catalog::get`], for tests that know the image exists.
    pub fn image(&self, repository: &str, tag: &str) -> anyhow::Result<&Image> {
        self.get(repository, tag).with_context(|| format!("no test image {repository}:{tag}"))
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs").join("sha256").join(hex)
    }

    /// The bytes of any blob: layer, config or manifest.
    pub fn read_blob(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.blob_path(digest);
        std::fs::read(&path).with_context(|| format!("reading blob {digest} at {}", path.display()))
    }
}

/// Builds every image into `dir` (an OCI layout, created if missing) without caching; `with_multi =
/// false` skips the ~200 MiB `testbed/multi`. For tests of the builder itself; others use
/// [`build_all`].
pub fn build_into(dir: &Path, busybox: &Path, with_multi: bool) -> anyhow::Result<Catalog> {
    build::build_into(dir, busybox, with_multi)
}

/// The machine-wide image cache, built on first use: `$BERTH_TESTKIT_CACHE` if set, else
/// `<temp>/berth-testkit-images-v<FORMAT_VERSION>-<busybox sha256 prefix>`. Built in a sibling
/// temp dir and renamed into place, so concurrent test processes never see half a cache; a complete
/// cache (with `catalog.json`) is reused.
pub fn build_all() -> anyhow::Result<&'static Catalog> {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    static BUILDING: Mutex<()> = Mutex::new(());
    if let Some(catalog) = CATALOG.get() {
        return Ok(catalog);
    }
    // A poisoned lock only means another thread's build failed; building again is fine.
    let _guard = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(catalog) = CATALOG.get() {
        return Ok(catalog);
    }
    let catalog = load_or_build(&cache_dir()?)?;
    Ok(CATALOG.get_or_init(|| catalog))
}

fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BERTH_TESTKIT_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let binary = std::fs::read(HOST_BUSYBOX).with_context(|| format!("reading {HOST_BUSYBOX}"))?;
    let busybox_hash = hex::encode(Sha256::digest(&binary));
    Ok(std::env::temp_dir().join(format!("berth-testkit-images-v{FORMAT_VERSION}-{}", &busybox_hash[..12])))
}

const CATALOG_FILE: &str = "catalog.json";

fn load_or_build(dir: &Path) -> anyhow::Result<Catalog> {
    if let Some(catalog) = load(dir)? {
        return Ok(catalog);
    }
    let parent = dir.parent().context("cache dir has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dir.file_name().context("cache dir has no name")?.to_string_lossy();
    let building_prefix = format!(".{name}.building-");
    remove_abandoned_builds(parent, &building_prefix);
    let temp = tempfile::Builder::new()
        .prefix(&building_prefix)
        .tempdir_in(parent)
        .with_context(|| format!("creating a build dir in {}", parent.display()))?;
    let mut catalog = build::build_into(temp.path(), Path::new(HOST_BUSYBOX), true)?;
    // catalog.json is written last: its presence marks a complete cache.
    std::fs::write(temp.path().join(CATALOG_FILE), serde_json::to_vec_pretty(&catalog)?)?;
    let built = temp.keep();
    if let Err(error) = std::fs::rename(&built, dir) {
        // Another process finished first (the target exists and is not empty): use its cache.
        let _ = std::fs::remove_dir_all(&built);
        return load(dir)?.with_context(|| format!("moving the image cache into {}: {error}", dir.display()));
    }
    catalog.dir = dir.to_path_buf();
    Ok(catalog)
}

/// Removes build dirs left by killed processes (each holds ~300 MB). A live build finishes in well
/// under a minute, so anything untouched for an hour is abandoned.
fn remove_abandoned_builds(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok());
        if age.is_some_and(|age| age > std::time::Duration::from_secs(3600)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn load(dir: &Path) -> anyhow::Result<Option<Catalog>> {
    let path = dir.join(CATALOG_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let mut catalog: Catalog =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    catalog.dir = dir.to_path_buf();
    Ok(Some(catalog))
}

/// Pushes every test image to every registry of `testbed`. Called once by `Testbed::shared()`.
pub fn seed(testbed: &crate::Testbed) -> anyhow::Result<()> {
    let catalog = build_all()?;
    upload::push_everywhere(testbed, catalog)
}
