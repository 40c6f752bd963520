use std::os::unix::fs::MetadataExt;

use base64::prelude::{BASE64_STANDARD, Engine as _};

use super::*;
use crate::test_support::{fake_helper, helper_calls, seed_fake_helper, write_script};
use crate::{Secret, SourceValues, Sources};

const SECRET: &str = "login-secret-xyz";

fn basic(user: &str) -> Credential {
    Credential::Basic { username: user.into(), password: Secret::new(SECRET) }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lookup(path: &Path, registry: &str) -> Option<crate::Found> {
    let values = SourceValues { berth_auth_file: Some(path.to_owned()), ..SourceValues::default() };
    Sources::from_values(values).lookup(registry, "some/repo").unwrap()
}

#[test]
fn save_creates_private_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/nested/auth.json");
    let store = LoginStore::new(path.clone());
    assert_eq!(store.path(), path);
    assert_eq!(store.save("reg.io:5000", &basic("alice")).unwrap(), Saved::File(path.clone()));
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("new/nested")).unwrap().mode() & 0o777, 0o700);
    let json = read_json(&path);
    let expected = BASE64_STANDARD.encode(format!("alice:{SECRET}"));
    assert_eq!(json["auths"]["reg.io:5000"]["auth"], Value::String(expected));
    assert_eq!(lookup(&path, "reg.io:5000").unwrap().credential, basic("alice"));
}

#[test]
fn save_tightens_a_loose_existing_file_and_replaces_it_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, "{}").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inode_before = std::fs::metadata(&path).unwrap().ino();
    LoginStore::new(path.clone()).save("reg.io", &basic("alice")).unwrap();
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.mode() & 0o777, 0o600);
    assert_ne!(metadata.ino(), inode_before, "the file is replaced by rename, not rewritten in place");
    let leftovers: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("auth.json")], "no temporary file is left behind");
}

#[test]
fn save_keeps_every_other_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let original = serde_json::json!({
        "auths": { "other.io": { "auth": "b3RoZXI6cHc=" }, "reg.io": { "auth": "b2xkOm9sZA==" } },
        "HttpHeaders": { "User-Agent": "x" },
        "psFormat": "table {{.ID}}",
    });
    std::fs::write(&path, original.to_string()).unwrap();
    LoginStore::new(path.clone()).save("reg.io", &basic("new")).unwrap();
    let json = read_json(&path);
    assert_eq!(json["auths"]["other.io"], original["auths"]["other.io"]);
    assert_eq!(json["HttpHeaders"], original["HttpHeaders"]);
    assert_eq!(json["psFormat"], original["psFormat"]);
    assert_eq!(lookup(&path, "reg.io").unwrap().credential, basic("new"));
}

#[test]
fn docker_hub_is_stored_under_dockers_key_and_read_back_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(
        &path,
        r#"{"auths": {"docker.io": {"auth": "b2xkOm9sZA=="}, "index.docker.io/ns": {"auth": "bnM6bnM="}}}"#,
    )
    .unwrap();
    LoginStore::new(path.clone()).save("docker.io", &basic("hub")).unwrap();
    let json = read_json(&path);
    let auths = json["auths"].as_object().unwrap();
    assert!(auths.contains_key("https://index.docker.io/v1/"));
    assert!(!auths.contains_key("docker.io"), "the old spelling of the same key is replaced");
    assert!(auths.contains_key("index.docker.io/ns"), "a namespace key is another login");
    assert_eq!(lookup(&path, "docker.io").unwrap().credential, basic("hub"));
    assert_eq!(lookup(&path, "index.docker.io").unwrap().credential, basic("hub"));
}

#[test]
fn token_credentials_are_written_as_docker_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let store = LoginStore::new(path.clone());
    let identity = Credential::IdentityToken { username: "u".into(), token: Secret::new(SECRET) };
    store.save("a.io", &identity).unwrap();
    store.save("b.io", &Credential::RegistryToken(Secret::new(SECRET))).unwrap();
    let json = read_json(&path);
    assert_eq!(json["auths"]["a.io"]["identitytoken"], SECRET);
    assert_eq!(json["auths"]["b.io"]["registrytoken"], SECRET);
    assert_eq!(lookup(&path, "a.io").unwrap().credential, identity);
}

#[test]
fn invalid_file_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, "{ broken").unwrap();
    let error = LoginStore::new(path.clone()).save("reg.io", &basic("u")).unwrap_err();
    assert!(matches!(&error, Error::InvalidConfig { path_or_var, .. } if path_or_var.ends_with("auth.json")));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ broken");
    assert!(!error.to_string().contains(SECRET));
}

