//! The test PKI, generated with rcgen: a CA, a server certificate for localhost/127.0.0.1/::1, a client
//! certificate (CN=alice) and an RSA token-signing certificate, all chained to the CA.

use std::path::{Path, PathBuf};

/// Paths of the generated PEM files. Keys are written 0600.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Named `client.cert` (not `.crt`) because a `*.crt` in a certs.d dir is read as a CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub token_cert: PathBuf,
    pub token_key: PathBuf,
    /// token_cert + ca_cert: the registry's `auth.token.rootcertbundle`.
    pub token_bundle: PathBuf,
}

impl Pki {
    /// Generates a fresh PKI into `dir` (created if missing).
    pub fn generate(dir: &Path) -> anyhow::Result<Pki> {
        let _ = dir;
        todo!()
    }

    /// One PKI per test process, in a temp dir that lives as long as the process.
    pub fn shared() -> &'static Pki {
        todo!()
    }

    /// Writes `<root>/<host_port>/ca.crt` and, with `client`, `client.cert` + `client.key`: the
    /// certs.d layout Docker, Podman and berth read. Returns the host dir.
    pub fn write_certs_d(&self, root: &Path, host_port: &str, client: bool) -> anyhow::Result<PathBuf> {
        let _ = (root, host_port, client);
        todo!()
    }
}
