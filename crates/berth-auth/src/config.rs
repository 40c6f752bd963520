//! Docker's config.json format (also podman's auth.json), read the way Docker's cli/config/configfile does:
//! `auths` entries (base64 "auth", "username"/"password", "identitytoken", "registrytoken"), then
//! `credHelpers[registry]`, then `credsStore`.
//!
//! Keys are matched after normalization and most specific first, at '/' boundaries only: a key is never a
//! string prefix of the registry (credentials for "reg.io" must not go to "reg.io.evil.test"). The JSON is
//! walked by hand rather than derived so that error messages can name keys without ever quoting a value.

use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD, Engine as _};
use berth_reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY, is_docker_hub};
use serde_json::{Map, Value};

use crate::{Credential, Error, Secret};

/// One parsed config: auths entries stay raw until matched, so a bad entry for another registry does not
/// break lookups for this one.
pub(crate) struct ConfigFile {
    auths: Vec<(String, Map<String, Value>)>,
    cred_helpers: Vec<(String, String)>,
    creds_store: Option<String>,
}

/// A matched `auths` entry.
pub(crate) struct AuthMatch {
    pub key: String,
    pub credential: Credential,
}

impl ConfigFile {
    /// Parses config.json text; `origin` (a path or "$VAR") names it in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<ConfigFile, Error> {
        let value: Value = serde_json::from_str(text).map_err(|error| {
            // Position only: serde's message could quote part of the file, and the file holds secrets.
            Error::config(
                origin,
                format!("not valid JSON (line {}, column {})", error.line(), error.column()),
            )
        })?;
        ConfigFile::from_value(&value, origin)
    }

    pub(crate) fn from_value(value: &Value, origin: &str) -> Result<ConfigFile, Error> {
        let Value::Object(root) = value else {
            return Err(Error::config(origin, "the top level must be a JSON object"));
        };
        let mut auths = Vec::new();
        match root.get("auths") {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (key, entry) in entries {
                    match entry {
                        Value::Object(fields) => auths.push((key.clone(), fields.clone())),
                        Value::Null => {}
                        _ => {
                            return Err(Error::config(
                                origin,
                                format!("\"auths\" entry {key:?} must be an object"),
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(Error::config(origin, "\"auths\" must be an object")),
        }
        let mut cred_helpers = Vec::new();
        match root.get("credHelpers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (key, helper) in entries {
                    match helper {
                        Value::String(name) if !name.is_empty() => {
                            cred_helpers.push((key.clone(), name.clone()))
                        }
                        Value::String(_) | Value::Null => {}
                        _ => {
                            return Err(Error::config(
                                origin,
                                format!("\"credHelpers\" entry {key:?} must be a string"),
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(Error::config(origin, "\"credHelpers\" must be an object")),
        }
        let creds_store = match root.get("credsStore") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) if name.is_empty() => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(_) => return Err(Error::config(origin, "\"credsStore\" must be a string")),
        };
        Ok(ConfigFile { auths, cred_helpers, creds_store })
    }

    /// The most specific usable `auths` entry for `repository` on `registry`.
    pub(crate) fn find_auth(
        &self,
        registry: &str,
        repository: &str,
        origin: &str,
    ) -> Result<Option<AuthMatch>, Error> {
        for candidate in candidate_keys(registry, repository) {
            for (key, fields) in &self.auths {
                if normalize_key(key).as_deref() != Some(candidate.as_str()) {
                    continue;
                }
                if let Some(credential) = entry_credential(fields, key, origin)? {
                    return Ok(Some(AuthMatch { key: key.clone(), credential }));
                }
            }
        }
        Ok(None)
    }

    /// The helper that holds credentials for `registry`: `credHelpers[registry]`, else `credsStore`.
    pub(crate) fn helper_for(&self, registry: &str) -> Option<&str> {
        let wanted = normalize_key(registry);
        self.cred_helpers
            .iter()
            .find(|(key, _)| wanted.is_some() && normalize_key(key) == wanted)
            .map(|(_, helper)| helper.as_str())
            .or(self.creds_store.as_deref())
    }
}

/// Normalizes a config key or registry name: no scheme, no trailing '/' or "/v1"/"/v2" API suffix, host
/// lowercased, Docker Hub's aliases as "docker.io"; a path after the host is kept (per-repository keys).
pub(crate) fn normalize_key(raw: &str) -> Option<String> {
    let rest = berth_reference::strip_registry_url(raw);
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (rest, None),
    };
    if host.is_empty() {
        return None;
    }
    let host = if is_docker_hub(host) { DOCKER_HUB.to_owned() } else { host.to_ascii_lowercase() };
    match path {
        Some(path) if !path.is_empty() => Some(format!("{host}/{path}")),
        _ => Some(host),
    }
}

/// "R/a/b/c", "R/a/b", "R/a", "R": every key that may hold credentials for `repository`, most specific
/// first. Matching whole candidates keeps matches on '/' boundaries.
pub(crate) fn candidate_keys(registry: &str, repository: &str) -> Vec<String> {
    let Some(registry) = normalize_key(registry) else {
        return Vec::new();
    };
    let mut candidates = Vec::new();
    let repository = repository.trim_matches('/');
    if !repository.is_empty() {
        let components: Vec<&str> = repository.split('/').collect();
        for length in (1..=components.len()).rev() {
            candidates.push(format!("{registry}/{}", components[..length].join("/")));
        }
    }
    candidates.push(registry);
    candidates
}

/// The server name a credential helper is asked about: Docker's Hub key, else the registry as given.
pub(crate) fn helper_server(registry: &str) -> String {
    match normalize_key(registry) {
        Some(key) if key == DOCKER_HUB => DOCKER_HUB_AUTH_KEY.to_owned(),
        Some(key) => key,
        None => registry.to_owned(),
    }
}

/// The key berth writes for `registry`: Docker's historical Hub key, so Docker reads it back too.
pub(crate) fn file_key(registry: &str) -> String {
    helper_server(registry)
}

fn string_field<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
    key: &str,
    origin: &str,
) -> Result<Option<&'a str>, Error> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Error::config(origin, format!("field {name:?} of {key:?} must be a string"))),
    }
}

/// The credential an `auths` entry holds, `None` for an empty placeholder (Docker writes `{}` when a
/// helper keeps the secret).
fn entry_credential(
    fields: &Map<String, Value>,
    key: &str,
    origin: &str,
) -> Result<Option<Credential>, Error> {
    if let Some(token) = string_field(fields, "registrytoken", key, origin)? {
        return Ok(Some(Credential::RegistryToken(Secret::new(token))));
    }
    let mut username = string_field(fields, "username", key, origin)?.map(str::to_owned);
    let mut password = string_field(fields, "password", key, origin)?.map(Secret::new);
    if let Some(encoded) = string_field(fields, "auth", key, origin)? {
        let (user, pass) = decode_auth(encoded).ok_or_else(|| {
            Error::config(origin, format!("\"auth\" of {key:?} is not base64 of \"user:password\""))
        })?;
        username = Some(user);
        password = Some(pass);
    }
    if let Some(token) = string_field(fields, "identitytoken", key, origin)? {
        return Ok(Some(Credential::IdentityToken {
            username: username.unwrap_or_default(),
            token: Secret::new(token),
        }));
    }
    match (username, password) {
        (Some(username), Some(password)) if !password.is_empty() => {
            Ok(Some(Credential::Basic { username, password }))
        }
        _ => Ok(None),
    }
}

fn decode_auth(encoded: &str) -> Option<(String, Secret)> {
    let encoded = encoded.trim();
    let bytes = BASE64_STANDARD.decode(encoded).or_else(|_| BASE64_STANDARD_NO_PAD.decode(encoded)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    Some((username.to_owned(), Secret::new(password)))
}

/// `{"auth": base64(user:pass)}` and friends, as Docker writes them.
pub(crate) fn entry_for(credential: &Credential) -> Value {
    let mut entry = Map::new();
    match credential {
        Credential::Basic { username, password } => {
            let encoded = BASE64_STANDARD.encode(format!("{username}:{}", password.expose()));
            entry.insert("auth".into(), Value::String(encoded));
        }
        Credential::IdentityToken { username, token } => {
            if !username.is_empty() {
                entry.insert("auth".into(), Value::String(BASE64_STANDARD.encode(format!("{username}:"))));
            }
            entry.insert("identitytoken".into(), Value::String(token.expose().to_owned()));
        }
        Credential::RegistryToken(token) => {
            entry.insert("registrytoken".into(), Value::String(token.expose().to_owned()));
        }
    }
    Value::Object(entry)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
