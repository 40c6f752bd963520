//! The four registries and the token issuer together, as tests use them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine;

use crate::registry::{Kind, Registry};
use crate::{Pki, TOKEN_SERVICE, TokenIssuer};

/// Lifetime of the testbed issuer's tokens, like Docker Hub's.
pub const DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 300;

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
    /// Starts everything fresh (owned by the caller, stopped on drop), with the process-wide PKI.
    pub fn start() -> anyhow::Result<Testbed> {
        Testbed::start_with(Pki::shared().clone(), None)
    }

    /// Starts everything with a new PKI in `state/pki` and registries in `state/<kind>` (kept on drop).
    pub fn start_in(state: &Path) -> anyhow::Result<Testbed> {
        let pki = Pki::generate(&state.join("pki"))?;
        Testbed::start_with(pki, Some(state))
    }

    fn start_with(pki: Pki, state: Option<&Path>) -> anyhow::Result<Testbed> {
        // Tests build plain reqwest clients next to a testbed; reqwest brings no TLS provider of its own.
        crate::pki::install_default_crypto_provider();
        let issuer = TokenIssuer::start(&pki, DEFAULT_TOKEN_LIFETIME_SECONDS)?;
        let start = |kind: Kind| {
            let issuer = (kind == Kind::Token).then_some(&issuer);
            match state {
                Some(state) => Registry::start_in(kind, &pki, issuer, &state.join(kind.name())),
                None => Registry::start(kind, &pki, issuer),
            }
        };
        // In parallel: each registry spends most of its start-up waiting.
        let (plain, basic, mtls, token) = std::thread::scope(|scope| {
            let plain = scope.spawn(|| start(Kind::Plain));
            let basic = scope.spawn(|| start(Kind::Basic));
            let mtls = scope.spawn(|| start(Kind::Mtls));
            let token = start(Kind::Token);
            let join = |handle: std::thread::ScopedJoinHandle<'_, anyhow::Result<Registry>>| {
                handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a registry start thread panicked")))
            };
            (join(plain), join(basic), join(mtls), token)
        });
        Ok(Testbed { plain: plain?, basic: basic?, mtls: mtls?, token: token?, pki, issuer })
    }

    /// One testbed per test process, with every test image pushed to every registry. Its processes die
    /// with the test process (PR_SET_PDEATHSIG from a thread that never exits).
    pub fn shared() -> &'static Testbed {
        static SHARED: OnceLock<Result<Testbed, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| {
            let started = Instant::now();
            let testbed = Testbed::start().map_err(|error| format!("cannot start the testbed: {error:#}"))?;
            let ready = started.elapsed();
            if let Err(error) = crate::images::seed(&testbed) {
                return Err(format!("cannot seed the test images: {error:#}\n{}", testbed.log_tails(20)));
            }
            tracing_line(&format!("testbed ready in {ready:?}, seeded in {:?}", started.elapsed() - ready));
            Ok(testbed)
        });
        match shared {
            Ok(testbed) => testbed,
            Err(message) => panic!("berth-testkit: {message}"),
        }
    }

    pub fn registry(&self, kind: Kind) -> &Registry {
        match kind {
            Kind::Plain => &self.plain,
            Kind::Basic => &self.basic,
            Kind::Mtls => &self.mtls,
            Kind::Token => &self.token,
        }
    }

    /// The last `lines` log lines of every registry, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for kind in Kind::ALL {
            let registry = self.registry(kind);
            out.push_str(&format!(
                "--- {} registry ({}) log tail:\n{}\n",
                kind.name(),
                registry.host(),
                registry.log_tail(lines)
            ));
        }
        out.push_str(&format!("--- token issuer log:\n{}", self.issuer.log()));
        out
    }

    /// Writes a certs.d tree under `root` for the basic, mTLS and token registries and the issuer
    /// (`ca.crt` each; the client pair only for mTLS). Returns `root`.
    pub fn certs_d(&self, root: &Path) -> anyhow::Result<PathBuf> {
        for registry in [&self.basic, &self.token] {
            self.pki.write_certs_d(root, &registry.host(), false)?;
        }
        self.pki.write_certs_d(root, &self.mtls.host(), true)?;
        self.pki.write_certs_d(root, &self.issuer.host(), false)?;
        Ok(root.to_path_buf())
    }

    /// A token from the issuer for `scope` (e.g. `repository:testbed/busybox:pull`), as `user` or anonymous.
    pub async fn token_for(&self, user: Option<(&str, &str)>, scope: &str) -> anyhow::Result<String> {
        let client = crate::http::reqwest_builder(&self.pki, false)?.build()?;
        let url =
            url::Url::parse_with_params(&self.issuer.realm(), [("service", TOKEN_SERVICE), ("scope", scope)])
                .context("token URL")?;
        let mut request = client.get(url);
        if let Some((user, password)) = user {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.with_context(|| format!("GET {}", self.issuer.realm()))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.context("token response body")?;
        if !status.is_success() {
            bail!("the token issuer answered {status}: {body}");
        }
        body["token"].as_str().map(str::to_owned).context("no token in the issuer's answer")
    }
}

/// The claims of a JWT, without verifying it (for assertions on what the issuer granted).
pub fn jwt_claims(token: &str) -> anyhow::Result<serde_json::Value> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).context("JWT payload base64")?;
    serde_json::from_slice(&bytes).context("JWT payload JSON")
}

/// Start-up timing goes to stderr, which the test harness captures unless a test fails.
fn tracing_line(line: &str) {
    eprintln!("berth-testkit: {line}");
}
