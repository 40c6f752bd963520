//! A Docker-protocol token issuer (the protocol of Docker Hub's auth service), over HTTPS on loopback.

use std::path::PathBuf;

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
}

impl TokenIssuer {
    /// `https://127.0.0.1:PORT/token`
    pub fn realm(&self) -> String {
        format!("https://127.0.0.1:{}/token", self.port)
    }
    /// Every token issued so far.
    pub fn issued(&self) -> Vec<IssuedToken> {
        todo!()
    }
}
