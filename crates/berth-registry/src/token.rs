//! Bearer tokens: realm safety checks, the token response, and the cache keyed by scope.
//!
//! Implements the Docker token authentication spec (distribution `docs/spec/auth/token.md`, "Requesting a
//! Token" and "Token Response Fields") and its OAuth2 variant (`docs/spec/auth/oauth.md`). Tokens are cached
//! per scope string until `expires_in` (default 60 s per the spec) or the JWT `exp`, minus a margin, so a
//! pull re-authenticates only when a token actually expires.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;

/// The token spec's default lifetime when the server omits `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// A token and when it stops being usable.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: String,
    pub usable_until: Instant,
}

/// Parses a token endpoint answer; `None` if it carries no token.
pub(crate) fn parse_token_response(body: &[u8], now: Instant) -> Option<Token> {
    let response: TokenResponse = serde_json::from_slice(body).ok()?;
    let value = response.token.filter(|token| !token.is_empty()).or(response.access_token)?;
    if value.is_empty() {
        return None;
    }
    let mut lifetime = response.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
    if let Some(remaining) = jwt_remaining(&value) {
        lifetime = lifetime.min(remaining);
    }
    // Leave a margin so a token does not expire between our check and the registry's.
    let margin = (lifetime / 4).min(Duration::from_secs(10));
    Some(Token { value, usable_until: now + lifetime.saturating_sub(margin) })
}

/// Seconds until a JWT's `exp`, when the token is a JWT with one.
fn jwt_remaining(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let decoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&decoded).ok()?;
    let expiry = claims.get("exp")?.as_u64()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(expiry.saturating_sub(now)))
}

/// Tokens by scope string.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

impl TokenCache {
    pub fn get(&self, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.get(scope).filter(|token| token.usable_until > Instant::now()).map(|token| token.value.clone())
    }

    pub fn put(&self, scope: &str, token: Token) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.insert(scope.to_string(), token);
    }

    /// Drops a token the registry refused, unless another request already replaced it.
    pub fn forget(&self, scope: &str, value: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if tokens.get(scope).is_some_and(|token| token.value == value) {
            tokens.remove(scope);
        }
    }
}

/// Why a realm may not be used.
pub(crate) fn realm_problem(realm: &url::Url, registry_is_plain_http: bool) -> Option<String> {
    match realm.scheme() {
        "https" => {}
        "http" if registry_is_plain_http => {}
        other => return Some(format!("realm {} uses {other}, not https", redact_url(realm))),
    }
    let link_local = match realm.host() {
        Some(url::Host::Ipv4(address)) => is_link_local(IpAddr::V4(address)),
        Some(url::Host::Ipv6(address)) => is_link_local(IpAddr::V6(address)),
        Some(url::Host::Domain(_)) => false,
        None => return Some("realm has no host".to_string()),
    };
    link_local.then(|| format!("realm {} is a link-local address", redact_url(realm)))
}

/// True when credentials for `registry_host` may go to a realm on `realm_host`: the same host (any port),
/// or, for DNS names, the same parent domain (last two labels: `registry-1.docker.io` and `auth.docker.io`).
/// A realm elsewhere is how a hostile registry would harvest a user's credential for another one.
pub(crate) fn realm_may_receive_credentials(realm_host: &str, registry_host: &str) -> bool {
    let realm = host_part(realm_host).to_ascii_lowercase();
    let registry = host_part(registry_host).to_ascii_lowercase();
    if realm == registry {
        return true;
    }
    let is_address =
        |host: &str| host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
    if is_address(&realm) || is_address(&registry) || !realm.contains('.') || !registry.contains('.') {
        return false;
    }
    let parent = |host: &str| -> String {
        let labels: Vec<&str> = host.trim_end_matches('.').rsplit('.').take(2).collect();
        labels.into_iter().rev().collect::<Vec<_>>().join(".")
    };
    parent(&realm) == parent(&registry)
}

/// 169.254.0.0/16 and fe80::/10: cloud metadata endpoints live there; a token request must never go there.
pub(crate) fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    }
}

/// Loopback hosts may be spoken to over plain HTTP without being marked insecure.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = host_part(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}

