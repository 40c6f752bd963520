//! Sending one request: scheme choice, redirects, retries with backoff, and the registry error envelope.
//!
//! Redirects are followed here rather than by reqwest so that `Authorization` is attached per hop, and only
//! when the hop goes to the origin the credential belongs to (blob storage redirects are normal and must
//! never receive the registry's credentials). Retries cover 5xx, 429 (honouring Retry-After) and
//! connection resets, bounded in count and in total waiting time.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use berth_auth::Found;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;

use crate::auth::Auth;
use crate::classify;
use crate::error::{Error, ErrorKind};
use crate::token::{self, TokenCache};
use crate::{ClientOptions, HostConfig};

const MAX_REDIRECTS: usize = 5;
/// Where a user marks a registry insecure, for the hint of an HTTPS/HTTP mix-up.
const CONFIG_HINT: &str =
    "berth's config.toml (`insecure = true` in its [[registry]] entry) or with --insecure-registry";
/// The longest Retry-After we wait for; longer ones become a RateLimited error at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The most time one request may spend waiting between retries.
const MAX_TOTAL_BACKOFF: Duration = Duration::from_secs(60);

/// State shared by every clone of one `Registry`.
pub(crate) struct Inner {
    pub domain: String,
    pub api_host: String,
    pub client: reqwest::Client,
    /// The client's TLS configuration, for [`crate::tls::probe`] when a connection fails without saying why.
    pub tls_config: rustls::ClientConfig,
    pub allow_http: bool,
    /// Set once an HTTPS attempt was answered with plain HTTP on a host allowed to use it.
    pub use_http: Mutex<bool>,
    pub credential: Option<Found>,
    pub auth: tokio::sync::OnceCell<Auth>,
    /// The client for a token realm on another host, with that host's certs.d CAs.
    pub realm_client: tokio::sync::OnceCell<reqwest::Client>,
    pub tokens: TokenCache,
    pub opts: ClientOptions,
    pub certs_searched: Vec<PathBuf>,
    pub sent_client_cert: bool,
    pub warnings: Vec<String>,
    pub host: HostConfig,
}

/// One logical request; `authorization` goes only to `auth_origin`.
pub(crate) struct Outgoing {
    pub method: Method,
    pub url: url::Url,
    pub headers: HeaderMap,
    pub authorization: Option<String>,
    pub form: Option<Vec<(String, String)>>,
    pub follow_redirects: bool,
    /// The client for a different host (a token realm); `None` is the registry's own client.
    pub client: Option<reqwest::Client>,
}

#[derive(Deserialize)]
struct Envelope {
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: Option<String>,
    message: Option<String>,
    detail: Option<serde_json::Value>,
}

