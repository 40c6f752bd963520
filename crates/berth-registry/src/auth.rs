//! The authentication layer around every registry request.
//!
//! Decision tree (distribution spec "Determining support" and the token auth spec):
//! 1. Ping `GET /v2/` once without credentials. 200: no authentication. 401: read `WWW-Authenticate`.
//! 2. `Basic`: send the credential, if any, to the registry's own origin only.
//! 3. `Bearer`: get a token from the realm for exactly the scope of the request (`repository:<name>:pull`):
//!    anonymous without a credential, Basic to the realm with a username/password, an OAuth2 refresh-token
//!    POST with an identity token; a stored registry token is used as the bearer token directly.
//! 4. On a 401 for a request made with a cached token, forget it, fetch a new one once and retry: this is
//!    how a short-lived token that expires in the middle of a pull is survived.
//! 5. A 401/403 that remains is classified: no credential, wrong credential, or a credential without access.
//!
//! Credentials go to a realm only over HTTPS (unless the registry itself is plain HTTP), never to a
//! link-local address, and only on the registry's own host or parent domain (DESIGN.md, "Security rules").

use base64::Engine;
use berth_auth::Credential;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};

use crate::challenge::{Challenge, parse_challenges};
use crate::error::{Error, ErrorKind};
use crate::token::{self, parse_token_response, realm_problem};
use crate::transport::{Inner, Outgoing, decode_envelope, read_limited};

/// How the registry wants to be authenticated, learned from the ping.
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    None,
    Basic,
    Bearer { realm: url::Url, service: Option<String> },
}

