//! Each failure class a user can meet, against the real registries.

use berth_registry::{ClientOptions, ErrorKind, HostConfig, Registry};
use berth_testkit::{ALICE, BOB, Testbed};

use crate::*;

#[test]
fn private_repository_without_credentials() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let config = host_config(testbed, certs.path());
    run(async {
        for host in [testbed.basic.host(), testbed.token.host()] {
            let error = registry(&host, &config, None)
                .resolve(&reference(&host, "testbed/busybox:1"), &amd64())
                .await
                .unwrap_err();
            assert_eq!(*error.kind(), ErrorKind::NoCredentials, "{host}: {error}");
            assert!(error.to_string().contains(&format!("{host}/testbed/busybox:1")), "{error}");
            assert_eq!(
                error.hint(),
                Some(format!("the repository may be private: run `berth login {host}`"))
            );
        }
    });
}

#[test]
fn wrong_password_on_basic_and_token_registries() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let config = host_config(testbed, certs.path());
    run(async {
        for host in [testbed.basic.host(), testbed.token.host()] {
            let wrong = registry(&host, &config, basic(("alice", "not-the-password")));
            let error = wrong.resolve(&reference(&host, "testbed/busybox:1"), &amd64()).await.unwrap_err();
            assert_eq!(*error.kind(), ErrorKind::WrongCredentials, "{host}: {error}");
            assert!(!error.to_string().contains("not-the-password"), "{error}");
            let error = wrong.check_login().await.unwrap_err();
            assert_eq!(*error.kind(), ErrorKind::WrongCredentials, "{host}: {error}");
        }
    });
}

#[test]
fn missing_tag_and_missing_repository() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let config = host_config(testbed, certs.path());
    run(async {
        let plain = testbed.plain.host();
        let client = registry(&plain, &config, None);
        let error =
            client.resolve(&reference(&plain, "testbed/busybox:no-such-tag"), &amd64()).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::ManifestNotFound, "{error}");
        assert!(error.to_string().contains("existing tags: 1"), "{error}");
        let error = client.resolve(&reference(&plain, "testbed/no-such-repo:1"), &amd64()).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::RepositoryNotFound, "{error}");

        let token = testbed.token.host();
        let alice = registry(&token, &config, basic(ALICE));
        let error =
            alice.resolve(&reference(&token, "testbed/busybox:no-such-tag"), &amd64()).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::ManifestNotFound, "{error}");
    });
}

#[test]
fn unknown_ca_names_the_certs_d_dirs() {
    let testbed = Testbed::shared();
    let empty = tempfile::tempdir().unwrap();
    let host = testbed.basic.host();
    let config = searching(empty.path());
    let error = run(registry(&host, &config, basic(ALICE)).ping()).unwrap_err();
    let ErrorKind::UnknownCa { searched } = error.kind() else { panic!("{error}") };
    assert_eq!(searched[0], empty.path().join(&host));
    let hint = error.hint().unwrap_or_default();
    assert!(hint.contains(&format!("{}/ca.crt", empty.path().join(&host).display())), "{hint}");
}

#[test]
fn mtls_without_client_certificate() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let host = testbed.mtls.host();
    testbed.pki.write_certs_d(certs.path(), &host, false).unwrap();
    let config = searching(certs.path());
    let error = run(registry(&host, &config, None).resolve(&reference(&host, "testbed/busybox:1"), &amd64()))
        .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::ClientCertRequired, "{error}");
}

#[test]
fn plain_registry_by_localhost_name_falls_back_to_http() {
    let testbed = Testbed::shared();
    let host = testbed.plain.host().replace("127.0.0.1", "localhost");
    let client = registry(&host, &HostConfig::default(), None);
    let challenges = run(client.ping()).expect("loopback plain registry works without insecure");
    assert!(challenges.is_empty());
}

#[test]
fn unknown_user_on_basic_registry_is_wrong_credentials() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let host = testbed.basic.host();
    let config = host_config(testbed, certs.path());
    // bob has no account on the basic registry: the registry refuses the credential itself.
    let error = run(registry(&host, &config, basic(BOB)).check_login()).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::WrongCredentials, "{error}");
}

#[test]
fn connection_refused_and_dns() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let host = format!("127.0.0.1:{port}");
    let error = run(registry(&host, &HostConfig::default(), None).ping()).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::ConnectionRefused, "{error}");
    let error = run(registry("no-such-host.invalid", &HostConfig::default(), None).ping()).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Dns, "{error}");
}

/// With TLS 1.3 the mTLS registry's "certificate required" alert comes after the client's handshake is
/// done, and the HTTP client can lose it in a race with its first request ("connection was not ready").
/// Stand-in for that race, made certain: a relay in front of the mTLS registry drops the first connection
/// unanswered; the error must still name the missing client certificate, learnt on a connection of its own.
#[test]
fn a_lost_tls_alert_is_learnt_again() {
    let testbed = Testbed::shared();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let upstream = testbed.mtls.host();
    std::thread::spawn(move || {
        // Bounded: the dropped connection and the probe's.
        for (index, client) in listener.incoming().take(2).enumerate() {
            let Ok(client) = client else { continue };
            if index == 0 {
                drop(client);
                continue;
            }
            let Ok(server) = std::net::TcpStream::connect(&upstream) else { return };
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut client_read, &mut server_write));
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut server_read, &mut client_write));
        }
    });
    let certs = tempfile::tempdir().unwrap();
    testbed.pki.write_certs_d(certs.path(), &relay, false).unwrap();
    let config = HostConfig { https_only: true, ..searching(certs.path()) };
    let options = ClientOptions { max_retries: 0, ..quick_options() };
    let client = Registry::new(&relay, &config, &options, None).unwrap();
    let error = run(client.ping()).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::ClientCertRequired, "{error}");
}

#[test]
fn misnamed_client_certificate_is_a_named_warning() {
    let testbed = Testbed::shared();
    let certs = tempfile::tempdir().unwrap();
    let host = testbed.mtls.host();
    let dir = testbed.pki.write_certs_d(certs.path(), &host, true).unwrap();
    std::fs::rename(dir.join("client.cert"), dir.join("client.crt")).unwrap();
    let config = searching(certs.path());
    let client = registry(&host, &config, None);
    assert_eq!(client.warnings().len(), 1, "{:?}", client.warnings());
    assert!(client.warnings()[0].contains("client.crt") && client.warnings()[0].contains("client.cert"));
    let error = run(client.ping()).unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::ClientCertRequired, "{error}");
}
