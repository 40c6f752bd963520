//! A fault-injecting HTTP proxy to put in front of a real registry.
//!
//! A reverse proxy (not a forward proxy): clients talk to it as if it were the registry. It exists to
//! produce on demand what real registries and CDNs do only sometimes: 5xx and 429 answers, connections
//! reset mid-blob, stalled bodies, corrupted bodies, blob redirects to another host.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::Pki;
use crate::http::{Body, ServerThread, full};

/// What the proxy does to matching requests. `path_contains` selects requests by URL path substring
/// (`"/blobs/"`, `"/manifests/"`); `None` matches all. `times` bounds how often the fault fires
/// (`0` = always).
#[derive(Debug, Clone, Default)]
pub enum Fault {
    #[default]
    None,
    /// Answer with `status` (and `Retry-After` when given) instead of forwarding. A 401 carries the
    /// upstream's own challenge for the path (a stand-in for an expired token: Distribution 2.8 accepts
    /// tokens up to 60 s past `exp`). A 429 also carries Docker Hub's rate-limit headers ([`RATE_LIMIT_LIMIT`], [`RATE_LIMIT_REMAINING`], [`RATE_LIMIT_RESET`]).
    Status { status: u16, retry_after: Option<u64>, path_contains: Option<String>, times: usize },
    /// Forward, but reset the connection after `bytes` bytes of the response body.
    ResetAfter { bytes: u64, path_contains: Option<String>, times: usize },
    /// Forward, send the headers and `bytes` bytes of the body, then send nothing more (never close;
    /// the proxy gives up after [`STALL_LIMIT`]).
    Stall { bytes: u64, path_contains: Option<String>, times: usize },
    /// Answer blob GETs with `307` to the same path on `to` (a base URL such as `http://127.0.0.1:PORT`).
    RedirectBlobs { to: String },
    /// Forward, but flip every bit of one byte of the response body (the middle byte when the upstream
    /// sent a `Content-Length`, else the first): a stand-in for a cache or disk that corrupts data.
    Corrupt { path_contains: Option<String>, times: usize },
}

/// `RateLimit-Limit` of an injected 429 (Docker Hub's format: limit;w=window seconds).
pub const RATE_LIMIT_LIMIT: &str = "100;w=21600";
/// `RateLimit-Remaining` of an injected 429.
pub const RATE_LIMIT_REMAINING: &str = "0;w=21600";
/// `RateLimit-Reset` of an injected 429 (seconds).
pub const RATE_LIMIT_RESET: &str = "21600";
/// How long a stalled body stays silent before the proxy drops the connection.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// Whether an `Authorization` header was present (its value is never kept).
    pub had_authorization: bool,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    tls: bool,
    state: Arc<State>,
    _server: ServerThread,
}

#[derive(Debug)]
struct State {
    upstream: String,
    own_base: Mutex<String>,
    client: reqwest::Client,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fault: Fault,
    fired: usize,
    seen: Vec<SeenRequest>,
}

/// What to do with one request, decided under the lock.
enum Action {
    Forward { reset_after: Option<u64>, stall_after: Option<u64>, corrupt: bool },
    Answer { status: u16, retry_after: Option<u64> },
    Redirect { to: String },
}

impl Proxy {
    /// An HTTP proxy on 127.0.0.1 (ephemeral port) in front of `upstream_base_url`
    /// (`http(s)://127.0.0.1:PORT`), trusting the test CA and presenting the client pair upstream.
    pub fn start(upstream_base_url: &str, pki: &Pki) -> anyhow::Result<Proxy> {
        Proxy::start_inner(upstream_base_url, pki, None)
    }

    /// Same as [`Proxy::start`], serving HTTPS with the test server certificate.
    pub fn start_tls(upstream_base_url: &str, pki: &Pki) -> anyhow::Result<Proxy> {
        Proxy::start_inner(upstream_base_url, pki, Some(pki.server_tls_config()?))
    }

    /// Same as [`Proxy::start_tls`], presenting another server identity (e.g. a certificate from
    /// [`Pki::issue_server_cert`] that does not name 127.0.0.1). `pki` is still what the proxy trusts
    /// upstream.
    pub fn start_tls_with(
        upstream_base_url: &str,
        pki: &Pki,
        server: rustls::ServerConfig,
    ) -> anyhow::Result<Proxy> {
        Proxy::start_inner(upstream_base_url, pki, Some(server))
    }

