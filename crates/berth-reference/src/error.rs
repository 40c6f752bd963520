//! The one error type of this crate: every variant carries the input it rejects and a sentence saying why,
//! so a caller can print it as is ("invalid image reference \"MyApp\": repository name must be lowercase").

/// Why a reference, digest or platform string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An image reference or registry name that does not follow the distribution reference grammar.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },
    /// A digest with an unsupported algorithm or malformed hex.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: String },
    /// A platform string that is not `os/architecture[/variant]`.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },
}

impl Error {
    pub(crate) fn reference(input: &str, reason: impl Into<String>) -> Error {
        Error::InvalidReference { input: input.to_owned(), reason: reason.into() }
    }

    pub(crate) fn digest(input: &str, reason: impl Into<String>) -> Error {
        Error::InvalidDigest { input: input.to_owned(), reason: reason.into() }
    }

    pub(crate) fn platform(input: &str, reason: impl Into<String>) -> Error {
        Error::InvalidPlatform { input: input.to_owned(), reason: reason.into() }
    }
}
