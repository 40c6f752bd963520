//! Turns transport failures into the error classes a user can act on.
//!
//! reqwest reports TLS, DNS and socket failures as a chain of wrapped errors (reqwest -> hyper-util ->
//! io::Error -> rustls::Error). The chain is walked with `source()`, and inside an `io::Error` its inner
//! error is looked at too, because `io::Error::source()` skips its own payload.

use std::error::Error as StdError;
use std::io;
use std::time::{Duration, SystemTime};

use rustls::{AlertDescription, CertificateError, InvalidMessage};

use crate::error::ErrorKind;

/// Every error in the chain, including the payloads of `io::Error`s.
fn chain<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut found = Vec::new();
    let mut next = Some(error);
    // Bounded: real chains are a handful deep; the cap guards against a cyclic `source()`.
    while let Some(current) = next {
        if found.len() >= 32 {
            break;
        }
        found.push(current);
        next = match current.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    found
}

/// Classifies a failed request. `sent_client_cert` tells "certificate required" from "rejected".
pub(crate) fn classify(error: &(dyn StdError + 'static), sent_client_cert: bool) -> ErrorKind {
    let errors = chain(error);
    for current in &errors {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return classify_tls(tls, sent_client_cert);
        }
    }
    for current in &errors {
        if let Some(io_error) = current.downcast_ref::<io::Error>() {
            match io_error.kind() {
                io::ErrorKind::ConnectionRefused => return ErrorKind::ConnectionRefused,
                io::ErrorKind::TimedOut => return ErrorKind::Timeout,
                _ => {}
            }
        }
    }
    let text: String =
        errors.iter().map(|current| current.to_string().to_ascii_lowercase()).collect::<Vec<_>>().join(": ");
    if text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
    {
        return ErrorKind::Dns;
    }
    if text.contains("timed out") || text.contains("deadline has elapsed") {
        return ErrorKind::Timeout;
    }
    if text.contains("connection refused") {
        return ErrorKind::ConnectionRefused;
    }
    if let Some(reqwest_error) = errors.first().and_then(|current| current.downcast_ref::<reqwest::Error>())
        && reqwest_error.is_timeout()
    {
        return ErrorKind::Timeout;
    }
    ErrorKind::Network
}

pub(crate) fn classify_tls(error: &rustls::Error, sent_client_cert: bool) -> ErrorKind {
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => ErrorKind::UnknownCa { searched: Vec::new() },
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => ErrorKind::HostnameMismatch,
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => {
            if sent_client_cert {
                ErrorKind::ClientCertRejected
            } else {
                ErrorKind::ClientCertRequired
            }
        }
        rustls::Error::InvalidMessage(
            InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
        ) => ErrorKind::HttpsToHttpServer,
        _ => ErrorKind::Tls,
    }
}

/// True when a failed request is worth repeating: the server or the path may recover.
pub(crate) fn is_transient(kind: &ErrorKind, error: &(dyn StdError + 'static)) -> bool {
    match kind {
        ErrorKind::Timeout => true,
        ErrorKind::Network => chain(error).iter().any(|current| {
            current.downcast_ref::<io::Error>().is_some_and(|io_error| {
                matches!(
                    io_error.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                )
            }) || current.to_string().contains("connection closed")
                || current.to_string().contains("IncompleteMessage")
        }),
        _ => false,
    }
}

/// RFC 9110 10.2.3: Retry-After is delay-seconds or an HTTP-date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A message for the user from a transport error chain, without URLs that could carry query secrets.
pub(crate) fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for current in chain(error) {
        let text = match current.downcast_ref::<reqwest::Error>() {
            Some(reqwest_error) => reqwest_error.without_url_ref_text(),
            None => current.to_string(),
        };
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

trait WithoutUrl {
    fn without_url_ref_text(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref_text(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(&format!(" for url ({url})"), "").replace(url.as_str(), "<url>");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("client error (Connect)")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self.0.as_ref())
        }
    }

    fn wrapped_tls(tls: rustls::Error) -> Wrapper {
        Wrapper(Box::new(io::Error::new(io::ErrorKind::InvalidData, tls)))
    }

    #[test]
    fn tls_errors_inside_io_errors_are_found() {
        let unknown = wrapped_tls(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert_eq!(classify(&unknown, false), ErrorKind::UnknownCa { searched: Vec::new() });
        let name = wrapped_tls(rustls::Error::InvalidCertificate(CertificateError::NotValidForName));
        assert_eq!(classify(&name, false), ErrorKind::HostnameMismatch);
        let plain = wrapped_tls(rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType));
        assert_eq!(classify(&plain, false), ErrorKind::HttpsToHttpServer);
    }

    #[test]
    fn client_cert_alerts_depend_on_whether_one_was_sent() {
        let required = wrapped_tls(rustls::Error::AlertReceived(AlertDescription::CertificateRequired));
        assert_eq!(classify(&required, false), ErrorKind::ClientCertRequired);
        let rejected = wrapped_tls(rustls::Error::AlertReceived(AlertDescription::BadCertificate));
        assert_eq!(classify(&rejected, true), ErrorKind::ClientCertRejected);
        let other = wrapped_tls(rustls::Error::AlertReceived(AlertDescription::ProtocolVersion));
        assert_eq!(classify(&other, false), ErrorKind::Tls);
    }

    #[test]
    fn socket_errors() {
        let refused = Wrapper(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(classify(&refused, false), ErrorKind::ConnectionRefused);
        let timeout = Wrapper(Box::new(io::Error::from(io::ErrorKind::TimedOut)));
        assert_eq!(classify(&timeout, false), ErrorKind::Timeout);
        let dns = Wrapper(Box::new(io::Error::other(
            "failed to lookup address information: Name or service not known",
        )));
        assert_eq!(classify(&dns, false), ErrorKind::Dns);
        let reset = Wrapper(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert_eq!(classify(&reset, false), ErrorKind::Network);
        assert!(is_transient(&ErrorKind::Network, &reset));
        assert!(!is_transient(&ErrorKind::ConnectionRefused, &refused));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(42)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
