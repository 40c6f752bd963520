//! Credential helpers, speaking the protocol of github.com/docker/docker-credential-helpers
//! (`client/client.go`): the program `docker-credential-<name>` gets the action as its only argument;
//! `get` reads a server URL on stdin and prints `{"ServerURL","Username","Secret"}`, `store` reads that JSON,
//! `erase` reads a server URL, `list` prints a JSON map of server URL to username. A username of `<token>`
//! marks the secret as an identity token. "credentials not found in native keychain" means there are none.
//!
//! Helpers are external programs that can hang (a keychain waiting for a prompt over SSH) or print their
//! input back in an error, so every run has a deadline and every message is scrubbed of the secret sent.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Credential, Error, Secret};

/// How long a helper may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much output is read from a helper; more is a broken helper, not credentials.
const OUTPUT_LIMIT: u64 = 1024 * 1024;
/// The longest helper message carried into an error.
const MESSAGE_LIMIT: usize = 500;
const NOT_FOUND_MESSAGE: &str = "credentials not found";
const TOKEN_USERNAME: &str = "<token>";
/// A freshly written helper can briefly be "text file busy" while another thread forks; a few retries.
const SPAWN_ATTEMPTS: u32 = 5;

/// One credential helper program.
#[derive(Clone, Debug)]
pub struct Helper {
    name: String,
    search_path: Option<OsString>,
    timeout: Duration,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HelperCredential {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

struct Finished {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Helper {
    /// The helper `docker-credential-<name>`, found in `$PATH` when it runs.
    pub fn new(name: &str) -> Helper {
        Helper { name: name.to_owned(), search_path: None, timeout: DEFAULT_TIMEOUT }
    }

    /// Searches `path` (a `PATH`-style list) instead of the process's `$PATH`; `None` keeps `$PATH`.
    pub fn with_search_path(mut self, path: Option<OsString>) -> Helper {
        self.search_path = path;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Helper {
        self.timeout = timeout;
        self
    }

    /// The name in config.json ("pass").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program run ("docker-credential-pass").
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The credential stored for `server`, `None` if the helper has none.
    pub fn get(&self, server: &str) -> Result<Option<Credential>, Error> {
        let finished = self.run("get", server.as_bytes())?;
        if !finished.success {
            let message = self.message(&finished, None);
            if message.to_ascii_lowercase().contains(NOT_FOUND_MESSAGE) {
                return Ok(None);
            }
            return Err(self.failed("get", message));
        }
        let parsed: HelperCredential = serde_json::from_slice(&finished.stdout)
            // Never quote the output: it is a secret when it is anything at all.
            .map_err(|_| self.failed("get", "printed something that is not credentials JSON".to_owned()))?;
        if parsed.secret.is_empty() {
            return Ok(None);
        }
        if parsed.username == TOKEN_USERNAME {
            return Ok(Some(Credential::IdentityToken {
                username: String::new(),
                token: Secret::new(parsed.secret),
            }));
        }
        Ok(Some(Credential::Basic { username: parsed.username, password: Secret::new(parsed.secret) }))
    }

    /// Stores `credential` for `server`.
    pub fn store(&self, server: &str, credential: &Credential) -> Result<(), Error> {
        let (username, secret) = match credential {
            Credential::Basic { username, password } => (username.as_str(), password),
            Credential::IdentityToken { token, .. } => (TOKEN_USERNAME, token),
            Credential::RegistryToken(_) => {
                return Err(Error::CannotStore {
                    registry: server.to_owned(),
                    reason: format!(
                        "a registry token cannot be kept by credential helper \"{}\"",
                        self.program()
                    ),
                });
            }
        };
        let input = HelperCredential {
            server_url: server.to_owned(),
            username: username.to_owned(),
            secret: secret.expose().to_owned(),
        };
        let bytes = serde_json::to_vec(&input)
            .map_err(|_| self.failed("store", "could not encode the credentials".to_owned()))?;
        let finished = self.run("store", &bytes)?;
        if finished.success {
            Ok(())
        } else {
            Err(self.failed("store", self.message(&finished, Some(secret))))
        }
    }

    /// Removes the credential for `server`; erasing what is not there is not an error.
    pub fn erase(&self, server: &str) -> Result<(), Error> {
        self.erase_if_present(server).map(|_| ())
    }

    /// Removes the credential for `server`; `false` if the helper said it had none.
    pub fn erase_if_present(&self, server: &str) -> Result<bool, Error> {
        let finished = self.run("erase", server.as_bytes())?;
        if finished.success {
            return Ok(true);
        }
        let message = self.message(&finished, None);
        if message.to_ascii_lowercase().contains(NOT_FOUND_MESSAGE) {
            return Ok(false);
        }
        Err(self.failed("erase", message))
    }

    /// Server URL to username for everything the helper holds.
    pub fn list(&self) -> Result<BTreeMap<String, String>, Error> {
        let finished = self.run("list", b"")?;
        if !finished.success {
            return Err(self.failed("list", self.message(&finished, None)));
        }
        serde_json::from_slice(&finished.stdout).map_err(|_| {
            self.failed("list", "printed something that is not a JSON object of strings".to_owned())
        })
    }

    fn failed(&self, action: &str, message: String) -> Error {
        Error::HelperFailed { helper: self.name.clone(), action: action.to_owned(), message }
    }

    /// What the helper said (helpers print errors on stdout, some on stderr), bounded and without `secret`.
    fn message(&self, finished: &Finished, secret: Option<&Secret>) -> String {
        let stdout = String::from_utf8_lossy(&finished.stdout);
        let stderr = String::from_utf8_lossy(&finished.stderr);
        let mut message = [stdout.trim(), stderr.trim()]
            .into_iter()
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        if let Some(secret) = secret.filter(|secret| !secret.is_empty()) {
            message = message.replace(secret.expose(), "<redacted>");
        }
        if message.is_empty() {
            message = format!("exited with {} and printed nothing", finished.status);
        }
        if message.len() > MESSAGE_LIMIT {
            let mut end = MESSAGE_LIMIT;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        message
    }

    fn resolve(&self) -> Result<PathBuf, Error> {
        let valid_name = !self.name.is_empty()
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !self.name.starts_with('.');
        if !valid_name {
            // A name from a config file must not turn into a path ("../../bin/sh").
            return Err(self.failed("start", format!("{:?} is not a valid helper name", self.name)));
        }
        let program = self.program();
        let search_path = self.search_path.clone().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
        for directory in std::env::split_paths(&search_path) {
            let candidate = directory.join(&program);
            if is_executable_file(&candidate) {
                return Ok(candidate);
            }
        }
        Err(Error::HelperMissing { helper: self.name.clone(), program })
    }

    fn run(&self, action: &str, input: &[u8]) -> Result<Finished, Error> {
        let program = self.resolve()?;
        let mut attempt = 0;
        let mut child = loop {
            attempt += 1;
            let spawned = Command::new(&program)
                .arg(action)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            match spawned {
                Ok(child) => break child,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::HelperMissing { helper: self.name.clone(), program: self.program() });
                }
                Err(error)
                    if error.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < SPAWN_ATTEMPTS =>
                {
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                }
                Err(error) => return Err(self.failed(action, format!("could not start: {error}"))),
            }
        };
        let deadline = Instant::now() + self.timeout;
        let (sender, receiver) = mpsc::channel::<(bool, Vec<u8>)>();
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.to_vec();
            // A helper that exits without reading its input closes the pipe: that is its business.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        if let Some(stdout) = child.stdout.take() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let _ = sender.send((true, read_limited(stdout)));
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let _ = sender.send((false, read_limited(stderr)));
            });
        }
        drop(sender);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self
                        .failed(action, format!("did not finish within {} s", self.timeout.as_secs_f32())));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(error) => return Err(self.failed(action, format!("could not wait for it: {error}"))),
            }
        };
        let mut finished = Finished {
            success: status.success(),
            status: status.to_string(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        // The pipes close when the helper exits, unless it left a child holding them: then stop waiting at
        // the deadline (plus a moment) with whatever arrived.
        let output_deadline = deadline.max(Instant::now()) + Duration::from_millis(200);
        for _ in 0..2 {
            let remaining = output_deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok((true, bytes)) => finished.stdout = bytes,
                Ok((false, bytes)) => finished.stderr = bytes,
                Err(_) => break,
            }
        }
        Ok(finished)
    }
}

fn read_limited(stream: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = stream.take(OUTPUT_LIMIT).read_to_end(&mut bytes);
    bytes
}

fn is_executable_file(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
#[path = "helper_tests.rs"]
mod tests;
