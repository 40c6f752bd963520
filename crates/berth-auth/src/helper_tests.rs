use super::*;
use crate::test_support::{fake_helper, helper_calls, seed_fake_helper, write_script};

const SECRET: &str = "s3cr3t-value-never-shown";

fn helper(dir: &std::path::Path) -> Helper {
    Helper::new("fake").with_search_path(Some(fake_helper(dir, "fake"))).with_timeout(Duration::from_secs(10))
}

#[test]
fn store_get_erase_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    assert_eq!(helper.get("reg.example").unwrap(), None);
    let credential = Credential::Basic { username: "bob".into(), password: Secret::new(SECRET) };
    helper.store("reg.example", &credential).unwrap();
    assert_eq!(helper.get("reg.example").unwrap(), Some(credential));
    assert_eq!(helper.get("other.example").unwrap(), None);
    assert!(helper.erase_if_present("reg.example").unwrap());
    assert!(!helper.erase_if_present("reg.example").unwrap());
    helper.erase("reg.example").unwrap();
    assert_eq!(helper.get("reg.example").unwrap(), None);
    assert_eq!(helper_calls(dir.path()), ["get", "store", "get", "get", "erase", "erase", "erase", "get"]);
}

#[test]
fn token_username_means_identity_token() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    let credential = Credential::IdentityToken { username: "ignored".into(), token: Secret::new(SECRET) };
    helper.store("https://index.docker.io/v1/", &credential).unwrap();
    let stored = std::fs::read_to_string(dir.path().join("state/https___index_docker_io_v1_")).unwrap();
    assert!(stored.contains("\"Username\":\"<token>\""), "{stored}");
    assert_eq!(
        helper.get("https://index.docker.io/v1/").unwrap(),
        Some(Credential::IdentityToken { username: String::new(), token: Secret::new(SECRET) })
    );
    seed_fake_helper(dir.path(), "reg.example", "<token>", "tok");
    assert!(matches!(helper.get("reg.example").unwrap(), Some(Credential::IdentityToken { .. })));
}

#[test]
fn registry_tokens_cannot_be_stored_in_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let error =
        helper(dir.path()).store("reg.example", &Credential::RegistryToken(Secret::new(SECRET))).unwrap_err();
    assert!(matches!(error, Error::CannotStore { .. }), "{error}");
    assert!(!error.to_string().contains(SECRET));
}

#[test]
fn list_returns_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let listed = helper(dir.path()).list().unwrap();
    assert_eq!(listed.get("reg.example").map(String::as_str), Some("bob"));
    assert_eq!(listed.len(), 2);
}

#[test]
fn missing_helper_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let helper = Helper::new("nothere").with_search_path(Some(dir.path().as_os_str().to_owned()));
    let error = helper.get("reg.example").unwrap_err();
    match &error {
        Error::HelperMissing { helper, program } => {
            assert_eq!(helper, "nothere");
            assert_eq!(program, "docker-credential-nothere");
        }
        other => panic!("expected HelperMissing, got {other:?}"),
    }
    assert!(error.to_string().contains("docker-credential-nothere"));
}

#[test]
fn non_executable_file_is_not_a_helper() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("docker-credential-plain"), "#!/bin/sh\n").unwrap();
    let helper = Helper::new("plain").with_search_path(Some(dir.path().as_os_str().to_owned()));
    assert!(matches!(helper.list(), Err(Error::HelperMissing { .. })));
}

#[test]
fn path_like_helper_names_are_refused() {
    let helper = Helper::new("../../bin/sh").with_search_path(Some("/".into()));
    let error = helper.get("reg.example").unwrap_err();
    assert!(
        matches!(&error, Error::HelperFailed { message, .. } if message.contains("not a valid helper name"))
    );
}

#[test]
fn failing_helper_reports_its_message_without_our_secret() {
    let dir = tempfile::tempdir().unwrap();
    // Echoes its input back, as a careless helper might, and fails.
    write_script(
        dir.path(),
        "broken",
        "#!/bin/sh\necho \"pass store is uninitialized: $(cat)\"\necho oops >&2\nexit 1\n",
    );
    let helper = Helper::new("broken").with_search_path(Some(dir.path().as_os_str().to_owned()));
    let credential = Credential::Basic { username: "bob".into(), password: Secret::new(SECRET) };
    let error = helper.store("reg.example", &credential).unwrap_err();
    let Error::HelperFailed { helper: name, action, message } = &error else { panic!("{error:?}") };
    assert_eq!((name.as_str(), action.as_str()), ("broken", "store"));
    assert!(message.contains("pass store is uninitialized"), "{message}");
    assert!(message.contains("oops"), "stderr is included: {message}");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>") || text.contains("HelperFailed"), "{text}");
    }
    assert!(error.to_string().starts_with("credential helper \"docker-credential-broken\" failed to store:"));
    let error = helper.get("reg.example").unwrap_err();
    assert!(matches!(error, Error::HelperFailed { ref action, .. } if action == "get"), "{error}");
}

#[test]
fn silent_failure_names_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "silent", "#!/bin/sh\nexit 3\n");
    let helper = Helper::new("silent").with_search_path(Some(dir.path().as_os_str().to_owned()));
    let message = helper.list().unwrap_err().to_string();
    assert!(message.contains("exit status: 3") && message.contains("printed nothing"), "{message}");
}

#[test]
fn garbage_output_is_an_error_that_does_not_quote_it() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "garbage", "#!/bin/sh\necho 'Secret: leaked-value'\n");
    let helper = Helper::new("garbage").with_search_path(Some(dir.path().as_os_str().to_owned()));
    let message = helper.get("reg.example").unwrap_err().to_string();
    assert!(message.contains("not credentials JSON") && !message.contains("leaked-value"), "{message}");
}

#[test]
fn hanging_helper_is_killed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "slow", "#!/bin/sh\nexec sleep 30\n");
    let helper = Helper::new("slow")
        .with_search_path(Some(dir.path().as_os_str().to_owned()))
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = helper.get("reg.example").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(error.to_string().contains("did not finish within 0.3 s"), "{error}");
}

#[test]
fn helper_leaving_a_child_behind_does_not_hang_us() {
    let dir = tempfile::tempdir().unwrap();
    // The background sleep keeps stdout open after the helper itself exits.
    write_script(dir.path(), "forker", "#!/bin/sh\nsleep 3 &\necho '{}'\nexit 0\n");
    let helper = Helper::new("forker")
        .with_search_path(Some(dir.path().as_os_str().to_owned()))
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = helper.list();
    assert!(started.elapsed() < Duration::from_millis(2500), "took {:?}", started.elapsed());
    assert!(result.is_err() || result.is_ok_and(|map| map.is_empty()));
}
