//! The failure classes errors.rs does not reach with the shared testbed alone: a certificate for another
//! name, a valid credential without the pull right, corrupted content, a full disk, a failing credential
//! helper, and token realms berth must not send credentials to. Each is asserted by its message and hint.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testkit::{ALICE, EVE, Fault, Kind, Pki, Proxy, Registry};

use crate::util::{Sandbox, image, testbed};

#[test]
fn a_certificate_for_another_name_is_a_hostname_mismatch() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    // Signed by the CA berth trusts, but naming only wrong.example: the one thing wrong is the name.
    let (cert, key) =
        tb.pki.issue_server_cert(&sandbox.path().join("wrong-name"), &["wrong.example"]).expect("cert");
    let server = Pki::server_tls_config_from(&cert, &key).expect("server config");
    let proxy = Proxy::start_tls_with(&tb.plain.url(), &tb.pki, server).expect("tls proxy");
    tb.pki.write_certs_d(&sandbox.config_dir().join("certs.d"), &proxy.host(), false).expect("certs.d");
    let run = sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", proxy.host())]).failure();
    run.stderr_has("not valid for that host name").stderr_has(&proxy.host());
    let hint = run.hint();
    assert!(hint.contains("does not name") && hint.contains(&proxy.host()), "{hint}");
    assert!(proxy.requests().is_empty(), "a request got through a failed handshake: {:?}", proxy.requests());
}

#[test]
fn a_valid_login_without_the_pull_right_is_not_a_wrong_password() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let creds = format!("{}:{}", EVE.0, EVE.1);
    // Private and public repository alike: eve's token grants nothing, and she is not anonymous.
    for repo_tag in ["testbed/busybox:1", "library/busybox:1"] {
        let reference = image(Kind::Token, repo_tag);
        let run = sandbox.berth(&["pull", "--creds", &creds, &reference]).failure();
        run.stderr_has(&reference).stderr_has("denied").stderr_has("lack pull permission");
        assert!(!run.stderr.to_lowercase().contains("username or password"), "{}", run.stderr);
        let hint = run.hint();
        assert!(hint.contains("lacks pull access"), "{hint}");
    }
    let issued = testbed().issuer.issued();
    assert!(
        issued
            .iter()
            .any(|token| token.user.as_deref() == Some(EVE.0) && token.access == serde_json::json!([])),
        "eve was never given an (empty) token: {issued:?}"
    );
}

#[test]
fn a_403_with_a_valid_login_is_denied_not_a_wrong_password() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    // The basic registry has no per-repository rights; a proxy answers 403 DENIED as registries with
    // repository permissions do for a login that may not pull.
    let proxy = Proxy::start(&tb.basic.url(), &tb.pki).expect("proxy");
    proxy.set_fault(Fault::Status {
        status: 403,
        retry_after: None,
        path_contains: Some("/manifests/".into()),
        times: 0,
    });
    let reference = format!("{}/testbed/busybox:1", proxy.host());
    let run = sandbox.berth(&["pull", "--creds", &format!("{}:{}", ALICE.0, ALICE.1), &reference]).failure();
    run.stderr_has(&reference).stderr_has("denied").stderr_has("lack pull permission").stderr_has("DENIED");
    assert!(!run.stderr.to_lowercase().contains("username or password"), "{}", run.stderr);
    assert!(run.hint().contains("lacks pull access"), "{}", run.stderr);
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(read) => {
            read.map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned()).collect()
        }
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_corrupted_config_is_a_digest_mismatch_and_nothing_is_stored() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let catalog = berth_testkit::images::build_all().expect("images");
    let config =
        catalog.image("testbed/busybox", "1").expect("image").single().expect("single").config.digest.clone();
    let proxy = Proxy::start(&tb.plain.url(), &tb.pki).expect("proxy");
    proxy.set_fault(Fault::Corrupt { path_contains: Some(config.clone()), times: 0 });
    let run = sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", proxy.host())]).failure();
    run.stderr_has("digest").stderr_has(&format!("expected {config}"));
    assert!(run.hint().contains("corrupted"), "{}", run.stderr);
    let store = sandbox.path().join("store");
    assert!(!sandbox.blob(&config).exists(), "the corrupted config was stored");
    assert!(
        entries(&store.join("layers")).is_empty(),
        "layers committed: {:?}",
        entries(&store.join("layers"))
    );
    assert!(
        proxy.requests().iter().any(|request| request.path.ends_with(&config)),
        "the config never went through the proxy"
    );
}