    fn start_inner(
        upstream_base_url: &str,
        pki: &Pki,
        server_tls: Option<rustls::ServerConfig>,
    ) -> anyhow::Result<Proxy> {
        let tls = server_tls.is_some();
        let client = crate::http::reqwest_builder(pki, true)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the proxy's upstream client")?;
        let state = Arc::new(State {
            upstream: upstream_base_url.trim_end_matches('/').to_owned(),
            own_base: Mutex::new(String::new()),
            client,
            inner: Mutex::new(Inner::default()),
        });
        let handler_state = state.clone();
        let server = ServerThread::start(
            "proxy",
            server_tls,
            Arc::new(move |request| {
                let state = handler_state.clone();
                Box::pin(async move { state.handle(request).await })
            }),
        )?;
        let proxy = Proxy { port: server.port, tls, state, _server: server };
        *lock(&proxy.state.own_base) = proxy.url();
        Ok(proxy)
    }

    /// `http://127.0.0.1:PORT` (or `https://` for [`Proxy::start_tls`]).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.host())
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the current fault (and restarts its `times` count).
    pub fn set_fault(&self, fault: Fault) {
        let mut inner = lock(&self.state.inner);
        inner.fault = fault;
        inner.fired = 0;
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.state.inner).seen.clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.state.inner).seen.clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only means a handler panicked; the data is still usable for a test fixture.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn matches(path: &str, path_contains: &Option<String>) -> bool {
    path_contains.as_deref().is_none_or(|needle| path.contains(needle))
}

