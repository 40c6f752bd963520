//! berth's own login file, in Docker's config.json format so the same file works with Docker tools.
//!
//! A login goes to a credential helper when the file names one (`credHelpers[registry]`, else
//! `credsStore`), otherwise into `auths`. Every other key of the file is kept. The file is replaced
//! atomically (temporary file with mode 0600, fsync, rename, fsync of the directory) so a crash never
//! leaves a half-written or world-readable credentials file (DESIGN.md "Security rules").

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{ConfigFile, entry_for, file_key, helper_server, normalize_key};
use crate::helper::{DEFAULT_TIMEOUT, Helper};
use crate::{Credential, Error};

/// Where a login was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Saved {
    /// In this file's `auths`.
    File(PathBuf),
    /// In this credential helper program ("docker-credential-pass").
    Helper(String),
}

/// berth's auth file.
#[derive(Clone, Debug)]
pub struct LoginStore {
    path: PathBuf,
    helper_search_path: Option<OsString>,
    helper_timeout: Duration,
}

/// Makes temporary file names unique between threads of one process.
static TEMPORARY_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LoginStore {
    pub fn new(path: PathBuf) -> LoginStore {
        LoginStore { path, helper_search_path: None, helper_timeout: DEFAULT_TIMEOUT }
    }

    /// Searches credential helpers in `path` (`PATH` syntax) instead of `$PATH`.
    pub fn with_helper_search_path(mut self, path: Option<OsString>) -> LoginStore {
        self.helper_search_path = path;
        self
    }

    pub fn with_helper_timeout(mut self, timeout: Duration) -> LoginStore {
        self.helper_timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves `credential` for `registry` ("docker.io", "reg.io:5000", or "reg.io/namespace" for a
    /// repository-scoped login).
    pub fn save(&self, registry: &str, credential: &Credential) -> Result<Saved, Error> {
        let wanted = self.registry_key(registry)?;
        let mut root = self.load()?;
        let helper_name = self.configured_helper(&root, &wanted)?;
        if let Some(name) = helper_name {
            let helper = self.helper(&name);
            helper.store(&helper_server(&wanted), credential)?;
            // A plaintext entry left behind would win over the helper at lookup.
            if remove_auths(&mut root, &wanted) {
                self.write(&root)?;
            }
            tracing::debug!(registry, helper = %helper.program(), "login saved in credential helper");
            return Ok(Saved::Helper(helper.program()));
        }
        remove_auths(&mut root, &wanted);
        let auths = root.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            auths.insert(file_key(&wanted), entry_for(credential));
        }
        self.write(&root)?;
        tracing::debug!(registry, path = %self.path.display(), "login saved in file");
        Ok(Saved::File(self.path.clone()))
    }

    /// Removes the login for `registry` from the file and from its helper; `true` if something was removed.
    pub fn erase(&self, registry: &str) -> Result<bool, Error> {
        let wanted = self.registry_key(registry)?;
        let mut root = self.load()?;
        let helper_name = self.configured_helper(&root, &wanted)?;
        let removed_from_file = remove_auths(&mut root, &wanted);
        if removed_from_file {
            self.write(&root)?;
        }
        let removed_from_helper = match helper_name {
            Some(name) => self.helper(&name).erase_if_present(&helper_server(&wanted))?,
            None => false,
        };
        Ok(removed_from_file || removed_from_helper)
    }

    fn registry_key(&self, registry: &str) -> Result<String, Error> {
        normalize_key(registry).ok_or_else(|| Error::CannotStore {
            registry: registry.to_owned(),
            reason: "the registry name is empty".to_owned(),
        })
    }

    fn helper(&self, name: &str) -> Helper {
        Helper::new(name).with_search_path(self.helper_search_path.clone()).with_timeout(self.helper_timeout)
    }

    fn configured_helper(&self, root: &Map<String, Value>, registry: &str) -> Result<Option<String>, Error> {
        let origin = self.path.display().to_string();
        let config = ConfigFile::from_value(&Value::Object(root.clone()), &origin)?;
        Ok(config.helper_for(registry).map(str::to_owned))
    }

    /// The file as a JSON object; an empty one when it does not exist. A file that is not valid JSON is an
    /// error rather than something to overwrite: it may hold logins the user wants to keep.
    fn load(&self) -> Result<Map<String, Value>, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(error) => return Err(Error::io(&self.path, error)),
        };
        if text.trim().is_empty() {
            return Ok(Map::new());
        }
        let origin = self.path.display().to_string();
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(root)) => {
                // Validates the known sections with the same rules as lookups.
                ConfigFile::from_value(&Value::Object(root.clone()), &origin)?;
                Ok(root)
            }
            Ok(_) => Err(Error::config(origin, "the top level must be a JSON object")),
            Err(error) => Err(Error::config(
                origin,
                format!("not valid JSON (line {}, column {})", error.line(), error.column()),
            )),
        }
    }

    /// Atomically replaces the file (following a symlink to its target, as Docker does).
    fn write(&self, root: &Map<String, Value>) -> Result<(), Error> {
        let target = match std::fs::symlink_metadata(&self.path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                std::fs::canonicalize(&self.path).map_err(|error| Error::io(&self.path, error))?
            }
            _ => self.path.clone(),
        };
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&directory)
            .map_err(|error| Error::io(&directory, error))?;
        let file_name =
            target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let temporary = directory.join(format!(
            ".{file_name}.tmp-{}-{}",
            std::process::id(),
            TEMPORARY_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut bytes = serde_json::to_vec_pretty(root).map_err(|error| {
            Error::config(self.path.display().to_string(), format!("cannot encode: {error}"))
        })?;
        bytes.push(b'\n');
        let result = write_new_private_file(&temporary, &bytes)
            .and_then(|()| std::fs::rename(&temporary, &target).map_err(|error| Error::io(&target, error)));
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&directory)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| Error::io(&directory, error))
    }
}

/// Creates `path` with mode 0600 (set explicitly too, whatever the umask), writes and fsyncs it.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| Error::io(path, error))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|error| Error::io(path, error))?;
    file.write_all(bytes).map_err(|error| Error::io(path, error))?;
    file.sync_all().map_err(|error| Error::io(path, error))
}

/// Removes every `auths` key that means exactly `registry` (all its spellings); `true` if any was removed.
fn remove_auths(root: &mut Map<String, Value>, registry: &str) -> bool {
    let Some(Value::Object(auths)) = root.get_mut("auths") else {
        return false;
    };
    let before = auths.len();
    auths.retain(|key, _| normalize_key(key).as_deref() != Some(registry));
    auths.len() != before
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