#[test]
fn a_corrupted_layer_is_never_stored() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let catalog = berth_testkit::images::build_all().expect("images");
    let manifest = catalog.image("testbed/busybox", "1").expect("image").single().expect("single");
    let layer = manifest.layers[0].digest.clone();
    let proxy = Proxy::start(&tb.plain.url(), &tb.pki).expect("proxy");
    proxy.set_fault(Fault::Corrupt { path_contains: Some(layer.clone()), times: 0 });
    let reference = format!("{}/testbed/busybox:1", proxy.host());
    let run = sandbox.berth(&["pull", &reference]).failure();
    run.stderr_has(&layer).stderr_has("digest");
    let store = sandbox.path().join("store");
    assert!(!sandbox.blob(&layer).exists(), "the corrupted layer was stored");
    assert!(
        entries(&store.join("layers")).is_empty(),
        "layers committed: {:?}",
        entries(&store.join("layers"))
    );
    let images = sandbox.berth(&["images", "-q"]).success();
    assert!(!images.stdout.contains(&reference), "the image was recorded:\n{}", images.stdout);
    assert!(run.hint().contains("damaged"), "{}", run.stderr);
}

#[test]
fn a_corrupted_layer_does_not_poison_the_next_pull() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    let catalog = berth_testkit::images::build_all().expect("images");
    let layer = catalog.image("testbed/busybox", "1").expect("image").single().expect("single").layers[0]
        .digest
        .clone();
    let proxy = Proxy::start(&tb.plain.url(), &tb.pki).expect("proxy");
    proxy.set_fault(Fault::Corrupt { path_contains: Some(layer.clone()), times: 1 });
    let reference = format!("{}/testbed/busybox:1", proxy.host());
    let damaged = sandbox.berth(&["pull", &reference]).failure();
    damaged.stderr_has("digest").stderr_has(&layer);
    // Intact bytes again: the damaged download must not be resumed from.
    sandbox.berth(&["pull", &reference]).success();
    assert!(sandbox.blob(&layer).exists(), "the layer was not stored");
}

/// A tmpfs mounted on `dir` for the life of the guard; unmounted (lazily, so a leftover open file
/// cannot keep it) on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed (tests run as root): {status}");
        Tmpfs { dir: dir.to_path_buf() }
    }

    /// Grows (or shrinks) the tmpfs in place, keeping its contents.
    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount failed: {status}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_says_so_and_the_store_survives() {
    let sandbox = Sandbox::new();
    let store = sandbox.path().join("store");
    let tmpfs = Tmpfs::mount(&store, "2m");
    let reference = image(Kind::Plain, "testbed/multi:1");
    let run = sandbox.berth(&["pull", &reference]).failure();
    run.stderr_has("no space left");
    let hint = run.hint();
    assert!(hint.contains("free space") && hint.contains("berth image prune"), "{hint}");
    // Room again, same store: what the failed pull left behind must not get in the way.
    tmpfs.resize("1g");
    let digest = sandbox.berth(&["pull", "-q", &reference]).success();
    assert!(digest.stdout.trim().starts_with("sha256:"), "{}", digest.stdout);
    let images = sandbox.berth(&["images"]).success();
    assert!(images.stdout.contains("testbed/multi"), "{}", images.stdout);
    drop(tmpfs);
}

