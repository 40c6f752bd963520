//! The one error type of this crate.
//!
//! A registry failure must tell the user which registry, which image, what class of failure it is and what
//! the registry said, because "unauthorized: authentication required" alone leaves them guessing. Each
//! [`ErrorKind`] has its own sentence and its own `hint()`. No secret ever reaches an error: callers only
//! ever pass in status codes, registry error envelopes (which never echo credentials) and redacted URLs.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, in the classes a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NoCredentials,
    WrongCredentials,
    Denied,
    RepositoryNotFound,
    ManifestNotFound,
    TokenServer,
    UnknownCa {
        searched: Vec<PathBuf>,
    },
    HostnameMismatch,
    ClientCertRequired,
    ClientCertRejected,
    HttpsToHttpServer,
    HttpToHttpsServer,
    Dns,
    ConnectionRefused,
    Timeout,
    Stalled,
    RateLimited {
        limit: Option<String>,
        remaining: Option<String>,
        reset: Option<String>,
        retry_after: Option<String>,
    },
    NoMatchingPlatform {
        wanted: String,
        available: Vec<String>,
    },
    DigestMismatch {
        expected: String,
        actual: String,
    },
    InvalidManifest,
    TooLarge,
    InsecureRealm,
    Tls,
    Http {
        status: u16,
    },
    Network,
}

/// A registry operation failed. `Display` is one lowercase sentence; `hint()` says what to do.
/// Boxed so that `Result<T, Error>` stays one pointer wide on the success path.
#[derive(Debug)]
pub struct Error {
    details: Box<Details>,
}

