//! The real CNCF Distribution registry (`/usr/bin/docker-registry`) as child processes on loopback.
//!
//! berth is tested against the server every client meets in practice, not a mock: its challenges,
//! error bodies, redirects and HTTP/2 over TLS are what matter. Configuration follows Distribution's
//! docs/configuration.md (`http.tls.clientcas`, `auth.htpasswd`, `auth.token`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{ALICE, Pki, TOKEN_ISSUER, TOKEN_SERVICE, TokenIssuer};

/// Kept here too: the testbed was first declared in this module.
pub use crate::testbed::Testbed;

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

/// The realm the basic registry names in its `WWW-Authenticate: Basic realm="…"` challenge.
pub const BASIC_REALM: &str = "berth-testkit-basic";

/// Where the registry binary is; `BERTH_TESTKIT_REGISTRY_BIN` overrides it.
fn registry_binary() -> PathBuf {
    std::env::var_os("BERTH_TESTKIT_REGISTRY_BIN")
        .map_or_else(|| "/usr/bin/docker-registry".into(), PathBuf::from)
}

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 4;

/// One running registry process. Killed by PID on drop; its log is kept in `dir`.
#[derive(Debug)]
pub struct Registry {
    pub kind: Kind,
    pub port: u16,
    /// Config, storage and `log` of this registry.
    pub dir: PathBuf,
    pub pid: u32,
    child: Option<Child>,
    /// Removed on drop when the registry owns a temp dir; `None` for a caller-chosen dir.
    _scratch: Option<tempfile::TempDir>,
}

impl Registry {
    /// Starts a registry of `kind`; `issuer` is required for [`Kind::Token`]. Waits until it is ready.
    pub fn start(kind: Kind, pki: &Pki, issuer: Option<&TokenIssuer>) -> anyhow::Result<Registry> {
        let scratch = tempfile::Builder::new()
            .prefix(&format!("registry-{}-", kind.name()))
            .tempdir_in(crate::scratch::process_dir()?)
            .context("creating a registry dir")?;
        let mut registry = Registry::start_in(kind, pki, issuer, scratch.path())?;
        registry._scratch = Some(scratch);
        Ok(registry)
    }

    /// A token registry whose challenges name `realm` instead of the issuer's own URL, e.g. a plain-HTTP
    /// proxy in front of `issuer` (`http://127.0.0.1:PORT/token`): for testing what a client does with an
    /// unsafe realm. Tokens are still verified against `pki`'s token certificate.
    pub fn start_with_realm(pki: &Pki, issuer: &TokenIssuer, realm: &str) -> anyhow::Result<Registry> {
        let scratch = tempfile::Builder::new()
            .prefix("registry-token-realm-")
            .tempdir_in(crate::scratch::process_dir()?)
            .context("creating a registry dir")?;
        let mut registry =
            Registry::start_configured(Kind::Token, pki, Some(issuer), scratch.path(), Some(realm))?;
        registry._scratch = Some(scratch);
        Ok(registry)
    }

    /// Like [`Registry::start`], with config, storage and log in `dir` (created; kept after drop).
    pub fn start_in(
        kind: Kind,
        pki: &Pki,
        issuer: Option<&TokenIssuer>,
        dir: &Path,
    ) -> anyhow::Result<Registry> {
        Registry::start_configured(kind, pki, issuer, dir, None)
    }

