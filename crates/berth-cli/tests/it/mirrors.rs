//! Registry mirrors from berth's config.toml: a short Docker Hub name is served by a mirror, a failing
//! mirror falls through to the next source with a warning, and a mirror never receives the upstream
//! registry's credentials (each endpoint gets its own).
//!
//! Nothing may leave the machine: every sandbox here sends HTTPS to a closed local port as its proxy
//! (`HTTPS_PROXY`, with loopback exempt), so docker.io itself is unreachable.

use berth_testkit::{ALICE, Fault, Proxy};

use crate::util::{Sandbox, basic_auth, testbed};

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A sandbox whose HTTPS traffic to anything but loopback goes to a closed port.
fn offline_sandbox() -> Sandbox {
    let mut sandbox = Sandbox::new();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    sandbox
        .env("HTTPS_PROXY", dead.clone())
        .env("https_proxy", dead.clone())
        .env("HTTP_PROXY", dead.clone())
        .env("http_proxy", dead)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    sandbox
}

fn write_config(sandbox: &Sandbox, location: &str, mirrors: &[String]) {
    let mirrors = mirrors.iter().map(|mirror| format!("{mirror:?}")).collect::<Vec<_>>().join(", ");
    sandbox.write(
        "config/config.toml",
        &format!("[[registry]]\nlocation = {location:?}\nmirrors = [{mirrors}]\n"),
    );
}

#[test]
fn docker_hub_is_unreachable_from_these_sandboxes() {
    let sandbox = offline_sandbox();
    let run = sandbox.berth(&["pull", "busybox:1"]).failure();
    run.stderr_has("docker.io").stderr_has("refused");
}

#[test]
fn a_short_name_is_served_by_the_docker_hub_mirror() {
    let sandbox = offline_sandbox();
    let mirror = Proxy::start(&testbed().plain.url(), &testbed().pki).expect("mirror");
    write_config(&sandbox, "docker.io", &[mirror.host()]);
    sandbox.berth(&["pull", "busybox:1"]).success();
    let manifests: Vec<_> = mirror
        .requests()
        .into_iter()
        .filter(|request| request.path == "/v2/library/busybox/manifests/1")
        .collect();
    assert!(!manifests.is_empty(), "the mirror was not asked: {:?}", mirror.requests());
    let images = sandbox.berth(&["images"]).success();
    assert!(images.stdout.contains("docker.io/library/busybox"), "{}", images.stdout);
}

#[test]
fn a_failing_mirror_falls_through_to_the_next_with_a_warning() {
    let sandbox = offline_sandbox();
    let tb = testbed();
    let dead = format!("127.0.0.1:{}", closed_port());
    let broken = Proxy::start(&tb.plain.url(), &tb.pki).expect("broken mirror");
    broken.set_fault(Fault::Status { status: 404, retry_after: None, path_contains: None, times: 0 });
    let working = Proxy::start(&tb.plain.url(), &tb.pki).expect("working mirror");
    // The upstream is a loopback proxy too, so that it can tell whether it was asked.
    let upstream = Proxy::start(&tb.plain.url(), &tb.pki).expect("upstream");
    write_config(&sandbox, &upstream.host(), &[dead.clone(), broken.host(), working.host()]);
    let run = sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", upstream.host())]).success();
    run.stderr_has(&format!("mirror {dead} failed")).stderr_has(&format!("mirror {} failed", broken.host()));
    assert!(!broken.requests().is_empty(), "the second mirror was skipped");
    assert!(
        working.requests().iter().any(|request| request.path.contains("/blobs/")),
        "the working mirror did not serve the blobs: {:?}",
        working.requests()
    );
    assert!(upstream.requests().is_empty(), "the upstream was asked although a mirror worked");

    // With every mirror failing, the upstream itself serves the image.
    let sandbox = offline_sandbox();
    write_config(&sandbox, &upstream.host(), &[dead, broken.host()]);
    sandbox.berth(&["pull", &format!("{}/testbed/busybox:1", upstream.host())]).success();
    assert!(!upstream.requests().is_empty(), "the upstream was never asked");
}

#[test]
fn a_mirror_never_receives_the_upstream_login() {
    let sandbox = offline_sandbox();
    let tb = testbed();
    // The mirror needs alice's login: if berth handed it docker.io's, the pull would succeed through it.
    let mirror = Proxy::start(&tb.basic.url(), &tb.pki).expect("mirror");
    write_config(&sandbox, "docker.io", &[mirror.host()]);
    let hub_login =
        format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#, basic_auth(ALICE));
    sandbox.write("home/.docker/config.json", &hub_login);
    let run = sandbox.berth(&["pull", "busybox:1"]).failure();
    run.stderr_has(&format!("mirror {} failed", mirror.host()));
    let requests = mirror.requests();
    assert!(!requests.is_empty(), "the mirror was not asked");
    assert!(
        requests.iter().all(|request| !request.had_authorization),
        "the mirror got a login: {requests:?}"
    );

    // The mirror's own login is used for the mirror.
    let both = format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{hub}"}},"{host}":{{"auth":"{hub}"}}}}}}"#,
        hub = basic_auth(ALICE),
        host = mirror.host()
    );
    sandbox.write("home/.docker/config.json", &both);
    mirror.clear_requests();
    sandbox.berth(&["pull", "busybox:1"]).success();
    assert!(
        mirror.requests().iter().any(|request| request.had_authorization),
        "the mirror's own login was not used"
    );
}