#[derive(Debug)]
struct Details {
    kind: ErrorKind,
    registry: String,
    image: Option<String>,
    /// What the registry (or the TLS/network layer) said, already free of secrets.
    said: Option<String>,
    /// Where berth's configuration for this registry lives, for hints ("mark it insecure in ...").
    config_hint: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, registry: &str) -> Error {
        Error {
            details: Box::new(Details {
                kind,
                registry: registry.to_string(),
                image: None,
                said: None,
                config_hint: None,
            }),
        }
    }

    pub(crate) fn said(mut self, said: impl Into<String>) -> Error {
        let said = said.into();
        if !said.trim().is_empty() {
            self.details.said = Some(said.trim().to_string());
        }
        self
    }

    /// Names the normalized image this error happened for (set by the operation that knows it).
    pub fn with_image(mut self, image: impl Into<String>) -> Error {
        if self.details.image.is_none() {
            self.details.image = Some(image.into());
        }
        self
    }

    /// Names where the user configures registries (e.g. "/etc/berth/config.toml"), for hints that say
    /// "mark it insecure in ...".
    pub fn with_config_hint(mut self, hint: Option<&str>) -> Error {
        self.details.config_hint = hint.map(str::to_string);
        self
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.details.kind
    }

    /// The registry host this error is about, as the user would type it (e.g. "127.0.0.1:5003").
    pub fn registry(&self) -> &str {
        &self.details.registry
    }

    /// What the registry or the network layer said, when anything.
    pub fn registry_said(&self) -> Option<&str> {
        self.details.said.as_deref()
    }

    /// A concrete next step for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        let registry = &self.details.registry;
        let config = self.details.config_hint.as_deref().unwrap_or("berth's configuration");
        Some(match &self.details.kind {
            ErrorKind::NoCredentials => format!("the repository may be private: run `berth login {registry}`"),
            ErrorKind::WrongCredentials => {
                format!("the stored login for {registry} was refused: run `berth login {registry}` again")
            }
            ErrorKind::Denied => format!(
                "the credential is valid but lacks pull access: ask for access, or check the name (`berth logout {registry}` to pull anonymously)"
            ),
            ErrorKind::RepositoryNotFound => "check the repository name and the registry host".to_string(),
            ErrorKind::ManifestNotFound => "check the tag or digest (the message lists some tags that exist)".to_string(),
            ErrorKind::TokenServer => "the registry's token server is failing: try again later".to_string(),
            ErrorKind::UnknownCa { searched } => match searched.first() {
                Some(first) => format!(
                    "put the registry's CA certificate in {}/ca.crt (looked in: {})",
                    first.display(),
                    searched.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
                None => "install the registry's CA certificate in a certs.d directory for this host".to_string(),
            },
            ErrorKind::HostnameMismatch => {
                format!("the certificate does not name {registry}: use the host name it was issued for")
            }
            ErrorKind::ClientCertRequired => format!(
                "the registry wants a TLS client certificate: put client.cert and client.key in certs.d/{registry}/"
            ),
            ErrorKind::ClientCertRejected => {
                "the registry refused the client certificate: check it was issued by the CA the registry trusts"
                    .to_string()
            }
            ErrorKind::HttpsToHttpServer => {
                format!("the registry speaks plain HTTP: mark {registry} insecure in {config}")
            }
            ErrorKind::HttpToHttpsServer => {
                format!(
                    "the server speaks HTTPS but was sent plain HTTP: if {registry} is marked insecure in {config}, remove it there; if a redirect pointed berth at an http:// address, the registry's redirect is misconfigured: tell its operator"
                )
            }
            ErrorKind::Dns => format!("check the spelling of {registry} and your DNS settings"),
            ErrorKind::ConnectionRefused => format!("check that the registry at {registry} is running and the port is right"),
            ErrorKind::Timeout => "check the network path to the registry (proxy, firewall)".to_string(),
            ErrorKind::Stalled => "the transfer stopped making progress: run the command again to resume".to_string(),
            ErrorKind::RateLimited { retry_after, .. } => match retry_after {
                Some(after) => format!("wait {after} (Retry-After) or log in to get a higher limit"),
                None => format!("wait, or run `berth login {registry}` to get a higher limit"),
            },
            ErrorKind::NoMatchingPlatform { available, .. } => {
                format!("use --platform with one of: {}", available.join(", "))
            }
            ErrorKind::DigestMismatch { .. } => "the data was corrupted in transit or the registry is broken: try again".to_string(),
            ErrorKind::InsecureRealm => {
                "the registry sent its token request to an unsafe address: this looks like a misconfiguration or an attack".to_string()
            }
            ErrorKind::InvalidManifest | ErrorKind::TooLarge | ErrorKind::Tls | ErrorKind::Http { .. } | ErrorKind::Network => {
                return None;
            }
        })
    }

    fn headline(&self) -> String {
        let registry = &self.details.registry;
        let image = self.details.image.as_deref();
        let subject = image.map(|image| format!(" for {image}")).unwrap_or_default();
        match &self.details.kind {
            ErrorKind::NoCredentials => {
                format!("{registry} requires authentication{subject} and no credentials were found")
            }
            ErrorKind::WrongCredentials => {
                format!("{registry} rejected the credentials (wrong username or password)")
            }
            ErrorKind::Denied => {
                format!("{registry} denied access{subject}: the credentials lack pull permission")
            }
            ErrorKind::RepositoryNotFound => match image {
                Some(image) => format!("repository of {image} not found on {registry}"),
                None => format!("repository not found on {registry}"),
            },
            ErrorKind::ManifestNotFound => match image {
                Some(image) => format!("{image} not found: {registry} has no such tag or digest"),
                None => format!("manifest not found on {registry}"),
            },
            ErrorKind::TokenServer => format!("the token server of {registry} failed{subject}"),
            ErrorKind::UnknownCa { .. } => {
                format!(
                    "the TLS certificate of {registry} is signed by an unknown authority (or self-signed)"
                )
            }
            ErrorKind::HostnameMismatch => {
                format!("the TLS certificate of {registry} is not valid for that host name")
            }
            ErrorKind::ClientCertRequired => {
                format!("{registry} requires a TLS client certificate and none is configured")
            }
            ErrorKind::ClientCertRejected => format!("{registry} rejected the TLS client certificate"),
            ErrorKind::HttpsToHttpServer => format!("{registry} answered HTTPS with plain HTTP"),
            ErrorKind::HttpToHttpsServer => format!("{registry} answered plain HTTP with HTTPS"),
            ErrorKind::Dns => format!("cannot resolve the host name of {registry}"),
            ErrorKind::ConnectionRefused => format!("connection to {registry} refused"),
            ErrorKind::Timeout => format!("connection to {registry} timed out{subject}"),
            ErrorKind::Stalled => format!("the transfer from {registry} stalled{subject}"),
            ErrorKind::RateLimited { limit, remaining, reset, retry_after } => {
                let mut parts = Vec::new();
                for (name, value) in [
                    ("limit", limit),
                    ("remaining", remaining),
                    ("reset", reset),
                    ("retry-after", retry_after),
                ] {
                    if let Some(value) = value {
                        parts.push(format!("{name} {value}"));
                    }
                }
                let detail =
                    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) };
                format!("{registry} rate-limited the pull{subject}{detail}")
            }
            ErrorKind::NoMatchingPlatform { wanted, available } => match image {
                Some(image) => format!(
                    "{image} has no image for platform {wanted} (available: {})",
                    available.join(", ")
                ),
                None => format!(
                    "no image for platform {wanted} on {registry} (available: {})",
                    available.join(", ")
                ),
            },
            ErrorKind::DigestMismatch { expected, actual } => {
                format!("content from {registry}{subject} has digest {actual}, expected {expected}")
            }
            ErrorKind::InvalidManifest => format!("{registry} sent an invalid manifest{subject}"),
            ErrorKind::TooLarge => format!("{registry} sent more data than allowed{subject}"),
            ErrorKind::InsecureRealm => format!("{registry} pointed to an unsafe token realm"),
            ErrorKind::Tls => format!("TLS with {registry} failed"),
            ErrorKind::Http { status } => format!("{registry} answered HTTP {status}{subject}"),
            ErrorKind::Network => format!("network error talking to {registry}{subject}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.headline())?;
        if let Some(said) = &self.details.said {
            write!(formatter, ": {said}")?;
        }
        Ok(())
    }
}

