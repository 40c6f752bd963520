//! Where credentials come from, in the order of DESIGN.md "The path of one berth run", step 2:
//! `--creds`; `BERTH_AUTH_CONFIG` then `DOCKER_AUTH_CONFIG` (config.json content inline, for CI);
//! `REGISTRY_AUTH_FILE`; berth's own auth file; `$XDG_RUNTIME_DIR/containers/auth.json` (podman);
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! The environment is captured once into [`SourceValues`], but files are read only when a lookup happens,
//! so a command that needs no credentials never touches them. The first source with an answer wins; a
//! helper that is missing or failing is an error, never a reason to try the next source (falling through
//! sent private credentials to the wrong registry in CVE-2021-41092).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ConfigFile, helper_server};
use crate::helper::{DEFAULT_TIMEOUT, Helper};
use crate::{Credential, Error, Secret};

/// Where a credential was found, to tell the user which login is being used.
#[derive(Clone, Debug)]
pub enum Source {
    /// `--creds` on the command line.
    Flag,
    /// Config JSON inline in an environment variable.
    EnvVar { var: String, key: String },
    /// A config file, and the key inside it.
    File { path: PathBuf, key: String },
    /// A credential helper program ("docker-credential-pass") and the server it was asked about.
    Helper { helper: String, server: String },
}

impl fmt::Display for Source {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => formatter.write_str("the --creds flag"),
            Source::EnvVar { var, key } => write!(formatter, "${var} (key {key:?})"),
            Source::File { path, key } => write!(formatter, "{} (key {key:?})", path.display()),
            Source::Helper { helper, server } => {
                write!(formatter, "credential helper {helper:?} (server {server:?})")
            }
        }
    }
}

/// A credential and where it came from.
#[derive(Clone, Debug)]
pub struct Found {
    pub credential: Credential,
    pub source: Source,
}

/// The raw inputs of [`Sources`]: what `from_env` reads from the environment, settable directly in tests
/// and by callers with their own configuration.
#[derive(Clone, Debug, Default)]
pub struct SourceValues {
    /// `$BERTH_AUTH_CONFIG`: config.json content.
    pub berth_auth_config: Option<Secret>,
    /// `$DOCKER_AUTH_CONFIG`: config.json content.
    pub docker_auth_config: Option<Secret>,
    /// `$REGISTRY_AUTH_FILE`: a path.
    pub registry_auth_file: Option<PathBuf>,
    /// berth's own auth file (where `berth login` writes).
    pub berth_auth_file: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`, for podman's `containers/auth.json`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$DOCKER_CONFIG`: a directory holding config.json.
    pub docker_config: Option<PathBuf>,
    /// The home directory, for `~/.docker/config.json` when `$DOCKER_CONFIG` is unset.
    pub home: Option<PathBuf>,
    /// Where credential helpers are searched (`PATH` syntax); `None` uses the process's `$PATH`.
    pub helper_search_path: Option<OsString>,
}

impl SourceValues {
    /// Reads the values through `variable` (normally `std::env::var_os`); empty variables count as unset.
    pub fn from_lookup(
        berth_auth_file: PathBuf,
        variable: impl Fn(&str) -> Option<OsString>,
    ) -> SourceValues {
        let set = |name: &str| variable(name).filter(|value| !value.is_empty());
        let text = |name: &str| set(name).map(|value| Secret::new(value.to_string_lossy().into_owned()));
        SourceValues {
            berth_auth_config: text("BERTH_AUTH_CONFIG"),
            docker_auth_config: text("DOCKER_AUTH_CONFIG"),
            registry_auth_file: set("REGISTRY_AUTH_FILE").map(PathBuf::from),
            berth_auth_file: Some(berth_auth_file),
            xdg_runtime_dir: set("XDG_RUNTIME_DIR").map(PathBuf::from),
            docker_config: set("DOCKER_CONFIG").map(PathBuf::from),
            home: set("HOME").map(PathBuf::from).or_else(|| etcetera::home_dir().ok()),
            helper_search_path: None,
        }
    }
}