#[test]
fn a_failing_credential_helper_is_named_with_its_message() {
    let mut sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let helper = bin.join("docker-credential-locked");
    std::fs::write(&helper, "#!/bin/sh\necho 'the keyring is locked' >&2\nexit 3\n").expect("helper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    sandbox.env("PATH", path);
    sandbox.write("home/.docker/config.json", r#"{"credsStore":"locked"}"#);
    let run = sandbox.berth(&["pull", &image(Kind::Basic, "testbed/busybox:1")]).failure();
    run.stderr_has("docker-credential-locked").stderr_has("the keyring is locked");
    run.hint();
}

/// A token registry whose challenge names `realm`; `trust` also puts the test CA in certs.d for it.
fn registry_with_realm(sandbox: &Sandbox, realm: &str) -> Registry {
    let tb = testbed();
    let registry = Registry::start_with_realm(&tb.pki, &tb.issuer, realm).expect("registry");
    tb.pki.write_certs_d(&sandbox.config_dir().join("certs.d"), &registry.host(), false).expect("certs.d");
    registry
}

#[test]
fn no_credentials_go_to_a_plain_http_token_realm() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    // The realm is a plain-HTTP front for the real issuer: if berth asked it, it would get a token.
    let realm = Proxy::start(&format!("https://{}", tb.issuer.host()), &tb.pki).expect("realm proxy");
    let registry = registry_with_realm(&sandbox, &format!("{}/token", realm.url()));
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    for args in [vec!["pull", "--creds", &creds], vec!["pull"]] {
        let mut args = args;
        let reference = format!("{}/library/busybox:1", registry.host());
        args.push(&reference);
        let run = sandbox.berth(&args).failure();
        run.stderr_has("unsafe token realm").stderr_has("http://");
        assert!(run.hint().contains("unsafe address"), "{}", run.stderr);
    }
    let requests = realm.requests();
    assert!(
        requests.iter().all(|request| !request.had_authorization),
        "credentials reached the realm: {requests:?}"
    );
    assert!(requests.is_empty(), "berth asked an unsafe realm at all: {requests:?}");
}

#[test]
fn no_credentials_go_to_a_link_local_token_realm() {
    let sandbox = Sandbox::new();
    let registry = registry_with_realm(&sandbox, "https://169.254.169.254/token");
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    let run = sandbox
        .berth(&["pull", "--creds", &creds, &format!("{}/library/busybox:1", registry.host())])
        .failure();
    run.stderr_has("unsafe token realm").stderr_has("link-local");
    run.hint();
}

#[test]
fn https_to_a_plain_http_registry_declared_secure() {
    let sandbox = Sandbox::new();
    let host = testbed().plain.host();
    // Loopback would fall back to HTTP; `insecure = false` says this host must speak HTTPS.
    sandbox.write("config/config.toml", &format!("[[registry]]\nlocation = {host:?}\ninsecure = false\n"));
    let run = sandbox.berth(&["pull", &image(Kind::Plain, "testbed/busybox:1")]).failure();
    run.stderr_has(&host).stderr_has("answered HTTPS with plain HTTP");
    let hint = run.hint();
    assert!(hint.contains(&format!("mark {host} insecure")) && hint.contains("config.toml"), "{hint}");
}

#[test]
fn plain_http_to_an_https_server_after_a_redirect() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    // A plain-HTTP registry sends blob downloads to an HTTPS server's port with an http:// URL.
    let front = Proxy::start(&tb.plain.url(), &tb.pki).expect("front proxy");
    front.set_fault(Fault::RedirectBlobs { to: format!("http://{}", tb.basic.host()) });
    let run = sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", front.host())]).failure();
    run.stderr_has("answered plain HTTP with HTTPS").stderr_has(&tb.basic.host());
    assert!(run.hint().contains("speaks HTTPS"), "{}", run.stderr);
}
