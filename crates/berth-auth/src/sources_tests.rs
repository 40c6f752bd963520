use std::path::Path;

use base64::prelude::{BASE64_STANDARD, Engine as _};

use super::*;
use crate::test_support::{fake_helper, helper_calls, seed_fake_helper};

const SECRET: &str = "pw-that-must-not-leak";

fn auths(key: &str, user: &str) -> String {
    let auth = BASE64_STANDARD.encode(format!("{user}:{SECRET}"));
    format!(r#"{{"auths": {{"{key}": {{"auth": "{auth}"}}}}}}"#)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Every source set, each holding a credential for reg.io under a username naming the source.
fn all_sources(root: &Path) -> SourceValues {
    write(&root.join("registry-auth.json"), &auths("reg.io", "registry-auth-file"));
    write(&root.join("berth/auth.json"), &auths("reg.io", "berth-file"));
    write(&root.join("run/containers/auth.json"), &auths("reg.io", "xdg"));
    write(&root.join("docker-config/config.json"), &auths("reg.io", "docker-config"));
    write(&root.join("home/.docker/config.json"), &auths("reg.io", "home"));
    SourceValues {
        berth_auth_config: Some(Secret::new(auths("reg.io", "berth-env"))),
        docker_auth_config: Some(Secret::new(auths("reg.io", "docker-env"))),
        registry_auth_file: Some(root.join("registry-auth.json")),
        berth_auth_file: Some(root.join("berth/auth.json")),
        xdg_runtime_dir: Some(root.join("run")),
        docker_config: Some(root.join("docker-config")),
        home: Some(root.join("home")),
        helper_search_path: Some(root.as_os_str().to_owned()),
    }
}

fn username(sources: &Sources) -> Option<String> {
    sources.lookup("reg.io", "app").unwrap().map(|found| found.credential.username().unwrap().to_owned())
}

#[test]
fn sources_are_consulted_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut values = all_sources(root);
    let flag = Credential::Basic { username: "flag".into(), password: Secret::new(SECRET) };
    assert_eq!(
        username(&Sources::from_values(values.clone()).with_flag(Some(flag))).as_deref(),
        Some("flag")
    );
    let expected_order =
        ["berth-env", "docker-env", "registry-auth-file", "berth-file", "xdg", "docker-config", "home"];
    for expected in expected_order {
        assert_eq!(username(&Sources::from_values(values.clone())).as_deref(), Some(expected));
        // Remove the source that just answered; the next one must answer now.
        match expected {
            "berth-env" => values.berth_auth_config = None,
            "docker-env" => values.docker_auth_config = None,
            "registry-auth-file" => values.registry_auth_file = None,
            "berth-file" => std::fs::remove_file(root.join("berth/auth.json")).unwrap(),
            "xdg" => values.xdg_runtime_dir = None,
            "docker-config" => values.docker_config = None,
            _ => values.home = None,
        }
    }
    assert_eq!(username(&Sources::from_values(values)), None);
}

#[test]
fn found_names_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = all_sources(dir.path());
    let found = Sources::from_values(values.clone()).lookup("reg.io", "app").unwrap().unwrap();
    assert!(
        matches!(&found.source, Source::EnvVar { var, key } if var == "BERTH_AUTH_CONFIG" && key == "reg.io")
    );
    assert_eq!(found.source.to_string(), "$BERTH_AUTH_CONFIG (key \"reg.io\")");
    values.berth_auth_config = None;
    values.docker_auth_config = None;
    let found = Sources::from_values(values).lookup("reg.io", "app").unwrap().unwrap();
    let path = dir.path().join("registry-auth.json");
    assert!(
        matches!(&found.source, Source::File { path: found_path, key } if *found_path == path && key == "reg.io")
    );
    assert_eq!(found.source.to_string(), format!("{} (key \"reg.io\")", path.display()));
}

#[test]
fn more_specific_key_in_a_later_source_does_not_beat_an_earlier_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = all_sources(dir.path());
    values.berth_auth_config = None;
    values.docker_auth_config = None;
    write(&dir.path().join("berth/auth.json"), &auths("reg.io/app", "specific"));
    assert_eq!(username(&Sources::from_values(values.clone())).as_deref(), Some("registry-auth-file"));
    values.registry_auth_file = None;
    assert_eq!(username(&Sources::from_values(values)).as_deref(), Some("specific"));
}

