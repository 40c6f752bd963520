//! Credentials from every source a user keeps them in, and `login` / `logout`.

use std::os::unix::fs::PermissionsExt;

use berth_testkit::{ALICE, BOB, Kind};

use crate::util::{Sandbox, basic_auth, image, testbed};

fn config_json(host: &str, user: (&str, &str)) -> String {
    format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, basic_auth(user))
}

fn pull_busybox(sandbox: &Sandbox, kind: Kind) -> crate::util::Run {
    sandbox.berth(&["pull", &image(kind, "testbed/busybox:1")])
}

#[test]
fn login_with_password_stdin_saves_a_private_file() {
    for kind in [Kind::Basic, Kind::Token] {
        let sandbox = Sandbox::new();
        sandbox.trust_testbed();
        let host = testbed().registry(kind).host();
        sandbox.login(&host, ALICE).success();
        let file = sandbox.config_dir().join("auth.json");
        let mode = std::fs::metadata(&file).expect("auth file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "auth file mode");
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
        assert!(saved["auths"][&host].is_object(), "no entry for {host}: {saved}");
        pull_busybox(&sandbox, kind).success();

        sandbox.berth(&["logout", &host]).success();
        let run = pull_busybox(&sandbox, kind).failure();
        assert!(run.hint().contains("berth login"), "{}", run.stderr);
        let after: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
        assert!(after["auths"][&host].is_null(), "logout left {after}");
    }
}

#[test]
fn a_failing_login_saves_nothing() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    for kind in [Kind::Basic, Kind::Token] {
        let run = sandbox.login(&testbed().registry(kind).host(), (ALICE.0, "not-the-password")).failure();
        run.stderr_has("username or password");
        assert!(!sandbox.config_dir().join("auth.json").exists(), "a failed login wrote the auth file");
    }
}

#[test]
fn bob_may_log_in_and_pull_but_has_no_push_right() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    sandbox.login(&testbed().token.host(), BOB).success();
    pull_busybox(&sandbox, Kind::Token).success();
}

#[test]
fn creds_flag() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    for kind in [Kind::Basic, Kind::Token] {
        sandbox.berth(&["pull", "--creds", &creds, &image(kind, "testbed/busybox:1")]).success();
    }
}

#[test]
fn config_json_in_an_environment_variable() {
    for var in ["BERTH_AUTH_CONFIG", "DOCKER_AUTH_CONFIG"] {
        let mut sandbox = Sandbox::new();
        sandbox.trust_testbed();
        sandbox.env(var, config_json(&testbed().token.host(), ALICE));
        pull_busybox(&sandbox, Kind::Token).success();
    }
}

#[test]
fn docker_config_json() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    sandbox.write("home/.docker/config.json", &config_json(&testbed().basic.host(), ALICE));
    pull_busybox(&sandbox, Kind::Basic).success();
}

#[test]
fn docker_config_env_points_at_another_dir() {
    let mut sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let file = sandbox.write("elsewhere/config.json", &config_json(&testbed().basic.host(), ALICE));
    sandbox.env("DOCKER_CONFIG", file.parent().expect("dir").display().to_string());
    pull_busybox(&sandbox, Kind::Basic).success();
}

#[test]
fn podman_auth_json() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    sandbox.write("run/containers/auth.json", &config_json(&testbed().token.host(), ALICE));
    pull_busybox(&sandbox, Kind::Token).success();
}

#[test]
fn registry_auth_file() {
    let mut sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let file = sandbox.write("somewhere/auth.json", &config_json(&testbed().basic.host(), ALICE));
    sandbox.env("REGISTRY_AUTH_FILE", file.display().to_string());
    pull_busybox(&sandbox, Kind::Basic).success();
}

#[test]
fn most_specific_key_wins() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let host = testbed().basic.host();
    // The host-wide entry is wrong; the repository's own entry is right and must be the one used.
    let config = format!(
        r#"{{"auths":{{"{host}":{{"auth":"{}"}},"{host}/testbed/busybox":{{"auth":"{}"}}}}}}"#,
        basic_auth((ALICE.0, "wrong")),
        basic_auth(ALICE)
    );
    sandbox.write("home/.docker/config.json", &config);
    pull_busybox(&sandbox, Kind::Basic).success();
}

/// A `docker-credential-*` helper that answers `get` for one server with alice's login.
fn install_helper(sandbox: &mut Sandbox, name: &str, server: &str) {
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  get) read -r s; if [ \"$s\" = \"{server}\" ]; then \
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$s\"; \
         else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  \
         store) cat > \"$(dirname \"$0\")/stored.json\" ;;\n  erase) read -r s; echo \"$s\" > \"$(dirname \"$0\")/erased\" ;;\n  \
         list) echo '{{}}' ;;\nesac\n",
        ALICE.0, ALICE.1
    );
    let path = sandbox.write(&format!("bin/docker-credential-{name}"), &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path_var =
        format!("{}:{}", sandbox.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
    sandbox.env("PATH", path_var);
}

#[test]
fn credential_helper_from_cred_helpers() {
    let mut sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let host = testbed().token.host();
    install_helper(&mut sandbox, "berthtest", &host);
    sandbox.write("home/.docker/config.json", &format!(r#"{{"credHelpers":{{"{host}":"berthtest"}}}}"#));
    pull_busybox(&sandbox, Kind::Token).success();
}

#[test]
fn credential_helper_from_creds_store() {
    let mut sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let host = testbed().basic.host();
    install_helper(&mut sandbox, "berthtest", &host);
    sandbox.write("home/.docker/config.json", r#"{"credsStore":"berthtest"}"#);
    pull_busybox(&sandbox, Kind::Basic).success();
}

#[test]
fn login_stores_in_the_configured_helper() {
    let mut sandbox = Sandbox::new();
    sandbox.trust_testbed();
    let host = testbed().basic.host();
    install_helper(&mut sandbox, "berthtest", &host);
    sandbox.write("config/auth.json", r#"{"credsStore":"berthtest"}"#);
    sandbox.login(&host, ALICE).success().stderr_has("berthtest");
    let stored =
        std::fs::read_to_string(sandbox.path().join("bin/stored.json")).expect("helper got the login");
    assert!(stored.contains(&host) && stored.contains(ALICE.0), "{stored}");
    let file = std::fs::read_to_string(sandbox.config_dir().join("auth.json")).expect("auth file");
    assert!(!file.contains(&basic_auth(ALICE)), "the password landed in the file too: {file}");
}
