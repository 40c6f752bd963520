//! The test PKI, generated with rcgen: a CA, a server certificate for localhost/127.0.0.1/::1, a client
//! certificate (CN=alice) and an RSA token-signing certificate, all chained to the CA.
//!
//! It exists so that every TLS path berth has (CA trust via certs.d, mTLS client pairs, signed registry
//! tokens) can be tested against material that is generated fresh, offline, in each test process.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SubjectPublicKeyInfo, date_time_ymd,
};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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

const ORGANIZATION: &str = "berth-testkit";

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

/// Leaf parameters shared by the server, client and token certificates.
fn leaf_params(common_name: &str, subject_alt_names: Vec<String>) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(subject_alt_names).context("certificate parameters")?;
    params.distinguished_name = distinguished_name(common_name);
    // Fixed, generous validity: tests must not depend on the clock beyond "now is in 2024..2099".
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl Pki {
    /// Generates a fresh PKI into `dir` (created if missing).
    pub fn generate(dir: &Path) -> anyhow::Result<Pki> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki = Pki::paths(dir);

        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
        ca_params.distinguished_name = distinguished_name("berth-testkit CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.not_before = date_time_ymd(2024, 1, 1);
        ca_params.not_after = date_time_ymd(2099, 12, 31);
        let ca_cert = ca_params.self_signed(&ca_key).context("self-signing the CA")?;
        write_file(&pki.ca_cert, ca_cert.pem().as_bytes(), 0o644)?;
        write_file(&pki.ca_key, ca_key.serialize_pem().as_bytes(), 0o600)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().context("generating the server key")?;
        let mut server_params =
            leaf_params("localhost", vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])?;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer).context("signing the server cert")?;
        write_file(&pki.server_cert, server_cert.pem().as_bytes(), 0o644)?;
        write_file(&pki.server_key, server_key.serialize_pem().as_bytes(), 0o600)?;

        let client_key = KeyPair::generate().context("generating the client key")?;
        let mut client_params = leaf_params(crate::ALICE.0, Vec::new())?;
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer).context("signing the client cert")?;
        write_file(&pki.client_cert, client_cert.pem().as_bytes(), 0o644)?;
        write_file(&pki.client_key, client_key.serialize_pem().as_bytes(), 0o600)?;

        // The token key is RSA because RS256 is what Distribution and every client expect from a token
        // server; rcgen only needs its public half, the CA (ECDSA) does the signing. No extended key
        // usage: Go's chain verification then accepts it for the default ServerAuth purpose.
        let token_key =
            rsa::PrivateKey::new(&mut rand::rng(), 2048).context("generating the RSA token key")?;
        let token_key_pem = token_key.to_pkcs8_pem(LineEnding::LF).context("encoding the token key")?;
        let token_spki =
            token_key.to_public_key().to_public_key_der().context("encoding the token public key")?;
        let token_public =
            SubjectPublicKeyInfo::from_der(token_spki.as_bytes()).context("token public key")?;
        let mut token_params = leaf_params("berth-testkit token signer", Vec::new())?;
        token_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let token_cert = token_params.signed_by(&token_public, &issuer).context("signing the token cert")?;
        write_file(&pki.token_cert, token_cert.pem().as_bytes(), 0o644)?;
        write_file(&pki.token_key, token_key_pem.as_bytes(), 0o600)?;
        write_file(&pki.token_bundle, format!("{}{}", token_cert.pem(), ca_cert.pem()).as_bytes(), 0o644)?;

        Ok(pki)
    }

    fn paths(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.cert"),
            client_key: dir.join("client.key"),
            token_cert: dir.join("token.crt"),
            token_key: dir.join("token.key"),
            token_bundle: dir.join("token-bundle.crt"),
        }
    }

    /// One PKI per test process, in a temp dir that lives as long as the process.
    pub fn shared() -> &'static Pki {
        static SHARED: OnceLock<Pki> = OnceLock::new();
        SHARED.get_or_init(|| {
            let generated = crate::scratch::process_dir().and_then(|root| Pki::generate(&root.join("pki")));
            match generated {
                Ok(pki) => pki,
                Err(error) => panic!("berth-testkit: cannot generate the shared test PKI: {error:#}"),
            }
        })
    }

    /// Writes `<root>/<host_port>/ca.crt` and, with `client`, `client.cert` + `client.key`: the
    /// certs.d layout Docker, Podman and berth read. Returns the host dir.
    pub fn write_certs_d(&self, root: &Path, host_port: &str, client: bool) -> anyhow::Result<PathBuf> {
        let host_dir = root.join(host_port);
        fs::create_dir_all(&host_dir).with_context(|| format!("creating {}", host_dir.display()))?;
        let copy = |from: &Path, name: &str, mode: u32| -> anyhow::Result<()> {
            let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
            write_file(&host_dir.join(name), &bytes, mode)
        };
        copy(&self.ca_cert, "ca.crt", 0o644)?;
        if client {
            copy(&self.client_cert, "client.cert", 0o644)?;
            copy(&self.client_key, "client.key", 0o600)?;
        }
        Ok(host_dir)
    }

    /// Issues another server certificate from this PKI's CA naming exactly `names` (DNS names or IP
    /// addresses), written to `dir/server.crt` and `dir/server.key`. It exists for tests that need a
    /// certificate a client trusts but that does not name the host it dialled (`["wrong.example"]`).
    pub fn issue_server_cert(&self, dir: &Path, names: &[&str]) -> anyhow::Result<(PathBuf, PathBuf)> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_key_pem =
            fs::read_to_string(&self.ca_key).with_context(|| format!("reading {}", self.ca_key.display()))?;
        let ca_cert_pem = fs::read_to_string(&self.ca_cert)
            .with_context(|| format!("reading {}", self.ca_cert.display()))?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("parsing the CA key")?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).context("loading the CA")?;
        let key = KeyPair::generate().context("generating a server key")?;
        let common_name = names.first().copied().unwrap_or("berth-testkit server");
        let mut params = leaf_params(common_name, names.iter().map(|name| name.to_string()).collect())?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer).context("signing the server cert")?;
        let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
        write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        Ok((cert_path, key_path))
    }

    /// The CA and every certificate as DER, in PEM file order.
    pub fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificates in {}", path.display()))
    }

    /// The first private key of a PEM file.
    pub fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
        let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        rustls_pemfile::private_key(&mut pem.as_slice())
            .with_context(|| format!("parsing {}", path.display()))?
            .with_context(|| format!("no private key in {}", path.display()))
    }

    /// A rustls root store holding only the test CA.
    pub fn root_store(&self) -> anyhow::Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in Pki::certificates(&self.ca_cert)? {
            roots.add(certificate).context("adding the test CA to a root store")?;
        }
        Ok(roots)
    }

    /// A TLS client configuration trusting the test CA, with the alice client pair when asked; ALPN
    /// offers h2 and http/1.1 like real clients do.
    pub fn client_tls_config(&self, with_client_cert: bool) -> anyhow::Result<rustls::ClientConfig> {
        let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(self.root_store()?);
        let mut config = if with_client_cert {
            builder
                .with_client_auth_cert(
                    Pki::certificates(&self.client_cert)?,
                    Pki::private_key(&self.client_key)?,
                )
                .context("loading the client certificate")?
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// A TLS server configuration presenting `cert` and `key` (e.g. from [`Pki::issue_server_cert`]).
    pub fn server_tls_config_from(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(Pki::certificates(cert)?, Pki::private_key(key)?)
            .with_context(|| format!("loading the server certificate {}", cert.display()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// A TLS server configuration presenting the test server certificate (ALPN h2 and http/1.1).
    pub fn server_tls_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(Pki::certificates(&self.server_cert)?, Pki::private_key(&self.server_key)?)
            .context("loading the server certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Explicit provider: the process may link more than one rustls backend, and then rustls refuses to
/// pick a default.
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide rustls provider, for HTTP clients built without a preconfigured TLS
/// config (reqwest is built without a provider of its own). Installing twice is harmless.
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_material_loads_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for key in [&pki.ca_key, &pki.server_key, &pki.client_key, &pki.token_key] {
            assert_eq!(fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600, "{}", key.display());
        }
        assert_eq!(Pki::certificates(&pki.token_bundle).unwrap().len(), 2);
        pki.server_tls_config().unwrap();
        pki.client_tls_config(true).unwrap();
        let host = pki.write_certs_d(&dir.path().join("certs.d"), "127.0.0.1:1234", true).unwrap();
        assert!(host.join("ca.crt").is_file() && host.join("client.cert").is_file());
        assert!(host.join("client.key").is_file());
        let (cert, key) = pki.issue_server_cert(&dir.path().join("wrong"), &["wrong.example"]).unwrap();
        Pki::server_tls_config_from(&cert, &key).unwrap();
        use rustls::client::danger::ServerCertVerifier;
        // Valid for the name it carries, not for the loopback address the test servers listen on.
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(pki.root_store().unwrap()),
            crypto_provider(),
        )
        .build()
        .unwrap();
        let leaf = &Pki::certificates(&cert).unwrap()[0];
        let now = rustls_pki_types::UnixTime::now();
        let verify = |name: &str| {
            let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
            verifier.verify_server_cert(leaf, &[], &name, &[], now)
        };
        assert!(verify("wrong.example").is_ok());
        assert!(verify("127.0.0.1").is_err());
    }
}
