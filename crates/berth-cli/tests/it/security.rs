//! Credentials go only where they were meant for, and never show up in output.

use berth_testkit::{ALICE, Fault, Kind, Proxy};

use crate::util::{Sandbox, basic_auth, image, testbed};

#[test]
fn no_authorization_across_a_redirect_to_another_host() {
    let sandbox = Sandbox::new();
    let tb = testbed();
    // The front proxy passes alice's Basic credentials to the basic registry but sends blob GETs to a
    // second host; that host must never see an Authorization header.
    let storage = Proxy::start(&tb.plain.url(), &tb.pki).expect("storage proxy");
    let front = Proxy::start(&tb.basic.url(), &tb.pki).expect("front proxy");
    front.set_fault(Fault::RedirectBlobs { to: storage.url() });
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    sandbox.berth(&["pull", "--creds", &creds, &format!("{}/testbed/busybox:1", front.host())]).success();
    let blob_requests: Vec<_> =
        storage.requests().into_iter().filter(|r| r.path.contains("/blobs/")).collect();
    assert!(!blob_requests.is_empty(), "the redirect was not followed");
    assert!(blob_requests.iter().all(|r| !r.had_authorization), "Authorization leaked: {blob_requests:?}");
    assert!(
        front.requests().iter().any(|r| r.had_authorization),
        "the registry itself never got credentials"
    );
}

#[test]
fn a_key_is_matched_at_boundaries_only() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let host = testbed().basic.host();
    // "127.0.0.1:4" is a string prefix of "127.0.0.1:4xxxx" but another registry: its login must not be used.
    let (ip, port) = host.split_once(':').expect("host:port");
    let prefix_key = format!("{ip}:{}", &port[..port.len() - 1]);
    let config = format!(r#"{{"auths":{{"{prefix_key}":{{"auth":"{}"}}}}}}"#, basic_auth(ALICE));
    sandbox.write("home/.docker/config.json", &config);
    let run = sandbox.berth(&["pull", &image(Kind::Basic, "testbed/busybox:1")]).failure();
    assert!(run.hint().contains("berth login"), "{}", run.stderr);
}

#[test]
fn secrets_never_appear_in_output() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let secret = "s3cret-Never-Printed";
    let encoded = basic_auth((ALICE.0, secret));
    let mut outputs = Vec::new();
    for kind in [Kind::Basic, Kind::Token] {
        let host = testbed().registry(kind).host();
        let login = sandbox.berth_stdin(
            &["--debug", "login", "-u", ALICE.0, "--password-stdin", &host],
            &format!("{secret}\n"),
        );
        outputs.push(login.stdout + &login.stderr);
        let pull = sandbox.berth(&[
            "--debug",
            "pull",
            "--creds",
            &format!("{}:{secret}", ALICE.0),
            &image(kind, "testbed/busybox:1"),
        ]);
        outputs.push(pull.stdout + &pull.stderr);
        let good = sandbox.berth(&[
            "--debug",
            "pull",
            "--creds",
            &format!("{}:{}", ALICE.0, ALICE.1),
            &image(kind, "testbed/busybox:1"),
        ]);
        assert_eq!(good.code, 0, "{}", good.stderr);
        outputs.push(good.stdout + &good.stderr);
    }
    for output in outputs {
        assert!(!output.contains(secret), "secret printed:\n{output}");
        assert!(!output.contains(&encoded), "encoded secret printed:\n{output}");
        assert!(!output.contains(ALICE.1), "alice's password printed:\n{output}");
        assert!(!output.contains(&basic_auth(ALICE)), "alice's encoded login printed:\n{output}");
    }
}