#[test]
fn symlinked_file_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, "{}").unwrap();
    let link = dir.path().join("auth.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    LoginStore::new(link.clone()).save("reg.io", &basic("u")).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(read_json(&real)["auths"]["reg.io"].is_object());
}

#[test]
fn erase_removes_the_key_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let store = LoginStore::new(path.clone());
    assert!(!store.erase("reg.io").unwrap(), "nothing to erase in a missing file");
    store.save("reg.io", &basic("u")).unwrap();
    store.save("other.io", &basic("o")).unwrap();
    store.save("docker.io", &basic("hub")).unwrap();
    assert!(store.erase("reg.io").unwrap());
    assert!(!store.erase("reg.io").unwrap());
    assert!(store.erase("https://index.docker.io/v1/").unwrap());
    assert!(lookup(&path, "reg.io").is_none());
    assert!(lookup(&path, "docker.io").is_none());
    assert_eq!(lookup(&path, "other.io").unwrap().credential, basic("o"));
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn creds_store_receives_the_login_and_the_file_keeps_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let search_path = fake_helper(dir.path(), "fake");
    let path = dir.path().join("auth.json");
    // A stale plaintext login must not outrank the helper afterwards.
    std::fs::write(&path, r#"{"credsStore": "fake", "auths": {"reg.io": {"auth": "c3RhbGU6c3RhbGU="}}}"#)
        .unwrap();
    let store = LoginStore::new(path.clone()).with_helper_search_path(Some(search_path.clone()));
    assert_eq!(
        store.save("reg.io", &basic("alice")).unwrap(),
        Saved::Helper("docker-credential-fake".into())
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(SECRET) && !text.contains("c3RhbGU6c3RhbGU="), "{text}");
    assert_eq!(read_json(&path)["credsStore"], "fake");
    let values = SourceValues {
        berth_auth_file: Some(path.clone()),
        helper_search_path: Some(search_path),
        ..SourceValues::default()
    };
    let found = Sources::from_values(values.clone()).lookup("reg.io", "app").unwrap().unwrap();
    assert_eq!(found.credential, basic("alice"));
    assert!(matches!(found.source, crate::Source::Helper { .. }));
    assert!(store.erase("reg.io").unwrap());
    assert!(Sources::from_values(values).lookup("reg.io", "app").unwrap().is_none());
    assert!(!store.erase("reg.io").unwrap());
    assert_eq!(helper_calls(dir.path()), ["store", "get", "erase", "get", "erase"]);
}

#[test]
fn cred_helpers_entry_wins_for_its_registry_and_hub_uses_dockers_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let search_path = fake_helper(dir.path(), "fake");
    let path = dir.path().join("auth.json");
    std::fs::write(&path, r#"{"credHelpers": {"index.docker.io": "fake"}}"#).unwrap();
    let store = LoginStore::new(path.clone()).with_helper_search_path(Some(search_path));
    assert_eq!(
        store.save("docker.io", &basic("hub")).unwrap(),
        Saved::Helper("docker-credential-fake".into())
    );
    assert!(dir.path().join("state/https___index_docker_io_v1_").exists());
    assert_eq!(store.save("reg.io", &basic("plain")).unwrap(), Saved::File(path.clone()));
    assert!(read_json(&path)["auths"]["reg.io"].is_object());
    seed_fake_helper(dir.path(), "unrelated", "x", "y");
    assert!(store.erase("docker.io").unwrap());
}

#[test]
fn failing_helper_store_names_the_helper_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "broken", "#!/bin/sh\ncat\necho ' keychain locked'\nexit 1\n");
    let path = dir.path().join("auth.json");
    std::fs::write(&path, r#"{"credsStore": "broken"}"#).unwrap();
    let store =
        LoginStore::new(path.clone()).with_helper_search_path(Some(dir.path().as_os_str().to_owned()));
    let error = store.save("reg.io", &basic("u")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("docker-credential-broken") && message.contains("keychain locked"), "{message}");
    assert!(!message.contains(SECRET) && !format!("{error:?}").contains(SECRET), "{message}");
    assert!(!std::fs::read_to_string(&path).unwrap().contains(SECRET));
}

#[test]
fn missing_helper_fails_the_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, r#"{"credsStore": "absent"}"#).unwrap();
    let store = LoginStore::new(path).with_helper_search_path(Some(dir.path().as_os_str().to_owned()));
    assert!(matches!(store.save("reg.io", &basic("u")), Err(Error::HelperMissing { .. })));
}
