//! berth's configuration file (`config.toml`): registries with mirrors and the insecure flag, pull
//! concurrency. Files are merged in order; an entry for the same registry in a later file replaces the earlier.
//!
//! ```toml
//! max_concurrent_downloads = 4
//!
//! [[registry]]
//! location = "docker.io"
//! mirrors = ["mirror.example.net:5000"]
//!
//! [[registry]]
//! location = "registry.internal:5000"
//! insecure = true
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Layers downloaded and unpacked at once.
    pub max_concurrent_downloads: Option<usize>,
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `host[:port]`, e.g. `docker.io` or `registry.internal:5000`.
    pub location: String,
    /// Tried in order before `location`; each gets its own credentials and TLS, never `location`'s.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// `true`: allow plain HTTP for this registry. `false`: never use plain HTTP, not even for a loopback
    /// host (which otherwise falls back to HTTP when its HTTPS port answers in plain HTTP). Unset: the default.
    #[serde(default)]
    pub insecure: Option<bool>,
}

impl Config {
    /// Reads and merges the files that exist; a file that exists but does not parse is an error.
    pub fn load(files: &[PathBuf]) -> Result<Config, Error> {
        let mut merged = Config::default();
        for file in files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Config { path: file.clone(), reason: e.to_string() }),
            };
            let config = Self::parse(&text, file)?;
            merged.merge(config);
        }
        Ok(merged)
    }

    fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let mut config: Config = toml::from_str(text)
            .map_err(|e| Error::Config { path: path.to_path_buf(), reason: e.to_string() })?;
        for registry in &mut config.registries {
            registry.location = berth_reference::normalize_registry(&registry.location)
                .map_err(|e| Error::Config { path: path.to_path_buf(), reason: e.to_string() })?;
            for mirror in &mut registry.mirrors {
                *mirror = berth_reference::normalize_registry(mirror)
                    .map_err(|e| Error::Config { path: path.to_path_buf(), reason: e.to_string() })?;
            }
        }
        Ok(config)
    }

    fn merge(&mut self, other: Config) {
        if other.max_concurrent_downloads.is_some() {
            self.max_concurrent_downloads = other.max_concurrent_downloads;
        }
        for registry in other.registries {
            self.registries.retain(|r| r.location != registry.location);
            self.registries.push(registry);
        }
    }

    /// The entry for `domain`, if configured.
    pub fn registry(&self, domain: &str) -> Option<&RegistryConfig> {
        self.registries.iter().find(|r| r.location == domain)
    }

    /// Whether plain HTTP is allowed for `domain` (as a registry or as someone's mirror).
    pub fn is_insecure(&self, domain: &str) -> bool {
        self.registry(domain).is_some_and(|r| r.insecure == Some(true))
    }

    /// Whether `domain` is declared secure (`insecure = false`): HTTPS only, even on loopback.
    pub fn is_https_only(&self, domain: &str) -> bool {
        self.registry(domain).is_some_and(|r| r.insecure == Some(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_file_replaces_a_registry_entry() {
        let mut a = Config::parse(
            "[[registry]]\nlocation = \"docker.io\"\nmirrors = [\"m1:5000\"]\n",
            Path::new("a"),
        )
        .unwrap();
        let b = Config::parse(
            "max_concurrent_downloads = 2\n[[registry]]\nlocation = \"index.docker.io\"\nmirrors = [\"m2:5000\"]\n",
            Path::new("b"),
        )
        .unwrap();
        a.merge(b);
        assert_eq!(a.max_concurrent_downloads, Some(2));
        assert_eq!(a.registry("docker.io").unwrap().mirrors, vec!["m2:5000".to_string()]);
    }

    #[test]
    fn insecure_can_be_true_false_or_unset() {
        let config = Config::parse(
            "[[registry]]\nlocation = \"a.io\"\ninsecure = true\n[[registry]]\nlocation = \"b.io\"\ninsecure = false\n\
             [[registry]]\nlocation = \"c.io\"\n",
            Path::new("c"),
        )
        .unwrap();
        assert!(config.is_insecure("a.io") && !config.is_https_only("a.io"));
        assert!(!config.is_insecure("b.io") && config.is_https_only("b.io"));
        assert!(!config.is_insecure("c.io") && !config.is_https_only("c.io"));
        assert!(!config.is_insecure("d.io") && !config.is_https_only("d.io"));
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_file() {
        let err = Config::parse(
            "[[registry]]\nlocation = \"x.io\"\nmirror = []\n",
            Path::new("/etc/berth/config.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/etc/berth/config.toml"), "{err}");
    }
}