/// No `source()`: transport errors are summarized into `said` because their Display can carry URLs with
/// signed query strings.
impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_registry_image_and_what_was_said() {
        let error = Error::new(ErrorKind::NoCredentials, "127.0.0.1:5003")
            .with_image("127.0.0.1:5003/private/app:1")
            .said("UNAUTHORIZED: authentication required");
        let text = error.to_string();
        assert!(
            text.starts_with("127.0.0.1:5003 requires authentication for 127.0.0.1:5003/private/app:1"),
            "{text}"
        );
        assert!(text.ends_with("UNAUTHORIZED: authentication required"), "{text}");
        assert_eq!(
            error.hint().as_deref(),
            Some("the repository may be private: run `berth login 127.0.0.1:5003`")
        );
    }

    #[test]
    fn unknown_ca_hint_names_searched_dirs() {
        let searched =
            vec![PathBuf::from("/etc/berth/certs.d/reg:5000"), PathBuf::from("/etc/docker/certs.d/reg:5000")];
        let error = Error::new(ErrorKind::UnknownCa { searched }, "reg:5000");
        let hint = error.hint().unwrap_or_default();
        assert!(
            hint.starts_with("put the registry's CA certificate in /etc/berth/certs.d/reg:5000/ca.crt"),
            "{hint}"
        );
        assert!(hint.contains("/etc/docker/certs.d/reg:5000"), "{hint}");
    }

    #[test]
    fn rate_limit_lists_headers() {
        let kind = ErrorKind::RateLimited {
            limit: Some("100;w=21600".into()),
            remaining: Some("0;w=21600".into()),
            reset: None,
            retry_after: Some("30".into()),
        };
        let text = Error::new(kind, "registry-1.docker.io").to_string();
        assert!(text.contains("limit 100;w=21600, remaining 0;w=21600, retry-after 30"), "{text}");
    }

    #[test]
    fn platform_hint_lists_choices() {
        let kind = ErrorKind::NoMatchingPlatform {
            wanted: "linux/s390x".into(),
            available: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
        };
        let error = Error::new(kind, "docker.io").with_image("docker.io/library/busybox:1");
        assert_eq!(error.hint().as_deref(), Some("use --platform with one of: linux/amd64, linux/arm64/v8"));
        assert!(
            error
                .to_string()
                .starts_with("docker.io/library/busybox:1 has no image for platform linux/s390x")
        );
    }
}
