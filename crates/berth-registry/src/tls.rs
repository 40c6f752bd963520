//! Per-registry TLS: certs.d discovery and the rustls client configuration built from it.
//!
//! Layout (the containers-certs.d(5) and Docker convention): `<root>/<host[:port]>/` holds `*.crt` CA
//! certificates and `<name>.cert` + `<name>.key` client identities. Misnamed files are the most common
//! reason a private CA "does not work", so every file we skip is reported by name as a warning instead of
//! being silently ignored.

use std::fs;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, ErrorKind};

/// The system CA bundle on Debian-family and most other distributions.
const SYSTEM_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// What certs.d holds for one registry host.
#[derive(Clone, Debug, Default)]
pub(crate) struct CertsDir {
    /// Every directory looked at (existing or not), in order: the first is where a user should put a CA.
    pub searched: Vec<PathBuf>,
    pub ca_files: Vec<PathBuf>,
    pub identity: Option<(PathBuf, PathBuf)>,
    pub warnings: Vec<String>,
}

/// Finds the certs.d directories and files for `host` ("h" or "h:p"). `cert_dir` replaces the search.
pub(crate) fn discover(host: &str, cert_roots: &[PathBuf], cert_dir: Option<&Path>) -> CertsDir {
    let mut found = CertsDir::default();
    if let Some(dir) = cert_dir {
        found.searched.push(dir.to_path_buf());
        scan_dir(dir, &mut found);
        return found;
    }
    let host_without_port = host_without_port(host);
    for root in cert_roots {
        let exact = root.join(host);
        found.searched.push(exact.clone());
        if exact.is_dir() {
            scan_dir(&exact, &mut found);
        } else if host_without_port != host {
            let bare = root.join(host_without_port);
            if bare.is_dir() {
                found.searched.push(bare.clone());
                scan_dir(&bare, &mut found);
            }
        }
        warn_misspelled_siblings(root, host, &mut found);
    }
    found
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // "[::1]:5000" -> "[::1]"
        return rest.find(']').map_or(host, |end| &host[..end + 2]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) && !name.contains(':') => name,
        _ => host,
    }
}

fn warn_misspelled_siblings(root: &Path, host: &str, found: &mut CertsDir) {
    let Some(parent) = root.parent() else { return };
    if root.file_name().is_none_or(|name| name != "certs.d") {
        return;
    }
    for misspelling in ["cert.d", "certs", "cert"] {
        let candidate = parent.join(misspelling).join(host);
        if candidate.is_dir() {
            found.warnings.push(format!(
                "ignored {}: certificates for {host} belong in {}",
                candidate.display(),
                root.join(host).display()
            ));
        }
    }
}