    /// `realm` replaces the issuer's URL in a token registry's configuration.
    fn start_configured(
        kind: Kind,
        pki: &Pki,
        issuer: Option<&TokenIssuer>,
        dir: &Path,
        realm: Option<&str>,
    ) -> anyhow::Result<Registry> {
        if kind == Kind::Token && issuer.is_none() {
            bail!("a token registry needs a token issuer");
        }
        fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}", dir.display()))?;
        if kind == Kind::Basic {
            let hash = bcrypt::hash(ALICE.1, 6).context("bcrypt")?;
            fs::write(dir.join("htpasswd"), format!("{}:{hash}\n", ALICE.0)).context("writing htpasswd")?;
        }
        let mut last_error = None;
        // A free port can be taken between releasing it and the registry binding it: retry a few times.
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            fs::write(dir.join("config.yml"), config_yaml(kind, pki, issuer, realm, dir, port))
                .with_context(|| format!("writing {}", dir.join("config.yml").display()))?;
            let mut registry =
                Registry { kind, port, dir: dir.to_path_buf(), pid: 0, child: None, _scratch: None };
            let child = registry.spawn()?;
            registry.pid = child.id();
            registry.child = Some(child);
            match registry.wait_ready(pki) {
                Ok(()) => return Ok(registry),
                Err(error) => {
                    let log = registry.log();
                    drop(registry);
                    if !log.contains("address already in use") {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("registry {} did not start", kind.name())))
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        let log_path = self.dir.join("log");
        let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(registry_binary());
        command
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            // Distribution maps every REGISTRY_* variable onto its configuration and refuses to start on
            // unknown ones (e.g. podman's REGISTRY_AUTH_FILE), so the child gets a clean environment.
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file")?)
            .stderr(log);
        crate::spawn::spawn_tied(command).with_context(|| {
            format!("starting {} for the {} registry", registry_binary().display(), self.kind.name())
        })
    }

    /// Bounded wait: TCP connect, then one HTTP answer to `GET /v2/` (any status: 200 or 401).
    fn wait_ready(&mut self, pki: &Pki) -> anyhow::Result<()> {
        let started = Instant::now();
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let tls = (self.kind != Kind::Plain).then_some(pki);
        let mut last_problem = String::from("no connection yet");
        while started.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "the {} registry exited with {status} while starting on port {}; log tail:\n{}",
                    self.kind.name(),
                    self.port,
                    self.log_tail(20)
                );
            }
            if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                match crate::http::probe_v2(self.port, tls) {
                    Ok(_) => {
                        // The port might belong to someone else if our process failed to bind it.
                        std::thread::sleep(Duration::from_millis(20));
                        if let Some(child) = self.child.as_mut()
                            && let Ok(Some(status)) = child.try_wait()
                        {
                            bail!(
                                "the {} registry exited with {status}; log tail:\n{}",
                                self.kind.name(),
                                self.log_tail(20)
                            );
                        }
                        return Ok(());
                    }
                    Err(error) => last_problem = format!("{error:#}"),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the {} registry was not ready on port {} after {:?} ({last_problem}); log tail:\n{}",
            self.kind.name(),
            self.port,
            READY_TIMEOUT,
            self.log_tail(20)
        )
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
    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SAFETY: plain kill(2) on the PID of our own child, which has not been reaped yet (try_wait
        // above saw it running), so the PID cannot have been reused.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr().context("local address")?.port())
}

/// Distribution's config.yml for `kind` (docs/configuration.md).
fn config_yaml(
    kind: Kind,
    pki: &Pki,
    issuer: Option<&TokenIssuer>,
    realm: Option<&str>,
    dir: &Path,
    port: u16,
) -> String {
    let name = kind.name();
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  fields:\n    service: registry-{name}\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
         cache:\n    blobdescriptor: inmemory\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: berth-testkit-{name}-secret\n  \
         headers:\n    X-Content-Type-Options: [nosniff]\n",
        data = dir.join("data").display(),
    );
    // Writing to a String cannot fail.
    if kind != Kind::Plain {
        let _ = write!(
            yaml,
            "  tls:\n    certificate: {}\n    key: {}\n",
            pki.server_cert.display(),
            pki.server_key.display()
        );
    }
    match kind {
        Kind::Plain => {}
        Kind::Mtls => {
            let _ = write!(yaml, "    clientcas:\n      - {}\n", pki.ca_cert.display());
        }
        Kind::Basic => {
            let _ = write!(
                yaml,
                "auth:\n  htpasswd:\n    realm: {BASIC_REALM}\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        Kind::Token => {
            let realm =
                realm.map(str::to_owned).or_else(|| issuer.map(TokenIssuer::realm)).unwrap_or_default();
            let _ = write!(
                yaml,
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    \
                 rootcertbundle: {}\n",
                pki.token_bundle.display()
            );
        }
    }
    yaml
}