#[test]
fn docker_config_falls_back_to_home() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("home/.docker/config.json"), &auths("https://index.docker.io/v1/", "hub"));
    let values = SourceValues { home: Some(dir.path().join("home")), ..SourceValues::default() };
    let found = Sources::from_values(values).lookup("docker.io", "library/nginx").unwrap().unwrap();
    assert_eq!(found.credential.username(), Some("hub"));
}

#[test]
fn from_lookup_reads_variables_and_ignores_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let variables = move |name: &str| -> Option<OsString> {
        match name {
            "DOCKER_AUTH_CONFIG" => Some(auths("reg.io", "from-variable").into()),
            "BERTH_AUTH_CONFIG" => Some(OsString::new()),
            "REGISTRY_AUTH_FILE" => Some(root.join("x.json").into_os_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".into()),
            "DOCKER_CONFIG" => Some("/etc/dockercfg".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        }
    };
    let values = SourceValues::from_lookup(PathBuf::from("/var/lib/berth/auth.json"), variables);
    assert!(values.berth_auth_config.is_none());
    assert_eq!(values.xdg_runtime_dir.as_deref(), Some(Path::new("/run/user/1000")));
    let sources = Sources::from_values(values);
    assert_eq!(
        sources.searched(),
        [
            "$DOCKER_AUTH_CONFIG".to_owned(),
            format!("{} ($REGISTRY_AUTH_FILE)", dir.path().join("x.json").display()),
            "/var/lib/berth/auth.json (berth login)".to_owned(),
            "/run/user/1000/containers/auth.json (podman login)".to_owned(),
            "/etc/dockercfg/config.json ($DOCKER_CONFIG)".to_owned(),
        ]
    );
    assert_eq!(username(&sources).as_deref(), Some("from-variable"));
    let debug = format!("{sources:?}");
    assert!(
        !debug.contains(SECRET)
            && !debug.contains(&BASE64_STANDARD.encode(format!("from-variable:{SECRET}")))
    );
}

#[test]
fn from_env_builds_without_panicking() {
    let sources = Sources::from_env(PathBuf::from("/nonexistent/berth/auth.json"));
    assert!(sources.searched().iter().any(|place| place.starts_with("/nonexistent/berth/auth.json")));
}

#[test]
fn invalid_json_names_the_file_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    let values =
        SourceValues { docker_auth_config: Some(Secret::new("{not json")), ..SourceValues::default() };
    let error = Sources::from_values(values).lookup("reg.io", "app").unwrap_err();
    assert!(
        matches!(&error, Error::InvalidConfig { path_or_var, .. } if path_or_var == "$DOCKER_AUTH_CONFIG")
    );
    let path = dir.path().join("auth.json");
    write(&path, &format!("{{\"auths\": {{\"reg.io\": {{\"auth\": \"{SECRET}\"}}"));
    let values = SourceValues { berth_auth_file: Some(path.clone()), ..SourceValues::default() };
    let error = Sources::from_values(values).lookup("reg.io", "app").unwrap_err();
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    assert!(!error.to_string().contains(SECRET));
}

#[test]
fn unreadable_file_is_an_error_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where a file is expected: reading fails with something other than "not found".
    std::fs::create_dir_all(dir.path().join("auth.json")).unwrap();
    let values =
        SourceValues { berth_auth_file: Some(dir.path().join("auth.json")), ..SourceValues::default() };
    let error = Sources::from_values(values).lookup("reg.io", "app").unwrap_err();
    assert!(matches!(error, Error::Io { ref path, .. } if path.ends_with("auth.json")), "{error}");
}

