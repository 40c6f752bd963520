//! A fault-injecting HTTP proxy to put in front of a real registry.

/// What the proxy does to matching requests. `path_contains` selects requests by URL path substring
/// (`"/blobs/"`, `"/manifests/"`); `None` matches all. `times` bounds how often the fault fires
/// (`0` = always).
#[derive(Debug, Clone, Default)]
pub enum Fault {
    #[default]
    None,
    /// Answer with `status` (and `Retry-After` when given) instead of forwarding.
    Status { status: u16, retry_after: Option<u64>, path_contains: Option<String>, times: usize },
    /// Forward, but reset the connection after `bytes` bytes of the response body.
    ResetAfter { bytes: u64, path_contains: Option<String>, times: usize },
    /// Forward, send the headers and `bytes` bytes of the body, then send nothing more (never close).
    Stall { bytes: u64, path_contains: Option<String>, times: usize },
    /// Answer blob GETs with `307` to the same path on `to` (a base URL such as `http://127.0.0.1:PORT`).
    RedirectBlobs { to: String },
}

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
}