fn basic_header(username: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

fn www_authenticate(response: &Response) -> Vec<Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// The scope for pulling one repository (token spec, "Requesting a Token": `repository:<name>:pull`).
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

impl Inner {
    pub async fn ping_challenges(&self) -> Result<Vec<Challenge>, Error> {
        let response = self.execute_registry(Method::GET, "/v2/", HeaderMap::new(), None).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Ok(www_authenticate(&response));
        }
        if status.is_success() {
            return Ok(Vec::new());
        }
        if status == StatusCode::NOT_FOUND {
            return Err(self
                .error(ErrorKind::Http { status: 404 })
                .said("no registry API at /v2/ (is this a registry?)"));
        }
        Err(self.status_error(response).await)
    }

    /// The ping result, done once per Registry.
    pub async fn auth(&self) -> Result<&Auth, Error> {
        self.auth
            .get_or_try_init(|| async {
                let challenges = self.ping_challenges().await?;
                if challenges.is_empty() {
                    return Ok(Auth::None);
                }
                if let Some(bearer) = challenges.iter().find(|challenge| challenge.scheme == "bearer") {
                    let realm_text = bearer.param("realm").unwrap_or_default();
                    let realm = url::Url::parse(realm_text).map_err(|error| {
                        self.error(ErrorKind::TokenServer)
                            .said(format!("invalid token realm {realm_text:?}: {error}"))
                    })?;
                    if let Some(problem) = realm_problem(&realm, self.is_plain_http()) {
                        return Err(self.error(ErrorKind::InsecureRealm).said(problem));
                    }
                    return Ok(Auth::Bearer { realm, service: bearer.param("service").map(str::to_string) });
                }
                if challenges.iter().any(|challenge| challenge.scheme == "basic") {
                    return Ok(Auth::Basic);
                }
                let schemes: Vec<&str> =
                    challenges.iter().map(|challenge| challenge.scheme.as_str()).collect();
                Err(self
                    .error(ErrorKind::Http { status: 401 })
                    .said(format!("unsupported authentication scheme(s): {}", schemes.join(", "))))
            })
            .await
    }

    fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref().map(|found| &found.credential)
    }

    /// The Authorization value for a request with `scope`, and the token used if it came from the cache
    /// or the realm (so that a 401 can drop it).
    async fn authorization(
        &self,
        auth: &Auth,
        scope: Option<&str>,
    ) -> Result<(Option<String>, Option<String>), Error> {
        match (auth, self.credential()) {
            (Auth::None, _) => Ok((None, None)),
            (Auth::Basic, Some(Credential::Basic { username, password })) => {
                Ok((Some(basic_header(username, password.expose())), None))
            }
            (Auth::Basic, _) => Ok((None, None)),
            (Auth::Bearer { .. }, Some(Credential::RegistryToken(secret))) => {
                Ok((Some(format!("Bearer {}", secret.expose())), None))
            }
            (Auth::Bearer { realm, service }, _) => {
                let key = scope.unwrap_or("");
                let value = match self.tokens.get(key) {
                    Some(value) => value,
                    None => {
                        let fetched = self.fetch_token(realm, service.as_deref(), scope).await?;
                        let value = fetched.value.clone();
                        self.tokens.put(key, fetched);
                        value
                    }
                };
                Ok((Some(format!("Bearer {value}")), Some(value)))
            }
        }
    }

    /// Token request (token spec "Requesting a Token"; OAuth2 variant for identity tokens). Never follows
    /// redirects: a realm that redirects is not trusted with credentials.
    pub async fn fetch_token(
        &self,
        realm: &url::Url,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<token::Token, Error> {
        let credential = self.credential();
        let realm_host = match (realm.host_str(), realm.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        };
        if credential.is_some() && !token::realm_may_receive_credentials(&realm_host, &self.api_host) {
            return Err(self.error(ErrorKind::InsecureRealm).said(format!(
                "the token realm {realm_host} is not part of {}: berth does not send the credential there",
                self.api_host
            )));
        }
        let mut url = realm.clone();
        let mut outgoing = Outgoing {
            method: Method::GET,
            url: url.clone(),
            headers: HeaderMap::new(),
            authorization: None,
            form: None,
            follow_redirects: false,
            client: self.client_for(realm).await?,
        };
        match credential {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form = vec![
                    ("grant_type".to_string(), "refresh_token".to_string()),
                    ("refresh_token".to_string(), token.expose().to_string()),
                    ("client_id".to_string(), "berth".to_string()),
                ];
                if let Some(service) = service {
                    form.push(("service".to_string(), service.to_string()));
                }
                if let Some(scope) = scope {
                    form.push(("scope".to_string(), scope.to_string()));
                }
                outgoing.method = Method::POST;
                outgoing.form = Some(form);
            }
            other => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    if let Some(scope) = scope {
                        // Several scopes go as several `scope` parameters.
                        for one in scope.split(' ').filter(|one| !one.is_empty()) {
                            query.append_pair("scope", one);
                        }
                    }
                }
                if url.query() == Some("") {
                    url.set_query(None);
                }
                outgoing.url = url;
                if let Some(Credential::Basic { username, password }) = other {
                    outgoing.authorization = Some(basic_header(username, password.expose()));
                }
            }
        }
        let realm_shown = token::redact_url(realm);
        let response = match self.execute(outgoing).await {
            Ok(response) => response,
            Err(error) if matches!(error.kind(), ErrorKind::Http { .. } | ErrorKind::Network) => {
                return Err(self.error(ErrorKind::TokenServer).said(format!("{realm_shown}: {error}")));
            }
            Err(error) => return Err(error),
        };
        let status = response.status();
        let body = read_limited(response, 1024 * 1024).await;
        if status.is_success() {
            return parse_token_response(&body, std::time::Instant::now()).ok_or_else(|| {
                self.error(ErrorKind::TokenServer).said(format!("{realm_shown} answered without a token"))
            });
        }
        let said = decode_envelope(&body).1;
        let said = if said.is_empty() { format!("{realm_shown} answered {status}") } else { said };
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let kind =
                if credential.is_some() { ErrorKind::WrongCredentials } else { ErrorKind::NoCredentials };
            return Err(self.error(kind).said(said));
        }
        Err(self.error(ErrorKind::TokenServer).said(format!("{realm_shown} answered {status}: {said}")))
    }

    /// Sends an authenticated request to the registry. Returns any response but 401/403, which become errors.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        scope: Option<&str>,
    ) -> Result<Response, Error> {
        let auth = self.auth().await?.clone();
        let mut refreshed = false;
        loop {
            let (authorization, token_used) = self.authorization(&auth, scope).await?;
            let response =
                self.execute_registry(method.clone(), path, headers.clone(), authorization).await?;
            match response.status() {
                StatusCode::UNAUTHORIZED => {
                    if let Some(value) = token_used
                        && !refreshed
                    {
                        tracing::debug!(registry = %self.domain, scope = ?scope, "token refused; fetching a new one");
                        self.tokens.forget(scope.unwrap_or(""), &value);
                        refreshed = true;
                        continue;
                    }
                    return Err(self.unauthorized(&auth, response).await);
                }
                StatusCode::FORBIDDEN => return Err(self.status_error(response).await),
                _ => return Ok(response),
            }
        }
    }

    async fn unauthorized(&self, auth: &Auth, response: Response) -> Error {
        let insufficient_scope = www_authenticate(&response)
            .iter()
            .any(|challenge| challenge.param("error") == Some("insufficient_scope"));
        let said = decode_envelope(&read_limited(response, 64 * 1024).await).1;
        let kind = match (self.credential(), auth) {
            (None, _) => ErrorKind::NoCredentials,
            (Some(Credential::Basic { .. }), Auth::Basic) => ErrorKind::WrongCredentials,
            (Some(Credential::RegistryToken(_)), _) if !insufficient_scope => ErrorKind::WrongCredentials,
            (Some(_), _) => ErrorKind::Denied,
        };
        self.error(kind).said(said)
    }

    pub async fn check_login(&self) -> Result<(), Error> {
        match self.auth().await? {
            Auth::None => Ok(()),
            Auth::Basic => {
                let response = self.send(Method::GET, "/v2/", HeaderMap::new(), None).await?;
                if response.status().is_success() { Ok(()) } else { Err(self.status_error(response).await) }
            }
            Auth::Bearer { realm, service } => {
                if self.credential().is_none() {
                    return Err(self.error(ErrorKind::NoCredentials).said("no credential to check"));
                }
                let (realm, service) = (realm.clone(), service.clone());
                if !matches!(self.credential(), Some(Credential::RegistryToken(_))) {
                    let fetched = self.fetch_token(&realm, service.as_deref(), None).await?;
                    self.tokens.put("", fetched);
                }
                let response =
                    self.send(Method::GET, "/v2/", HeaderMap::new(), None).await.map_err(|error| {
                        if *error.kind() == ErrorKind::Denied {
                            self.error(ErrorKind::WrongCredentials).said(error.to_string())
                        } else {
                            error
                        }
                    })?;
                if response.status().is_success() { Ok(()) } else { Err(self.status_error(response).await) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_encoding() {
        assert_eq!(basic_header("alice", "wonderland"), "Basic YWxpY2U6d29uZGVybGFuZA==");
    }

    #[test]
    fn scope_names_the_repository_and_pull_only() {
        assert_eq!(pull_scope("library/busybox"), "repository:library/busybox:pull");
    }
}
