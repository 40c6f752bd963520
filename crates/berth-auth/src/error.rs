//! The one error type of this crate. No variant ever holds a secret: messages from helpers are scrubbed of
//! what we sent them, and config parse errors report positions and key names, never values.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured credential helper program is not installed (not found in the search path).
    #[error("credential helper \"{program}\" is not installed (not found in PATH)")]
    HelperMissing { helper: String, program: String },
    /// The credential helper ran but failed; `message` is what it printed, with our secret removed.
    #[error("credential helper \"docker-credential-{helper}\" failed to {action}: {message}")]
    HelperFailed { helper: String, action: String, message: String },
    /// A config file or variable holding credentials that cannot be understood.
    #[error("invalid credentials config {path_or_var}: {reason}")]
    InvalidConfig { path_or_var: String, reason: String },
    /// A credentials file that exists but cannot be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A credential of a kind the destination cannot keep (a registry token in a credential helper).
    #[error("cannot store credentials for {registry}: {reason}")]
    CannotStore { registry: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn config(path_or_var: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidConfig { path_or_var: path_or_var.into(), reason: reason.into() }
    }
}