/// The registry's error envelope (distribution spec, "Error Codes"), as codes and one readable line.
pub(crate) fn decode_envelope(body: &[u8]) -> (Vec<String>, String) {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        let codes = envelope.errors.iter().filter_map(|error| error.code.clone()).collect();
        let text = envelope
            .errors
            .iter()
            .map(|error| {
                let mut line = match (&error.code, &error.message) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(text), None) | (None, Some(text)) => text.clone(),
                    (None, None) => String::new(),
                };
                if let Some(serde_json::Value::String(detail)) = &error.detail
                    && !detail.is_empty()
                {
                    line.push_str(&format!(" ({detail})"));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; ");
        return (codes, text);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(details) =
            value.get("details").or_else(|| value.get("error_description")).or_else(|| value.get("error"))
        && let Some(text) = details.as_str()
    {
        return (Vec::new(), text.to_string());
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().filter(|character| !character.is_control()).take(200).collect();
    (Vec::new(), if text.trim_start().starts_with('<') { String::new() } else { text })
}

/// `host[:port]` of a URL as a registry is named (no port when it is the scheme's default).
fn host_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// `scheme://host:port` of a URL, to decide where credentials may go.
fn origin(url: &url::Url) -> (String, Option<String>, Option<u16>) {
    (url.scheme().to_string(), url.host_str().map(str::to_ascii_lowercase), url.port_or_known_default())
}

impl Inner {
    pub fn base_url(&self) -> String {
        let use_http = *self.use_http.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        format!("{}://{}", if use_http { "http" } else { "https" }, self.api_host)
    }

    pub fn is_plain_http(&self) -> bool {
        *self.use_http.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn registry_url(&self, path: &str) -> Result<url::Url, Error> {
        url::Url::parse(&format!("{}{path}", self.base_url())).map_err(|error| {
            Error::new(ErrorKind::Network, &self.domain).said(format!("invalid URL for {path}: {error}"))
        })
    }

    /// A client for `url`'s host when it is not the registry's: its own certs.d CAs plus the registry's, so
    /// a token server behind a private CA works when its certificate sits in certs.d like the registry's.
    pub async fn client_for(&self, url: &url::Url) -> Result<Option<reqwest::Client>, Error> {
        let Some(host) = host_port(url) else { return Ok(None) };
        if host == self.api_host {
            return Ok(None);
        }
        let client = self
            .realm_client
            .get_or_try_init(|| async {
                let mut certs =
                    crate::tls::discover(&host, &self.host.cert_roots, self.host.cert_dir.as_deref());
                let registry_certs = crate::tls::discover(
                    &self.api_host,
                    &self.host.cert_roots,
                    self.host.cert_dir.as_deref(),
                );
                certs.ca_files.extend(registry_certs.ca_files);
                let tls_config = crate::tls::client_config(&self.domain, &mut certs)?;
                reqwest::Client::builder()
                    .use_preconfigured_tls(tls_config)
                    .user_agent(self.opts.user_agent.clone())
                    .connect_timeout(self.opts.connect_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|error| self.error(ErrorKind::Tls).said(classify::describe(&error)))
            })
            .await?;
        Ok(Some(client.clone()))
    }

    pub fn error(&self, kind: ErrorKind) -> Error {
        let kind = match kind {
            ErrorKind::UnknownCa { .. } => ErrorKind::UnknownCa { searched: self.certs_searched.clone() },
            other => other,
        };
        Error::new(kind, &self.domain)
    }

    fn transport_error(&self, error: &reqwest::Error) -> Error {
        let kind = classify::classify(error, self.sent_client_cert);
        self.error(kind).said(classify::describe(error))
    }

    /// A final transport error, with the TLS reason learnt on a probe connection when the HTTP client
    /// gave none for a request to the registry itself (see [`crate::tls::probe`]).
    async fn final_transport_error(&self, classified: Error, url: &url::Url, outgoing: &Outgoing) -> Error {
        if *classified.kind() != ErrorKind::Network || url.scheme() != "https" || outgoing.client.is_some() {
            return classified;
        }
        if host_port(url).as_deref() != Some(self.api_host.as_str()) {
            return classified;
        }
        match crate::tls::probe(&self.api_host, &self.tls_config, self.opts.connect_timeout).await {
            Some(tls_error) => {
                let kind = classify::classify_tls(&tls_error, self.sent_client_cert);
                tracing::debug!(registry = %self.domain, error = %tls_error, "the probe connection named the TLS failure");
                self.error(kind).said(tls_error.to_string())
            }
            None => classified,
        }
    }

    /// Sends a request to the registry itself (`path` under `/v2/`), switching an allowed host to HTTP
    /// when its HTTPS port speaks plain HTTP, and never otherwise.
    pub async fn execute_registry(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        authorization: Option<String>,
    ) -> Result<Response, Error> {
        let was_http = self.is_plain_http();
        let outgoing = Outgoing {
            method: method.clone(),
            url: self.registry_url(path)?,
            headers: headers.clone(),
            authorization: authorization.clone(),
            follow_redirects: true,
            form: None,
            client: None,
        };
        match self.execute(outgoing).await {
            Err(error) if *error.kind() == ErrorKind::HttpsToHttpServer && self.allow_http && !was_http => {
                tracing::debug!(registry = %self.domain, "HTTPS answered with plain HTTP; switching to HTTP");
                *self.use_http.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
                let outgoing = Outgoing {
                    method,
                    url: self.registry_url(path)?,
                    headers,
                    authorization,
                    follow_redirects: true,
                    form: None,
                    client: None,
                };
                self.execute(outgoing).await
            }
            Err(error) if *error.kind() == ErrorKind::HttpsToHttpServer => {
                Err(error.with_config_hint(Some(CONFIG_HINT)))
            }
            other => other,
        }
    }

    /// Sends one request with redirects and retries; returns the final response whatever its status,
    /// except that an exhausted 429 becomes RateLimited.
    pub async fn execute(&self, outgoing: Outgoing) -> Result<Response, Error> {
        let auth_origin = origin(&outgoing.url);
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        let mut url = outgoing.url.clone();
        let mut hops = 0;
        loop {
            let client = outgoing.client.as_ref().unwrap_or(&self.client);
            let mut request =
                client.request(outgoing.method.clone(), url.clone()).headers(outgoing.headers.clone());
            if let Some(authorization) = &outgoing.authorization
                && origin(&url) == auth_origin
                && let Ok(mut value) = HeaderValue::from_str(authorization)
            {
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(form) = &outgoing.form {
                request = request.form(form);
            }
            let shown = token::redact_url(&url);
            let sent = tokio::time::timeout(self.opts.stall_timeout, request.send()).await;
            let result = match sent {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(method = %outgoing.method, url = %shown, "no response before the stall timeout");
                    if attempt < self.opts.max_retries {
                        attempt += 1;
                        continue;
                    }
                    return Err(self
                        .error(ErrorKind::Timeout)
                        .said(format!("no response within {:?}", self.opts.stall_timeout)));
                }
            };
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    let classified = self.transport_error(&error);
                    tracing::debug!(method = %outgoing.method, url = %shown, error = %classified, "request failed");
                    if classify::is_transient(classified.kind(), &error) && attempt < self.opts.max_retries {
                        let delay = self.backoff(attempt);
                        if waited + delay <= MAX_TOTAL_BACKOFF {
                            attempt += 1;
                            waited += delay;
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                    }
                    return Err(self.final_transport_error(classified, &url, &outgoing).await);
                }
            };
            let status = response.status();
            tracing::debug!(method = %outgoing.method, url = %shown, status = status.as_u16(), elapsed = ?started.elapsed(), "response");
            if status.is_redirection() && outgoing.follow_redirects {
                let Some(location) = response.headers().get(LOCATION).and_then(|value| value.to_str().ok())
                else {
                    return Ok(response);
                };
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(self
                        .error(ErrorKind::Http { status: status.as_u16() })
                        .said("too many redirects"));
                }
                url = url.join(location).map_err(|error| {
                    self.error(ErrorKind::Network).said(format!("invalid redirect location: {error}"))
                })?;
                if url.scheme() == "http" && auth_origin.0 == "https" {
                    return Err(self
                        .error(ErrorKind::Network)
                        .said(format!("refusing redirect from HTTPS to {}", token::redact_url(&url))));
                }
                continue;
            }
            if status == StatusCode::BAD_REQUEST && url.scheme() == "http" {
                let body = response.bytes().await.unwrap_or_default();
                let text = String::from_utf8_lossy(&body).to_string();
                if text.contains("HTTP request to an HTTPS server") {
                    // After a redirect the host that speaks HTTPS is not the registry: name it.
                    let said = if origin(&url) == auth_origin {
                        text.trim().to_string()
                    } else {
                        format!("{}: {}", token::redact_url(&url), text.trim())
                    };
                    return Err(self.error(ErrorKind::HttpToHttpsServer).said(said));
                }
                return Err(self.error(ErrorKind::Http { status: 400 }).said(decode_envelope(&body).1));
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if retryable && attempt < self.opts.max_retries {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| classify::parse_retry_after(value, SystemTime::now()));
                let delay = match retry_after {
                    Some(after) if after > MAX_RETRY_AFTER => None,
                    Some(after) => Some(after.max(self.backoff(attempt))),
                    None => Some(self.backoff(attempt)),
                };
                if let Some(delay) = delay
                    && waited + delay <= MAX_TOTAL_BACKOFF
                {
                    attempt += 1;
                    waited += delay;
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Err(self.rate_limited(response).await);
            }
            return Ok(response);
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(10)).unwrap_or(1024);
        (self.opts.retry_base_delay * factor).min(Duration::from_secs(10))
    }

    async fn rate_limited(&self, response: Response) -> Error {
        let header = |names: &[&str]| {
            names.iter().find_map(|name| {
                response.headers().get(*name).and_then(|value| value.to_str().ok()).map(str::to_string)
            })
        };
        let kind = ErrorKind::RateLimited {
            limit: header(&["ratelimit-limit", "x-ratelimit-limit"]),
            remaining: header(&["ratelimit-remaining", "x-ratelimit-remaining"]),
            reset: header(&["ratelimit-reset", "x-ratelimit-reset"]),
            retry_after: header(&["retry-after"]),
        };
        let body = response.bytes().await.unwrap_or_default();
        self.error(kind).said(decode_envelope(&body).1)
    }

    /// An error for a non-success registry response, from its status and error envelope.
    pub async fn status_error(&self, response: Response) -> Error {
        let status = response.status().as_u16();
        let body = read_limited(response, 64 * 1024).await;
        let (codes, said) = decode_envelope(&body);
        let kind = if codes.iter().any(|code| code == "NAME_UNKNOWN") {
            ErrorKind::RepositoryNotFound
        } else if codes.iter().any(|code| code == "MANIFEST_UNKNOWN") {
            ErrorKind::ManifestNotFound
        } else if codes.iter().any(|code| code == "DENIED") || status == 403 {
            ErrorKind::Denied
        } else {
            ErrorKind::Http { status }
        };
        self.error(kind).said(said)
    }
}

/// Reads at most `max` bytes of a body, for error messages; failures yield what was read.
pub(crate) async fn read_limited(mut response: Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max {
        match tokio::time::timeout(Duration::from_secs(10), response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(max);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_codes_and_text() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"tag 2"}]}"#;
        let (codes, text) = decode_envelope(body);
        assert_eq!(codes, vec!["MANIFEST_UNKNOWN"]);
        assert_eq!(text, "MANIFEST_UNKNOWN: manifest unknown (tag 2)");
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]}]}"#;
        assert_eq!(decode_envelope(body).1, "UNAUTHORIZED: authentication required");
    }

    #[test]
    fn token_server_details_and_garbage() {
        assert_eq!(
            decode_envelope(br#"{"details":"incorrect username or password"}"#).1,
            "incorrect username or password"
        );
        assert_eq!(decode_envelope(b"<html><body>502</body></html>").1, "");
        assert_eq!(decode_envelope(b"upstream\nfailed").1, "upstreamfailed");
    }

    #[test]
    fn origins_differ_by_host_port_and_scheme() {
        let registry = url::Url::parse("https://reg.test:5000/v2/a/blobs/x").unwrap();
        assert_eq!(origin(&registry), origin(&url::Url::parse("https://REG.test:5000/other").unwrap()));
        assert_ne!(origin(&registry), origin(&url::Url::parse("https://storage.test:5000/x").unwrap()));
        assert_ne!(origin(&registry), origin(&url::Url::parse("https://reg.test:5001/x").unwrap()));
        assert_ne!(origin(&registry), origin(&url::Url::parse("http://reg.test:5000/x").unwrap()));
        assert_eq!(origin(&url::Url::parse("https://h/x").unwrap()).2, Some(443));
    }
}
