//! Image references, digests and platforms: the vocabulary every other berth crate speaks.
//!
//! This crate exists so that names are parsed and validated in exactly one place, strictly, before they
//! reach a file path, a URL or a credential lookup. It performs no I/O and depends on no other berth crate
//! (it is the root of the dependency graph).

mod digest;
mod error;
mod platform;
mod reference;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::Error;
pub use platform::Platform;
pub use reference::{Reference, is_docker_hub, normalize_registry, strip_registry_url};

/// Docker Hub's canonical domain, as it appears in normalized references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker uses for Docker Hub in config.json, and the server name it gives credential helpers.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
