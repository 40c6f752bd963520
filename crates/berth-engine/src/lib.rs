//! berth's use cases. The CLI turns arguments into settings and calls one method here; this crate wires
//! the registry client, the credential sources, the store, the unpacker and the runtime together, and is
//! the only crate that knows them all.

mod config;
mod container;
mod containers;
mod error;
mod image;
mod local;
mod login;
mod paths;
mod pull;
mod run;
mod run_options;

use std::path::PathBuf;
use std::time::Duration;

use berth_auth::Sources;
use berth_registry::{ClientOptions, HostConfig, Registry};
use berth_store::Store;

pub use berth_auth::{Credential, Saved, Secret};
pub use berth_reference::{Digest, Platform, Reference};
pub use berth_runtime as runtime;
pub use config::{Config, RegistryConfig};
pub use container::{Container, Status};
pub use containers::parse_signal;
pub use error::Error;
pub use image::{ImageSummary, Pruned};
pub use local::PullPolicy;
pub use paths::Paths;
pub use pull::{PullObserver, PullOptions, Pulled, Quiet};
pub use run::{DEFAULT_RUNTIME, EMBEDDED_RUNTIME, RunOutcome, RunRequest};
pub use run_options::parse_size;

/// Settings for one berth invocation, resolved by the CLI from flags, environment and config.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// `--root`: the store directory.
    pub root: Option<PathBuf>,
    /// `--creds user:pass`: used before every other credential source.
    pub creds: Option<Credential>,
    /// `--cert-dir`: replaces the certs.d search for every registry this invocation talks to.
    pub cert_dir: Option<PathBuf>,
    /// `--max-concurrent`: layers fetched at once.
    pub max_concurrent: Option<usize>,
    /// `--insecure-registry` given on the command line, in addition to the config file's.
    pub insecure_registries: Vec<String>,
}

/// One berth invocation's view of the machine: paths, config, store.
pub struct Engine {
    paths: Paths,
    config: Config,
    store: Store,
    options: EngineOptions,
    /// Layers in flight at once when the user chose it (flag or config); otherwise see
    /// `Engine::layer_concurrency`.
    chosen_concurrency: Option<usize>,
}

/// Default number of layers fetched and unpacked at once.
const DEFAULT_CONCURRENCY: usize = 4;

impl Engine {
    pub fn new(options: EngineOptions) -> Result<Engine, Error> {
        let paths = Paths::from_env(options.root.as_deref());
        let config = Config::load(&paths.config_files)?;
        let store = Store::open(&paths.root)?;
        let chosen_concurrency = options.max_concurrent.or(config.max_concurrent_downloads).map(|n| n.max(1));
        Ok(Engine { paths, config, store, options, chosen_concurrency })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Where a name is pulled from, in order: configured mirrors, then the registry itself.
    fn endpoints(&self, domain: &str) -> Vec<String> {
        let mut endpoints: Vec<String> =
            self.config.registry(domain).map(|r| r.mirrors.clone()).unwrap_or_default();
        endpoints.push(domain.to_string());
        endpoints
    }

    fn credential_sources(&self) -> Sources {
        Sources::from_env(self.paths.auth_file.clone()).with_flag(self.options.creds.clone())
    }

    fn host_config(&self, domain: &str) -> HostConfig {
        let insecure =
            self.config.is_insecure(domain) || self.options.insecure_registries.iter().any(|r| r == domain);
        HostConfig {
            insecure,
            // `--insecure-registry` on the command line wins over `insecure = false` in a file.
            https_only: !insecure && self.config.is_https_only(domain),
            cert_roots: self.paths.cert_roots.clone(),
            cert_dir: self.options.cert_dir.clone(),
        }
    }

    fn client_options(&self) -> ClientOptions {
        ClientOptions {
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(stall_timeout_secs()),
            ..ClientOptions::default()
        }
    }

    /// A client for `domain` carrying the credential the sources hold for `repository` there. Credentials
    /// are looked up per endpoint, so a mirror never receives the upstream registry's login.
    fn registry(&self, domain: &str, repository: &str) -> Result<Registry, Error> {
        let found = self
            .credential_sources()
            .lookup(domain, repository)
            .map_err(|source| Error::Credentials { registry: domain.to_string(), source })?;
        let registry = Registry::new(domain, &self.host_config(domain), &self.client_options(), found)
            .map_err(|source| Error::Registry { image: format!("{domain}/{repository}"), source })?;
        Ok(registry)
    }
}

/// Seconds without a byte before a transfer counts as stalled; `BERTH_STALL_TIMEOUT` overrides (tests use
/// a short one).
fn stall_timeout_secs() -> u64 {
    std::env::var("BERTH_STALL_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}
