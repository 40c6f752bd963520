//! A Docker-protocol token issuer (the protocol of Docker Hub's auth service), over HTTPS on loopback.
//!
//! It implements the Distribution token specs: `GET /token` ("Token Authentication Specification",
//! docs/spec/auth/token.md) and `POST /token` ("OAuth2 Token Authentication", docs/spec/auth/oauth.md,
//! grant types `password` and `refresh_token`). Policy: alice may do everything, bob may only pull,
//! eve may log in but do nothing, anonymous callers may pull `library/*` and `public/*`; everything else is an empty grant, which the
//! registry answers with 401 `insufficient_scope`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::http::{Body, ServerThread, full};
use crate::jwt::{Signer, rfc3339_utc};
use crate::{ALICE, BOB, EVE, Pki, TOKEN_ISSUER, TOKEN_SERVICE};

/// One token the issuer gave out, for assertions.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// `None` for anonymous.
    pub user: Option<String>,
    pub scopes: Vec<String>,
    /// The granted access, as the JWT's `access` claim.
    pub access: serde_json::Value,
    /// "GET", "POST password" or "POST refresh_token".
    pub how: String,
}

/// Running token issuer; stops when dropped.
#[derive(Debug)]
pub struct TokenIssuer {
    pub port: u16,
    pub expires_in: u64,
    pub dir: PathBuf,
    state: Arc<State>,
    _server: ServerThread,
    _scratch: tempfile::TempDir,
}

#[derive(Debug)]
struct State {
    signer: Signer,
    expires_in: u64,
    log_path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    issued: Vec<IssuedToken>,
    /// refresh token -> user
    refresh_tokens: HashMap<String, String>,
    failing: Option<u16>,
}

/// Repository name prefixes anonymous callers may pull (Docker-Hub-like anonymous pull).
const PUBLIC_PREFIXES: [&str; 2] = ["library/", "public/"];

impl TokenIssuer {
    /// Starts an issuer on 127.0.0.1 (ephemeral port) with HTTPS from `pki`; tokens live `expires_in` s.
    pub fn start(pki: &Pki, expires_in: u64) -> anyhow::Result<TokenIssuer> {
        let scratch = tempfile::Builder::new()
            .prefix("token-issuer-")
            .tempdir_in(crate::scratch::process_dir()?)
            .context("creating the issuer dir")?;
        let dir = scratch.path().to_path_buf();
        let state = Arc::new(State {
            signer: Signer::load(pki)?,
            expires_in,
            log_path: dir.join("log"),
            inner: Mutex::new(Inner::default()),
        });
        let handler_state = state.clone();
        let server = ServerThread::start(
            "token-issuer",
            Some(pki.server_tls_config()?),
            Arc::new(move |request| {
                let state = handler_state.clone();
                Box::pin(async move { state.handle(request).await })
            }),
        )?;
        Ok(TokenIssuer { port: server.port, expires_in, dir, state, _server: server, _scratch: scratch })
    }

    /// `https://127.0.0.1:PORT/token`
    pub fn realm(&self) -> String {
        format!("https://127.0.0.1:{}/token", self.port)
    }

    /// `127.0.0.1:PORT`, the certs.d name of the issuer.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every token issued so far.
    pub fn issued(&self) -> Vec<IssuedToken> {
        self.state.lock().issued.clone()
    }

    /// With `Some(status)`, every `/token` request is answered with that status (to test "token server
    /// failed" handling); `None` restores normal service.
    pub fn set_failing(&self, status: Option<u16>) {
        self.state.lock().failing = status;
    }

    /// The issuer's log: one line per token issued or refused.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.state.log_path).unwrap_or_default()
    }
}

/// Who is asking, from the `Authorization` header.
enum Caller {
    Anonymous,
    User(String),
    BadCredentials,
}

fn check_password(user: &str, password: &str) -> bool {
    [ALICE, BOB, EVE]
        .iter()
        .any(|(known_user, known_password)| *known_user == user && *known_password == password)
}

/// `type:name:actions`; the name may contain ':' (`host:port/repo`), so type is the first field and
/// actions the last.
fn parse_scope(scope: &str) -> Option<(&str, &str, Vec<&str>)> {
    let (resource_type, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((resource_type, name, actions.split(',').filter(|action| !action.is_empty()).collect()))
}

fn grant(user: Option<&str>, scopes: &[String]) -> serde_json::Value {
    let mut access = Vec::new();
    for scope in scopes {
        let Some((resource_type, name, actions)) = parse_scope(scope) else { continue };
        let granted: Vec<&str> = match user {
            None if resource_type == "repository"
                && PUBLIC_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) =>
            {
                actions.into_iter().filter(|action| *action == "pull").collect()
            }
            None => Vec::new(),
            Some(user) if user == ALICE.0 => actions,
            Some(user) if user == EVE.0 => Vec::new(),
            Some(_) => actions.into_iter().filter(|action| *action == "pull").collect(),
        };
        if !granted.is_empty() {
            access.push(json!({"type": resource_type, "name": name, "actions": granted}));
        }
    }
    serde_json::Value::Array(access)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn unauthorized(message: &str) -> Response<Body> {
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"details": message, "errors": [{"code": "UNAUTHORIZED", "message": message}]}),
    );
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Basic realm=\"berth-testkit-token\""),
    );
    response
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or_default()
}

/// `scope` may repeat, and one value may hold several space-separated scopes.
fn scopes_of(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' ').filter(|scope| !scope.is_empty()).map(str::to_owned))
        .collect()
}