/// One place to look, in order.
#[derive(Clone)]
enum Place {
    Inline { var: &'static str, content: Secret },
    File { path: PathBuf, why: &'static str },
}

/// The ordered credential sources for one command.
#[derive(Clone)]
pub struct Sources {
    flag: Option<Credential>,
    places: Vec<Place>,
    helper_search_path: Option<OsString>,
    helper_timeout: Duration,
}

impl Sources {
    /// Captures the environment now (`BERTH_AUTH_CONFIG`, `DOCKER_AUTH_CONFIG`, `REGISTRY_AUTH_FILE`,
    /// `XDG_RUNTIME_DIR`, `DOCKER_CONFIG`, `HOME`); files are read at lookup.
    pub fn from_env(berth_auth_file: PathBuf) -> Sources {
        Sources::from_values(SourceValues::from_lookup(berth_auth_file, |name| std::env::var_os(name)))
    }

    pub fn from_values(values: SourceValues) -> Sources {
        let mut places = Vec::new();
        if let Some(content) = values.berth_auth_config {
            places.push(Place::Inline { var: "BERTH_AUTH_CONFIG", content });
        }
        if let Some(content) = values.docker_auth_config {
            places.push(Place::Inline { var: "DOCKER_AUTH_CONFIG", content });
        }
        if let Some(path) = values.registry_auth_file {
            places.push(Place::File { path, why: "$REGISTRY_AUTH_FILE" });
        }
        if let Some(path) = values.berth_auth_file {
            places.push(Place::File { path, why: "berth login" });
        }
        if let Some(runtime_dir) = values.xdg_runtime_dir {
            places.push(Place::File { path: runtime_dir.join("containers/auth.json"), why: "podman login" });
        }
        let docker_config = match (values.docker_config, values.home) {
            (Some(dir), _) => Some((dir.join("config.json"), "$DOCKER_CONFIG")),
            (None, Some(home)) => Some((home.join(".docker/config.json"), "docker login")),
            (None, None) => None,
        };
        if let Some((path, why)) = docker_config {
            places.push(Place::File { path, why });
        }
        Sources {
            flag: None,
            places,
            helper_search_path: values.helper_search_path,
            helper_timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `--creds`: used before every other source.
    pub fn with_flag(mut self, credential: Option<Credential>) -> Sources {
        self.flag = credential;
        self
    }

    /// How long a credential helper may take.
    pub fn with_helper_timeout(mut self, timeout: Duration) -> Sources {
        self.helper_timeout = timeout;
        self
    }

    /// The credential for `repository` on `registry` (a normalized domain such as "docker.io"), from the
    /// first source that has one.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Found>, Error> {
        if let Some(credential) = &self.flag {
            return Ok(Some(Found { credential: credential.clone(), source: Source::Flag }));
        }
        for place in &self.places {
            let (config, origin) = match place {
                Place::Inline { var, content } => {
                    let origin = format!("${var}");
                    (ConfigFile::parse(content.expose(), &origin)?, origin)
                }
                Place::File { path, .. } => match read_optional(path)? {
                    Some(text) => {
                        let origin = path.display().to_string();
                        (ConfigFile::parse(&text, &origin)?, origin)
                    }
                    None => continue,
                },
            };
            if let Some(found) = config.find_auth(registry, repository, &origin)? {
                let source = match place {
                    Place::Inline { var, .. } => Source::EnvVar { var: (*var).to_owned(), key: found.key },
                    Place::File { path, .. } => Source::File { path: path.clone(), key: found.key },
                };
                tracing::debug!(registry, repository, %source, "credential found");
                return Ok(Some(Found { credential: found.credential, source }));
            }
            if let Some(name) = config.helper_for(registry) {
                let helper = Helper::new(name)
                    .with_search_path(self.helper_search_path.clone())
                    .with_timeout(self.helper_timeout);
                let server = helper_server(registry);
                if let Some(credential) = helper.get(&server)? {
                    let source = Source::Helper { helper: helper.program(), server };
                    tracing::debug!(registry, repository, %source, "credential found");
                    return Ok(Some(Found { credential, source }));
                }
            }
        }
        tracing::debug!(registry, repository, "no credential found");
        Ok(None)
    }

    /// The places looked, in order, for a "no credentials" hint.
    pub fn searched(&self) -> Vec<String> {
        let mut searched = Vec::new();
        if self.flag.is_some() {
            searched.push("the --creds flag".to_owned());
        }
        for place in &self.places {
            searched.push(match place {
                Place::Inline { var, .. } => format!("${var}"),
                Place::File { path, why } => format!("{} ({why})", path.display()),
            });
        }
        searched
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Inline configs hold secrets: show only where they come from.
        formatter
            .debug_struct("Sources")
            .field("flag", &self.flag)
            .field("searched", &self.searched())
            .finish_non_exhaustive()
    }
}

/// The file's text, `None` when it does not exist; any other failure is an error naming the file.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io(path, error)),
    }
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