#[test]
fn auths_then_cred_helpers_then_creds_store() {
    let dir = tempfile::tempdir().unwrap();
    let search_path = fake_helper(dir.path(), "fake");
    seed_fake_helper(dir.path(), "helped.io", "helper-user", SECRET);
    seed_fake_helper(dir.path(), "stored.io", "store-user", SECRET);
    seed_fake_helper(dir.path(), "https://index.docker.io/v1/", "hub-user", SECRET);
    seed_fake_helper(dir.path(), "both.io", "helper-for-both", SECRET);
    let config = serde_json::json!({
        "auths": { "both.io": { "auth": BASE64_STANDARD.encode(format!("file-for-both:{SECRET}")) }, "stored.io": {} },
        "credHelpers": { "helped.io": "fake", "both.io": "fake", "index.docker.io": "fake" },
        "credsStore": "fake",
    });
    let path = dir.path().join("config.json");
    write(&path, &config.to_string());
    let values = SourceValues {
        berth_auth_file: Some(path),
        helper_search_path: Some(search_path),
        ..SourceValues::default()
    };
    let sources = Sources::from_values(values);
    let lookup = |registry: &str, repository: &str| sources.lookup(registry, repository).unwrap();
    assert_eq!(lookup("both.io", "a").unwrap().credential.username(), Some("file-for-both"));
    let found = lookup("helped.io", "a").unwrap();
    assert_eq!(found.credential.username(), Some("helper-user"));
    assert!(
        matches!(&found.source, Source::Helper { helper, server } if helper == "docker-credential-fake" && server == "helped.io")
    );
    assert_eq!(
        found.source.to_string(),
        "credential helper \"docker-credential-fake\" (server \"helped.io\")"
    );
    assert_eq!(lookup("stored.io", "a").unwrap().credential.username(), Some("store-user"));
    let found = lookup("docker.io", "library/nginx").unwrap();
    assert!(
        matches!(&found.source, Source::Helper { server, .. } if server == "https://index.docker.io/v1/")
    );
    assert!(lookup("nothing.io", "a").is_none());
    assert!(helper_calls(dir.path()).iter().all(|call| call == "get"));
}

#[test]
fn missing_helper_is_an_error_not_a_fall_through() {
    let dir = tempfile::tempdir().unwrap();
    let berth_file = dir.path().join("berth.json");
    write(&berth_file, r#"{"credsStore": "desktop"}"#);
    let docker_file = dir.path().join("home/.docker/config.json");
    write(&docker_file, &auths("reg.io", "must-not-be-used"));
    let values = SourceValues {
        berth_auth_file: Some(berth_file),
        home: Some(dir.path().join("home")),
        helper_search_path: Some(dir.path().join("empty").into_os_string()),
        ..SourceValues::default()
    };
    let error = Sources::from_values(values).lookup("reg.io", "app").unwrap_err();
    assert!(
        matches!(&error, Error::HelperMissing { program, .. } if program == "docker-credential-desktop"),
        "{error}"
    );
}

#[test]
fn helper_with_nothing_falls_through_to_the_next_source() {
    let dir = tempfile::tempdir().unwrap();
    let search_path = fake_helper(dir.path(), "fake");
    let berth_file = dir.path().join("berth.json");
    write(&berth_file, r#"{"credsStore": "fake"}"#);
    let docker_file = dir.path().join("home/.docker/config.json");
    write(&docker_file, &auths("reg.io", "docker"));
    let values = SourceValues {
        berth_auth_file: Some(berth_file),
        home: Some(dir.path().join("home")),
        helper_search_path: Some(search_path),
        ..SourceValues::default()
    };
    let found = Sources::from_values(values).lookup("reg.io", "app").unwrap().unwrap();
    assert_eq!(found.credential.username(), Some("docker"));
}

#[test]
fn files_are_read_at_lookup_not_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let sources =
        Sources::from_values(SourceValues { berth_auth_file: Some(path.clone()), ..SourceValues::default() });
    assert_eq!(username(&sources), None);
    write(&path, &auths("reg.io", "late"));
    assert_eq!(username(&sources).as_deref(), Some("late"));
}

#[test]
fn lookups_never_leak_secrets_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources::from_values(all_sources(dir.path()));
    let found = sources.lookup("reg.io", "app").unwrap().unwrap();
    for text in [format!("{found:?}"), format!("{:?}", found.credential), format!("{sources:?}")] {
        assert!(!text.contains(SECRET), "{text}");
    }
}