fn host_part(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, _)) if !name.contains(':') => name,
        _ => host,
    }
}

/// A URL for logs and errors: query values that may be secrets are replaced.
pub(crate) fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let lowered = name.to_ascii_lowercase();
                let secret = ["token", "signature", "sig", "key", "credential", "secret", "password", "auth"]
                    .iter()
                    .any(|word| lowered.contains(word));
                (name.into_owned(), if secret { "REDACTED".to_string() } else { value.into_owned() })
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_or_access_token_with_default_lifetime() {
        let now = Instant::now();
        let token = parse_token_response(br#"{"token":"abc"}"#, now).unwrap();
        assert_eq!(token.value, "abc");
        assert_eq!(token.usable_until, now + Duration::from_secs(50));
        let token = parse_token_response(br#"{"access_token":"xyz","expires_in":2}"#, now).unwrap();
        assert_eq!(token.value, "xyz");
        assert_eq!(token.usable_until, now + Duration::from_millis(1500));
        assert!(parse_token_response(br#"{"token":""}"#, now).is_none());
        assert!(parse_token_response(b"<html>", now).is_none());
    }

    #[test]
    fn jwt_exp_shortens_lifetime() {
        let expiry = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 8;
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{expiry}}}"#));
        let body = format!(r#"{{"token":"h.{payload}.s","expires_in":300}}"#);
        let now = Instant::now();
        let token = parse_token_response(body.as_bytes(), now).unwrap();
        assert!(token.usable_until <= now + Duration::from_secs(8), "jwt exp must win over expires_in");
    }

    #[test]
    fn cache_forgets_only_the_refused_token() {
        let cache = TokenCache::default();
        let later = Instant::now() + Duration::from_secs(30);
        cache.put("s", Token { value: "one".into(), usable_until: later });
        cache.forget("s", "other");
        assert_eq!(cache.get("s").as_deref(), Some("one"));
        cache.forget("s", "one");
        assert_eq!(cache.get("s"), None);
        cache.put("e", Token { value: "old".into(), usable_until: Instant::now() });
        assert_eq!(cache.get("e"), None, "expired tokens are not served");
    }

    #[test]
    fn realm_checks() {
        let https = url::Url::parse("https://auth.example/token").unwrap();
        assert_eq!(realm_problem(&https, false), None);
        let http = url::Url::parse("http://auth.example/token").unwrap();
        assert!(realm_problem(&http, false).is_some());
        assert_eq!(realm_problem(&http, true), None);
        let metadata = url::Url::parse("https://169.254.169.254/latest").unwrap();
        assert!(realm_problem(&metadata, false).unwrap().contains("link-local"));
        let v6 = url::Url::parse("https://[fe80::1]/token").unwrap();
        assert!(realm_problem(&v6, false).is_some());
        let file = url::Url::parse("file:///etc/passwd").unwrap();
        assert!(realm_problem(&file, true).is_some());
    }

    #[test]
    fn credentials_go_only_to_realms_of_the_same_site() {
        assert!(realm_may_receive_credentials("auth.docker.io", "registry-1.docker.io"));
        assert!(realm_may_receive_credentials("127.0.0.1:5004", "127.0.0.1:5003"));
        assert!(realm_may_receive_credentials("REG.example.com", "reg.example.com:443"));
        assert!(!realm_may_receive_credentials("evil.test", "registry.example.com"));
        assert!(!realm_may_receive_credentials("example.com.evil.test", "example.com"));
        assert!(!realm_may_receive_credentials("10.0.0.2", "10.0.0.1:5000"));
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "::1"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["reg.io", "10.0.0.1:5000", "localhost.evil.test", "[fe80::1]:5000"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn secrets_in_query_are_redacted() {
        let url =
            url::Url::parse("https://s3.example/blob?X-Amz-Signature=abc&X-Amz-Credential=k&part=1").unwrap();
        let shown = redact_url(&url);
        assert!(!shown.contains("abc") && !shown.contains("=k&"), "{shown}");
        assert!(shown.contains("part=1"), "{shown}");
    }
}