fn value_of<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str()).unwrap_or("")
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that matters to tests.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn log_line(&self, line: &str) {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{} {line}", rfc3339_utc(now()));
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        if request.uri().path() != "/token" {
            return json_response(StatusCode::NOT_FOUND, &json!({"details": "not found"}));
        }
        let failing = self.lock().failing;
        if let Some(status) = failing {
            self.log_line(&format!("failing on purpose with {status}"));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(
                status,
                &json!({"errors": [{"code": "UNAVAILABLE", "message": "token issuer failing on purpose"}]}),
            );
        }
        let caller = basic_caller(&request);
        match *request.method() {
            Method::GET => self.handle_get(&request, caller),
            Method::POST => {
                let body = match request.into_body().collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(_) => {
                        return json_response(
                            StatusCode::BAD_REQUEST,
                            &json!({"details": "unreadable body"}),
                        );
                    }
                };
                let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
                self.handle_post(&form)
            }
            _ => json_response(StatusCode::METHOD_NOT_ALLOWED, &json!({"details": "method not allowed"})),
        }
    }

    fn handle_get(&self, request: &Request<Incoming>, caller: Caller) -> Response<Body> {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let service = value_of(&query, "service");
        if service != TOKEN_SERVICE {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"details": format!("unknown service {service:?}")}),
            );
        }
        let user = match caller {
            Caller::Anonymous => None,
            Caller::User(user) => Some(user),
            Caller::BadCredentials => {
                self.log_line("refused GET: incorrect username or password");
                return unauthorized("incorrect username or password");
            }
        };
        let scopes = scopes_of(&query);
        let offline = value_of(&query, "offline_token") == "true";
        match self.issue(user, scopes, offline, "GET") {
            Ok(body) => json_response(StatusCode::OK, &body),
            Err(error) => {
                json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"details": format!("{error:#}")}))
            }
        }
    }

    fn handle_post(&self, form: &[(String, String)]) -> Response<Body> {
        let service = value_of(form, "service");
        if service != TOKEN_SERVICE {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_request", "details": "unknown service"}),
            );
        }
        let grant_type = value_of(form, "grant_type");
        let user = match grant_type {
            "password" => {
                let user = value_of(form, "username");
                if !check_password(user, value_of(form, "password")) {
                    self.log_line("refused POST password: incorrect username or password");
                    return unauthorized("incorrect username or password");
                }
                user.to_owned()
            }
            "refresh_token" => {
                let known = self.lock().refresh_tokens.get(value_of(form, "refresh_token")).cloned();
                let Some(user) = known else {
                    self.log_line("refused POST refresh_token: invalid refresh token");
                    return unauthorized("invalid refresh token");
                };
                user
            }
            _ => return json_response(StatusCode::BAD_REQUEST, &json!({"error": "unsupported_grant_type"})),
        };
        let scopes = scopes_of(form);
        let joined = scopes.join(" ");
        let offline = value_of(form, "access_type") == "offline";
        match self.issue(Some(user), scopes, offline, &format!("POST {grant_type}")) {
            Ok(mut body) => {
                // The OAuth2 answer names the token `access_token` only (oauth.md "Token Response Fields").
                if let Some(object) = body.as_object_mut() {
                    object.remove("token");
                    object.insert("scope".into(), json!(joined));
                }
                json_response(StatusCode::OK, &body)
            }
            Err(error) => {
                json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"details": format!("{error:#}")}))
            }
        }
    }

    fn issue(
        &self,
        user: Option<String>,
        scopes: Vec<String>,
        offline: bool,
        how: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let now = now();
        let access = grant(user.as_deref(), &scopes);
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": user.clone().unwrap_or_default(),
            "aud": TOKEN_SERVICE,
            "exp": now + self.expires_in,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": hex::encode(rand::random::<[u8; 16]>()),
            "access": access,
        });
        let token = self.signer.sign(&claims)?;
        let mut body = json!({
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": rfc3339_utc(now),
        });
        let mut inner = self.lock();
        if let (true, Some(user)) = (offline, user.as_ref()) {
            let refresh_token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
            inner.refresh_tokens.insert(refresh_token.clone(), user.clone());
            body["refresh_token"] = json!(refresh_token);
        }
        self.log_line(&format!("issued {how} token user={user:?} scopes={scopes:?} access={access}"));
        inner.issued.push(IssuedToken { user, scopes, access, how: how.to_owned() });
        Ok(body)
    }
}

fn basic_caller(request: &Request<Incoming>) -> Caller {
    let Some(header) = request.headers().get(hyper::header::AUTHORIZATION) else { return Caller::Anonymous };
    let decoded = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((user, password)) if check_password(user, password) => Caller::User(user.to_owned()),
        _ => Caller::BadCredentials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_may_hold_a_port() {
        let (resource_type, name, actions) = parse_scope("repository:127.0.0.1:5000/a/b:pull,push").unwrap();
        assert_eq!((resource_type, name), ("repository", "127.0.0.1:5000/a/b"));
        assert_eq!(actions, vec!["pull", "push"]);
        assert!(parse_scope("repository").is_none());
    }

    #[test]
    fn policy_follows_the_user() {
        let scopes =
            vec!["repository:team/app:pull,push".to_owned(), "repository:library/x:pull,push".to_owned()];
        assert_eq!(grant(Some("alice"), &scopes)[0]["actions"], json!(["pull", "push"]));
        assert_eq!(grant(Some("bob"), &scopes)[0]["actions"], json!(["pull"]));
        assert_eq!(grant(Some("eve"), &scopes), json!([]));
        assert!(check_password(EVE.0, EVE.1) && !check_password(EVE.0, ALICE.1));
        let anonymous = grant(None, &scopes);
        assert_eq!(anonymous.as_array().unwrap().len(), 1);
        assert_eq!(anonymous[0]["name"], "library/x");
        assert_eq!(anonymous[0]["actions"], json!(["pull"]));
    }
}
