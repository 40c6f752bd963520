//! The real CNCF Distribution registry (`/usr/bin/docker-registry`) as child processes on loopback.

use std::path::PathBuf;

use crate::{Pki, TokenIssuer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// HTTP, no auth.
    Plain,
    /// HTTPS + htpasswd (bcrypt): alice only.
    Basic,
    /// HTTPS, client certificate required (`http.tls.clientcas`): no handshake without one.
    Mtls,
    /// HTTPS + bearer tokens from a [`TokenIssuer`].
    Token,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Plain, Kind::Basic, Kind::Mtls, Kind::Token];
    pub fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Basic => "basic",
            Kind::Mtls => "mtls",
            Kind::Token => "token",
        }
    }
}

/// One running registry process. Killed by PID on drop; its log is kept in `dir`.
#[derive(Debug)]
pub struct Registry {
    pub kind: Kind,
    pub port: u16,
    /// Config, storage and `log` of this registry.
    pub dir: PathBuf,
    pub pid: u32,
}

impl Registry {
    /// Starts a registry of `kind`; `issuer` is required for [`Kind::Token`]. Waits until it is ready.
    pub fn start(kind: Kind, pki: &Pki, issuer: Option<&TokenIssuer>) -> anyhow::Result<Registry> {
        let _ = (kind, pki, issuer);
        todo!()
    }
    /// `127.0.0.1:PORT`: the name berth uses for this registry in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.kind == Kind::Plain { "http" } else { "https" };
        format!("{scheme}://{}", self.host())
    }
    /// The registry's log so far (for failing tests).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// All four registries and the token issuer, sharing one PKI.
#[derive(Debug)]
pub struct Testbed {
    pub pki: Pki,
    pub issuer: TokenIssuer,
    pub plain: Registry,
    pub basic: Registry,
    pub mtls: Registry,
    pub token: Registry,
}

impl Testbed {
    /// Starts everything fresh (owned by the caller, stopped on drop).
    pub fn start() -> anyhow::Result<Testbed> {
        todo!()
    }
    /// One testbed per test process, with every test image pushed to every registry. Its processes die
    /// with the test process (PR_SET_PDEATHSIG from a thread that never exits).
    pub fn shared() -> &'static Testbed {
        todo!()
    }
    pub fn registry(&self, kind: Kind) -> &Registry {
        match kind {
            Kind::Plain => &self.plain,
            Kind::Basic => &self.basic,
            Kind::Mtls => &self.mtls,
            Kind::Token => &self.token,
        }
    }
}