fn scan_dir(dir: &Path, found: &mut CertsDir) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file() || kind.is_symlink()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    let has = |name: &str| names.iter().any(|candidate| candidate == name);
    for name in &names {
        let path = dir.join(name);
        if let Some(stem) = name.strip_suffix(".crt") {
            if has(&format!("{stem}.key")) {
                found.warnings.push(format!(
                    "ignored {}: a client certificate must be named {stem}.cert (a .crt file is read as a CA)",
                    path.display()
                ));
            } else {
                found.ca_files.push(path);
            }
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !has(&key) {
                found.warnings.push(format!("ignored {}: the client key {key} is missing", path.display()));
            } else if found.identity.is_none() {
                found.identity = Some((path, dir.join(key)));
            } else {
                found
                    .warnings
                    .push(format!("ignored {}: a client certificate was already found", path.display()));
            }
        } else if let Some(stem) = name.strip_suffix(".key")
            && !has(&format!("{stem}.cert"))
            && !has(&format!("{stem}.crt"))
        {
            found
                .warnings
                .push(format!("ignored {}: the client certificate {stem}.cert is missing", path.display()));
        }
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = fs::File::open(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let certificates = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("cannot parse {}: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let file = fs::File::open(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|error| format!("cannot parse {}: {error}", path.display()))?
        .ok_or_else(|| format!("{} holds no PEM private key", path.display()))
}

/// Builds the rustls configuration for one registry: system roots plus certs.d CAs, and the client
/// identity when one was found. Unusable CA files become warnings; an unusable client identity is an error,
/// because pulling without it would fail later with a far less clear message.
pub(crate) fn client_config(registry: &str, certs: &mut CertsDir) -> Result<ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|path| path.is_file())
        && let Ok(certificates) = read_certificates(bundle)
    {
        roots.add_parsable_certificates(certificates);
    }
    for ca_file in &certs.ca_files {
        match read_certificates(ca_file) {
            Ok(certificates) => {
                let (_, ignored) = roots.add_parsable_certificates(certificates);
                if ignored > 0 {
                    certs
                        .warnings
                        .push(format!("ignored {ignored} unusable certificate(s) in {}", ca_file.display()));
                }
            }
            Err(message) => certs.warnings.push(format!("ignored CA file: {message}")),
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::new(ErrorKind::Tls, registry).said(error.to_string()))?
        .with_root_certificates(roots);
    let mut config = match &certs.identity {
        Some((cert_path, key_path)) => {
            let chain = read_certificates(cert_path)
                .map_err(|message| Error::new(ErrorKind::Tls, registry).said(message))?;
            let key = read_private_key(key_path)
                .map_err(|message| Error::new(ErrorKind::Tls, registry).said(message))?;
            builder.with_client_auth_cert(chain, key).map_err(|error| {
                Error::new(ErrorKind::Tls, registry).said(format!(
                    "client identity {} / {}: {error}",
                    cert_path.display(),
                    key_path.display()
                ))
            })?
        }
        None => builder.with_no_client_auth(),
    };
    // HTTP/1.1 only: one connection per concurrent blob keeps stall detection and Range resume per stream.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Why a TLS connection to `api_host` fails, learnt on a connection of its own.
///
/// With TLS 1.3 a server that wants a client certificate says so only after the client has finished its
/// half of the handshake. The HTTP client may then lose the server's alert in a race with its first request
/// and report only "connection was not ready". This connection sends one request and reads the answer, so
/// the alert, if there is one, is kept. `None` when the connection works or fails without a TLS error.
pub(crate) async fn probe(api_host: &str, config: &ClientConfig, limit: Duration) -> Option<rustls::Error> {
    let url = url::Url::parse(&format!("https://{api_host}/")).ok()?;
    let port = url.port_or_known_default()?;
    let (address, name) = match url.host()? {
        url::Host::Domain(domain) => (domain.to_string(), ServerName::try_from(domain.to_string()).ok()?),
        url::Host::Ipv4(ip) => (ip.to_string(), ServerName::IpAddress(IpAddr::V4(ip).into())),
        url::Host::Ipv6(ip) => (ip.to_string(), ServerName::IpAddress(IpAddr::V6(ip).into())),
    };
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((address.as_str(), port)).await?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config.clone())).connect(name, tcp).await?;
        let request = format!("GET /v2/ HTTP/1.1\r\nHost: {api_host}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        tls.flush().await?;
        // The answer is not wanted, only whether reading it fails; a bounded read is enough.
        let mut answer = [0u8; 1024];
        tls.read(&mut answer).await.map(|_| ())
    };
    let failure = tokio::time::timeout(limit, attempt).await.ok()?.err()?;
    failure.get_ref()?.downcast_ref::<rustls::Error>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), b"x").unwrap();
    }

    #[test]
    fn finds_cas_and_identity_in_host_port_dir() {
        let root = tempfile::tempdir().unwrap();
        let certs_d = root.path().join("certs.d");
        let host_dir = certs_d.join("reg.test:5000");
        fs::create_dir_all(&host_dir).unwrap();
        for name in ["ca.crt", "other.crt", "client.cert", "client.key"] {
            touch(&host_dir, name);
        }
        let found = discover("reg.test:5000", std::slice::from_ref(&certs_d), None);
        assert_eq!(found.ca_files, vec![host_dir.join("ca.crt"), host_dir.join("other.crt")]);
        assert_eq!(found.identity, Some((host_dir.join("client.cert"), host_dir.join("client.key"))));
        assert!(found.warnings.is_empty(), "{:?}", found.warnings);
        assert_eq!(found.searched, vec![host_dir]);
    }

    #[test]
    fn falls_back_to_host_without_port_only_when_port_dir_is_missing() {
        let root = tempfile::tempdir().unwrap();
        let bare = root.path().join("reg.test");
        fs::create_dir_all(&bare).unwrap();
        touch(&bare, "ca.crt");
        let found = discover("reg.test:5000", &[root.path().to_path_buf()], None);
        assert_eq!(found.ca_files, vec![bare.join("ca.crt")]);
        assert_eq!(found.searched[0], root.path().join("reg.test:5000"));

        fs::create_dir_all(root.path().join("reg.test:5000")).unwrap();
        let found = discover("reg.test:5000", &[root.path().to_path_buf()], None);
        assert!(found.ca_files.is_empty());
    }

    #[test]
    fn warns_about_misnamed_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("h");
        fs::create_dir_all(&dir).unwrap();
        for name in ["client.crt", "client.key", "lonely.cert", "orphan.key"] {
            touch(&dir, name);
        }
        let found = discover("h", &[root.path().to_path_buf()], None);
        assert!(found.ca_files.is_empty());
        assert!(found.identity.is_none());
        let warnings = found.warnings.join("\n");
        assert!(
            warnings.contains("client.crt: a client certificate must be named client.cert"),
            "{warnings}"
        );
        assert!(warnings.contains("lonely.cert: the client key lonely.key is missing"), "{warnings}");
        assert!(warnings.contains("orphan.key: the client certificate orphan.cert is missing"), "{warnings}");
        assert_eq!(found.warnings.len(), 3);
    }

    #[test]
    fn warns_about_misspelled_certs_d() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("cert.d/h:1")).unwrap();
        let certs_d = root.path().join("certs.d");
        let found = discover("h:1", &[certs_d], None);
        assert_eq!(found.warnings.len(), 1);
        assert!(found.warnings[0].contains("cert.d/h:1"), "{:?}", found.warnings);
    }

    #[test]
    fn cert_dir_replaces_search() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "ca.crt");
        let found = discover("h", &[PathBuf::from("/nonexistent")], Some(root.path()));
        assert_eq!(found.searched, vec![root.path().to_path_buf()]);
        assert_eq!(found.ca_files, vec![root.path().join("ca.crt")]);
    }

    #[test]
    fn host_without_port_handles_ipv6() {
        assert_eq!(host_without_port("reg:5000"), "reg");
        assert_eq!(host_without_port("reg"), "reg");
        assert_eq!(host_without_port("[::1]:5000"), "[::1]");
    }

    #[test]
    fn unusable_ca_file_is_a_warning_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "ca.crt");
        let mut found = discover("h", &[], Some(root.path()));
        let config = client_config("h", &mut found);
        assert!(config.is_ok());
        assert!(found.warnings.iter().any(|warning| warning.contains("ca.crt")), "{:?}", found.warnings);
    }

    /// The probe keeps what the HTTP client can lose: the real mTLS registry's alert for a missing client
    /// certificate, and nothing when the certificate is there.
    #[test]
    fn probe_names_the_missing_client_certificate() {
        let testbed = berth_testkit::Testbed::shared();
        let host = testbed.mtls.host();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for with_identity in [false, true] {
            let root = tempfile::tempdir().unwrap();
            testbed.pki.write_certs_d(root.path(), &host, with_identity).unwrap();
            let mut found = discover(&host, &[root.path().to_path_buf()], None);
            let config = client_config(&host, &mut found).unwrap();
            let failure = runtime.block_on(probe(&host, &config, Duration::from_secs(10)));
            if with_identity {
                assert_eq!(failure, None);
            } else {
                // Go's TLS stack answers a missing certificate with bad_certificate, others with
                // certificate_required; both must read as "required" when none was sent.
                let failure = failure.expect("the probe sees the alert");
                assert!(matches!(failure, rustls::Error::AlertReceived(_)), "{failure:?}");
                assert_eq!(
                    crate::classify::classify_tls(&failure, false),
                    crate::error::ErrorKind::ClientCertRequired
                );
            }
        }
    }
}