/// Blob downloads only: `/v2/<name>/blobs/<digest>`, not uploads.
fn is_blob_get(method: &hyper::Method, path: &str) -> bool {
    method == hyper::Method::GET && path.contains("/blobs/") && !path.contains("/blobs/uploads")
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP client sets itself.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

fn registry_error(status: u16, message: &str) -> Response<Body> {
    let code = match status {
        429 => "TOOMANYREQUESTS",
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NOT_FOUND",
        _ => "UNKNOWN",
    };
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

impl State {
    fn decide(&self, method: &hyper::Method, path: &str) -> Action {
        let mut inner = lock(&self.inner);
        let (fires, action) = match &inner.fault {
            Fault::None => (false, None),
            Fault::Status { status, retry_after, path_contains, times } => (
                matches(path, path_contains) && (*times == 0 || inner.fired < *times),
                Some(Action::Answer { status: *status, retry_after: *retry_after }),
            ),
            Fault::ResetAfter { bytes, path_contains, times } => (
                matches(path, path_contains) && (*times == 0 || inner.fired < *times),
                Some(Action::Forward { reset_after: Some(*bytes), stall_after: None, corrupt: false }),
            ),
            Fault::Stall { bytes, path_contains, times } => (
                matches(path, path_contains) && (*times == 0 || inner.fired < *times),
                Some(Action::Forward { reset_after: None, stall_after: Some(*bytes), corrupt: false }),
            ),
            Fault::RedirectBlobs { to } => {
                (is_blob_get(method, path), Some(Action::Redirect { to: to.clone() }))
            }
            Fault::Corrupt { path_contains, times } => (
                matches(path, path_contains) && (*times == 0 || inner.fired < *times),
                Some(Action::Forward { reset_after: None, stall_after: None, corrupt: true }),
            ),
        };
        match action {
            Some(action) if fires => {
                inner.fired += 1;
                action
            }
            _ => Action::Forward { reset_after: None, stall_after: None, corrupt: false },
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let path_and_query =
            request.uri().path_and_query().map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
        lock(&self.inner).seen.push(SeenRequest {
            method: method.to_string(),
            path: path.clone(),
            had_authorization: request.headers().contains_key(hyper::header::AUTHORIZATION),
        });
        match self.decide(&method, &path) {
            Action::Answer { status, retry_after } => {
                let mut response = registry_error(status, "fault injected by the berth-testkit proxy");
                let headers = response.headers_mut();
                if let Some(seconds) = retry_after {
                    headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                if status == 401
                    && let Some(challenge) = self.upstream_challenge(&method, &path_and_query).await
                {
                    headers.insert(hyper::header::WWW_AUTHENTICATE, challenge);
                }
                if status == 429 {
                    headers.insert("ratelimit-limit", HeaderValue::from_static(RATE_LIMIT_LIMIT));
                    headers.insert("ratelimit-remaining", HeaderValue::from_static(RATE_LIMIT_REMAINING));
                    headers.insert("ratelimit-reset", HeaderValue::from_static(RATE_LIMIT_RESET));
                }
                response
            }
            Action::Redirect { to } => {
                let location = format!("{}{path_and_query}", to.trim_end_matches('/'));
                let mut response = Response::new(full(Bytes::new()));
                *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(hyper::header::LOCATION, value);
                }
                response
            }
            Action::Forward { reset_after, stall_after, corrupt } => {
                match self.forward(request, &path_and_query, reset_after, stall_after, corrupt).await {
                    Ok(response) => response,
                    Err(error) => {
                        registry_error(502, &format!("proxy: upstream {}: {error:#}", self.upstream))
                    }
                }
            }
        }
    }

    /// The challenge the upstream gives an anonymous caller for this path (with its `scope`), so an
    /// injected 401 looks like a real "token expired" answer. GET/HEAD only: no side effects upstream.
    async fn upstream_challenge(&self, method: &hyper::Method, path_and_query: &str) -> Option<HeaderValue> {
        let method = if method == hyper::Method::HEAD { hyper::Method::HEAD } else { hyper::Method::GET };
        let url = format!("{}{path_and_query}", self.upstream);
        let response = self.client.request(method, url).send().await.ok()?;
        response.headers().get(hyper::header::WWW_AUTHENTICATE).cloned()
    }

    async fn forward(
        &self,
        request: Request<Incoming>,
        path_and_query: &str,
        reset_after: Option<u64>,
        stall_after: Option<u64>,
        corrupt: bool,
    ) -> anyhow::Result<Response<Body>> {
        let (parts, body) = request.into_parts();
        // Buffered: request bodies in tests are small enough, and a known length keeps uploads simple.
        let body = body.collect().await.context("reading the request body")?.to_bytes();
        let mut upstream = self.client.request(parts.method, format!("{}{path_and_query}", self.upstream));
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name) && name != hyper::header::CONTENT_LENGTH {
                upstream = upstream.header(name, value);
            }
        }
        if !body.is_empty() {
            upstream = upstream.body(body);
        }
        let upstream_response = upstream.send().await.context("forwarding")?;
        let mut response = Response::builder().status(upstream_response.status());
        let own_base = lock(&self.own_base).clone();
        for (name, value) in upstream_response.headers() {
            if is_hop_by_hop(name) {
                continue;
            }
            // Distribution builds absolute upload URLs from the Host it was called with (ours is the
            // upstream's): point them back at the proxy.
            if name == hyper::header::LOCATION
                && let Some(rest) =
                    value.to_str().ok().and_then(|location| location.strip_prefix(&self.upstream))
                && let Ok(rewritten) = HeaderValue::from_str(&format!("{own_base}{rest}"))
            {
                response = response.header(name, rewritten);
                continue;
            }
            response = response.header(name, value);
        }
        let limit = reset_after.or(stall_after);
        // HEAD answers and empty bodies have nothing to corrupt; the position never matches then.
        let corrupt_at = corrupt.then(|| upstream_response.content_length().map_or(0, |length| length / 2));
        let body = futures_util::stream::unfold(
            (upstream_response, 0u64, false),
            move |(mut upstream, sent, done)| async move {
                if done {
                    return None;
                }
                if let Some(limit) = limit
                    && sent >= limit
                {
                    // Waiting (Pending) lets hyper flush the headers and bytes it buffered; erroring at
                    // once would drop them with the connection, so the client would see no response.
                    let wait = if stall_after.is_some() { STALL_LIMIT } else { Duration::from_millis(100) };
                    tokio::time::sleep(wait).await;
                    let error =
                        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault: connection reset");
                    return Some((Err(error), (upstream, sent, true)));
                }
                match upstream.chunk().await {
                    Ok(Some(mut chunk)) => {
                        if let Some(limit) = limit {
                            let allowed = usize::try_from(limit - sent).unwrap_or(usize::MAX);
                            chunk.truncate(allowed);
                        }
                        if let Some(position) = corrupt_at
                            && (sent..sent + chunk.len() as u64).contains(&position)
                        {
                            let mut bytes = chunk.to_vec();
                            let index = usize::try_from(position - sent).unwrap_or(0);
                            bytes[index] = !bytes[index];
                            chunk = Bytes::from(bytes);
                        }
                        let sent = sent + chunk.len() as u64;
                        Some((Ok(Frame::data(chunk)), (upstream, sent, false)))
                    }
                    Ok(None) => None,
                    Err(error) => Some((Err(std::io::Error::other(error)), (upstream, sent, true))),
                }
            },
        );
        response.body(StreamBody::new(body).boxed()).context("building the response")
    }
}
